"""Live tracking: a run logs itself to MLflow and TensorBoard while it trains (``train.tracking``).

`live_tracking(cfg, run_dir, warn)` -> a `LiveTracking` (None when the config asks for none). The
run's pipeline hooks `LiveTracking.epoch_end` onto the trainer's per-epoch record (``on_epoch``)
and calls `finish` once the run folder is complete, or `abort` when the run raises. The logging
itself runs in one background thread fed by a queue, so a slow or unreachable tracker never holds up
training; the process that trains (the app's worker, the command line, rank 0 of a data-parallel run)
is the one that logs.

A tracker that fails -- not installed, a URI it cannot reach, a folder it may not write -- is switched
off for the rest of the run and becomes a run warning (status.json, metrics.json, the Train page);
the run itself goes on. `finish` completes the tracking from the finished folder with the exports
(`mtlrec.tracking.mlflow_log.export_mlflow` without the report's SHAP explanation,
`mtlrec.tracking.tensorboard_log.export_tensorboard`), so what a live run leaves is what an export
of it would; it waits at most `FINISH_TIMEOUT_S` for the tracker.
"""
from __future__ import annotations

import copy
import queue
import threading
from pathlib import Path
from typing import Callable

from mtlrec.tracking import DEFAULT_EXPERIMENT, EXTRAS_FIX

FINISH_TIMEOUT_S = 120.0
ABORT_STATUS = {"cancelled": "KILLED", "failed": "FAILED"}


class _MLflowLive:
    """One MLflow run, opened at the first epoch (params and tags), one batch of points per epoch."""
    name = "MLflow"

    def __init__(self, uri: str, experiment: str, run_dir: Path):
        self.uri, self.experiment, self.dir = uri, experiment, run_dir
        self.client = self.run_id = None

    def open(self) -> None:
        from mtlrec.tracking import mlflow_log as ml
        from mtlrec.tracking.scalars import flat_params, read_folder, run_tags
        self.client = ml.client_for(self.uri)
        folder = read_folder(self.dir)
        with ml.said_clearly(self.uri):
            exp = ml.experiment_id(self.client, self.experiment)
            self.run_id, _ = ml.open_run(self.client, exp, self.dir.name, run_tags(folder, self.dir.name),
                                         ml.status_time(self.dir, "started_at"))
            ml.log_params(self.client, self.run_id, flat_params(folder["config"], folder["model_info"]))

    def epoch(self, scalars: list) -> None:
        from mtlrec.tracking import mlflow_log as ml
        with ml.said_clearly(self.uri):
            ml.log_scalars(self.client, self.run_id, scalars, only_new=False)

    def finish(self) -> None:
        from mtlrec.tracking.mlflow_log import export_mlflow
        export_mlflow(self.dir, self.uri, self.experiment, explain=False)

    def abort(self, status: str) -> None:
        if self.client is not None and self.run_id is not None:
            self.client.set_terminated(self.run_id, ABORT_STATUS.get(status, "FAILED"))

    def export_hint(self) -> str:
        return f"python -m mtlrec runs export-mlflow {self.dir.name} --tracking-uri {self.uri}"


class _TensorBoardLive:
    """Event files in ``<tensorboard_dir>/<run>``; replaced by the export of the whole folder at the end."""
    name = "TensorBoard"

    def __init__(self, logdir: str, run_dir: Path):
        self.logdir, self.dir = logdir, run_dir
        self.writer = None

    def open(self) -> None:
        from mtlrec.tracking.tensorboard_log import event_dir, open_writer
        self.writer = open_writer(event_dir(self.logdir, self.dir.name))

    def epoch(self, scalars: list) -> None:
        from mtlrec.tracking.tensorboard_log import write_scalars
        write_scalars(self.writer, scalars)
        self.writer.flush()

    def finish(self) -> None:
        from mtlrec.tracking.tensorboard_log import export_tensorboard
        self.abort("finished")
        export_tensorboard(self.dir, self.logdir)

    def abort(self, status: str) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def export_hint(self) -> str:
        return f"python -m mtlrec runs export-tensorboard {self.dir.name} --logdir {self.logdir}"


