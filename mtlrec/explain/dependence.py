"""SHAP dependence plots: a feature group's value against its SHAP contribution over a sample
of pairs, coloured by a second group.

``dependence_data(run, group, color_by=None, task=None, n_rows=500)`` returns arrays (one
entry per sampled test row) and ``dependence_figure(data)`` draws them (plotly).

Values are shown on the original scale: a numeric feature is un-standardised with the
training mean/std the preparation recorded (``meta["report"]["stats"]``; a log1p transform is
undone too, a clipped value shows its bound), a categorical
feature shows its category names (the raw column of the user/item table when the dataset
keeps it, else the preparation's most frequent categories). A user or item *id* has no
order, so its value is the id's *support*: the number of training rows of that user or item.
A group of several fields or a dense vector (item text) has no single value to plot: a
`DataError` says so.
"""
from __future__ import annotations

import time

import numpy as np

from mtlrec.errors import DataError
from mtlrec.prep.transforms import undo

DEFAULT_ROWS = 500
DEFAULT_BACKGROUND = 32
EVAL_BUDGET = 500 * 64 * 8     # model rows for exact SHAP of all rows: 2^G coalitions x background x rows
# Gated models (MMoE, PLE) are also held to a time budget: the model's cost per row is measured
# on the rows at hand (one probe call) and the background cut so that rows x coalitions x
# background rows take about TIME_BUDGET_S, keeping at least MIN_BACKGROUND rows. Measured
# (bench/explain.py, sample data, 500 rows, 6 groups, 1 thread, 2-core box at load ~10): PLE
# took 12.8 s with the 8 rows of EVAL_BUDGET (its forward pass is ~4x MMoE's per row). Fewer
# background rows keep the Shapley values exact for the game they define -- the group's effect
# against the average over fewer reference rows -- so the scatter keeps its shape but is
# noisier around zero; the page shows how many rows were used.
TIME_BUDGET_S = 2.0
MIN_BACKGROUND = 2
# Below this many background rows the result carries a ``warning`` (and the page shows it): the base
# the contributions are measured against is then an average over too few reference rows to be steady.
# The same as the smallest background the Explain page offers.
ADVISED_BACKGROUND = 10


VECTOR_KINDS = ("dense", "multihot", "history")   # a text embedding, genres, a history: no single value


def plottable_groups(run) -> dict[str, str]:
    """Group -> how its value is shown ("numeric", "categorical", "support"), for the groups a
    dependence plot can draw (one numeric or categorical field)."""
    out = {}
    for g, fields in _group_fields(run).items():
        if len(fields) != 1 or fields[0].kind in VECTOR_KINDS:
            continue
        f = fields[0]
        out[g] = "support" if _is_id(run, f) else f.kind
    return out


def _group_fields(run) -> dict:
    groups: dict = {}
    for f in run.model.input.fields:
        groups.setdefault(f.group or f.name, []).append(f)
    return groups


def _is_id(run, f) -> bool:
    return f.kind == "categorical" and f.name in ("user_id", "item_id")


def _sample(run, n_rows: int, seed: int):
    """(split, row indices, features, X) of ``n_rows`` random rows of test (else valid, train)."""
    import torch

    from mtlrec.explain.inputs import cpu_model, model_device, split_with_rows
    ds = run.dataset
    split = split_with_rows(ds, ("test", "valid", "train"))
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(ds.n_rows(split), size=min(int(n_rows), ds.n_rows(split)), replace=False))
    data = run.dataset.to_device("cpu") if model_device(run) != "cpu" else run.device_data()
    feats, _ = data.batch(split, torch.as_tensor(idx, dtype=torch.long))
    with torch.no_grad():
        x = cpu_model(run).embed(feats)
    return split, idx, feats, x


