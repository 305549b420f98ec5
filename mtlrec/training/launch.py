"""``python -m mtlrec train --nproc N ...``: start the same command under torchrun on this machine.

    python -m torch.distributed.run --standalone --nproc-per-node N -m mtlrec train <the other options>

The run folder is chosen here (``--out``, or ``runs/<timestamp>-<arch>``) so that every rank
writes to one folder. Each rank gets ``OMP_NUM_THREADS`` = cores / N unless it is set. Ctrl-C and
SIGTERM are passed on (torchrun signals every rank; the ranks stop together at the next batch
and rank 0 records "cancelled"). torchrun's own failure report (a Python traceback of the
launcher) is shown only when the run folder does not explain the ending itself. The exit status
follows the run folder's status.json: finished 0, failed 2 (1 for an internal error),
cancelled 130; 1 when the processes ended without a status.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
REPO_ROOT = Path(__file__).resolve().parents[2]     # the folder that holds this mtlrec package


CPU_PROCESSES_ENV = "MTLREC_CPU_PROCESSES"


def max_processes() -> int:
    """How many data-parallel processes the app offers here: the number of GPUs when there are
    several (one process per GPU); on a machine with at most one GPU, ``MTLREC_CPU_PROCESSES``
    (gloo processes on the CPU, e.g. for trying the several-process path; capped at the core
    count) or 1, which means the option is not shown."""
    raw = (os.environ.get(CPU_PROCESSES_ENV) or "").strip()
    import torch
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus > 1:
        return gpus
    try:
        n = int(raw) if raw else 1
    except ValueError:
        n = 1
    return max(1, min(n, os.cpu_count() or 1))


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity where the system says, else all)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def process_limit(device: str | None) -> tuple[int, str]:
    """``(n, what)``: how many data-parallel processes this machine can run for ``device``
    (``train.device``: one per GPU when it resolves to CUDA, else one per CPU core) and what that
    is in words ("2 CPU cores", "1 GPU")."""
    from mtlrec.device import pick_device
    try:
        kind = pick_device(device or "auto").type
    except (RuntimeError, ValueError):            # e.g. CUDA asked for where there is none: 0 GPUs
        kind = "cuda" if str(device).strip().lower().startswith("cuda") else "cpu"
    if kind == "cuda":
        n = _gpus()
        return n, f"{n} GPU{'s' if n != 1 else ''}"
    n = cpu_cores()
    return n, f"{n} CPU core{'s' if n != 1 else ''}"


def too_many_processes(n: int, limit: int, what: str) -> str:
    """The message refusing ``--nproc n`` where `process_limit` says ``(limit, what)``."""
    if "GPU" in what:
        fix = f"--nproc {limit} or fewer" if limit else f"--device cpu (up to {cpu_cores()} processes)"
        fix += ", or a machine with more GPUs"
    else:
        fix = f"--nproc {limit} or fewer, or a machine with more cores"
    return (f"--nproc {n} asks for {n} training processes, but this machine can run {limit} "
            f"(it has {what}; one process each). Fix: {fix}")


def rest_of_argv(argv: list[str]) -> list[str]:
    """``argv`` (after ``train``) without ``--nproc N`` / ``--nproc=N``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out


def torchrun_command(nproc: int, train_args: list[str]) -> list[str]:
    """The command line that runs ``python -m mtlrec train <train_args>`` in ``nproc`` processes."""
    return [*TORCHRUN, "--standalone", "--nproc-per-node", str(int(nproc)), "-m", "mtlrec", "train", *train_args]


def worker_env(nproc: int, env: dict | None = None) -> dict:
    env = dict(os.environ if env is None else env)
    if not env.get("OMP_NUM_THREADS"):
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(int(nproc), 1)))
    src = str(REPO_ROOT)                                  # the ranks import this very mtlrec
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _gpus() -> int:
    import torch        # only when asked for CUDA: the launcher itself needs no torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _status(run_dir) -> dict:
    try:
        return json.loads((Path(run_dir) / "status.json").read_text())
    except (OSError, ValueError, TypeError):
        return {}


EXIT = {"finished": 0, "cancelled": 130}


