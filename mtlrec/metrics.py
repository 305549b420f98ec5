"""Metrics per task (never pooled across tasks) and ranking metrics per user.

Every metric is registered in `METRICS` with its direction (`higher_is_better`)
and the task types it applies to. Point metrics come from scikit-learn; the ranking
metrics (Recall@K, NDCG@K, HitRate@K, MRR) are computed by `mtlrec.ranking` (streamed over
users and items in bounded chunks); this module keeps what they read and write: item
popularity (`item_counts`, `popularity_scores`), item mean rating (`mean_rating_scores`) and the
rows and verdicts of a metrics.json's ranking block (`BASELINES`: the baselines beside the model).

Degenerate inputs do not crash: an AUC on a split with a single class, or any
metric on non-finite predictions, is NaN.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class MetricInfo:
    higher_is_better: bool
    task_types: tuple[str, ...]
    description: str = ""
    selectable: bool = True     # usable as a validation / early-stopping metric


_B, _R, _M, _D = ("binary",), ("regression",), ("multilabel",), ("distribution",)
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
    "class_ndcg": MetricInfo(True, _D, "NDCG of the predicted class ranking against the actual shares, per row"),
    "kl": MetricInfo(False, _D, "KL divergence of the predicted shares from the actual ones, per row (nats)"),
    "top1_accuracy": MetricInfo(True, _D, "share of rows whose most likely class is the actual largest share"),
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
    "distribution": ("class_ndcg", "kl", "top1_accuracy"),
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
    fn = {"binary": _binary, "regression": _regression, "multilabel": _multilabel,
          "distribution": _distribution}[ttype]
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


def _distribution(y, p, threshold):
    """Per row: NDCG (sklearn ``ndcg_score``) of the classes ranked by ``p`` with the actual shares
    ``y`` as gains, KL(y || p) and whether the top class is right; means over the rows with a
    known distribution (``y`` not all zero; ``p`` renormalised to sum 1)."""
    from sklearn.metrics import ndcg_score

    if y.ndim == 1:
        y, p = y[:, None], p[:, None]
    known = y.sum(axis=1) > 0
    y, p = y[known], np.clip(p[known], 0.0, None)
    if not len(y) or y.shape[1] < 2:
        return {n: float("nan") for n in TASK_METRICS["distribution"]}
    y = y / y.sum(axis=1, keepdims=True)
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(y > 0, y * (np.log(y) - np.log(np.maximum(p, 1e-12))), 0.0).sum(axis=1)
    return {"class_ndcg": float(ndcg_score(y, p)), "kl": float(kl.mean()),
            "top1_accuracy": float(np.mean(y[np.arange(len(y)), p.argmax(axis=1)] >= y.max(axis=1)))}


def mean_distribution(y) -> np.ndarray:
    """The mean of the known rows' shares (rows not all zero), renormalised: the training-mean
    baseline of a distribution task (every row predicted alike)."""
    y = np.asarray(y, dtype=np.float64)
    known = y[y.sum(axis=1) > 0]
    if not len(known):
        return np.full(y.shape[1], 1.0 / max(y.shape[1], 1))
    m = (known / known.sum(axis=1, keepdims=True)).mean(axis=0)
    return m / m.sum()


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


# ---- item popularity (the ranking baseline's scores) -------------------------------------
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


def order_scores(*keys) -> np.ndarray:
    """Strictly decreasing scores in the order of ``keys`` (per item; the first key decides, the
    next ones break its ties, all higher first), remaining ties broken by the lower item index (so
    a ranking, and MRR, never depend on tie handling)."""
    cols = [np.asarray(k, dtype=np.float64) for k in keys]
    n = len(cols[0])
    order = np.lexsort((np.arange(n), *[-c for c in reversed(cols)]))
    s = np.empty(n, dtype=np.float64)
    s[order] = np.arange(n, 0, -1, dtype=np.float64)
    return s


def popularity_scores(counts) -> np.ndarray:
    """Strictly decreasing scores in popularity order: the most counted item first, ties broken
    by the lower item index (so the ranking, and MRR, never depend on tie handling)."""
    return order_scores(counts)


# ---- item mean rating (the second ranking baseline) --------------------------------------
MEAN_RATING_PRIOR = 10      # an item's mean rating starts as this many ratings at the global mean


def item_mean_ratings(ds, label: str, split: str = "train",
                      prior: float = MEAN_RATING_PRIOR) -> tuple[np.ndarray, np.ndarray]:
    """Per item index, ``(shrunk mean, count)`` of the regression ``label`` over the real rows of
    ``split`` (sampled negatives and missing values never count): the Bayesian mean
    ``(sum + prior * global mean) / (count + prior)``, so an item with one 5-star rating does not
    outrank one rated 4.5 by a hundred users; an item without a rating gets the global mean."""
    n_items = len(ds.item_ids)
    if split not in ds.rows or "item_index" not in ds.rows[split]:
        return np.zeros(n_items), np.zeros(n_items, dtype=np.int64)
    rows = ds.rows[split]
    items = np.asarray(rows["item_index"], dtype=np.int64)
    y = np.asarray(rows["label:" + label], dtype=np.float64)
    m = (items >= 0) & np.isfinite(y)
    if "sampled" in rows:
        m &= ~np.asarray(rows["sampled"], dtype=bool)
    count = np.bincount(items[m], minlength=n_items)[:n_items]
    total = np.bincount(items[m], weights=y[m], minlength=n_items)[:n_items]
    mu = float(y[m].mean()) if m.any() else 0.0
    den = count + float(prior)
    mean = np.divide(total + prior * mu, den, out=np.full(n_items, mu), where=den > 0)
    return mean, count.astype(np.int64)


def mean_rating_scores(ds, label: str, split: str = "train", prior: float = MEAN_RATING_PRIOR) -> np.ndarray:
    """Strictly decreasing scores in "best-rated" order: the highest shrunk mean rating first
    (`item_mean_ratings`), equal means by the larger number of ratings, then the lower item index."""
    return order_scores(*item_mean_ratings(ds, label, split, prior))


# the ranking baselines of a metrics.json: key -> (name shown, what recommending by it means)
BASELINES = {"popularity": ("popularity", "recommending the most popular unseen items"),
             "mean_rating": ("mean rating", "recommending the best-rated unseen items (mean training rating)")}


def baseline_name(key: str) -> str:
    """The name a ranking baseline is shown by ("mean_rating" -> "mean rating")."""
    return BASELINES.get(key, (str(key).replace("_", " "),))[0]


def ranking_verdict(model: dict, baseline: dict, name: str = "popularity") -> str | None:
    """One line saying whether the model's ranking beats a baseline's (``name``: its key in
    `BASELINES`) on the same users, e.g. "the model beats popularity on 4 of 4 metrics (ndcg@10
    0.213 vs 0.150)"; None when the two share no finite metric. The headline metric is NDCG@K when
    both have it."""
    both = [m for m, v in (model or {}).items()
            if isinstance(v, (int, float)) and math.isfinite(v)
            and isinstance((baseline or {}).get(m), (int, float)) and math.isfinite(baseline[m])]
    if not both:
        return None
    wins = sum(model[m] > baseline[m] for m in both)
    losses = sum(model[m] < baseline[m] for m in both)
    head = next((m for m in both if m.startswith("ndcg@")), both[0])
    name, means = BASELINES.get(name, (baseline_name(name), f"ranking by {baseline_name(name)}"))
    detail = f"{head} {model[head]:.3f} vs {baseline[head]:.3f}"
    if wins == len(both):
        return f"the model beats {name} on all {len(both)} metrics ({detail})"
    if losses == len(both):
        return f"{name} beats the model on all {len(both)} metrics ({detail}): the model does not rank better " \
               f"than {means}"
    if wins == 0 and losses == 0:
        return f"the model ties with {name} ({detail})"
    if wins == 0:
        return f"the model does not beat {name} on any metric ({detail})"
    return f"the model beats {name} on {wins} of {len(both)} metrics ({detail})"


def ranking_rows(metrics: dict) -> list[dict]:
    """The ranking block of a metrics.json as table rows, the model's row of each task followed by
    its baselines' rows (``metrics["ranking_baseline"]``): ``[{"task", "ranked by": "model" |
    "popularity" | "mean rating", "recall@K": .., ...}]``. [] without ranking metrics; damaged entries skipped."""
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
                rows.append({"task": str(task), "ranked by": baseline_name(name), **b})
    return rows


def ranking_note(metrics: dict) -> str | None:
    """What the ranking block of a metrics.json covers, in one sentence (from its ``ranking_info``):
    "Ranked 250 of 1,234 test users (a seeded sample) over 200,000 items, top 10.", "Ranking skipped:
    ...", "Ranking not computed: the data has no user and item ids."; None for a run folder written
    before the ranking said so."""
    info = metrics.get("ranking_info") if isinstance(metrics.get("ranking_info"), dict) else {}
    status = info.get("status")
    if status == "skipped":
        return "Ranking skipped: the ranking over the whole catalogue was switched off for this run."
    if status == "not applicable":
        return f"Ranking not computed: {info.get('reason') or 'nothing to rank'}."
    if status != "done":
        return None
    try:
        n, m, items, k = int(info["users"]), int(info["of_users"]), int(info["items"]), int(info["k"])
    except (KeyError, TypeError, ValueError):
        return None
    who = f"{n:,} of {m:,} test users (a seeded sample)" if n < m else f"all {m:,} test users"
    by = info.get("ranked_by") if isinstance(info.get("ranked_by"), dict) else {}
    chained = [f"{t} by {q}" for t, q in by.items() if " = " in str(q)]
    return f"Ranked {who} over {items:,} items, top {k}." + (
        f" Chained tasks rank in the entire space: {'; '.join(chained)}." if chained else "")


def baselines_text(metrics: dict) -> str:
    """The ranking baselines of a metrics.json in words (Results, the report): popularity and, when
    the run ranked by it, mean rating with its label and prior (``ranking_info["mean_rating"]``)."""
    base = metrics.get("ranking_baseline") if isinstance(metrics.get("ranking_baseline"), dict) else {}
    info = metrics.get("ranking_info") if isinstance(metrics.get("ranking_info"), dict) else {}
    parts = ["popularity offers the same users the most popular items they have not seen (most positive "
             "training rows of the task first)"]
    if "mean_rating" in base:
        mr = info.get("mean_rating") if isinstance(info.get("mean_rating"), dict) else {}
        label, prior = mr.get("label", "the rating"), mr.get("prior", MEAN_RATING_PRIOR)
        prior = f"{prior:g}" if isinstance(prior, (int, float)) else str(prior)
        parts.append(f"mean rating offers them the best-rated ones: each item's mean training rating ({label}), "
                     f"shrunk toward the global mean as if it had {prior} more ratings at that mean, so that an "
                     "item rated once with the top mark does not head the list")
    return "; ".join(parts) + (": the obvious baselines the model has to beat." if len(parts) > 1
                               else ": the obvious baseline the model has to beat.")


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
