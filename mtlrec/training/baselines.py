"""Single-task baselines and the multi-task gain per task (the "seesaw" view, Tang et al. 2020).

The same trainer trains one model per task with the same architecture, hyperparameters
and budget (epochs, batch size, learning rate, early stopping on that task's metric).
The gain of task t is ``metric_MTL - metric_STL`` on the test split, sign-flipped when
lower is better, so a positive gain always means "training together helped this task".

`mean_baselines`: the constant predictor of a distribution task (every row predicted as the
training-mean distribution, e.g. the average user's interest in each genre), scored like the model
(metrics.json ``"task_baseline"``), the analogue of the popularity baseline of the ranking.
"""
from __future__ import annotations

from typing import Callable


def task_gain(metric: str, mtl: float, stl: float) -> float:
    from mtlrec.metrics import gain
    return float(gain(metric, mtl, stl))


def train_baselines(cfg, dataset, tasks, mtl_test: dict, *, data=None, device=None, stop_event=None,
                    on_batch: Callable | None = None, progress=None, log: Callable | None = None) -> dict:
    """Train one single-task model per task; returns
    ``{"stl": {task: {metric: v}}, "stl_best_epoch": {task: e}, "gain": {task: {"metric", "mtl", "stl", "gain"}},
    "status": "finished"|"cancelled"}``."""
    import copy

    from mtlrec.training.build import build_model_for
    from mtlrec.training.trainer import Trainer
    if data is None:
        data = dataset.to_device(device or "cpu")
    stl, best_epochs, gains = {}, {}, {}
    status = "finished"
    first = progress.phase_index if progress is not None else 0
    for i, task in enumerate(tasks):
        if progress is not None:
            progress.phase_index = first + i
        if log:
            log(f"single-task baseline: {task.name}")
        tcfg = copy.deepcopy(cfg.train)
        tcfg.early_stopping.task = task.name
        if cfg.train.early_stopping.task != task.name:
            tcfg.early_stopping.metric = None     # the task's own metric
        model = build_model_for(cfg, dataset, [task])
        res = Trainer(model, [task], tcfg, device, stop_event=stop_event, on_batch=on_batch,
                      on_epoch=progress.epoch_end if progress is not None else None).fit(data)
        if res.status != "finished":
            status = res.status
            break
        stl[task.name] = res.test.get(task.name, {})
        best_epochs[task.name] = res.best_epoch
        m = task.metric
        if m in stl[task.name] and m in mtl_test.get(task.name, {}):
            mtl_v, stl_v = mtl_test[task.name][m], stl[task.name][m]
            gains[task.name] = {"metric": m, "mtl": mtl_v, "stl": stl_v, "gain": task_gain(m, mtl_v, stl_v)}
    return {"stl": stl, "stl_best_epoch": best_epochs, "gain": gains, "status": status}


def gain_table(metrics: dict) -> dict[str, float]:
    """``{task: gain}`` from a metrics dict (as in metrics.json)."""
    return {t: g["gain"] for t, g in (metrics.get("gain") or {}).items()}


def mean_baselines(ds, tasks, split: str = "test") -> dict:
    """``{task: {"name": "training mean", "metrics": {metric: v}}}`` for the distribution tasks: every row
    of ``split`` (of the task's own space) predicted as the training-mean distribution."""
    import numpy as np

    from mtlrec.chain import split_masks
    from mtlrec.metrics import evaluate_task, mean_distribution
    out = {}
    dist = [t for t in tasks if t.type == "distribution"]
    if not dist or split not in ds.rows or ds.n_rows(split) == 0:
        return out
    masks, train_masks = split_masks(dist, ds, split), split_masks(dist, ds, "train")
    for t in dist:
        ytr = np.asarray(ds.rows["train"]["label:" + t.label], dtype=np.float64)
        if train_masks[t.name] is not None:
            ytr = ytr[train_masks[t.name]]
        y = np.asarray(ds.rows[split]["label:" + t.label], dtype=np.float64)
        if masks[t.name] is not None:
            y = y[masks[t.name]]
        p = np.broadcast_to(mean_distribution(ytr), y.shape)
        out[t.name] = {"name": "training mean", "metrics": evaluate_task(t, y, p)}
    return out
