"""``python -m mtlrec train --config FILE [--out RUN_DIR] [--dataset PREPARED] [--json] [--epochs N] [--device cpu]
[--nproc N] [--ranking-users N|auto] [--no-ranking]``, ``python -m mtlrec train --resume RUN [--json] [--device cpu] [--threads N] [--nproc N]``.

``--dataset PREPARED`` trains on a folder written by ``python -m mtlrec prepare`` (memory-mapped)
instead of preparing the data the config names.

Data-parallel training (`mtlrec.training.distributed`): under ``torchrun --nproc-per-node N -m
mtlrec train ...`` every process trains its share of each batch and rank 0 writes the run
folder; ``--nproc N`` launches exactly that (``torch.distributed.run --standalone``, one node)
for you, passes Ctrl-C / SIGTERM on to every rank and prints what rank 0 prints. For several
nodes run torchrun yourself (docs/scale-out.md).

``--resume RUN`` continues an interrupted, cancelled or failed run from the checkpoint.pt its
folder holds (RUN: a run folder, or a folder name inside the runs root), in that folder and
with its configuration; it is refused (exit 2, nothing written) for a finished run, a run that
is still training, or a run without a checkpoint.

Progress goes to stderr; with ``--json`` stdout carries exactly one JSON object:
``{"run_dir", "device", "status", "best_epoch", "test": {task: {metric: v}}, "valid": {...},
"ranking": {task: {recall@K, ndcg@K, hitrate@K, mrr}} (test split, binary tasks; {} without
user/item ids or with --no-ranking), "ranking_baseline": {"popularity": {task: {same keys}},
"mean_rating": {...}} (the same test users offered the most popular items they have not seen and,
when the data has a rating, the best-rated ones), "ranking_info": {"status":
"done" | "skipped" | "not applicable", "users", "of_users", "items", ... or "reason"},
"task_baseline": {task: {"name": "training mean", "metrics": {...}}} (distribution tasks only: every
test row predicted as the training-mean distribution), "stl_gain": {task: v} (with baselines),
"cv": {...} (with cv_folds > 1), "warnings": [...]}``.
Bad data or a failed run: a message on stderr and exit status 2 (no traceback); with
``--json`` stdout still carries one object ``{"status": "failed", "error", "run_dir", "warnings"}``
(an unexpected internal error: exit status 1; Ctrl-C or SIGTERM: "cancelled", exit 130).
The run folder's status.json records every ending (see mtlrec.runs.folder).
"""
from __future__ import annotations

import math
import sys
import time

from mtlrec.cli.emit import dumps


def add_arguments(p) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", help="JSON run config (see mtlrec/config.py for the format)")
    what.add_argument("--resume", metavar="RUN", help="continue an interrupted, cancelled or failed run from its "
                      "last checkpoint (a run folder, or a folder name inside the runs root)")
    p.add_argument("--out", default=None, help="run folder to write (default: runs/<timestamp>-<arch>)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    p.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    p.add_argument("--device", default=None, help="override train.device (auto, cuda, mps, cpu)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (override train.threads)")
    p.add_argument("--baselines", action="store_true", help="also train single-task baselines (gain per task)")
    p.add_argument("--ranking-users", type=_ranking_users, default=None, metavar="N|auto",
                   help="rank at most N test users over the whole catalogue at the end (override "
                        "train.ranking_users; auto: 500, fewer on a catalogue of over 100,000 items)")
    p.add_argument("--no-ranking", action="store_true",
                   help="skip the ranking over the whole catalogue at the end (train.ranking_k = 0): "
                        "no Recall@K / NDCG@K / HitRate@K / MRR")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--dataset", default=None, metavar="PREPARED",
                   help="train on a prepared dataset folder (python -m mtlrec prepare) instead of the config's data")
    p.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="data-parallel training in N processes on this machine (launches torchrun; NCCL on "
                        "GPUs, one per process, gloo on CPU)")


