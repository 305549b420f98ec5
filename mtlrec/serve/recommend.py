"""Per-user recommendations from a trained run, and THE fused score.

All catalogue items are scored for one user in ONE batched forward pass
(``DeviceData.candidates``); items the user already interacted with are left out; the
top K by the fused score are returned.

Fast path (`score_items`, default): everything that depends only on the item side -- the
embedded item fields and their share of every input layer (``model.input_layers()``) -- is
computed once per model and cached (`item_split`: `mtlrec.serve.catalogue`, keyed to the model's input
parameters and the run's item tables); a request embeds one user row (user fields, context
defaults), adds its share to the cached item part and runs the rest of the network
(``model.forward_from_first``). Same numbers as the full forward up to float rounding
(~1e-6); ``fast=False`` forces the full forward. What-if and explanation code that edits item
features builds its own features and runs the model itself, never this cache. `recommend` scores in
two stages: the fused score's tasks over the catalogue, then the other tasks (multilabel) for the top
K only; equal scores are listed in item order (`top_rows`) on either path.

Fused score: ``score = sum_t a_t * s_t`` over the binary and regression tasks, where
``s_t`` is the probability (binary; a chained task's in the entire space, e.g. p(interact ∧ like)
= p(interact) · p(like | interact): what the user will engage with AND like; `ranked_by` says
it in words) or the predicted value on the label scale normalised
to [0, 1] by the training label range ``(v - min) / (max - min)``, clipped (regression),
and the weights ``a_t`` are the caller's (default: equal weights summing to 1).
Multi-label tasks (e.g. genres) are not fused; their top classes are reported per item.

This module is the only place the fused score is computed: `recommend` (the
Recommendations page, ``mtlrec recommend``, the CSV export) ranks by `fused_terms`, and
`pair_score` -- what `mtlrec.explain` explains and splits by feature group -- takes the
same number from the same catalogue pass. Regression outputs reach it on the label scale
through `TaskSpec.predict` (`TaskSpec.to_label_scale`), never as standardised outputs.
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


def label_range(run, task) -> tuple[float, float] | None:
    """[min, max] of a regression task's label on the training split: model.json's
    ``label_ranges``, else computed from the run's dataset (older run folders); None without rows."""
    ranges = (getattr(run, "info", None) or {}).get("label_ranges") or {}
    if task.label not in ranges:
        cache = getattr(run, "_cache", None)
        computed = cache.get("label_ranges") if isinstance(cache, dict) else None
        if computed is None:
            from mtlrec.training.build import label_ranges
            try:
                computed = label_ranges(run.dataset)
            except (KeyError, AttributeError):
                computed = {}
            if isinstance(cache, dict):
                cache["label_ranges"] = computed
        ranges = computed
    r = ranges.get(task.label)
    return None if r is None else (float(r[0]), float(r[1]))


def task_term(run, task, prediction) -> np.ndarray:
    """s_t: a binary/regression task's term of the fused score from its prediction --
    the probability (binary) or the predicted value ON THE LABEL SCALE (regression, i.e.
    ``task.predict(output)``, never the standardised output), scaled by the training label
    range to [0, 1] and clipped. A regression label without a range (or a constant one) gives 0."""
    p = np.asarray(prediction, dtype=np.float64)
    if task.type == "binary":
        return p
    if task.type != "regression":
        raise ValueError(f"task '{task.name}' ({task.type}) is not part of the fused score")
    r = label_range(run, task)
    if r is None or not r[1] > r[0]:
        return np.zeros_like(p)
    lo, hi = r
    return np.clip((p - lo) / (hi - lo), 0.0, 1.0)


def fused_terms(run, preds: dict[str, np.ndarray], weights: dict | None = None):
    """(score, {task: a_t * s_t}, {task: a_t}) from per-task predictions (`score_items`).

    The fused score ``score = sum_t a_t * s_t`` (summed in task order)."""
    a = fusion_weights(run, weights)
    terms, score = {}, None
    for t in fusable_tasks(run):
        term = a[t.name] * task_term(run, t, preds[t.name])
        terms[t.name] = term
        score = term if score is None else score + term
    return score, terms, a


