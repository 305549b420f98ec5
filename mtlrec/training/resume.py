"""Continue a run that stopped before its end, from the ``checkpoint.pt`` in its folder.

Every epoch of a run trained with a run folder ends by rewriting ``checkpoint.pt`` atomically
(see `mtlrec.training.trainer.Trainer.checkpoint_state`): model, optimiser, loss-weighting
state, early-stopping state and monitor, the best weights, history, counters, the global
torch/numpy/Python RNG states and the batch-order generator. A run whose process died
(interrupted), was cancelled or failed can be resumed; it loses at most the epoch it was in::

    resume_run("runs/20240101-120000-mmoe", stop_event=ev, progress=p)   # -> RunResult
    python -m mtlrec train --resume runs/20240101-120000-mmoe --json

The run goes on in its own folder (status "running" with this process as owner, then the usual
ending: test metrics, ranking, baselines and cross-validation as configured, metrics.json,
status "finished"). Resuming is refused (`ResumeRefused`, a DataError) when the run has
finished, is still running (its owner process is alive), is being resumed by someone else,
or has no usable checkpoint. On the same machine with the same thread count a resumed run
ends with the same test metrics as an uninterrupted one (the checkpoint restores every random
state the loop uses); with dropout, two jobs training at the same time in one process share
torch's global RNG, so neither is exactly reproducible, resumed or not.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from mtlrec.errors import DataError
from mtlrec.runs.folder import CHECKPOINT_NAME

_TRAIN_AGAIN = "train the run again (python -m mtlrec train --config ..., or the Train page)"


class ResumeRefused(DataError):
    """A run that cannot be resumed (why in the message, ``fix`` what to do). Nothing was written."""


def resume_dir(name) -> Path:
    """RUN of ``train --resume RUN``: a folder path, else a folder name inside the runs root."""
    from mtlrec.runs.library import runs_root
    p = Path(name)
    if p.is_dir() or p.is_absolute() or len(p.parts) > 1:
        return p
    inside = runs_root() / p
    return inside if inside.is_dir() else p


def resume_problem(run_dir) -> str | None:
    """Why ``run_dir`` cannot be resumed (one sentence), or None when it can. Cheap: reads
    status.json and looks for checkpoint.pt, loads nothing (for a Resume button)."""
    try:
        check_resumable(run_dir)
    except ResumeRefused as e:
        return e.what
    return None


def check_resumable(run_dir) -> dict:
    """`mtlrec.runs.load.run_status` of ``run_dir`` when it can be resumed; else `ResumeRefused`."""
    from mtlrec.runs.load import run_status
    d = Path(run_dir)
    if not d.is_dir():
        raise ResumeRefused("run folder not found", file=str(d), fix="give a folder written by 'python -m mtlrec train'")
    st = run_status(d)
    s = st["status"]
    if s == "finished":
        raise ResumeRefused("the run has finished; there is nothing to resume", file=str(d),
                            fix="train a new run to train longer or with other settings")
    if s in ("running", "queued"):
        raise ResumeRefused(f"the run is still training ({st['reason']})", file=str(d),
                            fix="wait for it to end, or cancel it and resume it then")
    if s == "unknown":
        raise ResumeRefused(f"cannot tell whether the run is still training ({st['reason']})",
                            file=str(d / "status.json"), fix=_TRAIN_AGAIN)
    if not (d / CHECKPOINT_NAME).is_file():
        raise ResumeRefused(f"{CHECKPOINT_NAME} is missing: the run stopped before its first epoch ended, or was "
                            "trained by a version of mtlrec without checkpoints", file=str(d / CHECKPOINT_NAME),
                            fix=_TRAIN_AGAIN)
    return st


def load_checkpoint(path) -> dict:
    """A checkpoint written by the trainer, loaded as data only (``weights_only=True``, on the CPU)."""
    import torch

    from mtlrec.training.trainer import CHECKPOINT_FORMAT
    p = Path(path)
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a damaged or hostile file can raise anything; name it
        line = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ResumeRefused(f"{p.name} is damaged or not a checkpoint ({line})", file=str(p), fix=_TRAIN_AGAIN) from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ResumeRefused(f"{p.name} is not an mtlrec checkpoint (format "
                            f"{ck.get('format') if isinstance(ck, dict) else type(ck).__name__!r})",
                            file=str(p), fix=_TRAIN_AGAIN)
    missing = [k for k in ("epoch", "model", "optimizer", "weighting", "rng", "generator", "monitor",
                           "early_stopping", "history", "tasks") if k not in ck]
    if missing:
        raise ResumeRefused(f"{p.name} lacks {', '.join(missing)}", file=str(p), fix=_TRAIN_AGAIN)
    return ck


class _FolderLock:
    """An exclusive ``flock`` on ``<run>/.resume.lock`` (released by the kernel if the process dies),
    so that two resumes of one run (two clicks, two terminals) cannot both train it."""

    def __init__(self, d: Path):
        self.path = d / ".resume.lock"
        self.fd = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ResumeRefused("the run is being resumed by another process or job", file=str(self.path.parent),
                                fix="wait for that resume to end") from None
        self.fd = fd
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)     # closing the descriptor drops the lock
            self.fd = None
        return False


def resume_run(run_dir, *, stop_event=None, progress=None, on_log: Callable | None = None,
               on_epoch: Callable | None = None, history=None, log: Callable[[str], None] | None = None,
               device: str | None = None, threads: int | None = None):
    """Continue the run in ``run_dir`` from its checkpoint -> `RunResult` (as `run_training`).

    ``stop_event`` cancels (the run ends "cancelled" and keeps its newest checkpoint);
    ``progress`` / ``history`` are filled as by `run_training` (the history starts with the
    epochs already trained). ``device`` / ``threads`` override the config's for this resume
    (config.json is not rewritten). Raises `ResumeRefused` before writing anything when the
    run cannot be resumed; failures after that are recorded in status.json as usual.

    Data-parallel (under torchrun, e.g. ``train --resume RUN --nproc N``): rank 0 checks and locks
    the folder and tells the other ranks, which then load the same checkpoint."""
    from mtlrec.training import distributed
    d = Path(run_dir)
    dist = distributed.current()
    if dist is not None and not dist.is_main:    # data-parallel: rank 0 checks and locks the folder
        ok, = dist.broadcast_flags(False)
        if not ok:
            raise ResumeRefused("rank 0 could not resume this run (its message says why)", file=str(d),
                                fix=_TRAIN_AGAIN)
        cfg, dataset, ck = _resume_inputs(d, device, threads)
        return _continue(cfg, d, dataset, ck, stop_event, progress, on_log, on_epoch, history, log)
    try:
        check_resumable(d)
        lock = _FolderLock(d).__enter__()
    except BaseException:
        if dist is not None:
            dist.broadcast_flags(False)
        raise
    try:
        try:
            check_resumable(d)           # another resume may have ended while we waited for the lock
            cfg, dataset, ck = _resume_inputs(d, device, threads)
        except BaseException:
            if dist is not None:
                dist.broadcast_flags(False)
            raise
        if dist is not None:
            dist.broadcast_flags(True)
        return _continue(cfg, d, dataset, ck, stop_event, progress, on_log, on_epoch, history, log)
    finally:
        lock.__exit__(None, None, None)


def _resume_inputs(d: Path, device, threads):
    """(config, dataset, checkpoint) of the run folder ``d`` (ResumeRefused when one is unusable)."""
    from mtlrec.runs.load import load_dataset, read_run_config
    cp = d / "config.json"
    try:
        cfg = read_run_config(d)
    except FileNotFoundError:
        raise ResumeRefused("config.json is missing", file=str(cp), fix=_TRAIN_AGAIN) from None
    except Exception as e:  # noqa: BLE001 - damaged JSON or config
        raise ResumeRefused(f"config.json is damaged ({e})", file=str(cp), fix=_TRAIN_AGAIN) from None
    if device:
        cfg.train.device = device
    if threads:
        cfg.train.threads = int(threads)
    try:
        dataset = load_dataset(d)
    except ResumeRefused:
        raise
    except DataError as e:
        raise ResumeRefused(e.what, file=e.file, fix=e.fix) from None
    return cfg, dataset, load_checkpoint(d / CHECKPOINT_NAME)


def _continue(cfg, d, dataset, ck, stop_event, progress, on_log, on_epoch, history, log):
    from mtlrec.training.pipeline import run_training
    from mtlrec.training.progress import Progress
    progress = progress if progress is not None else Progress()
    progress.epochs = cfg.train.epochs
    progress.epoch = int(ck["epoch"])
    return run_training(cfg, d, dataset=dataset, stop_event=stop_event, progress=progress, on_log=on_log,
                        on_epoch=on_epoch, history=history, write_dataset=False, log=log, resume=ck)
