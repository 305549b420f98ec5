"""Metrics per task (never pooled across tasks) and ranking metrics per user.

Every metric is registered in `METRICS` with its direction (`higher_is_better`)
and the task types it applies to. Point metrics come from scikit-learn; the
ranking metrics (Recall@K, NDCG@K, HitRate@K, MRR) are vectorised numpy; the model's
ranking (`evaluate_ranking`) and the popularity baseline (`evaluate_popularity`) share them.

Degenerate inputs do not crash: an AUC on a split with a single class, or any
metric on non-finite predictions, is NaN.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np


@dataclass(frozen=True)
class MetricInfo:
    higher_is_better: bool
    task_types: tuple[str, ...]
    description: str = ""
    selectable: bool = True     # usable as a validation / early-stopping metric


_B, _R, _M = ("binary",), ("regression",), ("multilabel",)
_RANK = ("ranking",)
METRICS: dict[str, MetricInfo] = {
    "auc": MetricInfo(True, _B, "area under the ROC curve"),
    "logloss": MetricInfo(False, _B, "binary cross-entropy of the probabilities"),
    "accuracy": MetricInfo(True, _B, "share of correct decisions at the threshold"),
    "precision": MetricInfo(True, _B, "precision at the threshold"),
    "recall": MetricInfo(True, _B, "recall at the threshold"),
    "f1": MetricInfo(True, _B, "F1 at the threshold"),
    "best_f1": MetricInfo(True, _B, "F1 at the threshold that maximises it"),
    "best_f1_threshold": MetricInfo(True, _B, "the threshold that maximises F1", selectable=False),
    "rmse": MetricInfo(False, _R, "root mean squared error"),
    "mae": MetricInfo(False, _R, "mean absolute error"),
    "micro_f1": MetricInfo(True, _M, "F1 over all (row, class) decisions"),
    "macro_f1": MetricInfo(True, _M, "mean F1 over classes"),
    "micro_auc": MetricInfo(True, _M, "AUC over all (row, class) pairs"),
    "macro_auc": MetricInfo(True, _M, "mean AUC over classes with both values"),
    "recall@k": MetricInfo(True, _RANK, "share of a user's relevant items in the top K"),
    "ndcg@k": MetricInfo(True, _RANK, "normalised discounted cumulative gain of the top K"),
    "hitrate@k": MetricInfo(True, _RANK, "share of users with a relevant item in the top K"),
    "mrr": MetricInfo(True, _RANK, "mean reciprocal rank of the first relevant item"),
}

# the metrics `evaluate_task` returns, per task type (in display order)
TASK_METRICS = {
    "binary": ("auc", "logloss", "accuracy", "precision", "recall", "f1", "best_f1", "best_f1_threshold"),
    "regression": ("rmse", "mae"),
    "multilabel": ("micro_auc", "macro_auc", "micro_f1", "macro_f1"),
}


def metric_info(name: str) -> MetricInfo:
    """The registry entry of ``name``; ``recall@10`` resolves to ``recall@k``."""
    key = re.sub(r"@\d+$", "@k", str(name))
    try:
        return METRICS[key]
    except KeyError:
        raise ValueError(f"unknown metric '{name}'; known metrics: {', '.join(METRICS)}") from None


def higher_is_better(name: str) -> bool:
    return metric_info(name).higher_is_better


def is_better(metric: str, new: float | None, old: float | None) -> bool:
    """True when ``new`` is strictly better than ``old`` for ``metric``.

    A NaN/None ``new`` is never better; anything finite beats a NaN/None ``old``."""
    if new is None or not math.isfinite(new):
        return False
    if old is None or not math.isfinite(old):
        return True
    return new > old if higher_is_better(metric) else new < old


def gain(metric: str, mtl: float, stl: float) -> float:
    """Multi-task gain ``mtl - stl``, sign-flipped for lower-is-better metrics (positive = MTL helps)."""
    d = float(mtl) - float(stl)
    return d if higher_is_better(metric) else -d


# ---- per-task point metrics ------------------------------------------------------------
def evaluate_task(task, y_true, y_pred, threshold: float = 0.5) -> dict[str, float]:
    """All metrics of ``task.type`` (see `TASK_METRICS`) as plain floats.

    ``y_pred`` holds probabilities (binary, multilabel: shape [n, K]) or predicted
    values (regression), e.g. ``task.predict(logits)`` as numpy.
    """
    ttype = task.type if hasattr(task, "type") else str(task)
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    names = TASK_METRICS[ttype]
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    if y_true.size == 0 or not np.isfinite(y_pred).all():
        return {n: float("nan") for n in names}
    fn = {"binary": _binary, "regression": _regression, "multilabel": _multilabel}[ttype]
    return fn(y_true, y_pred, threshold)


def _binary(y, p, threshold):
    from sklearn.metrics import (accuracy_score, log_loss, precision_recall_curve,
                                 precision_recall_fscore_support, roc_auc_score)

    y = (y > 0.5).astype(np.int64)
    p = np.clip(p, 0.0, 1.0)
    two = len(np.unique(y)) == 2
    out: dict[str, float] = {}
    out["auc"] = float(roc_auc_score(y, p)) if two else float("nan")
    out["logloss"] = float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]))
    dec = (p >= threshold).astype(np.int64)
    out["accuracy"] = float(accuracy_score(y, dec))
    pr, rc, f1, _ = precision_recall_fscore_support(y, dec, average="binary", zero_division=0)
    out["precision"], out["recall"], out["f1"] = float(pr), float(rc), float(f1)
    if y.any():
        prec, rec, thr = precision_recall_curve(y, p)
        f = 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-12)
        i = int(np.argmax(f))
        out["best_f1"], out["best_f1_threshold"] = float(f[i]), float(thr[i])
    else:
        out["best_f1"], out["best_f1_threshold"] = float("nan"), float("nan")
    return out


def _regression(y, p, threshold):
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    return {"rmse": float(math.sqrt(mean_squared_error(y, p))), "mae": float(mean_absolute_error(y, p))}


def _multilabel(y, p, threshold):
    from sklearn.metrics import f1_score, roc_auc_score

    y = (y > 0.5).astype(np.int64)
    if y.ndim == 1:
        y, p = y[:, None], p[:, None]
    out: dict[str, float] = {}
    flat = y.ravel()
    out["micro_auc"] = (float(roc_auc_score(flat, p.ravel())) if 0 < flat.sum() < flat.size
                        else float("nan"))
    ok = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < y.shape[0]]
    out["macro_auc"] = (float(np.mean([roc_auc_score(y[:, j], p[:, j]) for j in ok])) if ok
                        else float("nan"))
    dec = (p >= threshold).astype(np.int64)
    out["micro_f1"] = float(f1_score(y, dec, average="micro", zero_division=0))
    out["macro_f1"] = float(f1_score(y, dec, average="macro", zero_division=0))
    return out


def evaluate_tasks(tasks, y_true: dict, y_pred: dict, threshold: float = 0.5) -> dict[str, dict[str, float]]:
    """`evaluate_task` for every task: ``{task: {metric: value}}``."""
    return {t.name: evaluate_task(t, y_true[t.name], y_pred[t.name], threshold) for t in tasks}


# ---- curves for plots ------------------------------------------------------------------
def _thin(n: int, max_points: int) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def roc_curve_points(y_true, y_score, max_points: int = 200) -> dict[str, list[float]]:
    """ROC curve of a binary task as plain lists ``{fpr, tpr, thresholds}`` (empty if one class)."""
    from sklearn.metrics import roc_curve

    y = (np.asarray(y_true) > 0.5).astype(np.int64)
    s = np.asarray(y_score, dtype=np.float64)
    if len(np.unique(y)) < 2 or not np.isfinite(s).all():
        return {"fpr": [], "tpr": [], "thresholds": []}
    fpr, tpr, thr = roc_curve(y, s)
    k = _thin(len(fpr), max_points)
    thr = np.where(np.isfinite(thr), thr, 1.0)
    return {"fpr": fpr[k].tolist(), "tpr": tpr[k].tolist(), "thresholds": thr[k].tolist()}


def precision_recall_points(y_true, y_score, max_points: int = 200) -> dict[str, list[float]]:
    """Precision-recall curve of a binary task ``{precision, recall, thresholds}`` (empty if no positives)."""
    from sklearn.metrics import precision_recall_curve

    y = (np.asarray(y_true) > 0.5).astype(np.int64)
    s = np.asarray(y_score, dtype=np.float64)
    if not y.any() or not np.isfinite(s).all():
        return {"precision": [], "recall": [], "thresholds": []}
    prec, rec, thr = precision_recall_curve(y, s)
    thr = np.append(thr, 1.0)   # same length as precision/recall
    k = _thin(len(prec), max_points)
    return {"precision": prec[k].tolist(), "recall": rec[k].tolist(), "thresholds": thr[k].tolist()}


# ---- ranking metrics -------------------------------------------------------------------
def _score_matrix(scores) -> np.ndarray:
    if hasattr(scores, "detach"):            # torch tensor
        scores = scores.detach().float().cpu().numpy()
    if isinstance(scores, np.ndarray) and scores.ndim == 2:
        return scores.astype(np.float64, copy=True)
    rows = [np.asarray(s, dtype=np.float64).ravel() for s in scores]
    width = max((len(r) for r in rows), default=0)
    m = np.full((len(rows), width), -np.inf)
    for i, r in enumerate(rows):
        m[i, :len(r)] = r
    return m


def _mask(n_users: int, n_items: int, sets: Sequence[Iterable[int]] | None) -> np.ndarray:
    m = np.zeros((n_users, n_items), dtype=bool)
    if sets is None:
        return m
    if len(sets) != n_users:
        raise ValueError(f"got {len(sets)} item sets for {n_users} users")
    for u, s in enumerate(sets):
        idx = np.fromiter((int(i) for i in s), dtype=np.int64) if not isinstance(s, np.ndarray) \
            else s.astype(np.int64).ravel()
        if idx.size:
            if idx.min() < 0 or idx.max() >= n_items:
                raise ValueError(f"user row {u}: item index out of range 0..{n_items - 1}")
            m[u, idx] = True
    return m


def ranking_metrics(scores, relevant: Sequence[Iterable[int]], k: int = 10,
                    exclude: Sequence[Iterable[int]] | None = None) -> dict[str, float]:
    """Recall@K, NDCG@K, HitRate@K and MRR, averaged over users with a relevant item.

    ``scores``: [n_users, n_items] (numpy or torch), or one score list per user
    (ragged lists are padded with -inf). ``relevant[u]``: item column indices that
    are relevant for user ``u`` (e.g. their test items). ``exclude[u]``: items to
    leave out of the ranking (e.g. already seen in training); they can neither be
    recommended nor count as relevant. Recall@K divides by the user's number of
    relevant items; MRR uses the full ranking (ties broken optimistically).
    """
    s = _score_matrix(scores)
    n_users, n_items = s.shape
    rel = _mask(n_users, n_items, relevant)
    if exclude is not None:
        ex = _mask(n_users, n_items, exclude)
        s[ex] = -np.inf
        rel &= ~ex
    rel &= np.isfinite(s) | (s > 0)        # padded slots are never relevant
    n_rel = rel.sum(1)
    keep = n_rel > 0
    names = (f"recall@{k}", f"ndcg@{k}", f"hitrate@{k}", "mrr")
    if not keep.any():
        return {n: float("nan") for n in names}
    s, rel, n_rel = s[keep], rel[keep], n_rel[keep]
    kk = min(int(k), n_items)
    top = np.argpartition(-s, kk - 1, axis=1)[:, :kk] if kk < n_items else np.tile(np.arange(n_items),
                                                                                   (len(s), 1))
    order = np.argsort(-np.take_along_axis(s, top, 1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, 1)
    hits = np.take_along_axis(rel, top, 1) & np.isfinite(np.take_along_axis(s, top, 1))
    disc = 1.0 / np.log2(np.arange(2, kk + 2))
    dcg = (hits * disc).sum(1)
    idcg = np.cumsum(disc)[np.minimum(n_rel, kk) - 1]
    best_rel = np.where(rel, s, -np.inf).max(1)
    rank = (s > best_rel[:, None]).sum(1) + 1
    return {names[0]: float((hits.sum(1) / n_rel).mean()),
            names[1]: float((dcg / idcg).mean()),
            names[2]: float(hits.any(1).mean()),
            names[3]: float((1.0 / rank).mean())}


def _ranking_targets(ds, tasks, split: str, max_users: int | None, seed: int):
    """(users, {task: (user_index, item_index) of its real positives in ``split``}) -- the users
    every ranking of ``split`` is evaluated on: those with a positive of some task, at most
    ``max_users`` of them (a seeded sample). Sampled negatives never count."""
    rows = ds.rows[split]
    real = ~rows["sampled"].astype(bool) if "sampled" in rows else np.ones(len(rows["user_index"]), bool)
    positives = {}
    for t in tasks:
        m = real & (np.asarray(rows["label:" + t.label]) > 0.5) & (rows["item_index"] >= 0)
        positives[t.name] = (rows["user_index"][m], rows["item_index"][m])
    users = np.unique(np.concatenate([u for u, _ in positives.values()]))
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=int(max_users), replace=False))
    return users, positives


def _relevant(users, positives) -> list[list[int]]:
    pos = {u: i for i, u in enumerate(users)}
    rel: list[list[int]] = [[] for _ in users]
    for u, i in zip(*positives):
        j = pos.get(u)
        if j is not None:
            rel[j].append(int(i))
    return rel


def _ranked_tasks(ds, tasks):
    """The binary tasks of ``tasks`` (default: one per binary label of ``ds``, named like it)."""
    if tasks is None:
        from types import SimpleNamespace
        tasks = [SimpleNamespace(name=lab.name, label=lab.name, type="binary")
                 for lab in ds.labels if lab.task_type == "binary"]
    return [t for t in tasks if t.type == "binary"]


def evaluate_ranking(model, data, split: str = "test", k: int = 10, tasks=None, max_users: int | None = 500,
                     seed: int = 0, exclude_splits: Sequence[str] = ("train", "valid"),
                     rows_per_pass: int = 65536,
                     on_progress: Callable[[int, int], None] | None = None) -> dict[str, dict[str, float]]:
    """Ranking metrics of a trained model over the whole catalogue, per binary task.

    For every user with a positive label of task t in ``split`` (sampled negatives do
    not count), all catalogue items are scored with t's predicted probability; items
    the user interacted with in ``exclude_splits`` are left out; the relevant items are
    the user's positives of t in ``split``. ``data`` is a `DeviceData`; at most
    ``max_users`` users (a seeded sample) are scored, several users per forward pass.
    Returns ``{task: {recall@k, ndcg@k, hitrate@k, mrr}}``; empty when the data has no
    user/item ids or no binary task. `evaluate_popularity` ranks the same users the same way
    by item popularity (the baseline to beat). ``on_progress(users_done, users_total)`` is called
    before the first forward pass and after each one.
    """
    import torch

    ds = data.ds
    tasks = [t for t in (tasks if tasks is not None else model.tasks) if t.type == "binary"]
    if not tasks or not ds.has_users or not ds.has_items or split not in ds.rows:
        return {}
    users, positives = _ranking_targets(ds, tasks, split, max_users, seed)
    if len(users) == 0:
        return {t.name: ranking_metrics(np.zeros((0, 0)), [], k) for t in tasks}
    n_items = len(ds.item_ids)
    scores = {t.name: np.empty((len(users), n_items), dtype=np.float32) for t in tasks}
    per_pass = max(1, int(rows_per_pass) // max(n_items, 1))
    if on_progress is not None:
        on_progress(0, len(users))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(users), per_pass):
                group = users[start:start + per_pass]
                parts = [data.candidates(int(u)) for u in group]
                feats = {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
                out = model(feats)
                for t in tasks:
                    pred = t.predict(out[t.name].float()).reshape(len(group), n_items)
                    scores[t.name][start:start + len(group)] = pred.cpu().numpy()
                if on_progress is not None:
                    on_progress(start + len(group), len(users))
    finally:
        model.train(was_training)
    exclude = [ds.interacted_items(int(u), splits=tuple(exclude_splits)) for u in users]
    return {t.name: ranking_metrics(scores[t.name], _relevant(users, positives[t.name]), k=k, exclude=exclude)
            for t in tasks}


# ---- the popularity baseline -----------------------------------------------------------
def item_counts(ds, split: str = "train", label: str | None = None) -> np.ndarray:
    """Per item index, the number of real (not sampled) rows of ``split``; with ``label``, only
    the rows where that binary label is positive. Rows without an item (index -1) are skipped.
    ``item_counts(ds)`` is an item's *support*: how many training interactions it has."""
    n_items = len(ds.item_ids)
    if split not in ds.rows or "item_index" not in ds.rows[split]:
        return np.zeros(n_items, dtype=np.int64)
    rows = ds.rows[split]
    items = np.asarray(rows["item_index"], dtype=np.int64)
    m = items >= 0
    if "sampled" in rows:
        m &= ~np.asarray(rows["sampled"], dtype=bool)
    if label is not None:
        m &= np.asarray(rows["label:" + label]) > 0.5
    return np.bincount(items[m], minlength=n_items)[:n_items].astype(np.int64)