def _values(run, group: str, feats, split: str, idx) -> tuple[np.ndarray, str, str]:
    """(values, kind, axis label) of ``group`` for the sampled rows, on the original scale."""
    ds = run.dataset
    fields = _group_fields(run).get(group)
    if not fields:
        raise DataError(f"this run has no feature group '{group}'",
                        fix="pick one of: " + ", ".join(_group_fields(run)))
    if len(fields) != 1 or fields[0].kind in VECTOR_KINDS:
        raise DataError(f"the group '{group}' has no single value to plot (a vector or several fields)",
                        fix="pick one of: " + ", ".join(plottable_groups(run)))
    f = fields[0]
    raw = feats[f.name].detach().cpu().numpy().reshape(len(idx), -1)[:, 0]
    if _is_id(run, f):
        owner = "user_index" if f.name == "user_id" else "item_index"
        n_tab = len(ds.user_ids) if f.name == "user_id" else len(ds.item_ids)
        train = ds.rows.get("train", {}).get(owner)
        support = np.bincount(train, minlength=n_tab) if train is not None and len(train) else np.zeros(n_tab, int)
        who = np.asarray(ds.rows[split][owner])[idx]
        return support[who].astype(float), "support", f"{group}: training rows of the {f.owner}"
    stats = (ds.meta.get("report") or {}).get("stats", {}).get(f.name, {})
    if f.kind == "numeric":
        if "mean" in stats and "std" in stats:
            return undo(raw.astype(float) * float(stats["std"]) + float(stats["mean"]), stats.get("transform")), \
                "numeric", group
        return raw.astype(float), "numeric", f"{group} (as prepared)"
    # categorical: the raw column of the user/item table where kept, else the top categories
    info = ds.user_info if f.owner == "user" else ds.item_info if f.owner == "item" else None
    if info is not None and f.name in getattr(info, "columns", []):
        owner = "user_index" if f.owner == "user" else "item_index"
        who = np.asarray(ds.rows[split][owner])[idx]
        import pandas as pd
        col = info[f.name].astype(object).to_numpy()
        return np.array([("(missing)" if pd.isna(v) else str(v)) for v in col[who]], dtype=object), \
            "categorical", group
    top = list(stats.get("top") or [])
    names = np.array([(top[c - 1] if 0 < c <= len(top) else ("(unseen)" if c == 0 else f"code {c}"))
                      for c in raw.astype(np.int64)], dtype=object)
    return names, "categorical", group


def dependence_data(run, group: str, color_by: str | None = None, task: str | None = None, *,
                    n_rows: int = DEFAULT_ROWS, explainer=None, background: int = DEFAULT_BACKGROUND,
                    seed: int = 0, cls=None, time_budget_s: float | None = None) -> dict:
    """``group``'s value against its SHAP contribution to ``task`` (default: the first task)
    over ``n_rows`` random test rows, with ``color_by``'s value per row. A multi-label task is
    read as the logit of ONE class, ``cls`` (name or index; default: `default_class`, the
    class most often positive in training), never the mean over its classes.

    Returns ``{"group", "color_by", "task", "unit", "values", "kind", "x_label", "shap",
    "color", "color_kind", "color_label", "split", "rows", "n_rows", "method", "background", "warning",
    "elapsed_ms", "class", "class_index"}`` (the class: None for tasks that are not multi-label; ``warning``:
    None, or why the plot ran on fewer than ``ADVISED_BACKGROUND`` background rows, `background_warning`)
    (``rows``: the rows' positions in ``split``). ``explainer``: a `ModelExplainer` whose
    background is cut to ``background`` rows (SHAP of many rows needs fewer); for models
    explained by exact group Shapley values (MMoE, PLE: 2^G model rows per row and background
    row) further, to keep to ``EVAL_BUDGET`` model rows and about ``time_budget_s`` seconds (default
    ``TIME_BUDGET_S``; at least ``MIN_BACKGROUND`` background rows)."""
    from mtlrec.explain.api import make_explainer
    from mtlrec.explain.core import ModelExplainer
    t0 = time.perf_counter()
    names = [t.name for t in run.tasks]
    task = task or names[0]
    if task not in names:
        raise DataError(f"this run has no task '{task}'", fix="pick one of: " + ", ".join(names))
    if int(n_rows) < 1:
        raise DataError(f"the dependence plot needs at least 1 row, not {n_rows}", fix="use e.g. 500")
    if int(background) < 1:
        raise DataError(f"the background sample needs at least 1 row, not {background}", fix="use e.g. 32")
    if time_budget_s is not None and not float(time_budget_s) > 0:
        raise DataError(f"the time budget must be a positive number of seconds, not {time_budget_s}",
                        fix=f"use e.g. {TIME_BUDGET_S:g}")
    spec = run.task(task)
    k, cname = None, None
    if spec.type in ("multilabel", "distribution"):
        from mtlrec.explain.inputs import class_index
        from mtlrec.serve.recommend import class_names
        k = class_index(run, spec, default_class(run, task) if cls is None or cls == "" else cls, {})
        cname = class_names(run, spec)[k]
    elif cls is not None and cls != "":
        raise DataError(f"task '{task}' is {spec.type}, it has no classes to pick from",
                        fix="give a class only for a multi-label or distribution task")
    classes = {task: k} if k is not None else None
    split, idx, feats, x = _sample(run, n_rows, seed + 1)
    values, kind, x_label = _values(run, group, feats, split, idx)
    color = color_kind = color_label = None
    if color_by and color_by != group:
        color, color_kind, color_label = _values(run, color_by, feats, split, idx)
    if explainer is None:
        explainer = make_explainer(run, background, seed=seed)
    bg = explainer.background[: max(1, int(background))]
    why = None if len(bg) >= int(background) else f"the SHAP background sample has only {len(bg)} rows"
    method = explainer.method_for("input")
    with explainer._lock:
        model = explainer._model()
        if method == "deep":
            ex = ModelExplainer(model, bg, method="deep", tasks=list(explainer.tasks), seed=seed)
            att = ex.explain(x, classes=classes)
            phi = att.values[:, att.groups.index(group), att.tasks.index(task)]
        else:        # gated models: 2^G coalitions per row and background row -- fewer background rows
            budget = TIME_BUDGET_S if time_budget_s is None else float(time_budget_s)
            bg, cut = _gated_background(model, explainer, bg, x, task, classes, budget)
            why = cut or why
            phi, method = _group_shapley_one(model, explainer, x, bg, group, task, classes=classes)
    scale = float(spec.label_scale) if spec.type == "regression" else 1.0
    phi = phi * scale
    unit = f"{spec.label} (label units)" if spec.type == "regression" else \
        (f"logit of class '{cname}'" if spec.type == "multilabel" else
         f"log share of class '{cname}'" if spec.type == "distribution" else "logit (log-odds)")
    return {"group": group, "class": cname, "class_index": k, "color_by": color_by if color is not None else None,
            "task": task, "unit": unit,
            "values": values, "kind": kind, "x_label": x_label, "shap": phi, "color": color,
            "color_kind": color_kind, "color_label": color_label, "split": split, "rows": idx,
            "n_rows": int(len(idx)), "method": method, "background": int(len(bg)),
            "warning": background_warning(len(bg), why, len(idx)),
            "elapsed_ms": (time.perf_counter() - t0) * 1000.0}


