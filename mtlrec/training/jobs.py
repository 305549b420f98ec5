"""Background training: a `TrainingJob` trains in a worker process (or a thread); the UI polls `snapshot()`.

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

Isolation (issue 15): by default (``isolate="process"``) the job's thread starts a spawned
worker process (`mtlrec.training.worker`) that trains and streams progress, new history
records, warnings and the final status back; the thread copies them into the job under its
lock, so `snapshot()` reads the same either way. Training in the server process itself
(``isolate="thread"``) slows 10-100x while a page redraws live curves (GIL contention, see
bench/watch_overhead.py); a worker costs a few seconds to start (it imports torch). The
environment variable ``MTLREC_TRAIN_ISOLATION`` ("process" or "thread") sets the mode of the
jobs that do not name one. A worker that dies (killed, out of memory) fails the job; the server goes on.

Several processes (``processes=N`` > 1, issue 16): the job saves its dataset and config into the
run folder and starts ``python -m mtlrec train --nproc N`` (torchrun, data-parallel; see
`mtlrec.training.distributed`) as a subprocess, then follows the run through its folder:
``progress.json`` (refreshed every second by rank 0), ``history.json`` (every epoch) and
``status.json``. Cancel sends SIGTERM to the launcher, which passes it to every rank; they stop
together at the next batch.
"""
from __future__ import annotations

import copy
import os
import threading
import time
import traceback
from pathlib import Path

from mtlrec.training.threaded import ThreadedJob

STATUSES = ("queued", "running", "finished", "cancelled", "failed")
ISOLATION_ENV = "MTLREC_TRAIN_ISOLATION"
ISOLATIONS = ("process", "thread")
SPARE_ENV = "MTLREC_SPARE_WORKER"     # "0": no spare worker process is kept ready (issue 25)
FOLLOW_EVERY_S = 0.5          # a torchrun job reads its run folder this often
CANCEL_ACK_TIMEOUT_S = 5.0    # cancel() of a worker-process job waits at most this for its answer


def isolation_mode(isolate: str | None = None) -> str:
    """"process" or "thread": ``isolate`` when given, else ``MTLREC_TRAIN_ISOLATION`` when set,
    else "process"."""
    if isolate is not None:
        where, mode = "isolate", str(isolate).strip().lower()
    else:
        where, mode = f"the environment variable {ISOLATION_ENV}", (os.environ.get(ISOLATION_ENV) or "").strip().lower()
        mode = mode or "process"
    if mode not in ISOLATIONS:
        raise ValueError(f"{where} is {mode!r}; use \"process\" or \"thread\"")
    return mode


def start_spare_worker() -> bool:
    """Keep a spare worker process ready for the next job of this process (`mtlrec.training.spare`;
    the app calls this when it starts; idempotent). Not where jobs train in a thread, nor with
    ``MTLREC_SPARE_WORKER=0``. True when the pool runs."""
    if (os.environ.get(SPARE_ENV) or "").strip().lower() in ("0", "off", "false", "no"):
        return False
    try:
        if isolation_mode() != "process":
            return False
    except ValueError:
        return False
    from mtlrec.training.spare import start_pool
    start_pool()
    return True


