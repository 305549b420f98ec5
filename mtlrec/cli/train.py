"""``python -m mtlrec train --config FILE [--out RUN_DIR] [--dataset PREPARED] [--json] [--epochs N] [--device cpu]
[--nproc N] [--ranking-users N|auto] [--no-ranking]``, ``python -m mtlrec train --resume RUN [--json] [--device cpu] [--threads N] [--nproc N]``.

``--dataset PREPARED`` trains on a folder written by ``python -m mtlrec prepare`` (memory-mapped)
instead of preparing the data the config names.

Data-parallel training (`mtlrec.training.distributed`): under ``torchrun --nproc-per-node N -m
mtlrec train ...`` every process trains its share of each batch and rank 0 writes the run
folder; ``--nproc N`` launches exactly that (``torch.distributed.run --standalone``, one node)
for you, passes Ctrl-C / SIGTERM on to every rank and prints what rank 0 prints. For several
nodes run torchrun yourself (README: "Training on several processes or machines").

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
"done" | "skipped" | "not applicable", "users", "of_users", "items", ... or "reason"}, "stl_gain": {task: v} (with baselines),
"cv": {...} (with cv_folds > 1), "warnings": [...]}``.
Bad data or a failed run: a message on stderr and exit status 2 (no traceback); with
``--json`` stdout still carries one object ``{"status": "failed", "error", "run_dir", "warnings"}``
(an unexpected internal error: exit status 1; Ctrl-C or SIGTERM: "cancelled", exit 130).
The run folder's status.json records every ending (see mtlrec.runs.folder).
"""
from __future__ import annotations

import json
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


def _resume_dir(name):
    """RUN of ``--resume``: a folder path, else a folder name inside the runs root."""
    from pathlib import Path

    from mtlrec.runs.library import runs_root
    p = Path(name)
    if p.is_dir() or p.is_absolute() or len(p.parts) > 1:
        return p
    inside = runs_root() / p
    return inside if inside.is_dir() else p