def config_device(args) -> str | None:
    """train.device of the config (or of the resumed run's config) of parsed ``train`` options,
    for choosing the backend before any process starts."""
    from mtlrec.training.resume import resume_dir
    try:
        path = Path(args.config) if args.config else resume_dir(args.resume) / "config.json"
        return ((json.loads(path.read_text()).get("train") or {}).get("device")) or "auto"
    except (OSError, ValueError, AttributeError):
        return "auto"


def _fail(args, msg: str, code: int = 2, run_dir=None) -> int:
    """Say why the launch failed (stderr; with ``--json`` also the failed-run object on stdout)."""
    print(f"mtlrec train: {msg}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"status": "failed", "error": msg, "run_dir": str(run_dir) if run_dir else None,
                          "warnings": []}), flush=True)
    return code


def _process_problem(args, n: int) -> str | None:
    """Why ``--nproc n`` cannot run on this machine, or None."""
    if n < 1:
        return f"--nproc must be at least 1, not {n}"
    limit, what = process_limit(args.device or config_device(args))
    if n > limit:
        return too_many_processes(n, limit, what)
    return None


def _run_folder(args, train_args: list[str]):
    """(the folder every rank writes to, None), or (None, why the run cannot start) -- said once,
    here, before any process starts: the resumed run's folder once it is found resumable; for a
    new run ``--out``, else a folder of its own created here (atomically) and added to
    ``train_args``."""
    from mtlrec.errors import DataError, TrainingError
    if args.resume:
        from mtlrec.training.resume import check_resumable, resume_dir
        run_dir = resume_dir(args.resume)
        try:
            check_resumable(run_dir)
        except DataError as e:
            return None, str(e)
        return run_dir, None
    from mtlrec.config import RunConfig
    try:                      # a config or a dataset folder that cannot be used
        cfg = RunConfig.load(args.config)
        cfg.validate()
        if args.dataset:
            from mtlrec.training.pipeline import open_prepared
            open_prepared(args.dataset)
    except (DataError, TrainingError, OSError, ValueError) as e:
        return None, str(e)
    if args.out:
        return args.out, None
    from mtlrec.runs.folder import default_run_dir
    run_dir = default_run_dir(cfg.arch, name=cfg.name)
    train_args += ["--out", str(run_dir)]
    return run_dir, None


def _run_torchrun(cmd: list[str], env: dict, parent) -> tuple[int, list[str]]:
    """Run torchrun to its end -> (its exit status, its own report held back: the launcher's
    traceback and elastic warnings). The ranks' stderr is shown as it comes; SIGTERM, Ctrl-C and
    SIGHUP are passed on, and with ``parent`` (the app) gone the ranks end at once."""
    from mtlrec.training import lifeline
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, errors="replace")

    def forward(signum, frame):
        # SIGTERM / Ctrl-C: the ranks stop together ("cancelled"); SIGHUP (the app that started this
        # launcher is gone): torchrun passes it on and the ranks end at once ("interrupted", resumable)
        try:
            proc.send_signal(signal.SIGHUP if signum == signal.SIGHUP else signal.SIGTERM)
        except OSError:
            pass

    olds = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            olds.append((sig, signal.signal(sig, forward)))
    if parent is not None:
        lifeline.die_with_parent(parent, signum=signal.SIGHUP, on_orphan=lambda: forward(signal.SIGHUP, None))
    held: list[str] = []        # torchrun's own report (launcher traceback, elastic warnings)
    in_report = False
    try:
        for line in proc.stderr:
            if line.startswith("Traceback (most recent call last)") or in_report:
                in_report = True
                held.append(line)
            elif "torch.distributed" in line or line.startswith(("W1", "E1", "I1", "*****")):
                held.append(line)
            else:
                sys.stderr.write(line)
                sys.stderr.flush()
        code = proc.wait()
    finally:
        for sig, old in olds:
            signal.signal(sig, old)
    return code, held


def _exit_status(args, run_dir, n: int, code: int, held: list[str]) -> int:
    """The exit status from the run folder's status.json (`EXIT`; failed: 2, 1 for an internal
    error); torchrun's report is shown only when the folder does not explain the ending."""
    st = _status(run_dir)
    status = st.get("status")
    if status in EXIT:
        return EXIT[status] if code == 0 or status != "finished" else 1
    if status == "failed":
        return 1 if st.get("kind") == "internal" else 2
    if code != 0:
        sys.stderr.writelines(held[-40:])
        return _fail(args, f"the {n} training processes ended with exit status {code} and no final status in "
                           f"{run_dir}/status.json (torchrun's report is above)", 1, run_dir)
    return 0


