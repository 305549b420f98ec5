"""Reloading a run folder written by training: ``load_run(run_dir) -> Run``, ``run_status(run_dir)``.

`load_run` is the one loader of run folders (CLI, app, benchmarks). It needs only what it
uses -- ``config.json``, ``model.json``, ``model.pt`` and ``dataset/`` -- and raises
`RunFolderError` (a DataError) naming the damaged or missing file and what to do.
``history.json``, ``metrics.json`` and ``status.json`` are optional: when one is missing or
damaged the run still loads, with empty values and a line in ``Run.notes``.

`read_predictions(run_dir, split)` reads the test predictions stored at the end of training
(``predictions_test.npz``, optional: None for older folders or a damaged file).

`run_status` reads status.json and says what the run really is: a run recorded as
"running" whose owner process is gone (killed, machine restarted) is "interrupted".
"""
from __future__ import annotations

import json
import math
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtlrec.errors import DataError

STALE_AFTER_S = 600.0       # a run of another host counts as interrupted after this long without a heartbeat
USABLE_STATUSES = ("finished", "cancelled")   # with a model.pt: list and open these like finished runs


class RunFolderError(DataError):
    """A run folder that cannot be used: ``file`` names the damaged or missing file, ``fix`` what to do."""

    def __init__(self, what: str, *, file: str, fix: str):
        super().__init__(what, file=file, fix=fix)


@dataclass
class Run:
    config: Any                      # RunConfig
    dataset: Any                     # PreparedDataset
    model: Any                       # MultiTaskModel with the best weights, in eval mode
    history: Any                     # History
    metrics: dict
    run_dir: Path
    tasks: list = field(default_factory=list)
    info: dict = field(default_factory=dict)      # model.json
    status: dict = field(default_factory=dict)    # status.json as written ({} when missing/damaged)
    state: dict = field(default_factory=dict)     # run_status(run_dir)
    notes: list = field(default_factory=list)     # optional files that were missing or damaged
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def warning(self) -> str | None:
        """One line to show before using this run's model, or None (finished / cancelled runs)."""
        return (self.state or {}).get("warning")

    @property
    def device(self):
        return next(self.model.parameters()).device

    def device_data(self):
        """The dataset as tensors on the model's device (built once, cached)."""
        dev = str(self.device)
        if self._cache.get("device_data_dev") != dev:
            self._cache["device_data"] = self.dataset.to_device(dev)
            self._cache["device_data_dev"] = dev
        return self._cache["device_data"]

    def task(self, name: str):
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)


def list_runs(root="runs") -> list[Path]:
    """Run folders under ``root`` that have a model, newest first."""
    r = Path(root)
    if not r.is_dir():
        return []
    runs = [p for p in r.iterdir() if (p / "model.pt").exists() and (p / "model.json").exists()]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


# ---- status ------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    import os

    from mtlrec.runs.folder import proc_is_zombie
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return not proc_is_zombie(pid)


def owner_alive(doc: dict, *, now: float | None = None, stale_after_s: float = STALE_AFTER_S) -> tuple[bool | None, str]:
    """(alive, why) of the process that wrote a "running" status.json: True / False, or None when
    it cannot be told. Same host: the pid must be alive and have the recorded start time (a
    reused pid has another); another host: the heartbeat must be younger than ``stale_after_s``."""
    from mtlrec.runs.folder import boot_id, proc_start_ticks
    now = time.time() if now is None else now
    pid, host = doc.get("pid"), doc.get("hostname")
    if isinstance(pid, int) and pid > 0 and host == socket.gethostname():
        rec_boot, cur_boot = doc.get("boot_id"), boot_id()
        if rec_boot and cur_boot and rec_boot != cur_boot:
            return False, "the machine has restarted since it started"
        if not _pid_alive(pid):
            return False, f"its process (pid {pid}) is gone"
        start = doc.get("process_start")
        if isinstance(start, int) and proc_start_ticks(pid) not in (None, start):
            return False, f"its process (pid {pid}) is gone (the pid now belongs to another process)"
        return True, f"its process (pid {pid}) is alive"
    hb = doc.get("heartbeat")
    if isinstance(hb, (int, float)) and math.isfinite(hb):
        age = now - hb
        where = f" on {host}" if host else ""
        if age > stale_after_s:
            return False, f"no heartbeat from its process{where} for {age / 60:.0f} minutes"
        return True, f"heartbeat from its process{where} {age:.0f} s ago"
    return None, "status.json does not say which process trains it"


