"""Reloading a run folder written by training: ``load_run(run_dir) -> Run``."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtlrec.errors import DataError


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
    status: dict = field(default_factory=dict)    # status.json
    _cache: dict = field(default_factory=dict, repr=False)

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


def load_run(run_dir, device="cpu") -> Run:
    """Config, dataset, model (best weights, eval mode), history and metrics of a run folder."""
    import torch

    from mtlrec.config import RunConfig
    from mtlrec.dataset import PreparedDataset
    from mtlrec.models import build_model
    from mtlrec.tasks import TaskSpec
    from mtlrec.training.history import History
    from mtlrec.training.rundir import read_json

    d = Path(run_dir)
    if not d.is_dir():
        raise DataError("run folder not found", file=str(d), fix="give a folder written by 'python -m mtlrec train'")
    missing = [n for n in ("model.json", "model.pt", "dataset/dataset.json") if not (d / n).exists()]
    if missing:
        raise DataError(f"not a complete run folder (missing {', '.join(missing)})", file=str(d),
                        fix="train first (the model is saved after the first epoch), or pick another run")
    info = read_json(d / "model.json")
    cfg_d = read_json(d / "config.json")
    config = RunConfig.from_dict(cfg_d) if cfg_d else None
    dataset = PreparedDataset.load(d / "dataset")
    tasks = [TaskSpec.from_dict(t) for t in info["tasks"]]
    model = build_model(info["arch"], dataset.fields, tasks, **info.get("hparams", {}))
    state = torch.load(d / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.to(device).eval()
    return Run(config=config, dataset=dataset, model=model,
               history=History.from_dict(read_json(d / "history.json", {})),
               metrics=read_json(d / "metrics.json", {}) or {}, run_dir=d, tasks=tasks, info=info,
               status=read_json(d / "status.json", {}) or {})


def run_from_result(result) -> Run:
    """A Run from an in-memory RunResult (no reload from disk; e.g. right after a job)."""
    from mtlrec.training.pipeline import model_info
    info = model_info(result.model, result.tasks, result.dataset)
    result.model.eval()
    return Run(config=None, dataset=result.dataset, model=result.model, history=result.history,
               metrics=result.metrics, run_dir=result.run_dir, tasks=result.tasks, info=info)
