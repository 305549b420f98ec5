"""LIME beside SHAP for one recommendation (user, item), over the same feature groups.

The game both explanations read
-------------------------------
A *coalition* z in {0, 1}^G switches each feature group of the fused input X on (the
pair's own columns) or off. Off groups take the columns of the SHAP background rows and
the task's logit is averaged over them -- the very game `ModelExplainer` solves for the
Shapley values (``baseline="background"``, the default), so SHAP and LIME differ only in
how they summarise it. ``baseline="mean"`` replaces the background by its mean row (one
reference input, captum's usual ``baselines``). With G <= 10 groups there are at most 2^G
distinct coalitions: each distinct one is evaluated once, in one batch.

Why they can differ
-------------------
SHAP is an *additive attribution*: the Shapley values average each group's marginal effect
over all coalitions and add up to (output - base value). LIME fits a *local linear
surrogate* to randomly switched coalitions, weighted by their closeness to the full input:
its slopes are not bound to add up, interactions between groups (the softmax gates of
MMoE/PLE, the towers' non-linearities) are split differently, and it is a random estimate.
`agreement` compares the *ranking* of |importance| (Spearman), not the numbers.

Which implementation (measured, ``bench/explain.py --threads 1 --lime-compare``)
------------------------------------------------------------------------------
Both maintained implementations were run on the same game, 1000 samples, 1 torch thread, on
the shared 2-core box (busy, load average 2.7-4.7: noisy, compare ratios, not absolutes):

* `captum.attr.Lime` (captum 0.9.0; interpretable features = the group switches, baseline
  0 = "off", linear-regression surrogate, captum's exponential cosine kernel).
* `lime.lime_tabular.LimeTabularExplainer` (lime 0.2.0.1; each group a categorical 0/1
  feature, regression mode, its default Ridge surrogate and kernel).

Sample-data runs (6 groups, 4 tasks; one recommendation, every task; times include the SHAP
values compared with): shared-bottom lime 140 ms / captum 354 ms, MMoE 225 / 516 ms, PLE
384 / 741 ms; Spearman agreement with SHAP, median (min) over tasks: 1.0 (1.0) for both on
shared-bottom and MMoE, PLE lime 0.94 (0.66), captum 1.0 (0.83). Tiny test runs (4 groups,
18 pair x task cases): LIME alone 35-130 ms vs 310-890 ms, agreement 1.0 in 17 cases (0.8
once) vs 1.0 in all.

Chosen: the ``lime`` package (``method="lime"``, the default): 2-3x faster per explanation
(captum adds a Python loop per sample batch and its torch-to-sklearn wrapper), well inside
the 1 s budget on every architecture, with the same median agreement; it is the reference
LIME of the method's authors. captum agreed a little better on one PLE task; it stays
available as ``method="captum"`` (both pinned in requirements.txt; both pull in matplotlib).
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from mtlrec.errors import DataError

DEFAULT_SAMPLES = 1000
METHODS = ("lime", "captum")
NOTE = ("SHAP is an additive attribution (the groups' average marginal effects, adding up to output - base "
        "value); LIME fits a local linear surrogate to randomly switched groups, weighted by closeness to the "
        "pair: it need not add up and splits interactions between groups differently, so the two can rank "
        "groups differently where the model is far from additive.")


# ---------------------------------------------------------------------------------------------
# the coalition game
# ---------------------------------------------------------------------------------------------
class CoalitionGame:
    """z [n, G] in {0, 1} -> the task's logit with the groups where z == 0 taken from the
    reference rows (mean over them). Distinct coalitions are evaluated once."""

    def __init__(self, net, x, reference, group_cols, column: int = 0):
        import torch
        self.net = net
        self.x = torch.as_tensor(x, dtype=torch.float32).reshape(1, -1)
        self.ref = torch.as_tensor(reference, dtype=torch.float32)
        self.G = len(group_cols)
        d = self.x.shape[1]
        self.onehot = np.zeros((self.G, d), dtype=bool)
        for g, cols in enumerate(group_cols):
            self.onehot[g, cols] = True
        self.column = int(column)
        self.n_evals = 0

    def __call__(self, z) -> np.ndarray:
        import torch
        z = (np.asarray(z, dtype=np.float64) > 0.5).reshape(-1, self.G)
        uniq, inverse = np.unique(z, axis=0, return_inverse=True)
        colmask = torch.as_tensor(uniq.astype(np.int64) @ self.onehot.astype(np.int64) > 0)   # [u, d]
        nb, d = self.ref.shape
        out = []
        with torch.no_grad():
            for s in range(0, len(uniq), max(1, 65536 // nb)):
                cm = colmask[s:s + max(1, 65536 // nb)][:, None, :]
                inp = torch.where(cm, self.x[None, :, :], self.ref[None, :, :])          # [u, nb, d]
                v = self.net(inp.reshape(-1, d))[:, self.column].double()
                out.append(v.reshape(cm.shape[0], nb).mean(1))
        self.n_evals += len(uniq)
        vals = torch.cat(out).numpy() if out else np.zeros(0)
        return vals[np.asarray(inverse).reshape(-1)]


def _lime_package(game: CoalitionGame, names, n_samples: int, seed: int) -> tuple[dict, float]:
    from lime.lime_tabular import LimeTabularExplainer
    G = game.G
    train = np.array([[0] * G, [1] * G], dtype=float)          # each group: off / on, equally likely
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ex = LimeTabularExplainer(train, mode="regression", feature_names=list(names),
                                  categorical_features=list(range(G)), discretize_continuous=False,
                                  random_state=int(seed))
        exp = ex.explain_instance(np.ones(G), game, num_features=G, num_samples=int(n_samples))
    # regression mode: local_exp[1] is the fitted surrogate; local_exp[0] is its negation (lime keeps it
    # for a two-sided plot), so reading the first key would flip every sign
    weights = {names[i]: float(w) for i, w in exp.local_exp[1]}
    return {n: weights.get(n, 0.0) for n in names}, float(getattr(exp, "score", np.nan))


def _captum(game: CoalitionGame, names, n_samples: int, seed: int) -> tuple[dict, float]:
    import torch
    from captum._utils.models.linear_model import SkLearnLinearRegression
    from captum.attr import Lime

    def forward(z):
        return torch.as_tensor(game(z.detach().cpu().numpy()))

    torch.manual_seed(int(seed))
    lime = Lime(forward, interpretable_model=SkLearnLinearRegression())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attr = lime.attribute(torch.ones(1, game.G), baselines=torch.zeros(1, game.G), n_samples=int(n_samples),
                              perturbations_per_eval=int(n_samples))
    w = attr.reshape(-1).double().numpy()
    return {n: float(w[i]) for i, n in enumerate(names)}, float("nan")


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------
TIE_RTOL = 1e-9     # |values| below this share of the largest are float noise: ranked as ties at zero


def _abs_ranks(values) -> np.ndarray:
    from scipy.stats import rankdata
    v = np.abs(np.asarray(values, dtype=np.float64))
    top = float(v.max()) if v.size else 0.0
    return rankdata(np.where(v <= TIE_RTOL * top, 0.0, v))


def agreement(shap_groups: dict, lime_groups: dict) -> float:
    """Spearman rank correlation of |importance| over the groups both name (ties get average
    ranks; values below `TIE_RTOL` of the largest on their side -- a group the model does not
    read gets a Shapley value of exactly 0 up to float noise -- tie at zero; groups whose
    |values| are all equal on one side give 0.0, not NaN)."""
    keys = [g for g in shap_groups if g in lime_groups]
    if len(keys) < 2:
        return 1.0
    a = _abs_ranks([float(shap_groups[g]) for g in keys])
    b = _abs_ranks([float(lime_groups[g]) for g in keys])
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def lime_explanation(run, user, item, task: str | None = None, *, cls=None, n_samples: int = DEFAULT_SAMPLES,
                     method: str = "lime", baseline: str = "background", explainer=None,
                     background: int = 100, seed: int = 0) -> dict:
    """LIME weights of the feature groups for one recommendation and one task, with the SHAP
    values of the same pair, task and groups and their agreement.

    Returns ``{"task", "unit", "method", "baseline", "n_samples", "lime": {group: weight},
    "shap": {group: value}, "agreement", "top_lime", "top_shap", "score", "elapsed_ms",
    "lime_ms", "note", "class", "class_index"}``. Weights are in the task's logit (binary),
    the logit of ONE class (multi-label: ``cls``, a class name or index, by default the pair's
    most likely class -- the class `explain_recommendation` explains by default) or label units
    (regression), as on the SHAP waterfalls. ``class``/``class_index`` are None for tasks that
    are not multi-label."""
    from mtlrec.explain.api import make_explainer
    from mtlrec.explain.inputs import class_index, row_inputs
    from mtlrec.explain.core import TaskLogits
    if method not in METHODS:
        raise DataError(f"unknown LIME implementation '{method}'", fix="use one of: " + ", ".join(METHODS))
    if baseline not in ("background", "mean"):
        raise DataError(f"unknown LIME baseline '{baseline}'", fix="use 'background' or 'mean'")
    if int(n_samples) < 10:
        raise DataError(f"LIME needs at least 10 samples, not {n_samples}", fix="use e.g. 1000")
    names = [t.name for t in run.tasks]
    task = task or names[0]
    if task not in names:
        raise DataError(f"this run has no task '{task}'", fix="pick one of: " + ", ".join(names))
    spec = run.task(task)
    t0 = time.perf_counter()
    k, cname = None, None
    if spec.type in ("multilabel", "distribution"):
        from mtlrec.serve.recommend import class_names, pair_score
        probs = pair_score(run, user, item)["tasks"][task] if cls is None or cls == "" else {}
        k = class_index(run, spec, cls, probs)
        cname = class_names(run, spec)[k]
    elif cls is not None and cls != "":
        raise DataError(f"task '{task}' is {spec.type}, it has no classes to pick from",
                        fix="give a class only for a multi-label or distribution task")
    classes = {task: k} if k is not None else None
    ex = explainer or make_explainer(run, background, seed=seed)
    _, x = row_inputs(run, user, item)
    att = ex.explain(x, classes=classes)
    j = att.tasks.index(task)
    scale = float(spec.label_scale) if spec.type == "regression" else 1.0
    shap_groups = {g: float(att.values[0, i, j]) * scale for i, g in enumerate(att.groups)}
    with ex._lock:
        net = TaskLogits(ex._model(), [task], classes)
        ref = ex.background if baseline == "background" else ex.background.mean(0, keepdim=True)
        game = CoalitionGame(net, x[0], ref, ex.group_cols)
        t1 = time.perf_counter()
        fn = _lime_package if method == "lime" else _captum
        weights, score = fn(game, list(att.groups), int(n_samples), seed)
        lime_ms = (time.perf_counter() - t1) * 1000.0
    lime_groups = {g: w * scale for g, w in weights.items()}
    top = lambda d: max(d, key=lambda g: abs(d[g])) if d else None  # noqa: E731
    unit = f"{spec.label} (label units)" if spec.type == "regression" else \
        (f"logit of class '{cname}'" if spec.type == "multilabel" else
         f"log share of class '{cname}'" if spec.type == "distribution" else "logit (log-odds)")
    return {"user": str(user), "item": str(item), "task": task, "class": cname, "class_index": k,
            "unit": unit, "method": method,
            "baseline": baseline, "n_samples": int(n_samples), "lime": lime_groups, "shap": shap_groups,
            "shap_method": att.method, "agreement": agreement(shap_groups, lime_groups),
            "top_lime": top(lime_groups), "top_shap": top(shap_groups), "score": score,
            "model_evaluations": int(game.n_evals), "lime_ms": lime_ms,
            "elapsed_ms": (time.perf_counter() - t0) * 1000.0, "note": NOTE}


def lime_all_tasks(run, user, item, *, classes: dict | None = None, n_samples: int = DEFAULT_SAMPLES,
                   method: str = "lime", baseline: str = "background", explainer=None, background: int = 100,
                   seed: int = 0) -> dict:
    """LIME beside SHAP for every task of one recommendation: ``{task: lime_explanation(...)}``, all
    against one explainer (the same background). ``classes`` {multi-label task: class name or index}:
    the class each explains (default: the pair's most likely, as `explain_recommendation`)."""
    from mtlrec.explain.api import make_explainer
    ex = explainer or make_explainer(run, background, seed=seed)
    return {t.name: lime_explanation(run, user, item, t.name, cls=(classes or {}).get(t.name),
                                     n_samples=n_samples, method=method, baseline=baseline, explainer=ex,
                                     seed=seed)
            for t in run.tasks}


def lime_figure(res: dict):
    """Grouped horizontal bars: SHAP value and LIME weight of every group (plotly)."""
    import plotly.graph_objects as go
    groups = sorted(res["shap"], key=lambda g: abs(res["shap"][g]))
    what = res["task"] + (f" (class '{res['class']}')" if res.get("class") is not None else "")
    fig = go.Figure()
    fig.add_bar(y=groups, x=[res["shap"][g] for g in groups], orientation="h", name="SHAP value")
    fig.add_bar(y=groups, x=[res["lime"][g] for g in groups], orientation="h", name="LIME weight")
    fig.update_layout(barmode="group", height=120 + 28 * len(groups), margin=dict(l=10, r=10, t=40, b=10),
                      title=f"{what}: SHAP vs LIME (rank agreement {res['agreement']:.2f})",
                      xaxis_title=res["unit"], legend=dict(orientation="h", y=-0.2))
    return fig
