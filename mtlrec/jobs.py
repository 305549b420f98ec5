"""Background training: a `TrainingJob` trains in a daemon thread; the UI polls `snapshot()`.

    job = TrainingJob(config, run_dir="runs/x")          # or TrainingJob(config, dataset=ds)
    job.start()
    while job.snapshot()["status"] in ("queued", "running"):
        time.sleep(0.5)                                   # draw job.snapshot()["history"]
    job.cancel()                                          # takes effect within one batch

    job = TrainingJob.resume("runs/x")   # an interrupted/cancelled/failed run, from its checkpoint.pt
    job.start()                          # (ResumeRefused, a DataError, at once when it cannot be resumed)

Every job has its own model, optimiser, history and random generator (the batch order
comes from a per-job ``torch.Generator``); nothing is shared between jobs except
torch's global RNG, used only while a model is initialised (under a lock, see
``mtlrec.training.trainer.seeded_build``) and by dropout layers. This module never
imports streamlit.
"""
from __future__ import annotations

import copy
import threading
import time
import traceback
from pathlib import Path

STATUSES = ("queued", "running", "finished", "cancelled", "failed")


class TrainingJob:
    def __init__(self, config, run_dir=None, *, dataset=None, name: str | None = None):
        """``config``: a RunConfig (or its dict). ``dataset``: a PreparedDataset to train on
        instead of preparing the data the config names. ``run_dir``: where the run folder
        goes (None: ``runs/<timestamp>-<arch>``)."""
        from mtlrec.config import RunConfig
        from mtlrec.training.history import History
        from mtlrec.training.pipeline import Progress
        from mtlrec.training.rundir import default_run_dir
        self.config = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
        self.dataset = dataset
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(self.config.arch, name=self.config.name)
        self.name = name or self.run_dir.name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._history = History()
        self._progress = Progress(epochs=self.config.train.epochs)
        self._status = "queued"
        self._error: str | None = None
        self._error_kind: str | None = None
        self._metrics: dict = {}
        self._device: str | None = None
        self._created = time.time()
        self._finished_at: float | None = None
        self.result = None   # RunResult once finished (model, dataset, tasks)
        self.resuming = False

    @classmethod
    def resume(cls, run_dir, *, name: str | None = None) -> "TrainingJob":
        """A job (not started) that continues the run in ``run_dir`` from its last checkpoint.

        Raises `mtlrec.training.resume.ResumeRefused` (a DataError with ``what`` and ``fix``) at
        once when the run finished, is still training or has no checkpoint; the check is
        repeated when the job starts (then the job fails with that message and the run folder
        is left as it was)."""
        import json

        from mtlrec.config import RunConfig
        from mtlrec.training.resume import ResumeRefused, check_resumable
        d = Path(run_dir)
        check_resumable(d)
        try:
            cfg = RunConfig.from_dict(json.loads((d / "config.json").read_text(encoding="utf-8")))
        except Exception as e:  # noqa: BLE001
            raise ResumeRefused(f"config.json is missing or damaged ({e})", file=str(d / "config.json"),
                                fix="train the run again") from None
        job = cls(cfg, d, name=name)
        job.resuming = True
        return job

    # ---- control -------------------------------------------------------------------------
    def start(self) -> "TrainingJob":
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("this job was already started")
            self._thread = threading.Thread(target=self._run, name=f"mtlrec-job-{self.name}", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the job to stop; it does so before its next batch and keeps its history."""
        self._stop.set()
        with self._lock:
            if self._status == "queued":
                self._status = "cancelled"

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def status(self) -> str:
        with self._lock:
            return self._status

    @property
    def done(self) -> bool:
        return self.status in ("finished", "cancelled", "failed")

    # ---- the thread ----------------------------------------------------------------------
    def _log(self, record):
        pass

    def _run(self) -> None:
        from mtlrec.errors import DataError, TrainingError
        from mtlrec.training.pipeline import run_training
        from mtlrec.training.resume import ResumeRefused
        with self._lock:
            if self._stop.is_set():
                self._status = "cancelled"
                self._finished_at = time.time()
                return
            self._status = "running"
            self._progress.started = time.time()
        try:
            from mtlrec.device import pick_device
            dev = str(pick_device(self.config.train.device))
            with self._lock:
                self._device = dev
            if self.resuming:
                from mtlrec.training.resume import resume_run
                res = resume_run(self.run_dir, stop_event=self._stop, progress=self._progress, history=self._history)
            else:
                res = run_training(self.config, self.run_dir, dataset=self.dataset, stop_event=self._stop,
                                   progress=self._progress, history=self._history)
            with self._lock:
                self.result = res
                self._metrics = copy.deepcopy(res.metrics)
                self._device = res.device
                self._status = res.status
        except ResumeRefused as e:     # nothing was written: the folder keeps its own status
            self._fail(str(e), type(e).__name__, record=False)
        except (DataError, TrainingError, ValueError) as e:
            self._fail(str(e), type(e).__name__)
        except Exception as e:  # unexpected: keep the traceback in the status file for debugging
            self._fail(f"{type(e).__name__}: {e}", "internal", traceback.format_exc())
        except BaseException as e:  # SystemExit / KeyboardInterrupt in this thread: never stay "running"
            self._fail(f"{type(e).__name__}: {e}", "internal", traceback.format_exc())
            raise
        finally:
            with self._lock:
                self._finished_at = time.time()

    def _fail(self, message: str, kind: str, tb: str | None = None, record: bool = True) -> None:
        from mtlrec.training.rundir import RunWriter, read_json
        with self._lock:
            self._status = "failed"
            self._error = message
            self._error_kind = kind
        if not record:
            return
        try:   # run_training records its own failures; write here only what it could not
            recorded = (read_json(self.run_dir / "status.json", {}) or {}).get("status")
        except (OSError, ValueError):
            recorded = None
        if recorded in ("failed", "cancelled"):
            return
        try:
            w = RunWriter(self.run_dir)
            w.write_history(self._history_copy())
            w.write_status("failed", error=message, kind=kind, traceback=tb,
                           warnings=list(self._progress.warnings))
        except OSError:
            pass

    def _history_copy(self) -> dict:
        # the training thread appends to the lists; copying a list is atomic under the GIL
        return {"epochs": copy.deepcopy(list(self._history.epochs)),
                "batches": copy.deepcopy(list(self._history.batches))}

    # ---- reading -------------------------------------------------------------------------
    def snapshot(self, include_batches: bool = True) -> dict:
        """A plain-dict copy of the job's state, safe to read from any thread."""
        with self._lock:
            p = self._progress
            hist = self._history_copy()
            if not include_batches:
                hist["batches"] = []
            end = self._finished_at or time.time()
            return {
                "name": self.name,
                "status": self._status,
                "phase": p.phase,
                "phases": list(p.phases),
                "epoch": p.epoch,
                "epochs": p.epochs,
                "batch": p.batch,
                "n_batches": p.n_batches,
                "fraction": 1.0 if self._status == "finished" else p.fraction,
                "eta_s": None if self._status != "running" else p.eta_s,
                "elapsed_s": (end - p.started) if p.started else 0.0,
                "history": hist,
                "metrics": copy.deepcopy(self._metrics),
                "error": self._error,
                "error_kind": self._error_kind,
                "warnings": list(p.warnings),
                "run_dir": str(self.run_dir),
                "device": self._device,
                "arch": self.config.arch,
            }
