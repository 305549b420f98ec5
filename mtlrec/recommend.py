"""Per-user recommendations from a trained run.

All catalogue items are scored for one user in ONE batched forward pass
(``DeviceData.candidates``); items the user already interacted with are left out; the
top K by the fused score are returned.

Fused score: ``score = sum_t a_t * s_t`` over the binary and regression tasks, where
``s_t`` is the probability (binary) or the predicted value normalised to [0, 1] by the
training label range ``(v - min) / (max - min)``, clipped (regression), and the weights
``a_t`` are the caller's (default: equal weights summing to 1). Multi-label tasks (e.g.
genres) are not fused; their top classes are reported per item.
"""
from __future__ import annotations

import numpy as np

from mtlrec.errors import DataError


def fusable_tasks(run) -> list:
    return [t for t in run.tasks if t.type in ("binary", "regression")]


def fusion_weights(run, weights: dict | None = None) -> dict[str, float]:
    """Normalised weights a_t (sum 1) over the binary/regression tasks."""
    names = [t.name for t in fusable_tasks(run)]
    if not names:
        raise DataError("this model has no binary or regression task to rank items by",
                        fix="train with a click/like (binary) or rating (regression) task")
    if not weights:
        return {n: 1.0 / len(names) for n in names}
    unknown = [k for k in weights if k not in names]
    if unknown:
        raise DataError(f"no binary/regression task named {', '.join(map(repr, unknown))} to weight",
                        fix=f"weights can be given for: {', '.join(names)}")
    w = {n: float(weights.get(n, 0.0)) for n in names}
    if any(v < 0 or not np.isfinite(v) for v in w.values()):
        raise DataError("fusion weights must be finite numbers >= 0", fix="use weights such as 0.5, 1, 2")
    s = sum(w.values())
    if s <= 0:
        raise DataError("all fusion weights are 0", fix="give at least one task a positive weight")
    return {n: v / s for n, v in w.items()}


def _user_index(run, user_id) -> int:
    ds = run.dataset
    if not ds.has_users:
        raise DataError("this run's data has no user ids, so there is nobody to recommend to")
    try:
        return ds.user_index(user_id)
    except KeyError:
        examples = ", ".join(map(str, ds.user_ids[:5]))
        raise DataError(f"user '{user_id}' is not in this run's data",
                        fix=f"use a user id from the training data, e.g. {examples}") from None


def score_items(run, user_index: int, item_indices=None) -> dict[str, np.ndarray]:
    """Per-task predictions for one user against all items (or ``item_indices``), one pass.

    Binary/multilabel: probabilities; regression: predicted values."""
    import torch
    data = run.device_data()
    model = run.model
    model.eval()
    with torch.inference_mode():
        feats = data.candidates(int(user_index), item_indices)
        out = model(feats)
        return {t.name: t.predict(out[t.name]).float().cpu().numpy() for t in run.tasks}


def fuse(run, preds: dict[str, np.ndarray], weights: dict | None = None) -> np.ndarray:
    a = fusion_weights(run, weights)
    ranges = (run.info or {}).get("label_ranges", {})
    score = None
    for t in fusable_tasks(run):
        s = preds[t.name].astype(np.float64)
        if t.type == "regression":
            lo, hi = ranges.get(t.label, [float(np.min(s)), float(np.max(s))])
            s = np.clip((s - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(s)
        term = a[t.name] * s
        score = term if score is None else score + term
    return score


def recommend(run, user_id, k: int = 10, weights: dict | None = None, exclude_seen: bool = True,
              item_info: bool = True, top_classes: int = 3) -> list[dict]:
    """Top ``k`` items for ``user_id``: ``[{item, score, tasks: {task: value}, <item_info columns>}]``.

    ``tasks`` holds the probability (binary), the predicted value (regression) or the
    ``top_classes`` most likely classes with their probabilities (multilabel)."""
    if k < 1:
        raise DataError(f"k must be at least 1, not {k}")
    ds = run.dataset
    if not ds.has_items:
        raise DataError("this run's data has no item ids, so there is nothing to recommend")
    u = _user_index(run, user_id)
    preds = score_items(run, u)
    score = fuse(run, preds, weights)
    if exclude_seen:
        seen = ds.interacted_items(u)
        if len(seen):
            score = score.copy()
            score[seen] = -np.inf
    n_ok = int(np.isfinite(score).sum())
    kk = min(int(k), n_ok)
    if kk <= 0:
        return []
    top = np.argpartition(-score, kk - 1)[:kk]
    top = top[np.argsort(-score[top], kind="stable")]
    info_rows = None
    if item_info and ds.item_info is not None and len(ds.item_info) == len(ds.item_ids):
        cols = [c for c in ds.item_info.columns]
        sub = ds.item_info.iloc[top]
        info_rows = [{c: _plain(v) for c, v in zip(cols, row)} for row in sub.itertuples(index=False, name=None)]
    out = []
    for j, i in enumerate(top):
        tasks = {}
        for t in run.tasks:
            p = preds[t.name][i]
            if t.type == "multilabel":
                classes = ds.label(t.label).classes if t.label in [lab.name for lab in ds.labels] else []
                order = np.argsort(-p)[:top_classes]
                tasks[t.name] = {(classes[c] if c < len(classes) else str(c)): float(p[c]) for c in order}
            else:
                tasks[t.name] = float(p)
        rec = {"item": str(ds.item_ids[i]), "score": float(score[i]), "tasks": tasks}
        if info_rows is not None:
            for c, v in info_rows[j].items():
                if c not in rec:
                    rec[c] = v
        out.append(rec)
    return out


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    try:
        import pandas as pd
        if v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            return None
    except ImportError:  # pragma: no cover
        pass
    return v
