"""The training worker process behind `mtlrec.training.jobs.TrainingJob` (``isolate="process"``).

Why a process: torch releases the GIL in every op and must take it back afterwards; in the
Streamlit server, the threads that redraw live curves (copying histories, building figures)
hold the GIL for milliseconds at a time, and a training thread in the same process then waits
up to the 5 ms switch interval after each op -- training slowed 10-100x while a page was
watched (issue 15, see bench/watch_overhead.py). A spawned child has its own interpreter.

The parent (`TrainingJob`'s thread) starts `child_main` with ``torch.multiprocessing``'s
"spawn" context and reads messages from a pipe::

    ("update", {"progress": {field: value ...},        # every dataclasses.fields(Progress) value
                "epochs": [...], "batches": [...],      # history records appended since the last update
                "reset": bool,                          # True: the lists replace the parent's history
                "device": str | None,
                "cancel_seen": bool})                   # sent at once when the stop event is set
    ("done",   {"status", "metrics", "device"})         # run_training / resume_run returned
    ("error",  {"message", "kind", "traceback", "record"})  # it raised (the run folder recorded it)

Cancel: the parent sets a multiprocessing Event that the child passes to `run_training` as
``stop_event`` (effective within one batch). A child that dies without "done"/"error" (killed,
``os._exit``) shows up in the parent as an EOF on the pipe and a non-zero exit code.

The child uses ``max(1, cpu_count - 1)`` torch threads (one core stays with the UI) unless the
config sets ``train.threads``; its stdout goes to /dev/null.

Test hooks (read here only, in the child; off unless set):

* ``MTLREC_TEST_CRASH_AFTER_BATCHES=N`` makes the child ``os._exit(13)`` after its N-th batch -- for
  the tests of an unexpected death.
* ``MTLREC_TEST_HOLD_DIR=<folder>`` holds the child at two points until a file of that name exists in
  the folder (or the run is cancelled): ``start`` before its first message (the parent sees a run
  whose worker is not up yet) and ``batch`` after its first batch (a run in the middle of training).
  A ``batch`` file that reads ``crash`` ends the child there as above. The child touches
  ``<point>.reached`` on arrival. For tests that must see those states for as long as they look.
"""
from __future__ import annotations

import os
import threading
import time

from mtlrec.training.progress import progress_fields

REPORT_EVERY_S = 0.2     # how often the child sends progress and new history records
CRASH_ENV = "MTLREC_TEST_CRASH_AFTER_BATCHES"
CRASH_EXIT_CODE = 13
HOLD_ENV = "MTLREC_TEST_HOLD_DIR"
HOLD_POLL_S = 0.05


_NO_MAIN = threading.local()
_INSTALL_LOCK = threading.Lock()


def _install_no_main_hook() -> None:
    """Make `start_process` spawn children that do not re-run the parent's ``__main__``.

    Spawn normally re-imports the parent's main script in the child. In the Streamlit server
    ``__main__`` is the app script (Streamlit installs it as ``sys.modules["__main__"]`` on every
    run), so the worker would run the whole app, bare; a user's script without an
    ``if __name__ == "__main__"`` guard would start its training again. The worker needs nothing
    from ``__main__`` (its target and arguments live in mtlrec), so for the processes started by
    `start_process` (a thread-local flag) the main-module entries are left out of the preparation
    data. Other users of multiprocessing in the process are unaffected."""
    import multiprocessing.spawn as mp_spawn
    with _INSTALL_LOCK:
        if getattr(mp_spawn.get_preparation_data, "_mtlrec_no_main", False):
            return
        original = mp_spawn.get_preparation_data

        def get_preparation_data(name):
            d = original(name)
            if getattr(_NO_MAIN, "on", False):
                d.pop("init_main_from_path", None)
                d.pop("init_main_from_name", None)
            return d

        get_preparation_data._mtlrec_no_main = True
        mp_spawn.get_preparation_data = get_preparation_data


def start_process(ctx, **process_kw):
    """Start ``ctx.Process(**process_kw)`` (a spawn context) without re-running ``__main__`` in it."""
    _install_no_main_hook()
    proc = ctx.Process(**process_kw)
    _NO_MAIN.on = True
    try:
        proc.start()
    finally:
        _NO_MAIN.on = False
    return proc