def popularity_scores(counts) -> np.ndarray:
    """Strictly decreasing scores in popularity order: the most counted item first, ties broken
    by the lower item index (so the ranking, and MRR, never depend on tie handling)."""
    c = np.asarray(counts)
    order = np.lexsort((np.arange(len(c)), -c))
    s = np.empty(len(c), dtype=np.float64)
    s[order] = np.arange(len(c), 0, -1, dtype=np.float64)
    return s


def evaluate_popularity(data, split: str = "test", k: int = 10, tasks=None, max_users: int | None = 500,
                        seed: int = 0, exclude_splits: Sequence[str] = ("train", "valid"),
                        train_split: str = "train") -> dict[str, dict[str, float]]:
    """The "most popular items the user has not seen" baseline, ranked like `evaluate_ranking`.

    For binary task t, every user is offered the same list: items by their number of positive
    rows of t's label in ``train_split`` (real rows; sampled negatives never count), ties by
    item index. Same users (same ``max_users`` / ``seed`` sample), same exclusions, same K and
    the same metric code (`ranking_metrics`) as the model's ranking, so the two are comparable.
    ``data``: a `DeviceData` or a `PreparedDataset`. Returns ``{task: {recall@k, ndcg@k,
    hitrate@k, mrr}}``; {} without user/item ids or binary tasks.
    """
    ds = getattr(data, "ds", data)
    tasks = _ranked_tasks(ds, tasks)
    if not tasks or not ds.has_users or not ds.has_items or split not in ds.rows:
        return {}
    users, positives = _ranking_targets(ds, tasks, split, max_users, seed)
    if len(users) == 0:
        return {t.name: ranking_metrics(np.zeros((0, 0)), [], k) for t in tasks}
    exclude = [ds.interacted_items(int(u), splits=tuple(exclude_splits)) for u in users]
    out = {}
    for t in tasks:
        s = popularity_scores(item_counts(ds, train_split, label=t.label))
        out[t.name] = ranking_metrics(np.broadcast_to(s, (len(users), len(s))), _relevant(users, positives[t.name]),
                                      k=k, exclude=exclude)
    return out