def run(args) -> int:
    if args.nproc is not None:
        from mtlrec.training.launch import launch
        return launch(args)
    from mtlrec.training import lifeline
    lifeline.die_with_parent(lifeline.parent_from_env())     # a rank of the app's torchrun: ends with torchrun
    from mtlrec.config import RunConfig
    from mtlrec.errors import DataError, TrainingError
    from mtlrec.training import distributed

    rank_tag = ""

    def err(msg: str) -> None:
        print(rank_tag + msg, file=sys.stderr, flush=True)

    run_dir = None
    progress = None

    def fail(status: str, msg: str, code: int) -> int:
        err(f"mtlrec train: {msg}")
        if args.json:
            print(dumps({"status": status, "error": msg, "run_dir": str(run_dir) if run_dir else None,
                         "warnings": list(progress.warnings) if progress else []}))
        return code

    dist = None
    stop_event = None
    try:
        from mtlrec.training.pipeline import Progress, run_training
        progress = Progress()
        if distributed.launched_by_torchrun():
            import threading
            dist = distributed.init_from_env(args.device or config_device(args))
            stop_event = threading.Event()
            if not dist.is_main:          # rank 0 speaks for the run
                args.quiet, args.json = True, False
                rank_tag = f"[rank {dist.rank}] "
        say = (lambda s: None) if args.quiet else (lambda s: err(f"[mtlrec] {s}"))
        t0 = time.time()

        def on_epoch(rec, history):
            if args.quiet:
                return
            parts = []
            for task, m in (rec.get("valid") or {}).items():
                if m:
                    k = next(iter(m))
                    parts.append(f"{task} {k}={m[k]:.4f}" if m[k] is not None else f"{task} {k}=nan")
            loss = " ".join(f"{t}={v:.4f}" for t, v in rec["train_loss"].items() if v is not None)
            best = " *" if rec.get("best") else ""
            err(f"[mtlrec] {progress.phase} epoch {rec['epoch']}/{progress.epochs}  train loss {loss}  "
                f"valid {'  '.join(parts)}  ({rec['samples_per_s']:.0f} samples/s){best}")

        if args.resume:
            for flag, given in (("--out", args.out), ("--epochs", args.epochs), ("--baselines", args.baselines),
                                ("--ranking-users", args.ranking_users), ("--no-ranking", args.no_ranking)):
                if given:
                    return fail("failed", f"{flag} cannot be used with --resume: a resumed run keeps its folder "
                                          "and its configuration", 2)
            from mtlrec.training.resume import resume_run
            run_dir = _resume_dir(args.resume)
            say(f"resuming run folder: {run_dir}")

            def go():
                return resume_run(run_dir, progress=progress, on_epoch=on_epoch, log=say, device=args.device,
                                  threads=args.threads, stop_event=stop_event)
        else:
            cfg = RunConfig.load(args.config)
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
            cfg.validate()
            from mtlrec.runs.folder import default_run_dir
            run_dir = args.out or (default_run_dir(cfg.arch, name=cfg.name) if dist is None or dist.is_main else None)
            if dist is not None and not args.out:       # every rank writes (its stats) to rank 0's folder
                run_dir = dist.broadcast_text(str(run_dir or ""))
            say(f"run folder: {run_dir}")
            dataset = None
            if args.dataset:
                from mtlrec.training.pipeline import open_prepared
                dataset = open_prepared(args.dataset)

            from pathlib import Path
            in_place = bool(args.dataset) and Path(args.dataset).resolve() == (Path(run_dir) / "dataset").resolve()

            def go():    # a dataset already in the run folder (the app's several-process jobs) stays as it is
                return run_training(cfg, run_dir, dataset=dataset, progress=progress, on_epoch=on_epoch, log=say,
                                    stop_event=stop_event, write_dataset=not in_place)

        restore = _sigterm_to_interrupt(stop_event)
        try:
            res = go()
        finally:
            restore()
        m = res.metrics
        if dist is not None and not dist.is_main:
            return 0 if res.status == "finished" else 1
        say(f"{res.status} in {time.time() - t0:.1f}s; best epoch {m.get('best_epoch')}")
        if args.quiet:
            for w in m.get("warnings") or []:
                err(f"mtlrec train: warning: {w}")
        if not args.json:
            for task, vals in (m.get("test") or {}).items():
                shown = ", ".join(f"{k}={v:.4f}" for k, v in vals.items() if isinstance(v, float) and math.isfinite(v))
                print(f"test {task}: {shown}")
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
        else:
            out = {"run_dir": str(run_dir), "device": res.device, "status": res.status,
                   "arch": getattr(res.model, "arch", None), "best_epoch": m.get("best_epoch"), "test": m.get("test", {}),
                   "valid": m.get("valid", {}), "ranking": m.get("ranking", {}),
                   "ranking_baseline": m.get("ranking_baseline", {}), "ranking_info": m.get("ranking_info", {}),
                   "warnings": m.get("warnings", [])}
            if "gain" in m:
                out["stl_gain"] = {t: g["gain"] for t, g in m["gain"].items()}
                out["stl"] = m.get("stl", {})
            if "cv" in m:
                out["cv"] = {"k": m["cv"]["k"], "valid": m["cv"]["valid"], "test": m["cv"]["test"]}
            print(dumps(out))
        return 0 if res.status == "finished" else 1
    except (DataError, TrainingError) as e:
        return fail("failed", str(e), 2)
    except KeyboardInterrupt:
        return fail("cancelled", "interrupted (Ctrl-C or SIGTERM); status.json says cancelled", 130)
    except Exception as e:  # noqa: BLE001 - never a traceback; status.json keeps it for debugging
        where = f" (the traceback is in {run_dir}/status.json)" if run_dir else ""
        return fail("failed", f"internal error: {type(e).__name__}: {e}{where}", 1)
    finally:
        if dist is not None:
            distributed.shutdown()


def config_device(args) -> str | None:
    """train.device of the config (or of the resumed run's config), for choosing the backend."""
    from pathlib import Path
    try:
        path = Path(args.config) if args.config else _resume_dir(args.resume) / "config.json"
        return ((json.loads(path.read_text()).get("train") or {}).get("device")) or "auto"
    except (OSError, ValueError, AttributeError):
        return "auto"


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