NICE_ENV = "MTLREC_WORKER_NICE"


def lower_priority() -> int:
    """Give the worker a lower CPU priority than the server (``MTLREC_WORKER_NICE``, default 10; 0 keeps
    it): while a run trains, the server's page scripts win the cores when they need them, and training
    takes what they leave. The new niceness (the current one when unchanged or not allowed)."""
    try:
        target = int(os.environ.get(NICE_ENV, "10"))
    except ValueError:
        target = 10
    now = os.nice(0)
    try:
        return os.nice(target - now) if target > now else now      # idempotent: a spare calls it twice
    except OSError:
        return now


def torch_threads_for_training() -> int:
    """Intra-op threads for the worker: all cores but one (left to the UI), at least one."""
    return max(1, (os.cpu_count() or 1) - 1)


class _Reporter:
    """Sends progress + history deltas from the child; one lock so messages never interleave."""

    def __init__(self, conn, progress, history):
        self.conn, self.progress, self.history = conn, progress, history
        self.lock = threading.Lock()
        self.sent_e = self.sent_b = 0
        self.device = None
        self.stopped = threading.Event()

    def update(self, cancel_seen: bool = False) -> None:
        with self.lock:
            h = self.history
            epochs, batches = list(h.epochs), list(h.batches)      # list() of a list: atomic under the GIL
            reset = len(epochs) < self.sent_e or len(batches) < self.sent_b
            if reset:
                self.sent_e = self.sent_b = 0
            msg = {"progress": progress_fields(self.progress), "epochs": epochs[self.sent_e:],
                   "batches": batches[self.sent_b:], "reset": reset, "device": self.device,
                   "cancel_seen": cancel_seen}
            self.conn.send(("update", msg))
            self.sent_e, self.sent_b = len(epochs), len(batches)

    def send(self, kind: str, payload: dict) -> None:
        with self.lock:
            self.conn.send((kind, payload))

    def loop(self, stop_event) -> None:
        """An update every REPORT_EVERY_S, and one at once when the parent cancels (it says so:
        the parent's cancel() waits for it, so that the progress it shows next is at most one
        batch behind the end)."""
        told = False
        while not self.stopped.is_set():
            cancel_seen = False
            if told:
                self.stopped.wait(REPORT_EVERY_S)
            else:
                cancel_seen = told = bool(stop_event.wait(REPORT_EVERY_S))
            if self.stopped.is_set():
                return
            try:
                self.update(cancel_seen=cancel_seen)
            except (OSError, EOFError, BrokenPipeError):     # the parent has gone: nothing to tell
                return


def _crash_hook_progress(progress_cls, n: int):
    """A Progress that ends the process after its n-th batch (test hook, see the module doc)."""
    count = [0]

    class CrashingProgress(progress_cls):
        def __setattr__(self, name, value):
            object.__setattr__(self, name, value)
            if name == "batch" and value:
                count[0] += 1
                if count[0] >= n:
                    os._exit(CRASH_EXIT_CODE)

    CrashingProgress.__name__ = progress_cls.__name__
    return CrashingProgress


def _hold(point: str, stop_event) -> None:
    """Test hook (see the module doc): wait at ``point`` while ``$MTLREC_TEST_HOLD_DIR/<point>`` is
    absent and the run is not cancelled; a file that reads "crash" ends the process."""
    folder = os.environ.get(HOLD_ENV)
    if not folder:
        return
    from pathlib import Path
    gate = Path(folder) / point
    (Path(folder) / f"{point}.reached").touch()
    while not gate.exists() and not stop_event.wait(HOLD_POLL_S):
        pass
    if gate.exists() and gate.read_text().strip() == "crash":
        os._exit(CRASH_EXIT_CODE)


def _held_progress(progress_cls, stop_event):
    """A Progress that holds the run after its first batch (test hook, see the module doc)."""
    class HeldProgress(progress_cls):
        def batch_done(self, *args, **kw):
            super().batch_done(*args, **kw)
            if not getattr(self, "_mtlrec_held", False):
                object.__setattr__(self, "_mtlrec_held", True)
                _hold("batch", stop_event)

    HeldProgress.__name__ = progress_cls.__name__
    return HeldProgress