def ranking_verdict(model: dict, baseline: dict, name: str = "popularity") -> str | None:
    """One line saying whether the model's ranking beats a baseline's on the same users, e.g.
    "the model beats popularity on 4 of 4 metrics (ndcg@10 0.213 vs 0.150)"; None when the two
    share no finite metric. The headline metric is NDCG@K when both have it."""
    both = [m for m, v in (model or {}).items()
            if isinstance(v, (int, float)) and math.isfinite(v)
            and isinstance((baseline or {}).get(m), (int, float)) and math.isfinite(baseline[m])]
    if not both:
        return None
    wins = sum(model[m] > baseline[m] for m in both)
    losses = sum(model[m] < baseline[m] for m in both)
    head = next((m for m in both if m.startswith("ndcg@")), both[0])
    detail = f"{head} {model[head]:.3f} vs {baseline[head]:.3f}"
    if wins == len(both):
        return f"the model beats {name} on all {len(both)} metrics ({detail})"
    if losses == len(both):
        return f"{name} beats the model on all {len(both)} metrics ({detail}): the model does not rank better " \
               "than recommending the most popular unseen items"
    if wins == 0 and losses == 0:
        return f"the model ties with {name} ({detail})"
    if wins == 0:
        return f"the model does not beat {name} on any metric ({detail})"
    return f"the model beats {name} on {wins} of {len(both)} metrics ({detail})"


