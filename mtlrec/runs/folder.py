"""The run folder, written while training goes so that a crash loses at most one epoch.

Layout of ``runs/<timestamp>-<arch>/``:

* ``config.json``  the RunConfig (``RunConfig.to_dict()``)
* ``status.json``  ``{"status": running|finished|cancelled|failed, "error": ..., "device": ...,
  "warnings": [...], "pid", "hostname", "process_start", "boot_id", "started_at", "heartbeat"}``:
  written atomically at the start and at every ending (also when training raises); the owner
  fields say which process trains, ``heartbeat`` (epoch seconds) is refreshed every
  ``HEARTBEAT_S`` while it runs. Read it with ``mtlrec.runs.load.run_status``, which reports a
  run whose owner is gone as "interrupted".
* ``history.json`` the History, rewritten (atomically) every epoch
* ``metrics.json`` valid/test metrics per task, best epoch, single-task baselines and gains
* ``model.pt``     the best (by validation) state_dict; load with ``torch.load(..., weights_only=True)``
* ``model.json``   arch, hparams, tasks, label ranges: enough to rebuild the model
* ``checkpoint.pt`` rewritten (atomically) after every epoch: everything needed to continue
  the run (`mtlrec.training.resume.resume_run`, ``python -m mtlrec train --resume RUN``);
  tensors and plain containers only (``torch.load(..., weights_only=True)``). Removed when
  the run finishes; kept when it is cancelled, fails or is interrupted.
* ``dataset/``     the PreparedDataset (``PreparedDataset.save``)
* ``predictions_test.npz`` the best model's predictions on the test split, from the very pass
  that gave the test metrics (written once, atomically, when training finishes; optional --
  older folders lack it): ``tasks`` (names), per task i ``p<i>`` (predictions: probabilities /
  values on the label scale / class probabilities) and ``y<i>`` (labels), float32, one row per
  test row in dataset order, and ``row_id`` (int64, -1 for sampled negatives) when the dataset has
  row ids. Read with ``mtlrec.runs.load.read_predictions``; no pickle (``allow_pickle=False``).

Data-parallel runs (torchrun, `mtlrec.training.distributed`) write the same files, from rank 0
alone, plus ``ranks/rank<r>.json`` (each process: ``rank``, ``world``, ``backend``, ``device``,
``peak_rss_mb``, ``rows`` trained, ``samples_per_s``) and, while they run, ``progress.json`` (the
`Progress` fields, refreshed every second) for readers that follow the run through its folder.
"""
from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import unicodedata
from pathlib import Path

from mtlrec.diskio import rewrite_in_place, write_atomic, write_text
from mtlrec.errors import DiskFullError, TrainingError

HEARTBEAT_S = 30.0        # status.json "heartbeat" refresh while a run trains
MAX_NAME_CHARS = 60
CHECKPOINT_NAME = "checkpoint.pt"
PROGRESS_NAME = "progress.json"    # where a running run is (written by the heartbeat when it is followed)


def safe_run_name(name) -> str:
    """A slug safe as one folder name: ASCII letters, digits, '.', '_' and '-' only (everything
    else, '/', '\\', NUL and spaces included, becomes '-'), no leading dot or dash, at most
    ``MAX_NAME_CHARS`` characters. '' when nothing usable is left (e.g. '..', '', '///')."""
    if name is None:
        return ""
    s = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", s)
    s = re.sub(r"-{2,}", "-", s).strip("-.")
    s = s[:MAX_NAME_CHARS].rstrip("-.")
    return s if s.strip(".") else ""


def confine(path, root) -> Path:
    """``path`` resolved, after checking that it lies strictly inside ``root`` (TrainingError if not)."""
    r = Path(root).resolve()
    p = Path(path).resolve()
    if p == r or r not in p.parents:
        raise TrainingError(f"the run folder '{path}' would lie outside the runs folder '{root}'; "
                            "give the run a plain name (letters, digits, '-', '_')")
    return p


def default_run_dir(arch: str, root=None, name: str | None = None) -> Path:
    """A new, empty run folder ``<root>/<timestamp>-<name or arch>`` (``-2``, ``-3`` ... when taken),
    CREATED here (`reserve_folder`): exactly one caller gets each folder, whatever starts runs at
    the same moment (sessions of the app, command lines, torchrun launchers, threads). The name is
    made safe (`safe_run_name`) and checked to lie inside ``root`` (default: the runs root,
    ``$MTLREC_RUNS_DIR`` or ``runs``, the folder the Runs page lists)."""
    if root is None:
        root = os.environ.get("MTLREC_RUNS_DIR") or "runs"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    slug = safe_run_name(name) or safe_run_name(arch) or "run"
    return reserve_folder(root, f"{stamp}-{slug}")