def _sigterm_to_interrupt(stop_event=None):
    """SIGTERM ends the run like Ctrl-C (status.json says "cancelled", not "running" for good).
    With ``stop_event`` (data-parallel ranks) SIGTERM and Ctrl-C set the event instead while the
    training loop runs, so that every rank stops at the same batch (an interrupt in the middle of
    a collective would leave the others waiting); outside the loop they interrupt as usual.
    Returns a function that puts the previous handlers back."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        from mtlrec.training import distributed
        if stop_event is not None and distributed.in_training_loop():
            stop_event.set()
            return
        raise KeyboardInterrupt()

    sigs = [signal.SIGTERM] + ([signal.SIGINT] if stop_event is not None else [])
    olds = []
    try:
        for sig in sigs:
            olds.append((sig, signal.signal(sig, handler)))
        from mtlrec.runs.folder import owner_cancels_on_sigterm
        owner_cancels_on_sigterm()        # status.json says so: the Runs page may cancel this run
    except (ValueError, OSError):  # pragma: no cover - not the main thread of the main interpreter
        pass

    def restore():
        for sig, old in olds:
            signal.signal(sig, old)
        if olds:
            from mtlrec.runs.folder import owner_cancels_on_sigterm
            owner_cancels_on_sigterm(False)
    return restore


class _Session:
    """One ``train`` command: its options, the run folder and `Progress` once known, and under
    torchrun the process group (rank 0 speaks for the run; the other ranks go quiet and tag the
    errors they print) with the stop event every rank checks at the same batch."""

    def __init__(self, args):
        self.args = args
        self.rank_tag = ""
        self.run_dir = None
        self.progress = None
        self.dist = None
        self.stop_event = None

    def err(self, msg: str) -> None:
        print(self.rank_tag + msg, file=sys.stderr, flush=True)

    def say(self, s: str) -> None:
        """Progress on stderr (nothing with ``--quiet``)."""
        if not self.args.quiet:
            self.err(f"[mtlrec] {s}")

    def fail(self, status: str, msg: str, code: int) -> int:
        self.err(f"mtlrec train: {msg}")
        if self.args.json:
            print(dumps({"status": status, "error": msg, "run_dir": str(self.run_dir) if self.run_dir else None,
                         "warnings": list(self.progress.warnings) if self.progress else []}))
        return code

    def join_group(self) -> None:
        """Under torchrun: join the process group; a rank other than 0 goes quiet."""
        from mtlrec.training import distributed
        if not distributed.launched_by_torchrun():
            return
        import threading

        from mtlrec.training.launch import config_device
        self.dist = distributed.init_from_env(self.args.device or config_device(self.args))
        self.stop_event = threading.Event()
        if not self.dist.is_main:          # rank 0 speaks for the run
            self.args.quiet, self.args.json = True, False
            self.rank_tag = f"[rank {self.dist.rank}] "

    def on_epoch(self, rec, history) -> None:
        """One line per epoch on stderr: train losses, the first validation metric per task, speed."""
        if self.args.quiet:
            return
        parts = []
        for task, m in (rec.get("valid") or {}).items():
            if m:
                k = next(iter(m))
                parts.append(f"{task} {k}={m[k]:.4f}" if m[k] is not None else f"{task} {k}=nan")
        loss = " ".join(f"{t}={v:.4f}" for t, v in rec["train_loss"].items() if v is not None)
        best = " *" if rec.get("best") else ""
        self.err(f"[mtlrec] {self.progress.phase} epoch {rec['epoch']}/{self.progress.epochs}  train loss {loss}  "
                 f"valid {'  '.join(parts)}  ({rec['samples_per_s']:.0f} samples/s){best}")


def run(args) -> int:
    code = _run(args)
    from mtlrec.training import distributed
    if distributed.launched_by_torchrun():
        distributed.leave(code)      # a rank: the group is destroyed and the results written
    return code


def _run(args) -> int:
    if args.nproc is not None:
        from mtlrec.training.launch import launch
        return launch(args)
    from mtlrec.training import lifeline
    lifeline.die_with_parent(lifeline.parent_from_env())     # a rank of the app's torchrun: ends with torchrun
    from mtlrec.errors import DataError, TrainingError
    from mtlrec.training import distributed
    s = _Session(args)
    try:
        from mtlrec.training.progress import Progress
        s.progress = Progress()
        s.join_group()
        t0 = time.time()
        if args.resume:
            refused = _refused_with_resume(args)
            if refused:
                return s.fail("failed", refused, 2)
            go = _resume_call(s)
        else:
            go = _new_run_call(s)
        restore = _sigterm_to_interrupt(s.stop_event)
        try:
            res = go()
        finally:
            restore()
        if s.dist is None or s.dist.is_main:
            _report(s, res, time.time() - t0)
        return 0 if res.status == "finished" else 1
    except (DataError, TrainingError) as e:
        return s.fail("failed", str(e), 2)
    except KeyboardInterrupt:
        return s.fail("cancelled", "interrupted (Ctrl-C or SIGTERM); status.json says cancelled", 130)
    except Exception as e:  # noqa: BLE001 - never a traceback; status.json keeps it for debugging
        where = f" (the traceback is in {s.run_dir}/status.json)" if s.run_dir else ""
        return s.fail("failed", f"internal error: {type(e).__name__}: {e}{where}", 1)
    finally:
        if s.dist is not None:
            distributed.shutdown()


def _refused_with_resume(args) -> str | None:
    """Why the options cannot go with ``--resume`` (a resumed run keeps its folder and its configuration)."""
    for flag, given in (("--out", args.out), ("--epochs", args.epochs), ("--baselines", args.baselines),
                        ("--ranking-users", args.ranking_users), ("--no-ranking", args.no_ranking)):
        if given:
            return f"{flag} cannot be used with --resume: a resumed run keeps its folder and its configuration"
    return None


def _resume_call(s: _Session):
    """The call that continues the run of ``--resume`` (`mtlrec.training.resume.resume_run`)."""
    from mtlrec.training.resume import resume_dir, resume_run
    args = s.args
    run_dir = s.run_dir = resume_dir(args.resume)
    s.say(f"resuming run folder: {run_dir}")

    def go():
        return resume_run(run_dir, progress=s.progress, on_epoch=s.on_epoch, log=s.say, device=args.device,
                          threads=args.threads, stop_event=s.stop_event)
    return go


def _new_run_call(s: _Session):
    """The call that trains ``--config`` (with the command's overrides) into its run folder: ``--out``,
    else a new folder (rank 0 chooses it for every rank), on ``--dataset`` when given."""
    from pathlib import Path

    from mtlrec.config import RunConfig
    from mtlrec.runs.folder import default_run_dir
    from mtlrec.training.pipeline import open_prepared, run_training
    args, dist = s.args, s.dist
    cfg = RunConfig.load(args.config)
    _apply_overrides(cfg, args)
    cfg.validate()
    run_dir = s.run_dir = args.out or (default_run_dir(cfg.arch, name=cfg.name) if dist is None or dist.is_main
                                       else None)
    if dist is not None and not args.out:       # every rank writes (its stats) to rank 0's folder
        run_dir = s.run_dir = dist.broadcast_text(str(run_dir or ""))
    s.say(f"run folder: {run_dir}")
    dataset = open_prepared(args.dataset) if args.dataset else None
    in_place = bool(args.dataset) and Path(args.dataset).resolve() == (Path(run_dir) / "dataset").resolve()

    def go():    # a dataset already in the run folder (the app's several-process jobs) stays as it is
        return run_training(cfg, run_dir, dataset=dataset, progress=s.progress, on_epoch=s.on_epoch, log=s.say,
                            stop_event=s.stop_event, write_dataset=not in_place)
    return go


def _apply_overrides(cfg, args) -> None:
    """The command's options over the config's train settings."""
    if args.epochs is not None:
        cfg.train.epochs = int(args.epochs)
    if args.device:
        cfg.train.device = args.device
    if args.baselines:
        cfg.train.baselines = True
    if args.ranking_users is not None:
        cfg.train.ranking_users = args.ranking_users
    if args.no_ranking:
        cfg.train.ranking_k = 0
    if args.threads:
        cfg.train.threads = args.threads


def _report(s: _Session, res, seconds: float) -> None:
    """The ending: a line on stderr (and the warnings with ``--quiet``), then the results as text
    or, with ``--json``, as one JSON object on stdout."""
    m = res.metrics
    s.say(f"{res.status} in {seconds:.1f}s; best epoch {m.get('best_epoch')}")
    if s.args.quiet:
        for w in m.get("warnings") or []:
            s.err(f"mtlrec train: warning: {w}")
    if s.args.json:
        print(dumps(_json_result(res, s.run_dir)))
    else:
        _print_results(m, s.run_dir)


def _print_results(m: dict, run_dir) -> None:
    """The test metrics, the ranking with its baselines and verdicts, the multi-task gains, the folder."""
    for task, vals in (m.get("test") or {}).items():
        shown = ", ".join(f"{k}={v:.4f}" for k, v in vals.items() if isinstance(v, float) and math.isfinite(v))
        print(f"test {task}: {shown}")
        base = ((m.get("task_baseline") or {}).get(task) or {}).get("metrics") or {}
        if base:     # a distribution task: every row predicted as the training-mean distribution
            print("  training-mean baseline: " + ", ".join(f"{k}={v:.4f}" for k, v in base.items()
                                                           if isinstance(v, float) and math.isfinite(v)))
    from mtlrec.metrics import ranking_note, ranking_rows, ranking_verdicts
    note = ranking_note(m)
    if note:
        print(note)
    verdicts, rows = ranking_verdicts(m), ranking_rows(m)
    for j, row in enumerate(rows):
        task, by = row.pop("task"), row.pop("ranked by")
        shown = ", ".join(f"{k}={v:.4f}" for k, v in row.items() if isinstance(v, float) and math.isfinite(v))
        print(f"test ranking {task}: {shown}" if by == "model" else f"  {by} baseline: {shown}")
        last = j + 1 == len(rows) or rows[j + 1]["task"] != task     # the task's last row
        if last and task in verdicts:
            print(f"  -> {verdicts.pop(task)}")
    for task, g in (m.get("gain") or {}).items():
        print(f"multi-task gain {task} ({g['metric']}): {g['gain']:+.4f} (MTL {g['mtl']:.4f}, STL {g['stl']:.4f})")
    print(f"run folder: {run_dir}")


def _json_result(res, run_dir) -> dict:
    """The object ``--json`` prints (see the module doc)."""
    m = res.metrics
    out = {"run_dir": str(run_dir), "device": res.device, "status": res.status,
           "arch": getattr(res.model, "arch", None), "best_epoch": m.get("best_epoch"), "test": m.get("test", {}),
           "valid": m.get("valid", {}), "ranking": m.get("ranking", {}),
           "ranking_baseline": m.get("ranking_baseline", {}), "ranking_info": m.get("ranking_info", {}),
           "warnings": m.get("warnings", [])}
    if m.get("task_baseline"):
        out["task_baseline"] = m["task_baseline"]
    if "gain" in m:
        out["stl_gain"] = {t: g["gain"] for t, g in m["gain"].items()}
        out["stl"] = m.get("stl", {})
    if "cv" in m:
        out["cv"] = {"k": m["cv"]["k"], "valid": m["cv"]["valid"], "test": m["cv"]["test"]}
    return out


def _ranking_users(text: str):
    """``--ranking-users``: "auto" or a whole number >= 1."""
    import argparse
    if text.strip().lower() == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"give a whole number of users >= 1 or 'auto', not {text!r}")
    return n