def ranking_rows(metrics: dict) -> list[dict]:
    """The ranking block of a metrics.json as table rows, the model's row of each task followed by
    its baselines' rows (``metrics["ranking_baseline"]``): ``[{"task", "ranked by": "model" |
    "popularity", "recall@K": .., ...}]``. [] without ranking metrics; damaged entries skipped."""
    ranking = metrics.get("ranking") if isinstance(metrics.get("ranking"), dict) else {}
    base = metrics.get("ranking_baseline") if isinstance(metrics.get("ranking_baseline"), dict) else {}
    rows = []
    for task, vals in ranking.items():
        if not isinstance(vals, dict):
            continue
        rows.append({"task": str(task), "ranked by": "model", **vals})
        for name, block in base.items():
            b = block.get(task) if isinstance(block, dict) else None
            if isinstance(b, dict):
                rows.append({"task": str(task), "ranked by": str(name), **b})
    return rows


def ranking_verdicts(metrics: dict) -> dict[str, str]:
    """``{task: line}``: `ranking_verdict` of the model against each baseline of a metrics.json."""
    ranking = metrics.get("ranking") if isinstance(metrics.get("ranking"), dict) else {}
    base = metrics.get("ranking_baseline") if isinstance(metrics.get("ranking_baseline"), dict) else {}
    out = {}
    for task, vals in ranking.items():
        lines = []
        for name, block in base.items():
            b = block.get(task) if isinstance(block, dict) else None
            line = ranking_verdict(vals, b, name) if isinstance(vals, dict) and isinstance(b, dict) else None
            if line:
                lines.append(line)
        if lines:
            out[str(task)] = "; ".join(lines)
    return out


