"""A training process never outlives the server that started it (issue 21, item 17).

A server killed with kill -9 used to leave its worker training as an orphan: after a restart
the run read "running" and could be neither cancelled nor deleted. Here a real owner process
(a TrainingJob, as the app's server holds it) is killed with SIGKILL: its worker process -- or
its torchrun launcher and ranks -- must end, and the run must read "interrupted", stay
resumable and be deletable. A run trained by a live process elsewhere on this machine can be
cancelled from the run library (the Runs page, ``runs cancel``)."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtlrec.errors import DataError

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# the owner: two TrainingJobs as the server holds them -- one in a worker process, one in two
# torchrun processes; prints their processes' pids once both runs have a checkpoint, then waits to be killed
OWNER = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig
from mtlrec.training.jobs import TrainingJob
root = Path(sys.argv[1])
cfg = RunConfig.from_dict({{"tasks": TASKS[:2], "model": {{"arch": "shared_bottom", "shared_dims": [8],
                          "tower_dims": [4], "embedding_dim": 4}},
                          "train": {{"epochs": 100000, "batch_size": 128, "device": "cpu", "seed": 0,
                                    "ranking_k": 0, "threads": 1, "early_stopping": {{"patience": 0}}}}}})
jobs = {{name: TrainingJob(cfg, root / name, dataset=make_dataset(n_rows=600), isolate="process",
                          processes=n).start() for name, n in (("worker-run", 1), ("torchrun-run", 2))}}
while not all((root / name / "checkpoint.pt").exists() for name in jobs):
    for job in jobs.values():
        if job.done:
            sys.exit("a run ended: " + str(job.snapshot()["error"]))
    time.sleep(0.05)
print(json.dumps({{name: job.worker_pid for name, job in jobs.items()}}), flush=True)
time.sleep(3600)
"""


def _alive(pid: int) -> bool:
    from mtlrec.runs.folder import proc_is_zombie
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not proc_is_zombie(pid)