def ranked_by(run, weights: dict | None = None) -> str:
    """What the list ranks by, in words: "Ranked by p(interact) (weight 0.33), p(interact ∧ like) =
    p(interact) · p(like | interact) (weight 0.33), fused with the predicted rating (weight 0.33,
    scaled to 0–1 by its training range)." -- chained binary tasks in the entire space."""
    from mtlrec.chain import ranked_quantity
    a = fusion_weights(run, weights)
    tasks = fusable_tasks(run)
    probs = [f"{ranked_quantity(t, run.tasks)} (weight {a[t.name]:.2f})" for t in tasks
             if t.type == "binary" and a[t.name] > 0]
    values = [f"{ranked_quantity(t, run.tasks)} (weight {a[t.name]:.2f}, scaled to 0–1 by its training range)"
              for t in tasks if t.type == "regression" and a[t.name] > 0]
    if probs and values:
        return f"Ranked by {', '.join(probs)}, fused with {', '.join(values)}."
    return f"Ranked by {', '.join(probs or values)}."


def fuse(run, preds: dict[str, np.ndarray], weights: dict | None = None) -> np.ndarray:
    """The fused score of every scored item (see `fused_terms`)."""
    return fused_terms(run, preds, weights)[0]


def user_index(run, user_id) -> int:
    """The index of ``user_id`` in the run's data; a DataError naming a few user ids when it is not there."""
    ds = run.dataset
    if not ds.has_users:
        raise DataError("this run's data has no user ids, so there is nobody to recommend to")
    try:
        return ds.user_index(user_id)
    except KeyError:
        examples = ", ".join(map(str, ds.user_ids[:5]))
        raise DataError(f"user '{user_id}' is not in this run's data",
                        fix=f"use a user id from the training data, e.g. {examples}") from None


def score_items(run, user_index: int, item_indices=None, fast: bool = True,
                history: dict | None = None, tasks=None) -> dict[str, np.ndarray]:
    """Per-task predictions for one user against all items (or ``item_indices``), one pass.

    Binary/multilabel: probabilities -- a chained binary task's in the entire space, e.g.
    p(interact ∧ like) = p(interact) · p(like | interact) (`mtlrec.chain.scored`); regression:
    predicted values (a chained one's stays conditional: the rating if the user rates). ``fast`` (default) uses the
    item-side cache of the model's input layers (`item_split`) when the model supports it;
    ``fast=False`` always runs the full forward over `DeviceData.candidates` (the same numbers
    up to float rounding, ~1e-6). ``history``: the behaviour history features to use instead of
    the user's own (``{"history": [1, N], "history:value": [1, N]}``, `mtlrec.serve.history`: a
    hypothetical edit, a per-request input -- nothing cached or stored changes). ``tasks``: only
    these task names (None: every task); the fast path then runs only the part of the network they
    need (``model.forward_from_first(tasks=)``: e.g. no multilabel tower), the same numbers."""
    import torch

    from mtlrec.chain import scored, with_ancestors
    data = run.device_data()
    model = run.model
    names = [t.name for t in run.tasks] if tasks is None else [n for n in tasks]
    if any(m.training for m in model.modules()):     # model.eval() itself walks and sets every module
        model.eval()
    with torch.inference_mode():
        out = _fast_forward(run, data, model, int(user_index), item_indices, history,
                            None if tasks is None else with_ancestors(names, run.tasks)) if fast else None
        if out is None:
            feats = _with_history(data.candidates(int(user_index), item_indices), history)
            out = model(feats)
        return {n: p.float().cpu().numpy() for n, p in scored(run.tasks, out, names).items()}


