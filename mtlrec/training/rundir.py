"""The run folder, written while training goes so that a crash loses at most one epoch.

Layout of ``runs/<timestamp>-<arch>/``:

* ``config.json``  the RunConfig (``RunConfig.to_dict()``)
* ``status.json``  ``{"status": queued|running|finished|cancelled|failed, "error": ..., "device": ...}``
* ``history.json`` the History, rewritten (atomically) every epoch
* ``metrics.json`` valid/test metrics per task, best epoch, single-task baselines and gains
* ``model.pt``     the best (by validation) state_dict; load with ``torch.load(..., weights_only=True)``
* ``model.json``   arch, hparams, tasks, label ranges: enough to rebuild the model
* ``dataset/``     the PreparedDataset (``PreparedDataset.save``)
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path


def default_run_dir(arch: str, root="runs", name: str | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}-{name or arch}"
    p, i = base, 1
    while p.exists():
        i += 1
        p = base.with_name(f"{base.name}-{i}")
    return p


def write_json_atomic(path, obj) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(obj)}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_default))
    os.replace(tmp, path)


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

    def write_config(self, config_dict: dict) -> None:
        write_json_atomic(self.dir / "config.json", config_dict)

    def write_status(self, status: str, error: str | None = None, **extra) -> None:
        write_json_atomic(self.dir / "status.json", {"status": status, "error": error, **extra})

    def write_history(self, history_dict: dict) -> None:
        write_json_atomic(self.dir / "history.json", history_dict)

    def write_metrics(self, metrics: dict) -> None:
        write_json_atomic(self.dir / "metrics.json", metrics)

    def write_model_info(self, info: dict) -> None:
        write_json_atomic(self.dir / "model.json", info)

    def write_model(self, state_dict, name: str = "model.pt") -> None:
        import torch
        path = self.dir / name
        tmp = path.with_name(f".{name}.tmp")
        torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, tmp)
        os.replace(tmp, path)

    def write_dataset(self, dataset) -> None:
        dataset.save(self.dir / "dataset")


def read_json(path, default=None):
    p = Path(path)
    if not p.exists():
        return default
    return json.loads(p.read_text())