class TrainingJob(ThreadedJob):
    def __init__(self, config, run_dir=None, *, dataset=None, name: str | None = None,
                 isolate: str | None = None, processes: int | None = None):
        """``config``: a RunConfig (or its dict). ``dataset``: a PreparedDataset to train on
        instead of preparing the data the config names (a job that trains in other processes lets go of
        it once they have it). ``run_dir``: where the run folder
        goes (None: ``runs/<timestamp>-<arch>``). ``isolate``: "process" (train in a spawned
        worker process) or "thread" (in this process); None: ``MTLREC_TRAIN_ISOLATION`` when
        set, else "process". ``processes``: N > 1 trains data-parallel in N torchrun processes
        (followed through the run folder)."""
        from mtlrec.config import RunConfig
        from mtlrec.training.history import History
        from mtlrec.training.progress import Progress
        from mtlrec.runs.folder import default_run_dir
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
        self._result = None   # RunResult once finished (model, dataset, tasks)
        self._result_from_folder = False
        self.resuming = False
        self.isolate = isolation_mode(isolate)
        self.processes = int(processes or 1)
        if self.processes > 1:
            self.isolate = "torchrun"
        self._launcher = None                   # the `train --nproc` subprocess (torchrun mode)
        self.worker_pid: int | None = None     # the worker process's pid once started (process mode)
        self.worker_exitcode: int | None = None
        self.worker_start_s: float | None = None   # spawn -> first message from the worker
        self.use_spare = True                  # take the spare worker of `mtlrec.training.spare`'s pool, if any
        self.from_spare = False                # True once a spare took this job
        self._pool = None
        self._own_stop = None
        self._worker_up = False                # torchrun: rank 0 has written progress.json
        self._mp_stop = None
        self._cancel_seen = threading.Event()
        if self.isolate == "process":
            import torch.multiprocessing as tmp
            self._mp_ctx = tmp.get_context("spawn")
            self._mp_stop = self._mp_ctx.Event()

    @property
    def result(self):
        """The `RunResult` (model, dataset, tasks, metrics, history) of a finished (or cancelled) job,
        else None. A worker-process job loads it from the run folder on first use (None when the
        folder holds no model)."""
        if self._result is None and self._result_from_folder:
            self._result_from_folder = False
            self._result = self._load_result()
        return self._result

    @result.setter
    def result(self, value) -> None:
        self._result, self._result_from_folder = value, False

    def _load_result(self):
        from mtlrec.errors import DataError
        from mtlrec.runs.load import load_run
        from mtlrec.training.pipeline import RunResult
        try:
            run = load_run(self.run_dir)
        except DataError:      # e.g. cancelled before its first model: nothing to load (as no result)
            return None
        with self._lock:
            status, device = self._status, self._device
        return RunResult(run_dir=self.run_dir, status=status, device=device or "cpu", metrics=run.metrics,
                         history=run.history, model=run.model, dataset=run.dataset, tasks=list(run.tasks))

    @classmethod
    def resume(cls, run_dir, *, name: str | None = None, isolate: str | None = None,
               processes: int | None = None) -> "TrainingJob":
        """A job (not started) that continues the run in ``run_dir`` from its last checkpoint.

        Raises `mtlrec.training.resume.ResumeRefused` (a DataError with ``what`` and ``fix``) at
        once when the run finished, is still training or has no checkpoint; the check is
        repeated when the job starts (then the job fails with that message and the run folder
        is left as it was)."""
        from mtlrec.runs.load import read_run_config
        from mtlrec.training.resume import ResumeRefused, check_resumable
        d = Path(run_dir)
        check_resumable(d)
        try:
            cfg = read_run_config(d)
        except Exception as e:  # noqa: BLE001
            raise ResumeRefused(f"config.json is missing or damaged ({e})", file=str(d / "config.json"),
                                fix="train the run again") from None
        job = cls(cfg, d, name=name, isolate=isolate, processes=processes)
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
        """Ask the job to stop; it does so before its next batch and keeps its history. A running
        worker-process job: returns once the worker has seen the request and sent its progress
        (at most CANCEL_ACK_TIMEOUT_S), so the next snapshot is at most one batch behind the end."""
        self._stop.set()
        if self._mp_stop is not None:
            self._mp_stop.set()
        launcher = self._launcher
        if launcher is not None and launcher.poll() is None:
            import signal
            try:
                launcher.send_signal(signal.SIGTERM)      # passed on to every rank
            except OSError:
                pass
        with self._lock:
            if self._status == "queued":
                self._status = "cancelled"
            waiting = self._status == "running" and self._mp_stop is not None and self.worker_start_s is not None
        if waiting:    # a worker that reports answers at once with its progress: snapshot() is then <= 1 batch behind
            self._cancel_seen.wait(CANCEL_ACK_TIMEOUT_S)

    # ---- the thread ----------------------------------------------------------------------
    def _log(self, record):
        pass

    def _begin(self) -> bool:
        """Mark the job running (False, and cancelled, when it was cancelled before it started)."""
        with self._lock:
            if self._stop.is_set():
                self._status = "cancelled"
                self._finished_at = time.time()
                return False
            self._status = "running"
            self._progress.started = time.time()
            return True

    def _run(self) -> None:
        if self.isolate == "process":
            return self._run_process()
        if self.isolate == "torchrun":
            return self._run_torchrun()
        from mtlrec.errors import DataError, TrainingError
        from mtlrec.training.pipeline import run_training
        from mtlrec.training.resume import ResumeRefused
        if not self._begin():
            return
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

    # ---- the worker process (isolate="process") ---------------------------------------------
    def _start_worker(self, payload: dict, spare: bool = True):
        """(process, message pipe) of the worker that trains this job: the spare of the process's pool
        when it has one (`mtlrec.training.spare`; then ``from_spare``), else a freshly spawned worker."""
        from mtlrec.training import worker
        from mtlrec.training.spare import current_pool
        if spare:
            self._pool = current_pool() if self.use_spare else None
        sp = self._pool.take() if spare and self._pool is not None else None
        if sp is not None:
            self._own_stop, self._mp_stop = self._mp_stop, sp.stop     # cancel() now reaches the spare
            if self._stop.is_set():
                sp.stop.set()
            try:
                sp.hand_over(payload)
                self.from_spare = True
                return sp.proc, sp.conn
            except (OSError, EOFError):        # it died just now: a fresh worker then
                sp.discard()
                self._mp_stop = self._own_stop
                if self._stop.is_set():
                    self._mp_stop.set()
        recv, send = self._mp_ctx.Pipe(duplex=False)
        proc = worker.start_process(self._mp_ctx, target=worker.child_main, args=(send, self._mp_stop, payload),
                                    name=f"mtlrec-train-{self.name}", daemon=True)
        send.close()          # the child holds the only writer: its death is an EOF here
        return proc, recv

    def _refill_spare(self) -> None:
        """The run has trained its first batch (or ended): the pool may start the next spare now
        (sooner, it would take CPU from this run's start)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.refill()

    def _follow_worker(self, proc, recv, t0: float, payload: dict):
        """Apply the worker's messages until its last word -> ("done" | "error", message), or None when
        it ended without one. A spare that died before its first message (so before it touched the run;
        killed just as it was handed the run) is replaced once by a fresh worker, with ``payload``."""
        final = None
        while True:
            try:
                if not recv.poll(0.5):
                    if not proc.is_alive() and not recv.poll(0):
                        break
                    continue
                kind, msg = recv.recv()
            except (EOFError, OSError):
                break
            if self.worker_start_s is None:
                self.worker_start_s = time.perf_counter() - t0
                payload.clear()           # the worker has its input: the server keeps no copy of it
            if kind == "update":
                self._apply_update(msg)
                if (msg.get("progress") or {}).get("batch"):
                    self._refill_spare()
            else:
                final = (kind, msg)
                break
        recv.close()
        if final is None and self.from_spare and self.worker_start_s is None and payload:
            proc.join(10)
            self.from_spare, self._mp_stop = False, self._own_stop
            if self._stop.is_set():
                self._mp_stop.set()
            proc, recv = self._start_worker(payload, spare=False)
            payload.clear()
            self.worker_pid = proc.pid
            return self._follow_worker(proc, recv, t0, payload)
        return proc, final

    def _run_process(self) -> None:
        if not self._begin():
            return
        final = None
        proc = None
        try:
            payload = {"config": self.config, "run_dir": str(self.run_dir), "dataset": self.dataset,
                       "resuming": self.resuming, "started": self._progress.started,
                       "parent_pid": os.getpid()}          # the worker dies with this process
            self.dataset = None
            t0 = time.perf_counter()
            proc, recv = self._start_worker(payload)
            if not self.from_spare:
                payload.clear()           # the worker has its input: the server keeps no copy of it
            self.worker_pid = proc.pid
            proc, final = self._follow_worker(proc, recv, t0, payload)
            proc.join(30)
            if proc.is_alive():       # said its last word but hangs on exit
                proc.kill()
                proc.join(10)
            self.worker_exitcode = proc.exitcode
            if final is None:
                self._worker_died(proc.exitcode)
            elif final[0] == "done":
                m = final[1]
                with self._lock:
                    self._metrics = copy.deepcopy(m["metrics"])
                    self._device = m["device"]
                    self._status = m["status"]
                    self._result_from_folder = m["status"] in ("finished", "cancelled")
            else:
                m = final[1]
                self._fail(m["message"], m["kind"], m.get("traceback"), record=m.get("record", True))
        except Exception as e:  # noqa: BLE001 - e.g. the dataset does not pickle: never stay "running"
            if proc is not None and proc.is_alive():
                proc.kill()
            self._fail(f"{type(e).__name__}: {e}", "internal", traceback.format_exc())
        finally:
            self._refill_spare()
            with self._lock:
                self._finished_at = time.time()
            self._cancel_seen.set()

    # ---- several processes (torchrun), followed through the run folder -----------------------
    def _run_torchrun(self) -> None:
        import subprocess
        import sys

        from mtlrec.training.launch import follow_run_folder, worker_env
        from mtlrec.runs.folder import RunWriter
        if not self._begin():
            return
        try:
            d = self.run_dir
            cmd = [sys.executable, "-m", "mtlrec", "train", "--nproc", str(self.processes), "--quiet"]
            if self.resuming:
                cmd += ["--resume", str(d)]
            else:
                from mtlrec.errors import DataError
                if self.dataset is None:
                    raise DataError("training in several processes needs the prepared dataset", file=str(d),
                                    fix="prepare the data first (the Data page), or train in one process")
                w = RunWriter(d)
                w.write_config(self.config.to_dict())
                w.write_dataset(self.dataset)     # the ranks memory-map it from here
                self.dataset = None               # this process keeps no copy of the job's input
                cmd += ["--config", str(d / "config.json"), "--dataset", str(d / "dataset"), "--out", str(d)]
            from mtlrec.training.launch import REPO_ROOT
            from mtlrec.training.lifeline import PARENT_ENV
            env = {**worker_env(self.processes), PARENT_ENV: str(os.getpid())}   # it dies with this process
            self._launcher = subprocess.Popen(cmd, cwd=str(REPO_ROOT), env=env,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                              errors="replace")
            self.worker_pid = self._launcher.pid
            if self._stop.is_set():                 # cancelled while the folder was written
                self.cancel()
            err_tail: list[str] = []

            def drain():
                for line in self._launcher.stderr:
                    err_tail.append(line)
                    del err_tail[:-40]
            reader = threading.Thread(target=drain, daemon=True)
            reader.start()
            state = {}
            while True:
                ended = self._launcher.poll() is not None
                follow_run_folder(self, state)
                if ended:
                    break
                time.sleep(FOLLOW_EVERY_S)
            reader.join(5)
            self.worker_exitcode = self._launcher.returncode
            follow_run_folder(self, state, final=True, stderr_tail="".join(err_tail))
        except Exception as e:  # noqa: BLE001 - never stay "running"
            if self._launcher is not None and self._launcher.poll() is None:
                self._launcher.kill()
            from mtlrec.errors import DataError
            if isinstance(e, DataError):
                self._fail(str(e), type(e).__name__)
            else:
                self._fail(f"{type(e).__name__}: {e}", "internal", traceback.format_exc())
        finally:
            with self._lock:
                self._finished_at = time.time()
            self._cancel_seen.set()

    def _apply_update(self, msg: dict) -> None:
        from mtlrec.training.progress import apply_progress
        with self._lock:
            apply_progress(self._progress, msg.get("progress") or {})
            if msg.get("reset"):
                self._history.epochs[:] = []
                self._history.batches[:] = []
            self._history.epochs.extend(msg.get("epochs") or [])
            self._history.batches.extend(msg.get("batches") or [])
            if msg.get("device"):
                self._device = msg["device"]
        if msg.get("cancel_seen"):
            self._cancel_seen.set()

    def _worker_died(self, exitcode) -> None:
        """The worker ended without a last word (killed, out of memory, os._exit): failed, with what
        its folder still holds (history.json is rewritten every epoch by the worker)."""
        from mtlrec.training.history import History
        from mtlrec.runs.folder import RunWriter, read_json
        d = self.run_dir
        try:
            on_disk = read_json(d / "history.json", None)
        except (OSError, ValueError):
            on_disk = None
        if isinstance(on_disk, dict):
            disk = History.from_dict(on_disk)
            with self._lock:
                if len(disk.epochs) > len(self._history.epochs):
                    self._history.epochs[:] = disk.epochs
                    self._history.batches[:] = disk.batches
        has_model = (d / "model.pt").is_file()
        has_checkpoint = (d / "checkpoint.pt").is_file()
        if has_model or has_checkpoint:
            where = (f"the best model so far is in {d}" + (" and it can be resumed from its checkpoint"
                                                           if has_checkpoint else ""))
        else:
            where = f"no model was saved in {d} (it died before the end of its first epoch)"
        message = f"the training process ended unexpectedly (exit code {exitcode}); {where}"
        with self._lock:
            self._status = "failed"
            self._error = message
            self._error_kind = "worker_died"
        try:
            prev = read_json(d / "status.json", {}) or {}
        except (OSError, ValueError):
            prev = {}
        keep = {k: v for k, v in prev.items() if k not in ("status", "error", "heartbeat", "ended_at", "traceback")}
        keep.update(kind="worker_died", warnings=list(self._progress.warnings), has_model=has_model,
                    exit_code=exitcode)
        try:
            w = RunWriter(d)
            if not isinstance(on_disk, dict):
                w.write_history(self._history_copy())
            w.write_status("failed", error=message, **keep)
        except (OSError, TypeError, ValueError):
            pass

    def _fail(self, message: str, kind: str, tb: str | None = None, record: bool = True) -> None:
        from mtlrec.runs.folder import RunWriter, read_json
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

    def _history_copy(self, include_batches: bool = True) -> dict:
        # the training thread appends to the lists; copying a list is atomic under the GIL
        return {"epochs": copy.deepcopy(list(self._history.epochs)),
                "batches": copy.deepcopy(list(self._history.batches)) if include_batches else []}

    # ---- reading -------------------------------------------------------------------------
    def snapshot(self, include_batches: bool = True) -> dict:
        """A plain-dict copy of the job's state, safe to read from any thread."""
        with self._lock:
            p = self._progress
            hist = self._history_copy(include_batches)   # batch records: the costly part of a copy
            end = self._finished_at or time.time()
            return {
                "name": self.name,
                "status": self._status,
                "phase": p.phase,
                "label": p.label,           # "phase — its own progress", e.g. "ranking — users 120/943"
                "phases": list(p.phases),
                "epoch": p.epoch,
                "epochs": p.epochs,
                "batch": p.batch,
                "n_batches": p.n_batches,
                "fraction": 1.0 if self._status == "finished" else p.fraction,
                "eta_s": None if self._status != "running" else p.eta_s,     # up to the epoch cap
                "eta_early_s": None if self._status != "running" else p.eta_early_s,   # early stopping at its soonest
                "stop_epoch": p.stop_epoch,
                "epoch_left_s": None if self._status != "running" else p.epoch_left_s,
                "elapsed_s": (end - p.started) if p.started else 0.0,
                "history": hist,
                "metrics": copy.deepcopy(self._metrics),
                "error": self._error,
                "error_kind": self._error_kind,
                "warnings": list(p.warnings),
                "run_dir": str(self.run_dir),
                "device": self._device,
                "arch": self.config.arch,
                "processes": self.processes,
                "starting": self._status == "running" and self._worker_starting(),   # its process is not up yet
            }

    def _worker_starting(self) -> bool:
        """True until the job's worker process (or torchrun's rank 0) has said anything."""
        if self.isolate == "process":
            return self.worker_start_s is None
        return self.isolate == "torchrun" and not self._worker_up