def _gated_background(model, explainer, bg, x, task: str, classes, time_budget_s: float):
    """(background rows, why they were cut or None): a gated model's background cut to
    ``EVAL_BUDGET`` model rows and about ``time_budget_s`` seconds, at least ``MIN_BACKGROUND``."""
    from mtlrec.explain.core import EXACT_MAX_GROUPS
    G = len(explainer.group_cols)
    n_coal = 2 ** G if G <= EXACT_MAX_GROUPS else 1 + explainer.N_PERMUTATIONS * G
    cap = EVAL_BUDGET // max(1, len(x) * n_coal)
    fit = int(float(time_budget_s) / max(1e-9, _row_seconds(model, task, x, classes=classes) * len(x) * n_coal))
    keep = max(MIN_BACKGROUND, min(len(bg), cap, fit))
    if keep >= len(bg):
        return bg, None
    why = (f"{len(x)} rows x {n_coal} feature-group coalitions of this model had to fit in about "
           f"{float(time_budget_s):g} s" if fit < cap else
           f"{len(x)} rows x {n_coal} feature-group coalitions had to keep to {EVAL_BUDGET:,} model evaluations")
    return bg[:keep], why


def background_warning(n_background: int, why: str | None, n_rows: int) -> str | None:
    """The warning of a plot drawn against fewer than ``ADVISED_BACKGROUND`` background rows (None: enough)."""
    if n_background >= ADVISED_BACKGROUND:
        return None
    return (f"Only {n_background} background row{'s' if n_background != 1 else ''} were used, fewer than the "
            f"{ADVISED_BACKGROUND} this plot needs for a steady base" + (f" ({why})" if why else "")
            + ": each value is the group's effect against the average over those few rows, so the dots keep "
            f"their shape but are noisier around zero. To steady it, plot fewer rows (now {n_rows}), allow a "
            "longer time budget or use a larger background sample.")


def default_class(run, task: str) -> int:
    """The class of a multi-label task a dependence plot shows by default: the one most often
    positive in the training rows (0 when the labels are not at hand)."""
    rows = run.dataset.rows.get("train") or {}
    y = rows.get(f"label:{run.task(task).label}")
    if y is None or np.ndim(y) != 2 or len(y) == 0:
        return 0
    return int(np.argmax(np.nanmean(np.asarray(y, dtype=np.float64), axis=0)))


def _row_seconds(model, task: str, x, n: int = 2048, classes: dict | None = None) -> float:
    """Seconds per row of the task's forward pass, measured on ``n`` rows built from ``x``."""
    import torch

    from mtlrec.explain.core import TaskLogits
    net = TaskLogits(model, [task], classes)
    rows = x[torch.arange(n) % len(x)]
    with torch.no_grad():
        net(rows[:64])                         # warm the allocator
        t0 = time.perf_counter()
        net(rows)
    return (time.perf_counter() - t0) / n