class LiveTracking:
    """The trackers of one run and the thread that feeds them (see the module doc)."""

    def __init__(self, trackers: list, warn: Callable[[str], None]):
        self.trackers = list(trackers)
        self.warn = warn
        self.failed: dict[str, str] = {}          # tracker name -> the warning it gave
        self._queue: queue.Queue = queue.Queue()
        self._opened = False
        self._quiet = False                       # after finish / abort: no more warnings
        self._thread = threading.Thread(target=self._loop, name="mtlrec-tracking", daemon=True)
        self._thread.start()

    # ---- the trainer's hook and the run's ending ---------------------------------------------
    def epoch_end(self, rec: dict, history=None) -> None:
        """The trainer's per-epoch hook: the epoch's scalars go to every tracker (in the background)."""
        from mtlrec.tracking.scalars import epoch_scalars
        if not self._opened:
            self._opened = True
            self._queue.put(("open", None))
        self._queue.put(("epoch", epoch_scalars(copy.deepcopy(rec))))

    def finish(self, timeout: float = FINISH_TIMEOUT_S) -> list[str]:
        """Once the run folder is complete: the trackers completed from it and closed; waits at most
        ``timeout`` s. Returns the warnings given (also passed to ``warn`` already)."""
        if not self._opened:
            self._opened = True
            self._queue.put(("open", None))
        self._queue.put(("finish", None))
        return self._stop(timeout)

    def abort(self, status: str = "failed", timeout: float = 10.0) -> None:
        """The run raised (or was stopped): the trackers closed, the MLflow run marked as such."""
        self._queue.put(("abort", status))
        self._stop(timeout)

    def _stop(self, timeout: float) -> list[str]:
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            for t in self.trackers:
                if t.name not in self.failed:
                    self._fail(t, f"it did not answer within {timeout:.0f} s")
        self._quiet = True
        return list(self.failed.values())

    # ---- the thread ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            what, arg = job
            for t in self.trackers:
                if t.name in self.failed:
                    continue
                try:
                    getattr(t, what)(*(() if arg is None else (arg,)))
                except Exception as e:      # noqa: BLE001 - a tracker never fails the run
                    self._fail(t, _first_line(e))

    def _fail(self, tracker, why: str) -> None:
        if tracker.name in self.failed or self._quiet:
            return
        msg = (f"{tracker.name} logging stopped: {why}. The run goes on without it; once it ends, "
               f"log it with: {tracker.export_hint()}")
        self.failed[tracker.name] = msg
        try:
            self.warn(msg)
        except Exception:  # noqa: BLE001
            pass


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


def live_tracking(tracking: dict | None, run_dir, warn: Callable[[str], None]) -> LiveTracking | None:
    """The `LiveTracking` of ``train.tracking`` (`mtlrec.config.tracking_settings`) for the run in
    ``run_dir``; None when it names no tracker. Without a run folder, or without the package a tracker
    needs, that tracker is left out with a warning."""
    from mtlrec.config import tracking_settings
    from mtlrec.tracking import installed
    t = tracking_settings(tracking) if tracking else {}
    wanted = [k for k in ("mlflow_uri", "tensorboard_dir") if k in t]
    if not wanted:
        return None
    if run_dir is None:
        warn("train.tracking is set but the run has no run folder to log from; nothing is tracked")
        return None
    d = Path(run_dir)
    trackers = []
    for key, module, make in (("mlflow_uri", "mlflow", lambda: _MLflowLive(t["mlflow_uri"],
                                                                            t.get("experiment") or DEFAULT_EXPERIMENT, d)),
                              ("tensorboard_dir", "tensorboard", lambda: _TensorBoardLive(t["tensorboard_dir"], d))):
        if key not in t:
            continue
        if not installed(module):
            warn(f"train.tracking.{key} is set but the package for it is not installed, so this run is not "
                 f"logged there. Fix: {EXTRAS_FIX}")
            continue
        trackers.append(make())
    return LiveTracking(trackers, warn) if trackers else None