def launch(args, argv: list[str] | None = None) -> int:
    """Run ``args`` (parsed ``train`` options with ``nproc``) under torchrun; returns the exit status."""
    from mtlrec.training import lifeline
    parent = lifeline.parent_from_env()          # started by the app: this launcher ends with it
    n = int(args.nproc)
    problem = _process_problem(args, n)
    if problem:
        return _fail(args, problem)
    argv = list(sys.argv[2:] if argv is None else argv)
    if argv and argv[0] == "train":
        argv = argv[1:]
    train_args = rest_of_argv(argv)
    run_dir, problem = _run_folder(args, train_args)
    if problem:
        return _fail(args, problem)
    env = {**worker_env(n), lifeline.PARENT_ENV: "parent"}      # every rank ends with torchrun
    code, held = _run_torchrun(torchrun_command(n, train_args), env, parent)
    return _exit_status(args, run_dir, n, code, held)


def follow_run_folder(job, state: dict, final: bool = False, stderr_tail: str = "") -> None:
    """Copy what the run folder of a torchrun `TrainingJob` says into the job (under its lock):
    ``progress.json`` into its Progress, ``history.json`` (when it changed) into its History,
    and, with ``final``, the ending from ``status.json`` / ``metrics.json`` -- failed, naming the
    exit status and the launcher's last words, when the processes ended without one."""
    from mtlrec.training.history import History
    from mtlrec.runs.folder import PROGRESS_NAME, read_json
    from mtlrec.training.progress import apply_progress
    d = Path(job.run_dir)

    def changed(name: str) -> bool:
        try:
            m = (d / name).stat().st_mtime_ns
        except OSError:
            return False
        if state.get(name) == m:
            return False
        state[name] = m
        return True

    def doc(name: str):
        try:
            return read_json(d / name, None)
        except (OSError, ValueError):
            return None          # being replaced: read it next time

    prog = doc(PROGRESS_NAME) if changed(PROGRESS_NAME) else None
    hist = doc("history.json") if changed("history.json") else None
    status = doc("status.json") if (changed("status.json") or final) else None
    with job._lock:
        if isinstance(hist, dict):
            h = History.from_dict(hist)
            state["disk_batches"] = list(h.batches)
            job._history.epochs[:] = h.epochs
            job._history.batches[:] = h.batches
        if isinstance(prog, dict):
            job._worker_up = True
            apply_progress(job._progress, {k: v for k, v in prog.items() if k != "started"})
            # live curves between two history.json writes: the current epoch's batch records
            disk = state.get("disk_batches", [])
            last = (disk[-1].get("epoch", 0), disk[-1].get("batch", 0)) if disk else (0, 0)
            newer = [r for r in prog.get("recent_batches") or [] if (r.get("epoch", 0), r.get("batch", 0)) > last]
            job._history.batches[:] = disk + newer
        if isinstance(status, dict):
            if status.get("device"):
                job._device = status["device"]
            for w in status.get("warnings") or []:
                if w not in job._progress.warnings:
                    job._progress.warnings.append(w)
    if not final:
        return
    st = (status or {}).get("status") if isinstance(status, dict) else None
    if st in ("finished", "cancelled"):
        metrics = doc("metrics.json") or {}
        with job._lock:
            job._metrics = metrics
            job._status = st
            job._result_from_folder = (d / "model.pt").is_file()
            if st == "finished":
                job._progress.phase_index = len(job._progress.phases)
                job._progress.start_step("done")
    elif st == "failed":
        job._fail(str(status.get("error") or "training failed"), str(status.get("kind") or "failed"),
                  record=False)
    else:
        tail = " ".join(stderr_tail.strip().splitlines()[-3:])[-400:]
        job._fail(f"the {job.processes} training processes ended (exit status {job.worker_exitcode}) without "
                  f"a final status in {d}/status.json" + (f"; last words: {tail}" if tail else ""),
                  "worker_died")