def _group_shapley_one(model, explainer, x, bg, group: str, task: str, max_rows: int = 16384,
                       classes: dict | None = None):
    """Exact Shapley values of one group for one task over many rows, the game of
    `exact_group_shapley` (background masker), batched over rows as well as coalitions
    (the per-row loop there costs one model call per row; gated models pay for each call).
    More than ``EXACT_MAX_GROUPS`` groups: the permutation estimator, as for local views."""
    import torch

    from mtlrec.explain.core import (EXACT_MAX_GROUPS, TaskLogits, permutation_matrix,
                                     shapley_matrix)
    G = len(explainer.group_cols)
    if G <= EXACT_MAX_GROUPS:
        masks, C = shapley_matrix(G)
        method = "exact"
    else:
        masks, C = permutation_matrix(G, explainer.N_PERMUTATIONS, explainer.seed)
        method = "permutation"
    gi = explainer.group_names.index(group)
    n, d = x.shape
    nb = bg.shape[0]
    colmask = np.zeros((len(masks), d), dtype=bool)
    for k, cols in enumerate(explainer.group_cols):
        colmask[:, cols] = masks[:, k:k + 1]
    cm = torch.as_tensor(colmask)[None, :, None, :]                        # [1, S, 1, d]
    coef = torch.as_tensor(C[gi], dtype=torch.float64)                     # [S]
    net = TaskLogits(model, [task], classes)
    per = max(1, max_rows // (len(masks) * nb))                            # rows per model call
    out = []
    with torch.no_grad():
        for s in range(0, n, per):
            xs = x[s:s + per]
            inp = torch.where(cm, xs[:, None, None, :], bg[None, None, :, :])  # [r, S, nb, d]
            v = net(inp.reshape(-1, d))[:, 0].double().reshape(len(xs), len(masks), nb).mean(2)
            out.append(v @ coef)
    return torch.cat(out).numpy(), method


def dependence_summary(data: dict, bins: int = 5) -> list[dict]:
    """The dependence plot in a few numbers: the mean SHAP value per category (categorical values) or
    per quantile bin of the value (numeric, support) -- ``[{"value" | "low"/"high", "n", "mean_shap",
    "min_shap", "max_shap"}]`` in the order of the x axis."""
    y = np.asarray(data["shap"], dtype=float)
    x = data["values"]
    if data["kind"] == "categorical":
        keys = sorted(set(x.tolist()), key=str)
        parts = [({"value": str(k)}, np.asarray(x == k)) for k in keys]
    else:
        v = np.asarray(x, dtype=float)
        edges = np.unique(np.quantile(v, np.linspace(0, 1, int(bins) + 1)))
        if len(edges) < 2:
            edges = np.array([v.min(), v.max()])
        parts = []
        for j in range(len(edges) - 1):
            lo, hi = edges[j], edges[j + 1]
            m = (v >= lo) & ((v <= hi) if j == len(edges) - 2 else (v < hi))
            parts.append(({"low": float(lo), "high": float(hi)}, m))
    return [{**key, "n": int(m.sum()), "mean_shap": float(y[m].mean()), "min_shap": float(y[m].min()),
             "max_shap": float(y[m].max())} for key, m in parts if m.any()]


def dependence_figure(data: dict):
    """Scatter of value vs SHAP contribution (categorical values: one column per category,
    jittered), coloured by the second group (plotly)."""
    import plotly.graph_objects as go
    x = data["values"]
    y = np.asarray(data["shap"], dtype=float)
    what = data["task"] + (f" (class '{data['class']}')" if data.get("class") is not None else "")
    layout = dict(title=f"{data['group']} → {what} ({data['n_rows']} pairs)",
                  xaxis_title=data["x_label"], yaxis_title=f"SHAP value of {data['group']} ({data['unit']})",
                  height=420, margin=dict(l=10, r=10, t=40, b=10))
    marker: dict = {"size": 6, "opacity": 0.7}
    c = data.get("color")
    fig = go.Figure()
    if data["kind"] == "categorical":
        cats = sorted(set(x.tolist()), key=str)
        pos = {k: i for i, k in enumerate(cats)}
        rng = np.random.default_rng(0)
        xs = np.array([pos[v] for v in x], dtype=float) + rng.uniform(-0.2, 0.2, len(x))
        layout["xaxis"] = dict(tickmode="array", tickvals=list(range(len(cats))), ticktext=[str(k) for k in cats])
    else:
        xs = np.asarray(x, dtype=float)
    text = None
    if c is not None and data["color_kind"] == "categorical":
        for k in sorted(set(c.tolist()), key=str):
            m = c == k
            fig.add_scatter(x=xs[m], y=y[m], mode="markers", name=f"{data['color_label']} = {k}", marker=marker)
    else:
        if c is not None:
            marker.update(color=np.asarray(c, dtype=float), colorscale="Viridis", showscale=True,
                          colorbar=dict(title=data["color_label"]))
            text = [f"{data['color_label']}: {v:g}" for v in np.asarray(c, dtype=float)]
        fig.add_scatter(x=xs, y=y, mode="markers", marker=marker, text=text, name=data["group"], showlegend=False)
    fig.add_hline(y=0, line_width=1, line_color="grey")
    fig.update_layout(**layout)
    return fig
