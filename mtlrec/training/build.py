"""What a run builds from its config and dataset: the tasks, the model (seeded), model.json's facts.

Shared by the whole-run pipeline (`mtlrec.training.pipeline`), the single-task baselines
(`mtlrec.training.baselines`) and the run loader (`mtlrec.runs.load`), which is why it lives
apart from all three: none of them imports another for these.
"""
from __future__ import annotations

from mtlrec.config import RunConfig
from mtlrec.errors import TrainingError


def build_tasks(cfg: RunConfig, dataset):
    """The `TaskSpec` list of ``cfg.tasks`` on ``dataset`` (the config checked against its labels first)."""
    from mtlrec.tasks import tasks_from_config
    cfg.validate(label_names=[lab.name for lab in dataset.labels])
    return tasks_from_config(cfg.tasks, dataset)


def build_model_for(cfg: RunConfig, dataset, tasks, seed: int | None = None):
    """``cfg``'s architecture for ``tasks`` on ``dataset``'s fields, initialised under ``seed``
    (default ``train.seed``; `seeded_build`); a bad hyperparameter is a TrainingError."""
    from mtlrec.models import build_model
    from mtlrec.training.trainer import seeded_build
    try:
        return seeded_build(cfg.train.seed if seed is None else seed, build_model, cfg.arch, dataset.fields,
                            tasks, **cfg.hparams)
    except ValueError as e:
        raise TrainingError(str(e)) from None


def label_ranges(dataset) -> dict[str, list[float]]:
    """[min, max] of each regression label on the training split (for score fusion)."""
    import numpy as np
    out = {}
    for lab in dataset.labels:
        if lab.task_type == "regression":
            y = np.asarray(dataset.rows["train"]["label:" + lab.name], dtype=float)
            y = y[np.isfinite(y)]
            if len(y):
                out[lab.name] = [float(y.min()), float(y.max())]
    return out


def model_info(model, tasks, dataset) -> dict:
    """model.json of a run: architecture, hyperparameters, tasks, label ranges, parameter count."""
    return {"arch": model.arch, "hparams": dict(model.hparams),
            "tasks": [t.to_dict() for t in tasks], "label_ranges": label_ranges(dataset),
            "n_parameters": int(sum(p.numel() for p in model.parameters()))}