# ---- cross-validation ------------------------------------------------------------------
def kfold_indices(n: int, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, valid) index pairs over ``range(n)``: shuffled with ``seed``, folds disjoint.

    Every index is in exactly one validation fold; fold sizes differ by at most one.
    """
    n, k = int(n), int(k)
    if k < 2:
        raise ValueError(f"k-fold needs k >= 2, not {k}")
    if n < k:
        raise ValueError(f"cannot split {n} rows into {k} folds")
    perm = np.random.default_rng(seed).permutation(n)
    folds = np.array_split(perm, k)
    out = []
    for i in range(k):
        train = np.concatenate([folds[j] for j in range(k) if j != i])
        out.append((np.sort(train), np.sort(folds[i])))
    return out


def group_kfold_indices(groups, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, valid) index pairs over the rows of ``groups`` (e.g. the user of each row) with
    every group wholly in one validation fold (GroupKFold): no user is in the train and the valid
    part of a fold. Groups are shuffled with ``seed`` and dealt to the folds largest first, each to
    the fold with the fewest rows so far, so the folds have about equal rows."""
    groups = np.asarray(groups)
    k = int(k)
    if k < 2:
        raise ValueError(f"k-fold needs k >= 2, not {k}")
    uniq, inv, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if len(uniq) < k:
        raise ValueError(f"cannot split {len(uniq)} groups (users) into {k} folds")
    order = np.random.default_rng(seed).permutation(len(uniq))
    order = order[np.argsort(-counts[order], kind="stable")]
    fold_of = np.empty(len(uniq), np.int64)
    sizes = np.zeros(k, np.int64)
    for g in order:
        f = int(np.argmin(sizes))
        fold_of[g] = f
        sizes[f] += counts[g]
    row_fold = fold_of[inv]
    return [(np.flatnonzero(row_fold != i), np.flatnonzero(row_fold == i)) for i in range(k)]