# ---- the fast path (the item-side cache: mtlrec.serve.catalogue) --------------------------------
# On CPU the catalogue runs through the network in blocks of this many items: a block's
# intermediates stay in the CPU cache and reuse freed memory (no page faults), which makes the
# memory-bound layers (ReLU, gates, expert mixing) several times faster (measured 2048: PLE ~2x,
# MMoE/shared-bottom ~2.5x against one 10,000-row pass; smaller blocks pay per-op overhead).
CPU_CHUNK_ROWS = 2048


def item_split(run, data=None, user_index: int = 0):
    """The cached `InputSplit` of ``run.model`` over ``run``'s own catalogue (item columns
    precomputed for every item; `mtlrec.serve.catalogue.item_split`), rebuilt when the parameters or the
    item tables change; None when the model does not split or the data has no item fields."""
    from mtlrec.serve.catalogue import item_split as model_item_split
    return model_item_split(run.model, run.device_data() if data is None else data)


def _with_history(feats: dict, history: dict | None) -> dict:
    """``feats`` with the history features replaced by ``history`` (one row, repeated over the rows)."""
    if history:
        n = len(next(iter(feats.values())))
        feats = dict(feats)
        for k, v in history.items():
            feats[k] = v.reshape(1, -1).to(next(iter(feats.values())).device).expand(n, -1)
    return feats


def _fast_forward(run, data, model, user_index: int, item_indices, history: dict | None = None, tasks=None):
    """{task: logits} through the item-side cache, or None when it does not apply (then the
    caller runs the full forward). Only for the run's own item features, in eval mode."""
    import torch
    if model.training:
        return None
    split = item_split(run, data)
    if split is None:
        return None
    rows = None
    if item_indices is not None:
        rows = torch.as_tensor(item_indices, dtype=torch.long, device=split.pre_fixed.device)
        if rows.dim() != 1 or (len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= split.n_rows)):
            return None                     # let the full path raise its own error / handle it
    user = _with_history(data.candidates(user_index, [0]), history)
    x_row = model.embed(user)                   # the user's and context columns
    # several threads: larger blocks (fewer parallel regions, each thread a block's worth of rows)
    chunk = CPU_CHUNK_ROWS * torch.get_num_threads() if split.pre_fixed.device.type == "cpu" else None
    return split.forward(x_row, rows, chunk=chunk, user=user, tasks=tasks)


def item_index(run, item_id) -> int:
    """The index of ``item_id`` in the run's data; a DataError naming a few item ids when it is not there."""
    ds = run.dataset
    if not ds.has_items:
        raise DataError("this run's data has no item ids, so there is nothing to recommend")
    try:
        return ds.item_index(item_id)
    except KeyError:
        examples = ", ".join(map(str, ds.item_ids[:5]))
        raise DataError(f"item '{item_id}' is not in this run's data",
                        fix=f"use an item id from the training data, e.g. {examples}") from None


def class_names(run, task) -> list[str]:
    """The class names of a multilabel or distribution task, one per output (the label's classes, else the output's number)."""
    ds = run.dataset
    names = ds.label(task.label).classes if task.label in [lab.name for lab in ds.labels] else []
    return [str(c) for c in names] + [str(c) for c in range(len(names), task.n_outputs)]


def task_values(run, preds: dict, i: int, top_classes: int | None = 3) -> dict:
    """{task: probability | predicted value | {class: probability or share} (the most likely first)}."""
    tasks = {}
    for t in run.tasks:
        p = preds[t.name][i]
        if t.type in ("multilabel", "distribution"):       # a distribution: its shares
            names = class_names(run, t)
            order = np.argsort(-p, kind="stable")
            if top_classes is not None:
                order = order[:top_classes]
            tasks[t.name] = {names[c]: float(p[c]) for c in order}
        else:
            tasks[t.name] = float(p)
    return tasks


