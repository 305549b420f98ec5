"""A run's predictions on one split, per task, each on its own space (the rows its metrics count).

`predictions(run, split)` reads the ones stored by training (``predictions_test.npz``) when they fit the
run and scores the split otherwise (`score_split`); `predictions_frame` is the same as one table per row
(labels, predictions, the source ``row_id``), for the report and the downloads.
"""
from __future__ import annotations

from mtlrec.tasks import clean_tasks


def run_tasks(run):
    """TaskSpecs of a loaded run (the run's own, with the regression scaling it was trained with)."""
    if getattr(run, "tasks", None):
        return list(run.tasks)
    from mtlrec.tasks import tasks_from_config
    cfg = run.config
    tasks = cfg.tasks if hasattr(cfg, "tasks") else cfg["tasks"]
    return tasks_from_config(clean_tasks(tasks), run.dataset)


def predictions(run, split: str = "test", batch_size: int = 65536) -> dict:
    """{task: {"type", "metric", "y": labels, "p": predictions, "mask", "space"}} of one split
    (probabilities / values; a chained task's conditional one, e.g. p(like | interact)), on CPU, with
    each task's own space (``mask``: the rows its metrics count, `own_space`): the ones stored in the run folder at the end of training
    (``predictions_test.npz``, `stored_predictions`) when they fit the run, else scored now
    (`score_split`; older run folders, other splits)."""
    stored = stored_predictions(run, split)
    return stored if stored is not None else score_split(run, split, batch_size=batch_size)


def stored_predictions(run, split: str = "test") -> dict | None:
    """`predictions` as stored by training, or None when the run folder has none for ``split`` or
    they do not fit the run (other tasks, another number of rows)."""
    import numpy as np

    from mtlrec.runs.load import read_predictions
    got = read_predictions(getattr(run, "run_dir", None), split)
    if got is None:
        return None
    tasks = run_tasks(run)
    n = run.dataset.n_rows(split) if split in run.dataset.rows else -1
    rid = run.dataset.row_ids(split) if n >= 0 else None
    if got["row_id"] is not None and rid is not None and not np.array_equal(got["row_id"], rid):
        return None
    res = {}
    for t in tasks:
        p = got["tasks"].get(t.name)
        if p is None or len(p["p"]) != n or len(p["y"]) != n:
            return None
        res[t.name] = {"type": t.type, "metric": t.metric, "y": p["y"], "p": p["p"]}
    return _with_spaces(run, tasks, split, res)


def _with_spaces(run, tasks, split: str, res: dict) -> dict:
    """Each task's entry of ``res`` with its own space (`mtlrec.chain.split_masks`): ``"mask"``
    (bool per row, None = every row) and ``"space"`` (the rows in words)."""
    from mtlrec.chain import split_masks
    masks = split_masks(tasks, run.dataset, split)
    for t in tasks:
        res[t.name]["mask"] = masks[t.name]
        res[t.name]["space"] = space_words(t)
    return res


def space_words(task) -> str:
    """Which rows a task's metrics count, in words: "rows where interact = 1", "observed rows (no
    sampled negatives)" (regression) or "every row"."""
    if getattr(task, "given", ""):
        return f"rows where {task.given} = 1" + (", observed" if task.type == "regression" else "")
    if task.type == "distribution":
        return "observed rows of users with known interests (no sampled negatives)"
    return "observed rows (no sampled negatives)" if task.type == "regression" else "every row"


def own_space_rows(entry: dict):
    """(labels, predictions) of a `predictions` entry on its task's own space only: the rows its
    metrics, curves and residuals count."""
    m = entry.get("mask")
    return (entry["y"], entry["p"]) if m is None else (entry["y"][m], entry["p"][m])


def score_split(run, split: str = "test", batch_size: int = 65536) -> dict:
    """`predictions` computed now: the run's model on every row of ``split``."""
    import numpy as np
    import torch
    tasks = run_tasks(run)
    data = run.dataset.to_device("cpu")
    n = data.n_rows(split)
    model = run.model.to("cpu").eval()
    ys = {t.name: [] for t in tasks}
    ps = {t.name: [] for t in tasks}
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(n, start + batch_size))
            feats, labels = data.batch(split, idx)
            out = model(feats)
            for t in tasks:
                ys[t.name].append(labels[t.label].cpu().numpy())
                ps[t.name].append(t.predict(out[t.name]).float().cpu().numpy())
    res = {}
    for t in tasks:
        res[t.name] = {"type": t.type, "metric": t.metric,
                       "y": np.concatenate(ys[t.name]) if ys[t.name] else np.zeros(0),
                       "p": np.concatenate(ps[t.name]) if ps[t.name] else np.zeros(0)}
    return _with_spaces(run, tasks, split, res)


def predictions_frame(run, split: str = "test", batch_size: int = 65536):
    """One row per row of ``split``: ``row_id`` (the source row, -1 for sampled negatives; missing
    for datasets prepared before row ids), ``user_id``, ``item_id``, ``sampled``, then per task its
    label and prediction (``<task>`` and ``<task>_pred``; multi-label: the classes joined by '|',
    predicted at p >= 0.5; distribution: the largest shares, `shares_text`) and, for a task whose metrics count only some rows (a chained task, a
    regression task beside sampled negatives), ``in <task>'s space``: whether the row counts."""
    import numpy as np
    import pandas as pd
    ds = run.dataset
    r = ds.rows[split]
    n = ds.n_rows(split)
    out: dict = {}
    rid = ds.row_ids(split)
    if rid is not None:
        out["row_id"] = rid
    if ds.has_users:
        out["user_id"] = ds.user_ids[np.asarray(r["user_index"])]
    if ds.has_items:
        out["item_id"] = ds.item_ids[np.asarray(r["item_index"])]
    if "sampled" in r:
        out["sampled"] = np.asarray(r["sampled"], dtype=bool)
    preds = predictions(run, split, batch_size=batch_size)
    for name, p in preds.items():
        y, yhat = np.asarray(p["y"]), np.asarray(p["p"])
        if y.ndim == 2 and p["type"] == "distribution":
            classes = getattr(_label_of(ds, run, name), "classes", None) or [str(k) for k in range(y.shape[1])]
            out[name] = [shares_text(row, classes) for row in y]
            out[f"{name}_pred"] = [shares_text(row, classes) for row in yhat]
        elif y.ndim == 2:
            classes = np.asarray(getattr(_label_of(ds, run, name), "classes", None) or
                                 [str(k) for k in range(y.shape[1])], dtype=object)
            out[name] = ["|".join(classes[row > 0.5]) for row in y]
            out[f"{name}_pred"] = ["|".join(classes[row >= 0.5]) for row in yhat]
        else:
            out[name] = y
            out[f"{name}_pred"] = yhat
        if p.get("mask") is not None:
            out[f"in {name}'s space"] = np.asarray(p["mask"], dtype=bool)
    return pd.DataFrame(out, index=pd.RangeIndex(n))


def shares_text(row, classes, top: int = 5) -> str:
    """A distribution's largest shares as text, e.g. "Drama 0.40|Comedy 0.30" (the ``top`` largest
    above zero; "" for a row of zeros: unknown)."""
    import numpy as np
    row = np.asarray(row, dtype=np.float64)
    order = [k for k in np.argsort(-row, kind="stable")[:top] if row[k] > 0]
    return "|".join(f"{classes[k]} {row[k]:.2f}" for k in order)


def _label_of(ds, run, task_name: str):
    for t in run_tasks(run):
        if t.name == task_name:
            try:
                return ds.label(t.label)
            except KeyError:
                return None
    return None
