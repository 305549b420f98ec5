"""Explanations of a trained run: one recommendation (user, item), and global views.

``explain_recommendation(run, user, item)`` returns a JSON-ready dict::

    {"user", "item", "space": "logit", "method", "background",
     "tasks": {task: {"type", "output_kind", "base_value", "output", "prediction",
                      "contributions": {group: value}}},
     "fused": {"weights", "score", "base_value", "by_task", "contributions"},   # binary/regression tasks
     "sentence", "elapsed_ms"}

Per task, ``base_value + sum(contributions) == output`` (the task's logit; for a
multilabel task the mean of its class logits). The fused score is the one
`mtlrec.recommend` ranks by (``sum_t a_t * s_t``, ``s_t`` the probability or the
range-normalised rating); its decomposition maps each task's logit contributions to
score units with the rescale rule ``(s_t(output) - s_t(base)) / (output - base)``, so
``fused.base_value + sum(fused.contributions) == fused.score`` exactly as well.
"""
from __future__ import annotations

import math
import time

import numpy as np

from mtlrec.errors import DataError

DEFAULT_BACKGROUND = 100
DEFAULT_GLOBAL_ROWS = 500


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------
def _split_with_rows(ds, prefer=("train", "valid", "test")) -> str:
    for s in prefer:
        if s in ds.rows and ds.n_rows(s) > 0:
            return s
    raise DataError("the run's dataset has no rows to draw a background sample from",
                    fix="retrain the run on data with a training split")


def sample_inputs(run, n: int, split: str | None = None, seed: int = 0, prefer=("train", "valid", "test")):
    """(features, X) of ``n`` random rows of ``split`` (default: the first non-empty of ``prefer``)."""
    import torch
    ds = run.dataset
    split = split or _split_with_rows(ds, prefer)
    total = ds.n_rows(split)
    n = int(n)
    if n < 1:
        raise DataError(f"the sample size must be at least 1, not {n}", fix="use e.g. --background 100")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(total, size=min(n, total), replace=False))
    data = run.dataset.to_device("cpu") if _model_device(run) != "cpu" else run.device_data()
    feats, _ = data.batch(split, torch.as_tensor(idx, dtype=torch.long))
    with torch.no_grad():
        x = _cpu_model(run).embed(feats)
    return feats, x


def _model_device(run) -> str:
    try:
        return str(next(run.model.parameters()).device)
    except StopIteration:  # pragma: no cover
        return "cpu"


def _cpu_model(run):
    """The run's model for read-only embedding on CPU (a copy when it lives elsewhere)."""
    if _model_device(run) == "cpu":
        return run.model
    import copy
    return copy.deepcopy(run.model).cpu().eval()


def make_explainer(run, background: int = DEFAULT_BACKGROUND, method: str = "auto", seed: int = 0):
    """A `ModelExplainer` for ``run`` with ``background`` random training rows."""
    from mtlrec.explain.core import ModelExplainer
    if int(background) < 1:
        raise DataError(f"the background sample needs at least 1 row, not {background}",
                        fix="use e.g. --background 100")
    _, bg = sample_inputs(run, background, seed=seed)
    return ModelExplainer(run.model, bg, method=method, tasks=[t.name for t in run.tasks], seed=seed)


def _lookup(ds, kind: str, raw) -> int:
    ids = ds.user_ids if kind == "user" else ds.item_ids
    if len(ids) == 0:
        raise DataError(f"this run's data has no {kind} ids")
    try:
        return ds.user_index(raw) if kind == "user" else ds.item_index(raw)
    except KeyError:
        examples = ", ".join(map(str, ids[:5]))
        raise DataError(f"{kind} '{raw}' is not in this run's data",
                        fix=f"use a {kind} id from the run's data, e.g. {examples}") from None


def row_inputs(run, user, item):
    """(features, X) of one (user, item) pair as `mtlrec.recommend` scores it."""
    import torch
    ds = run.dataset
    u, i = _lookup(ds, "user", user), _lookup(ds, "item", item)
    data = run.device_data() if _model_device(run) == "cpu" else ds.to_device("cpu")
    feats = data.candidates(u, [i])
    with torch.no_grad():
        x = _cpu_model(run).embed(feats)
    return feats, x


# ---------------------------------------------------------------------------------------------
# fusion (same as mtlrec.recommend.fuse)
# ---------------------------------------------------------------------------------------------
def _score_fn(run, task):
    """Logit -> the task's term in the fused score (probability, or range-normalised value)."""
    if task.type == "binary":
        return lambda v: 1.0 / (1.0 + math.exp(-v)) if v > -700 else 0.0
    ranges = (run.info or {}).get("label_ranges", {})
    lo, hi = ranges.get(task.label, [0.0, 1.0])
    lo, hi = float(lo), float(hi)
    if hi <= lo:
        return lambda v: 0.0
    return lambda v: min(max((v - lo) / (hi - lo), 0.0), 1.0)