def pair_score(run, user_id, item_id, weights: dict | None = None) -> dict:
    """The fused score of one (user, item) pair -- the very number `recommend` ranks by and
    shows, from the same single pass over the user's catalogue, seen items included.

    ``{"user", "item", "score", "weights": {task: a_t}, "by_task": {task: a_t * s_t},
    "terms": {task: s_t}, "tasks": {task: probability | value | {class: probability} (all
    classes, most likely first)}}``."""
    u = user_index(run, user_id)
    i = item_index(run, item_id)
    preds = score_items(run, u)
    score, terms, a = fused_terms(run, preds, weights)
    return {"user": str(user_id), "item": str(item_id), "score": float(score[i]), "weights": a,
            "by_task": {n: float(v[i]) for n, v in terms.items()},
            "terms": {n: float(task_term(run, run.task(n), preds[n][i])) for n in terms},
            "tasks": task_values(run, preds, i, top_classes=None)}


TITLE_NAMES = ("title", "name", "movie_title", "item_name")
ID_NAMES = ("item_id", "item", "movieid", "movie_id", "id")


def item_columns(ds) -> tuple[str | None, list[str]]:
    """(title column, the other columns to show) of ``ds.item_info``.

    Shown: the title (a column named like "title"/"name", else the first text-role column)
    and the columns that have a role in the run's data spec (text first, then features and
    labels). Columns whose role is "ignore" (e.g. MovieLens 100K's IMDb URL) are never shown;
    without a recorded spec only the title is."""
    info = getattr(ds, "item_info", None)
    if info is None:
        return None, []
    spec = (getattr(ds, "meta", None) or {}).get("spec") or {}
    item_id = spec.get("item_id")
    cols = [str(c) for c in info.columns if str(c) != item_id and str(c).lower() not in ID_NAMES]
    text = [c for c in cols if c in (spec.get("text") or {})]
    roled = set(text) | set(spec.get("categorical") or {}) | set(spec.get("numeric") or {}) \
        | set(spec.get("labels") or {})
    title = next((c for c in cols if c.lower() in TITLE_NAMES), None) or (text[0] if text else None)
    rest = text + [c for c in cols if c in roled and c not in text]
    return title, [c for c in rest if c != title]


def item_support(run) -> np.ndarray:
    """Per item index, its *support*: the number of real (not sampled) training rows of the item
    (`mtlrec.metrics.item_counts` of the training split). Computed once per run and cached on it:
    a score of an item with little support rests on little evidence."""
    cache = getattr(run, "_cache", None)
    if isinstance(cache, dict) and "item_support" in cache:
        return cache["item_support"]
    from mtlrec.metrics import item_counts
    support = item_counts(run.dataset, "train")
    if isinstance(cache, dict):
        cache["item_support"] = support
    return support


def _request(run, user_id, k: int) -> int:
    """The user index of a top-``k`` request (DataError for k < 1, a run without items, an unknown user)."""
    if k < 1:
        raise DataError(f"k must be at least 1, not {k}")
    if not run.dataset.has_items:
        raise DataError("this run's data has no item ids, so there is nothing to recommend")
    return user_index(run, user_id)


def recommend(run, user_id, k: int = 10, weights: dict | None = None, exclude_seen: bool = True,
              item_info: bool = True, top_classes: int = 3, fast: bool = True) -> list[dict]:
    """Top ``k`` items for ``user_id``: ``[{item, score, support, tasks: {task: value}, <item columns>}]``.

    ``score`` is the fused score (`fused_terms`); ``support`` the item's number of training
    interactions (`item_support`); ``tasks`` holds the probability (binary),
    the predicted value (regression) or the ``top_classes`` most likely classes with their
    probabilities (multilabel); the item columns are the title and the columns with a role
    (`item_columns`), never ignored ones. Equal scores: the lower item index first (`top_rows`).

    Two stages (``fast``): the tasks of the fused score (and their chains) over the whole catalogue
    through the item-side cache, then the other tasks (multilabel, distribution) for the top ``k``
    items only -- the same list and numbers as scoring every task over the catalogue.
    ``fast=False`` scores every task through the full forward (`score_items`)."""
    u = _request(run, user_id, k)
    if not fast:
        return recommend_from_scores(run, user_id, score_items(run, u, fast=False), k, weights, exclude_seen,
                                     item_info=item_info, top_classes=top_classes)
    fused = [t.name for t in fusable_tasks(run)]
    preds = score_items(run, u, tasks=fused)
    score = fuse(run, preds, weights)
    top = top_rows(score, k, run.dataset.interacted_items(u) if exclude_seen else None)
    rows = {n: p[top] for n, p in preds.items()}
    rest = [t.name for t in run.tasks if t.name not in rows]
    if rest and len(top):
        rows.update(score_items(run, u, item_indices=top, tasks=rest))
    return _records(run, top, score[top], rows, item_info, top_classes)