def _descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _start_owner(root: Path, timeout: float, script: str | None = None):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    owner = subprocess.Popen([sys.executable, "-c", (script or OWNER).format(tests=str(TESTS)), str(root)],
                             cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ready, _, _ = select.select([owner.stdout], [], [], timeout)
    if not ready:
        owner.kill()
        raise AssertionError("the owner's runs did not reach their first checkpoint")
    line = owner.stdout.readline()
    if not line:
        owner.wait()
        raise AssertionError(owner.stderr.read()[-3000:])
    return owner, json.loads(line)


def _kill_owner_and_wait_for(owner, pids: list[int], within_s: float) -> list[int]:
    """SIGKILL the owner; the pids still alive after ``within_s`` (they are killed then, so that no
    test leaves an orphan behind)."""
    owner.send_signal(signal.SIGKILL)
    owner.wait(30)
    deadline = time.time() + within_s
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    left = [p for p in pids if _alive(p)]
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def _assert_interrupted_resumable_deletable(run_dir: Path, root: Path) -> None:
    from mtlrec.runs.library import delete_run
    from mtlrec.runs.load import run_status
    from mtlrec.training.resume import resume_problem
    st = run_status(run_dir)
    assert st["status"] == "interrupted", st
    assert resume_problem(run_dir) is None                  # its checkpoint carries it on
    delete_run(run_dir.name, root)
    assert not run_dir.exists()


def test_the_training_processes_of_a_killed_server_end_and_its_runs_read_interrupted(tmp_path):
    """kill -9 of the server: its worker process, and the torchrun launcher with torchrun and both
    ranks, end within seconds; both runs read "interrupted", can be resumed and deleted."""
    root = tmp_path / "runs"
    owner, pids = _start_owner(root, timeout=400)
    launched = _descendants(owner.pid)           # worker; launcher, torchrun, 2 ranks (+ their helpers)
    assert pids["worker-run"] in launched and pids["torchrun-run"] in launched and len(launched) >= 5, launched
    left = _kill_owner_and_wait_for(owner, launched, within_s=60)
    assert left == [], f"{len(left)} of the server's {len(launched)} training processes went on without it"
    for name in pids:
        _assert_interrupted_resumable_deletable(root / name, root)


# ---- a run owned by a live process elsewhere -------------------------------------------------------
def _running_status(run_dir: Path, pid: int, **extra) -> None:
    from mtlrec.runs.folder import owner_identity, proc_start_ticks, write_json_atomic
    run_dir.mkdir(parents=True)
    ident = {**owner_identity(), "pid": pid, "process_start": proc_start_ticks(pid)}
    ident.pop("cancel", None)
    write_json_atomic(run_dir / "status.json", {"status": "running", "error": None, **ident, **extra,
                                                "heartbeat": time.time()})
    (run_dir / "config.json").write_text("{}")


def test_a_run_of_another_live_process_can_be_cancelled_from_the_library(tmp_path):
    """The owner stops on SIGTERM (as the app's workers and the command line do): cancel_run signals it;
    an app server training in its own process is never signalled: the message says where to cancel."""
    from mtlrec.runs.library import cancel_problem, cancel_run, delete_run
    root = tmp_path / "runs"
    code = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n" \
           "print('ready', flush=True)\ntime.sleep(600)"
    stopper, server = (subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
                       for _ in range(2))
    try:
        assert stopper.stdout.readline().strip() == "ready" and server.stdout.readline().strip() == "ready"
        _running_status(root / "cli-run", stopper.pid, cancel="sigterm")
        _running_status(root / "server-thread-run", server.pid)          # an app server training in a thread
        with pytest.raises(DataError, match="Fix: cancel it first"):
            delete_run("cli-run", root)
        assert cancel_problem(root / "cli-run") is None
        assert "stop" in cancel_run("cli-run", root)
        assert stopper.wait(30) == 7                                     # it got SIGTERM
        why = cancel_problem(root / "server-thread-run")
        assert "another app server's own process" in why and "Train page" in why
        with pytest.raises(DataError, match="another app server"):
            cancel_run("server-thread-run", root)
        with pytest.raises(DataError, match="another app server"):
            delete_run("server-thread-run", root)
        assert server.poll() is None                                     # never signalled
        _running_status(root / "this-server-run", os.getpid())           # another session of this server
        assert "this server's own process, for another session" in cancel_problem(root / "this-server-run")
    finally:
        for p in (stopper, server):
            if p.poll() is None:
                p.kill()


# the owner keeps a spare worker (issue 25): one run trains in the spare it took, the next spare waits
SPARE_OWNER = """
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
os.environ["MTLREC_TRAIN_ISOLATION"] = "process"
os.environ.pop("MTLREC_SPARE_WORKER", None)
from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig
from mtlrec.training.jobs import TrainingJob, start_spare_worker
from mtlrec.training.spare import current_pool
root = Path(sys.argv[1])
assert start_spare_worker()
first = current_pool().wait_ready(600)
cfg = RunConfig.from_dict({{"tasks": TASKS[:2], "model": {{"arch": "shared_bottom", "shared_dims": [8],
                          "tower_dims": [4], "embedding_dim": 4}},
                          "train": {{"epochs": 100000, "batch_size": 128, "device": "cpu", "seed": 0,
                                    "ranking_k": 0, "threads": 1, "early_stopping": {{"patience": 0}}}}}})
job = TrainingJob(cfg, root / "spare-run", dataset=make_dataset(n_rows=600)).start()
while not (root / "spare-run" / "checkpoint.pt").exists():
    if job.done:
        sys.exit("the run ended: " + str(job.snapshot()["error"]))
    time.sleep(0.05)
second = current_pool().wait_ready(600)
print(json.dumps({{"first": first, "worker": job.worker_pid, "second": second}}), flush=True)
time.sleep(3600)
"""


def test_the_spare_workers_of_a_killed_server_end_and_the_run_in_one_reads_interrupted(tmp_path):
    """kill -9 of a server that keeps a spare worker: the spare that trains a run and the idle spare
    waiting for the next Start both end; the run reads "interrupted", can be resumed and deleted."""
    root = tmp_path / "runs"
    owner, pids = _start_owner(root, timeout=600, script=SPARE_OWNER)
    assert pids["worker"] == pids["first"] and pids["second"] not in (None, pids["first"]), pids
    launched = _descendants(owner.pid)
    assert pids["first"] in launched and pids["second"] in launched, launched
    left = _kill_owner_and_wait_for(owner, launched, within_s=60)
    assert left == [], f"{len(left)} of the server's {len(launched)} processes went on without it"
    _assert_interrupted_resumable_deletable(root / "spare-run", root)