def fused_decomposition(run, tasks_out: dict, weights: dict | None = None) -> dict | None:
    """The fused score and its additive decomposition into feature groups and tasks."""
    from mtlrec.recommend import fusable_tasks, fusion_weights
    fusable = fusable_tasks(run)
    if not fusable:
        return None
    a = fusion_weights(run, weights)
    groups = list(next(iter(tasks_out.values()))["contributions"])
    contrib = {g: 0.0 for g in groups}
    by_task, base_total, score = {}, 0.0, 0.0
    for t in fusable:
        r = tasks_out[t.name]
        g = _score_fn(run, t)
        s_x, s_b = g(r["output"]), g(r["base_value"])
        delta = r["output"] - r["base_value"]
        if abs(delta) > 1e-9:
            ratio = (s_x - s_b) / delta
        else:                           # numerical derivative at the base value
            ratio = (g(r["base_value"] + 1e-4) - g(r["base_value"] - 1e-4)) / 2e-4
        for grp, v in r["contributions"].items():
            contrib[grp] += a[t.name] * ratio * v
        by_task[t.name] = a[t.name] * s_x
        base_total += a[t.name] * s_b
        score += a[t.name] * s_x
    # exact additivity: put float dust (|.| < 1e-12) into nothing, report as computed
    return {"weights": a, "score": score, "base_value": base_total, "by_task": by_task,
            "contributions": contrib,
            "note": "fused score = sum_t a_t * s_t; s_t = probability (binary) or rating scaled to [0, 1] "
                    "by the training range; group contributions use the rescale rule per task"}


# ---------------------------------------------------------------------------------------------
# the local view
# ---------------------------------------------------------------------------------------------
def explain_recommendation(run, user, item, *, background: int = DEFAULT_BACKGROUND, weights: dict | None = None,
                           method: str = "auto", explainer=None, seed: int = 0) -> dict:
    """Why ``user`` got ``item``: per-task waterfalls, fused score decomposition, a sentence."""
    import torch
    t0 = time.perf_counter()
    ex = explainer or make_explainer(run, background, method, seed)
    _, x = row_inputs(run, user, item)
    att = ex.explain(x, method=None if method == "auto" else method)
    tasks_out = {}
    for j, name in enumerate(att.tasks):
        t = run.task(name)
        out = float(att.outputs[0, j])
        pred = t.predict(torch.tensor([out])).item() if t.type != "multilabel" else None
        tasks_out[name] = {
            "type": t.type,
            "output_kind": {"binary": "logit (log-odds)", "regression": "predicted value",
                            "multilabel": f"mean logit over {t.n_outputs} classes"}[t.type],
            "base_value": float(att.base_values[j]),
            "output": out,
            "prediction": None if pred is None else float(pred),
            "contributions": {g: float(att.values[0, i, j]) for i, g in enumerate(att.groups)},
        }
    result = {"user": str(user), "item": str(item), "space": "logit", "method": att.method,
              "background": int(len(ex.background)), "tasks": tasks_out,
              "fused": fused_decomposition(run, tasks_out, weights)}
    result["sentence"] = sentence(result)
    result["elapsed_ms"] = (time.perf_counter() - t0) * 1000.0
    return result


def _join(words: list[str]) -> str:
    words = [w for w in words if w]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def sentence(result: dict, top: int = 2) -> str:
    """One plain sentence: what pushed the item up (or down) most, and what each task relies on.

    E.g. "Recommended mainly because of item id and age, held back by occupation; the click-
    and like-tasks rely most on item id, the rating-task on user id." """
    fused = result.get("fused")
    if fused:
        contrib, total = fused["contributions"], fused["score"] - fused["base_value"]
    else:
        first = next(iter(result["tasks"].values()))
        contrib, total = first["contributions"], first["output"] - first["base_value"]
    pos = [g for v, g in sorted(((v, g) for g, v in contrib.items() if v > 0), reverse=True)[:top]]
    neg = [g for v, g in sorted((v, g) for g, v in contrib.items() if v < 0)[:top]]
    if total >= 0 and pos:
        head = f"Recommended mainly because of {_join(pos)}"
        big_neg = [g for g in neg[:1] if abs(contrib[g]) > 0.25 * contrib[pos[0]]]
        if big_neg:
            head += f", held back by {big_neg[0]}"
    elif neg:
        head = f"Scores below an average user-item pair, mostly because of {_join(neg)}"
        if pos:
            head += f"; {_join(pos[:1])} speaks for it"
    else:
        head = "Scores like an average user-item pair"
    # what each task relies on most (|contribution|), tasks with the same answer together
    by_group: dict[str, list[str]] = {}
    for name, r in result["tasks"].items():
        c = r["contributions"]
        if c:
            by_group.setdefault(max(c, key=lambda g: abs(c[g])), []).append(name)
    parts = []
    for i, (g, names) in enumerate(by_group.items()):
        tasks = _join([f"{n}-" for n in names[:-1]] + [f"{names[-1]}-task" + ("s" if len(names) > 1 else "")])
        verb = ("rely" if len(names) > 1 else "relies") + " most on " if i == 0 else "on "
        parts.append(f"the {tasks} {verb}{g}")
    return head + ("; " + ", ".join(parts) if parts else "") + "."


# ---------------------------------------------------------------------------------------------
# global views
# ---------------------------------------------------------------------------------------------
def global_summary(run, *, n_rows: int = DEFAULT_GLOBAL_ROWS, background: int = DEFAULT_BACKGROUND,
                   explainer=None, progress=None, seed: int = 0, **kwargs) -> dict:
    """Per-task importance of the feature groups (mean |SHAP| over ``n_rows`` rows of the
    test split), groups x shared units heatmap, tower reliance on H / gate weights."""
    t0 = time.perf_counter()
    if progress:
        progress(0.0, "sampling rows")
    ex = explainer or make_explainer(run, background, seed=seed)
    feats, x = sample_inputs(run, n_rows, seed=seed + 1, prefer=("test", "valid", "train"))
    out = ex.global_summary(x, features=feats, progress=progress, **kwargs)
    out["elapsed_ms"] = (time.perf_counter() - t0) * 1000.0
    return out