def top_rows(score: np.ndarray, k: int, seen=None) -> np.ndarray:
    """Item indices of the ``k`` highest finite scores, best first, leaving out ``seen``; equal scores
    in item-index order (lower first), so a list does not depend on how the top was searched."""
    if seen is not None and len(seen):
        score = score.copy()
        score[seen] = -np.inf
    kk = min(int(k), int(np.isfinite(score).sum()))
    if kk <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-score, kk - 1)[:kk]
    kth = score[part].min()
    above = np.flatnonzero(score > kth)
    top = np.concatenate([above, np.flatnonzero(score == kth)[:kk - len(above)]])
    return top[np.lexsort((top, -score[top]))]


def recommend_from_scores(run, user_id, preds: dict, k: int = 10, weights: dict | None = None,
                          exclude_seen: bool = True, *, item_info: bool = True, top_classes: int = 3) -> list[dict]:
    """`recommend` from per-task predictions already computed for ``user_id`` (``score_items(run,
    user_index)`` over the whole catalogue): fuse with ``weights``, leave out the items the user has
    seen, take the top ``k``. Pure (no model call): a new set of weights re-ranks the same scores."""
    u = _request(run, user_id, k)
    score = fuse(run, preds, weights)
    top = top_rows(score, k, run.dataset.interacted_items(u) if exclude_seen else None)
    return _records(run, top, score[top], {n: p[top] for n, p in preds.items()}, item_info, top_classes)


def _records(run, top: np.ndarray, scores: np.ndarray, rows: dict, item_info: bool, top_classes) -> list[dict]:
    """The result dicts of the items ``top`` with their fused ``scores`` and per-task predictions
    ``rows`` ({task: values of the ``top`` items, in that order})."""
    ds = run.dataset
    info_rows = None
    if item_info and ds.item_info is not None and len(ds.item_info) == len(ds.item_ids):
        cols = _item_info_arrays(run, ds)
        info_rows = [{c: plain(a[i]) for c, a in cols.items()} for i in top]
    support = item_support(run)
    out = []
    for j, i in enumerate(top):
        rec = {"item": str(ds.item_ids[i]), "score": float(scores[j]), "support": int(support[i]),
               "tasks": task_values(run, rows, j, top_classes)}
        if info_rows is not None:
            for c, v in info_rows[j].items():
                if c not in rec:
                    rec[c] = v
        out.append(rec)
    return out


def _item_info_arrays(run, ds) -> dict:
    """{shown item column (`item_columns`): its values as an object array}, cached on the run
    for this ``ds.item_info`` (indexing k rows of a column is ~100x cheaper than a DataFrame
    ``iloc`` per request)."""
    cache = getattr(run, "_cache", None)
    hit = cache.get("item_info_arrays") if isinstance(cache, dict) else None
    title, rest = item_columns(ds)
    cols = ([title] if title else []) + rest
    if hit is not None and hit[0] is ds.item_info and hit[1] == cols:
        return hit[2]
    arrays = {c: ds.item_info[c].to_numpy(dtype=object) for c in cols}
    if isinstance(cache, dict):
        cache["item_info_arrays"] = (ds.item_info, cols, arrays)
    return arrays


def plain(v):
    """``v`` as a plain Python value for a result dict: numpy scalars unwrapped, NaN and pd.NA as None."""
    if isinstance(v, np.generic):
        return v.item()
    try:
        import pandas as pd
        if v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            return None
    except ImportError:  # pragma: no cover
        pass
    return v