def reserve_folder(root, name: str) -> Path:
    """Create ``root/name`` -- or ``root/name-2``, ``-3`` ... when that exists -- with an exclusive
    ``os.mkdir`` (atomic: of callers racing for one name, one creates it and the others move on to
    the next) and return it. ``root`` is created when missing; the folder is checked to lie inside it."""
    r = Path(root)
    r.mkdir(parents=True, exist_ok=True)
    base = r / name
    confine(base, r)
    for i in range(1, 100_000):
        p = base if i == 1 else base.with_name(f"{base.name}-{i}")
        try:
            os.mkdir(p)
        except FileExistsError:
            continue
        return p
    raise TrainingError(f"no free folder name for '{name}' in '{r.name}'; delete old runs or give the run a name")


# ---- who owns a run ----------------------------------------------------------------------
def proc_start_ticks(pid: int) -> int | None:
    """Start time of process ``pid`` (clock ticks since boot, /proc/<pid>/stat field 22); None
    where /proc is not available or the process does not exist."""
    try:
        raw = Path(f"/proc/{int(pid)}/stat").read_text()
        return int(raw[raw.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def proc_is_zombie(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{int(pid)}/stat").read_text()
        return raw[raw.rindex(")") + 2:].split()[0] == "Z"
    except (OSError, ValueError, IndexError):
        return False


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


_SIGTERM_CANCELS = threading.Event()


def owner_cancels_on_sigterm(on: bool = True) -> None:
    """Say that this process stops its run (as Cancel does) when it receives SIGTERM: the
    status.json it writes then carries ``"cancel": "sigterm"``, and another process on this
    machine may cancel the run that way (`mtlrec.runs.library.cancel_run`). Said by the app's worker
    processes and by ``python -m mtlrec train`` (each rank); never by an app server that trains in
    a thread (a SIGTERM would stop the whole server). ``on=False`` takes it back (the handler is gone)."""
    if on:
        _SIGTERM_CANCELS.set()
    else:
        _SIGTERM_CANCELS.clear()


def owner_identity() -> dict:
    """pid, hostname, process start time and boot id of this process (stored in status.json), and
    ``cancel: "sigterm"`` when SIGTERM cancels its run (`owner_cancels_on_sigterm`)."""
    pid = os.getpid()
    out = {"pid": pid, "hostname": socket.gethostname(), "process_start": proc_start_ticks(pid),
           "boot_id": boot_id()}
    if _SIGTERM_CANCELS.is_set():
        out["cancel"] = "sigterm"
    return out


def write_json_atomic(path, obj) -> None:
    """``obj`` as the JSON file ``path`` (`mtlrec.diskio.write_text`: atomic; a full disk raises
    `DiskFullError` and leaves no temporary file)."""
    write_text(path, json.dumps(obj, indent=2, default=_default))


def _default(o):
    try:
        import numpy as np
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


class RunWriter:
    def __init__(self, run_dir):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._status: dict = {}
        self._beat_stop: threading.Event | None = None
        self._beat_thread: threading.Thread | None = None
        self.progress_source = None     # () -> dict: written to progress.json at every beat when set

    def write_progress(self, fields: dict) -> None:
        """``progress.json``: where a running run is (a `Progress`'s fields), for a reader that
        follows the run through its folder (the app following a torchrun job)."""
        write_json_atomic(self.dir / PROGRESS_NAME, fields)

    def write_config(self, config_dict: dict) -> None:
        write_json_atomic(self.dir / "config.json", config_dict)

    def write_status(self, status: str, error: str | None = None, **extra) -> None:
        """Rewrite status.json (atomically): the status, the error (None unless failed/cancelled),
        the fields of earlier calls (device, warnings, ...) updated by ``extra``, the owner
        process and a fresh heartbeat."""
        with self._lock:
            now = time.time()
            doc = {k: v for k, v in self._status.items() if k not in ("status", "error")}
            doc.update(extra)
            doc.setdefault("started_at", now)
            doc.update(owner_identity() if "pid" not in doc else {})
            self._status = {"status": status, "error": error, **doc, "heartbeat": now}
            if status not in ("running", "queued"):
                self._status["ended_at"] = now
            path = self.dir / "status.json"
            try:
                write_json_atomic(path, self._status)
            except DiskFullError:           # no room for a new copy: the old file's own blocks, if any
                if not path.is_file():
                    raise
                rewrite_in_place(path, json.dumps(self._status, indent=2, default=_default))

    def update_status(self, **extra) -> None:
        """Rewrite status.json with ``extra`` updated (e.g. ``warnings``), its status, error, ending
        and heartbeat kept."""
        with self._lock:
            self._status.update(extra)
            write_json_atomic(self.dir / "status.json", self._status)

    def beat(self) -> None:
        """Refresh the heartbeat of a running run (no-op once it has ended)."""
        with self._lock:
            if self._status.get("status") != "running":
                return
            self._status["heartbeat"] = time.time()
            try:
                write_json_atomic(self.dir / "status.json", self._status)
                if self.progress_source is not None:
                    self.write_progress(self.progress_source())
            except (OSError, RuntimeError, ValueError):   # RuntimeError: fields changed while copied
                pass

    def start_heartbeat(self, interval: float | None = None) -> None:
        """A daemon thread that calls `beat` every ``interval`` seconds until `stop_heartbeat`."""
        if self._beat_thread is not None:
            return
        stop = threading.Event()
        every = float(interval or HEARTBEAT_S)

        def loop():
            while not stop.wait(every):
                self.beat()

        self._beat_stop = stop
        self._beat_thread = threading.Thread(target=loop, name=f"mtlrec-heartbeat-{self.dir.name}", daemon=True)
        self._beat_thread.start()

    def stop_heartbeat(self) -> None:
        if self._beat_stop is not None:
            self._beat_stop.set()
        self._beat_thread = self._beat_stop = None

    def write_history(self, history_dict: dict) -> None:
        write_json_atomic(self.dir / "history.json", history_dict)

    def write_metrics(self, metrics: dict) -> None:
        write_json_atomic(self.dir / "metrics.json", metrics)

    def write_model_info(self, info: dict) -> None:
        write_json_atomic(self.dir / "model.json", info)

    def write_model(self, state_dict, name: str = "model.pt") -> None:
        import torch
        cpu = {k: v.detach().cpu() for k, v in state_dict.items()}
        write_atomic(self.dir / name, lambda fh: torch.save(cpu, fh))

    def write_checkpoint(self, state: dict, name: str = CHECKPOINT_NAME) -> None:
        """Write a training checkpoint (see `Trainer.checkpoint_state`) via a temporary file and
        ``os.replace``: a kill or a full disk leaves the previous checkpoint or the new one, never
        half of one (`mtlrec.diskio.write_atomic`)."""
        import torch
        write_atomic(self.dir / name, lambda fh: torch.save(state, fh))

    def remove_checkpoint(self, name: str = CHECKPOINT_NAME) -> None:
        (self.dir / name).unlink(missing_ok=True)

    def write_predictions(self, split: str, preds: dict, labels: dict, row_id=None) -> Path:
        """``predictions_<split>.npz`` (see the module docstring), via a temporary file and
        ``os.replace``: a reader sees the old file or the whole new one."""
        import numpy as np
        names = list(preds)
        arrays = {"tasks": np.asarray(names, dtype=str)}
        for i, n in enumerate(names):
            arrays[f"p{i}"] = np.asarray(preds[n], dtype=np.float32)
            arrays[f"y{i}"] = np.asarray(labels[n], dtype=np.float32)
        if row_id is not None:
            arrays["row_id"] = np.asarray(row_id, dtype=np.int64)
        return write_atomic(self.dir / predictions_name(split), lambda fh: np.savez(fh, **arrays))

    def write_dataset(self, dataset) -> None:
        dataset.save(self.dir / "dataset")


def predictions_name(split: str) -> str:
    """The file name of a split's stored predictions: ``predictions_test.npz``."""
    return f"predictions_{safe_run_name(split) or 'split'}.npz"


def read_json(path, default=None):
    """The JSON in ``path``; ``default`` when the file does not exist (invalid JSON raises)."""
    p = Path(path)
    if not p.exists():
        return default
    return json.loads(p.read_text())