def temporal_fold_indices(times, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` time-respecting (train, valid) index pairs (like sklearn's TimeSeriesSplit): the rows are
    ordered by ``times`` and cut into k + 1 consecutive blocks; fold i trains on blocks 0..i and
    validates on block i + 1, so it never validates on rows earlier than its training rows (rows
    with equal times stay in one block)."""
    t = np.asarray(times, dtype=np.float64)
    n, k = len(t), int(k)
    if k < 2:
        raise ValueError(f"k-fold needs k >= 2, not {k}")
    order = np.argsort(t, kind="stable")
    ts = t[order]
    cuts = []
    for j in range(1, k + 1):
        c = int(round(j * n / (k + 1)))
        c = int(np.searchsorted(ts, ts[min(c, n - 1)], side="left")) if 0 < c < n else c
        cuts.append(c)
    bounds = [0] + cuts + [n]
    out = []
    for i in range(k):
        tr, va = order[:bounds[i + 1]], order[bounds[i + 1]:bounds[i + 2]]
        if len(tr) == 0 or len(va) == 0:
            raise ValueError(f"cannot cut {n} rows into {k + 1} time blocks (too few distinct times)")
        out.append((np.sort(tr), np.sort(va)))
    return out


def summarize_folds(fold_metrics: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and std per metric over folds: ``{metric: {"mean": .., "std": ..}}`` (nested task dicts kept)."""
    if not fold_metrics:
        return {}
    out: dict[str, Any] = {}
    for key in fold_metrics[0]:
        vals = [f[key] for f in fold_metrics if key in f]
        if isinstance(vals[0], dict):
            out[key] = summarize_folds(vals)
        else:
            a = np.asarray(vals, dtype=np.float64)
            out[key] = {"mean": float(np.nanmean(a)) if np.isfinite(a).any() else float("nan"),
                        "std": float(np.nanstd(a)) if np.isfinite(a).any() else float("nan")}
    return out