def run_status(run_dir, *, now: float | None = None, stale_after_s: float = STALE_AFTER_S) -> dict:
    """What a run folder is now::

        {"status": finished|cancelled|failed|running|interrupted|unknown,
         "recorded": the status in status.json (None without one), "error": ..., "reason": ...,
         "has_model": model.pt exists, "usable": has a model and status is finished/cancelled,
         "warning": one line to show before serving its model (None when finished/cancelled)}

    "interrupted": status.json says running but its owner is gone (see `owner_alive`); an old
    status.json without owner fields counts as interrupted when nothing in the folder changed
    for ``stale_after_s``. "unknown": status.json is missing or damaged.
    """
    from mtlrec.runs.folder import read_json
    d = Path(run_dir)
    now = time.time() if now is None else now
    has_model = (d / "model.pt").is_file()
    out: dict[str, Any] = {"status": "unknown", "recorded": None, "error": None, "reason": None,
                           "has_model": has_model, "usable": False, "warning": None}
    try:
        doc = read_json(d / "status.json")
        if doc is not None and not isinstance(doc, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        doc = None
        out["reason"] = f"status.json is damaged ({e.__class__.__name__})"
    if doc is None:
        out["reason"] = out["reason"] or "status.json is missing"
    else:
        rec = doc.get("status")
        out["recorded"] = rec
        out["error"] = doc.get("error")
        out["status"] = rec if rec in ("finished", "cancelled", "failed", "running", "queued") else "unknown"
        if rec in ("running", "queued"):
            alive, why = owner_alive(doc, now=now, stale_after_s=stale_after_s)
            if alive is None:       # old status.json: judge by the last change in the folder
                mt = [p.stat().st_mtime for p in (d / "status.json", d / "history.json", d / "model.pt")
                      if p.exists()]
                if mt and now - max(mt) > stale_after_s:
                    alive, why = False, f"nothing in the folder changed for {(now - max(mt)) / 60:.0f} minutes"
            out["reason"] = why
            if alive is False:
                out["status"] = "interrupted"
    s = out["status"]
    out["usable"] = has_model and s in USABLE_STATUSES
    if has_model:
        if s == "interrupted":
            out["warning"] = (f"this run was interrupted ({out['reason']}); its model is the best one saved "
                              "before it stopped")
        elif s == "failed":
            out["warning"] = (f"this run failed ({out['error'] or 'no message'}); its model is the best one "
                              "saved before the failure")
        elif s in ("running", "queued"):
            out["warning"] = "this run is still training; its model is the best one so far"
        elif s == "unknown":
            out["warning"] = f"the state of this run is unknown ({out['reason']}); its model may be half-trained"
    return out


# ---- loading -----------------------------------------------------------------------------
_RETRAIN = "train the run again (python -m mtlrec train, or the Train page), or pick another run"


def _required_json(d: Path, name: str, what_for: str) -> Any:
    p = d / name
    if not p.is_file():
        raise RunFolderError(f"{name} is missing; it holds {what_for}", file=str(p), fix=_RETRAIN)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        detail = f" ({e.msg} at line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ""
        raise RunFolderError(f"{name} is damaged: not valid JSON{detail}", file=str(p), fix=_RETRAIN) from None


def _optional_json(d: Path, name: str, notes: list, kind=dict) -> Any:
    p = d / name
    if not p.exists():
        notes.append(f"{name} is missing; shown as empty")
        return None
    try:
        v = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        notes.append(f"{name} is damaged (not valid JSON); shown as empty")
        return None
    if not isinstance(v, kind):
        notes.append(f"{name} is damaged (not a JSON object); shown as empty")
        return None
    return v


def with_trained_model(cfg_d: Any, info: Any) -> Any:
    """``cfg_d`` (a run folder's config.json) with the architecture of ``info`` (its model.json) where
    the config names none: a config without ``model`` meant shared-bottom before issue 21 and means
    `mtlrec.config.DEFAULT_ARCH` now, so the folder's own record decides how the run reopens and resumes."""
    if not isinstance(cfg_d, dict) or not isinstance(info, dict) or not isinstance(info.get("arch"), str):
        return cfg_d
    model = cfg_d.get("model")
    if isinstance(model, dict) and model.get("arch"):
        return cfg_d
    hp = info.get("hparams") if isinstance(info.get("hparams"), dict) else {}
    return {**cfg_d, "model": {**hp, **(model if isinstance(model, dict) else {}), "arch": info["arch"]}}


def read_run_config(run_dir):
    """The RunConfig of a run folder's config.json, the architecture taken from model.json when the
    config names none (`with_trained_model`). Raises what reading and `RunConfig.from_dict` raise."""
    from mtlrec.config import RunConfig
    d = Path(run_dir)
    cfg_d = json.loads((d / "config.json").read_text(encoding="utf-8"))
    try:
        info = json.loads((d / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = None
    return RunConfig.from_dict(with_trained_model(cfg_d, info))


def _first_line(e: BaseException, limit: int = 200) -> str:
    s = str(e).strip().splitlines()
    s = s[0] if s else e.__class__.__name__
    return s if len(s) <= limit else s[:limit] + " ..."


def load_dataset(d: Path):
    from mtlrec.dataset import DatasetFileError, PreparedDataset, format_version
    dd = d / "dataset"
    doc = _required_json(dd.parent, "dataset/dataset.json", "the prepared data's fields and labels")
    if not isinstance(doc, dict) or not isinstance(doc.get("fields"), list) or "splits" not in doc:
        raise RunFolderError("dataset/dataset.json is damaged: it lacks 'fields' or 'splits'",
                             file=str(dd / "dataset.json"), fix=_RETRAIN)
    try:
        version = format_version(doc, dd)
    except DatasetFileError as e:               # a newer mtlrec's folder: say so, not "arrays.npz is missing"
        raise RunFolderError(f"dataset/{e.what}", file=str(e.file), fix=e.fix) from None
    if version == 3:                            # one .npy per array under dataset/arrays/
        store = "arrays/"
        if not (dd / "arrays").is_dir():
            raise RunFolderError("dataset/arrays/ is missing; it holds the prepared data",
                                 file=str(dd / "arrays"), fix=_RETRAIN)
    else:                                       # formats 1 and 2: one arrays.npz
        store = "arrays.npz"
        if not (dd / "arrays.npz").is_file():
            raise RunFolderError("dataset/arrays.npz is missing; it holds the prepared data",
                                 file=str(dd / "arrays.npz"), fix=_RETRAIN)
    try:
        ds = PreparedDataset.load(dd)
    except DatasetFileError as e:
        raise RunFolderError(f"dataset/{e.what}", file=str(e.file), fix=_RETRAIN) from None
    except Exception as e:  # noqa: BLE001 - a damaged file can raise almost anything; name it
        name = _damaged_dataset_file(dd)
        raise RunFolderError(f"dataset/{name} is damaged or cut short ({_first_line(e)})",
                             file=str(dd / name), fix=_RETRAIN) from None
    missing = dataset_problems(ds)
    if missing:
        raise RunFolderError(f"dataset/{store} lacks arrays the model needs: {', '.join(missing[:5])}"
                             f"{' ...' if len(missing) > 5 else ''}", file=str(dd / store.rstrip("/")),
                             fix=_RETRAIN)
    return ds


def _damaged_dataset_file(dd: Path) -> str:
    """Which file of a dataset folder that failed to load is damaged (read each on its own)."""
    import numpy as np
    from mtlrec.dataset import array_files
    for name in array_files(dd):
        try:
            if name.endswith(".npz"):
                with np.load(dd / name, allow_pickle=False) as z:
                    for k in z.files:
                        z[k]
            else:
                np.load(dd / name, mmap_mode="r", allow_pickle=False)
        except Exception:  # noqa: BLE001
            return name
    for name in ("items.parquet", "users.parquet"):
        if (dd / name).exists():
            try:
                import pandas as pd
                pd.read_parquet(dd / name)
            except Exception:  # noqa: BLE001
                return name
    return "dataset.json"


def dataset_problems(ds) -> list[str]:
    """Arrays a PreparedDataset's fields and labels need but it lacks (or of the wrong length)."""
    out = []
    n_users, n_items = len(ds.user_ids), len(ds.item_ids)
    for f in ds.fields:
        if f.owner in ("user", "item"):
            table, n = (ds.user_table, n_users) if f.owner == "user" else (ds.item_table, n_items)
            if f.name not in table:
                out.append(f"{f.owner} table '{f.name}'")
            elif len(table[f.name]) != n:
                out.append(f"{f.owner} table '{f.name}' (length {len(table[f.name])}, not {n})")
    for split, cols in ds.rows.items():
        need = [f.name for f in ds.fields if f.owner == "context"] + ["label:" + lab.name for lab in ds.labels]
        if any(f.owner == "user" for f in ds.fields):
            need.append("user_index")
        if any(f.owner == "item" for f in ds.fields):
            need.append("item_index")
        out += [f"{split} '{k}'" for k in need if k not in cols]
        lengths = {len(v) for v in cols.values()}
        if len(lengths) > 1:
            out.append(f"{split} (columns of different lengths)")
    return out


def load_run(run_dir, device="cpu") -> Run:
    """Config, dataset, model (best weights, eval mode), history and metrics of a run folder.

    Raises `RunFolderError` (file, fix) when a file it needs is missing or damaged. Optional
    files (history.json, metrics.json, status.json) only add a line to ``Run.notes``.
    ``Run.state`` is `run_status` and ``Run.warning`` the line to show for a run that is
    not finished/cancelled (interrupted, failed, still running, unknown)."""
    import torch

    from mtlrec.config import RunConfig
    from mtlrec.errors import TrainingError
    from mtlrec.models import build_model
    from mtlrec.tasks import TaskSpec
    from mtlrec.training.history import History

    d = Path(run_dir)
    if not d.is_dir():
        raise RunFolderError("run folder not found", file=str(d),
                             fix="give a folder written by 'python -m mtlrec train'")
    state = run_status(d)
    if not (d / "model.pt").is_file():
        why = {"failed": f"the run failed before its first epoch ended ({state['error']})",
               "cancelled": "the run was cancelled before its first epoch ended",
               "running": "the run is still in its first epoch",
               "interrupted": f"the run was interrupted before its first epoch ended ({state['reason']})"
               }.get(state["status"], "no model was saved")
        raise RunFolderError(f"model.pt is missing: {why}", file=str(d / "model.pt"),
                             fix="wait for the first epoch to end, or " + _RETRAIN)
    info = _required_json(d, "model.json", "the architecture and tasks of the model")
    if not isinstance(info, dict) or not isinstance(info.get("arch"), str) or not isinstance(info.get("tasks"), list):
        raise RunFolderError("model.json is damaged: it lacks 'arch' or 'tasks'", file=str(d / "model.json"),
                             fix=_RETRAIN)
    cfg_d = _required_json(d, "config.json", "the run's configuration")
    try:
        config = RunConfig.from_dict(with_trained_model(cfg_d, info))
    except (TrainingError, DataError, TypeError, ValueError, AttributeError) as e:
        raise RunFolderError(f"config.json is damaged ({_first_line(e)})", file=str(d / "config.json"),
                             fix=_RETRAIN) from None
    dataset = load_dataset(d)
    try:
        tasks = [TaskSpec.from_dict(t) for t in info["tasks"]]
        hparams = info.get("hparams") or {}
        model = build_model(info["arch"], dataset.fields, tasks, **hparams)
    except Exception as e:  # noqa: BLE001 - any failure to rebuild means model.json does not fit
        raise RunFolderError(f"model.json does not describe a model this version can build ({_first_line(e)})",
                             file=str(d / "model.json"), fix=_RETRAIN) from None
    try:
        state_dict = torch.load(d / "model.pt", map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated zip, foreign pickle, ...: all mean "damaged"
        raise RunFolderError(f"model.pt is damaged or not a model file ({_first_line(e)})",
                             file=str(d / "model.pt"), fix=_RETRAIN) from None
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise RunFolderError("model.pt does not hold model weights (a dict of tensors)", file=str(d / "model.pt"),
                             fix=_RETRAIN)
    try:
        model.load_state_dict(state_dict)
    except Exception as e:  # noqa: BLE001 - wrong shapes / names
        raise RunFolderError(f"the weights in model.pt do not fit the model of model.json and dataset/ "
                             f"({_first_line(e)})", file=str(d / "model.pt"), fix=_RETRAIN) from None
    model.to(device).eval()
    notes: list[str] = []
    hist = _optional_json(d, "history.json", notes)
    try:
        history = History.from_dict(hist)
    except Exception:  # noqa: BLE001
        notes.append("history.json is damaged; shown as empty")
        history = History()
    metrics = _optional_json(d, "metrics.json", notes) or {}
    status = _optional_json(d, "status.json", notes) or {}
    return Run(config=config, dataset=dataset, model=model, history=history, metrics=metrics, run_dir=d,
               tasks=tasks, info=info, status=status, state=state, notes=notes)


def read_predictions(run_dir, split: str = "test") -> dict | None:
    """The predictions training stored for ``split`` (``predictions_<split>.npz``, see
    `mtlrec.runs.folder`): ``{"tasks": {task: {"p": predictions, "y": labels}}, "row_id":
    array | None}``; None when the folder has no such file or it cannot be read (the caller then
    scores the split itself)."""
    import zipfile

    import numpy as np

    from mtlrec.runs.folder import predictions_name
    if run_dir is None:
        return None
    path = Path(run_dir) / predictions_name(split)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            names = [str(n) for n in z["tasks"]]
            tasks = {n: {"p": z[f"p{i}"], "y": z[f"y{i}"]} for i, n in enumerate(names)}
            row_id = z["row_id"] if "row_id" in z.files else None
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    return {"tasks": tasks, "row_id": row_id}


def run_from_result(result) -> Run:
    """A Run from an in-memory RunResult (no reload from disk; e.g. right after a job)."""
    from mtlrec.training.build import model_info
    info = model_info(result.model, result.tasks, result.dataset)
    result.model.eval()
    return Run(config=None, dataset=result.dataset, model=result.model, history=result.history,
               metrics=result.metrics, run_dir=result.run_dir, tasks=result.tasks, info=info)