def _lifetime(stop_event, parent_pid: int | None) -> None:
    """The worker dies with the process that started it (the server, also when killed with
    kill -9: its run then reads "interrupted" and can be resumed; `mtlrec.training.lifeline`), and
    SIGTERM cancels its run as the Cancel button does (so a run of another server can be cancelled
    from the Runs page, `mtlrec.runs.library.cancel_run`)."""
    import signal

    from mtlrec.training import lifeline
    from mtlrec.runs.folder import owner_cancels_on_sigterm
    lifeline.die_with_parent(parent_pid)
    try:
        signal.signal(signal.SIGTERM, lambda signum, frame: stop_event.set())
        owner_cancels_on_sigterm()
    except (ValueError, OSError):     # pragma: no cover - not the main thread
        pass


def child_main(conn, stop_event, job: dict) -> None:
    """Entry point of the spawned worker. ``job``: {"config": RunConfig (keeps its base_dir) or dict,
    "run_dir": str, "dataset": PreparedDataset | None, "resuming": bool, "started": float | None,
    "parent_pid": the server's pid (the worker dies with it)}."""
    import sys
    import traceback
    import warnings

    _lifetime(stop_event, job.get("parent_pid"))
    try:
        sys.stdout = open(os.devnull, "w")      # noqa: SIM115 - the child's prints go nowhere
    except OSError:
        pass
    warnings.simplefilter("ignore")              # torch / numpy warnings would spam the server's log
    import torch

    from mtlrec.config import RunConfig
    from mtlrec.errors import DataError, TrainingError
    from mtlrec.training.history import History
    from mtlrec.training.pipeline import run_training
    from mtlrec.training.progress import Progress
    from mtlrec.training.resume import ResumeRefused

    torch.set_num_threads(torch_threads_for_training())     # run_training applies train.threads after
    lower_priority()
    cfg = job["config"] if isinstance(job["config"], RunConfig) else RunConfig.from_dict(job["config"])
    progress_cls = Progress
    crash_after = os.environ.get(CRASH_ENV)
    if crash_after:
        progress_cls = _crash_hook_progress(Progress, int(crash_after))
    if os.environ.get(HOLD_ENV):
        progress_cls = _held_progress(progress_cls, stop_event)
    progress = progress_cls(epochs=cfg.train.epochs)
    progress.started = job.get("started") or time.time()
    history = History()
    rep = _Reporter(conn, progress, history)
    _hold("start", stop_event)
    try:
        rep.update()          # at once: the parent learns that the worker is up (worker_start_s)
    except (OSError, EOFError, BrokenPipeError):
        pass
    thread = threading.Thread(target=rep.loop, args=(stop_event,), name="mtlrec-worker-report", daemon=True)
    thread.start()
    final: tuple[str, dict]
    try:
        from mtlrec.device import pick_device
        rep.device = str(pick_device(cfg.train.device))
        if job.get("resuming"):
            from mtlrec.training.resume import resume_run
            res = resume_run(job["run_dir"], stop_event=stop_event, progress=progress, history=history)
        else:
            res = run_training(cfg, job["run_dir"], dataset=job.get("dataset"), stop_event=stop_event,
                               progress=progress, history=history)
        rep.device = res.device
        final = ("done", {"status": res.status, "metrics": res.metrics, "device": res.device})
    except ResumeRefused as e:     # nothing was written: the folder keeps its own status
        final = ("error", {"message": str(e), "kind": type(e).__name__, "traceback": None, "record": False})
    except (DataError, TrainingError, ValueError) as e:
        final = ("error", {"message": str(e), "kind": type(e).__name__, "traceback": None, "record": True})
    except BaseException as e:  # noqa: BLE001 - unexpected: the traceback goes to status.json
        final = ("error", {"message": f"{type(e).__name__}: {e}", "kind": "internal",
                           "traceback": traceback.format_exc(), "record": True})
    rep.stopped.set()
    thread.join(5)
    try:
        rep.update(cancel_seen=bool(stop_event.is_set()))
        rep.send(*final)
    except (OSError, EOFError, BrokenPipeError):
        pass
    finally:
        conn.close()
