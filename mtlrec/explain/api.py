"""Explanations of a trained run: one recommendation (user, item), and global views.

``explain_recommendation(run, user, item)`` returns a JSON-ready dict::

    {"user", "item", "space": "per task", "method", "background",
     "tasks": {task: {"type", "space", "unit", "output_kind", "base_value", "output",
                      "prediction", "contributions": {group: value},
                      "rows": [{"group", "feature", "contribution", "probability"?}],  # strongest first
                      "probability": {...} (binary, multilabel), "model_space": {...} (regression), ...}},
     "fused": {"weights", "score", "base_value", "by_task", "contributions"},   # binary/regression tasks
     "features": {group: {"text", "fields", "sensitive", "support"?, "similar"?}},
     "sensitive": [{"group", "kind", "share", "where", "flagged", "fields", "note"}],
     "sensitive_check": {"checked", "looked_for", "threshold", "flagged", "text"},
     "history": {...} | None,       # the user's history items as reasons (mtlrec.explain.history)
     "sentence", "elapsed_ms"}

``history`` (`mtlrec.explain.history.explain_history`, None when the run has no history input):
each of the user's history items' contribution to every task's output and to the fused score by
exact per-item ablation (the output with the item removed from the history, the others kept), the
DIN attention weights beside them (encoder "attention"; not attributions), and its own sentence
("Recommended mainly because user 1 rated The Maltese Falcon 5★ (+0.031) and ...").

``features`` (`mtlrec.explain.values.feature_values`) says what each group is for this pair:
"occupation = student", "age = 24" (original scale), "item text: first words…", "item id = i7"
with the id's training interactions (``support``) and, for items, the most similar items by the
learned embedding (``similar``, `similar_items`). ``rows`` pairs each contribution with it.

Per task, ``base_value + sum(contributions) == output``, in the task's ``space``:

* binary -- ``"logit"``: the log-odds; ``prediction`` is the probability. A chained task (like
  given interact) is explained in the entire space, as lists rank it: the logit of
  p(interact ∧ like) = p(interact) · p(like | interact) (``entire_space`` holds the formula).
* regression -- ``"label"``: label units (e.g. rating points). The model's output is the
  standardised target; the map to the label scale (`TaskSpec.to_label_scale`) is affine,
  so the base value maps through it, contributions scale by the target's std, and the
  output is the predicted value (``standardisation`` keeps the model-space numbers).
* multilabel -- ``"logit"`` of one class (``class``; default the pair's most likely),
  with its probability as ``prediction`` and all ``class_probabilities``.
* distribution (a user's interests) -- ``"log share"``: the log-softmax of one class (``class``;
  default the largest share), with its share as ``prediction`` and all shares as
  ``class_probabilities``; no probability view (a softmax share is not a sigmoid of a sum).

The task's own unit, one toggle away from the logit on the page: ``probability`` (binary, and
the explained class of a multilabel task) is the same waterfall in probability units
(`mtlrec.explain.values.probability_view`: cumulative logit sums in the waterfall's order mapped
through the sigmoid, so its bars add up to the predicted probability); a regression task's main
view is already its label unit and ``model_space`` keeps the standardised model output.
``sensitive`` lists groups whose column names look like protected attributes or proxies
(`SENSITIVE_PATTERNS`), ``flagged`` when their share of |SHAP| reaches `SENSITIVE_SHARE`;
``sensitive_check`` says in words which groups were checked, at what share, and against which
threshold -- also when nothing is flagged (`mtlrec.explain.values.sensitive_check`). The
``sentence`` names only material reasons (`mtlrec.explain.sentence`).

``fused.score`` is the number `mtlrec.serve.recommend` ranks by and shows for this pair
(`mtlrec.serve.recommend.pair_score`, the same catalogue pass); ``fused.base_value +
sum(fused.contributions) == fused.score``: each task's rise of ``a_t * s_t`` above its
base value is split over the feature groups in proportion to their SHAP values.
"""
from __future__ import annotations

import time

from mtlrec.errors import DataError
from mtlrec.explain.history import explain_history
from mtlrec.tasks import CLASS_TYPES
from mtlrec.explain.inputs import class_index, row_inputs, sample_inputs
from mtlrec.explain.sentence import sentence
from mtlrec.explain.values import feature_values, probability_view, sensitive_check, sensitive_flags

DEFAULT_BACKGROUND = 100
DEFAULT_GLOBAL_ROWS = 500


def make_explainer(run, background: int = DEFAULT_BACKGROUND, method: str = "auto", seed: int = 0):
    """A `ModelExplainer` for ``run`` with ``background`` random training rows."""
    from mtlrec.explain.core import ModelExplainer
    if int(background) < 1:
        raise DataError(f"the background sample needs at least 1 row, not {background}",
                        fix="use e.g. --background 100")
    _, bg = sample_inputs(run, background, seed=seed)
    return ModelExplainer(run.model, bg, method=method, tasks=[t.name for t in run.tasks], seed=seed)


# ---------------------------------------------------------------------------------------------
# fusion (the number of mtlrec.serve.recommend, split by feature group)
# ---------------------------------------------------------------------------------------------
def _term_of_waterfall_value(run, task, v: float) -> float:
    """s_t (the task's term of the fused score) at a point of the task's waterfall: a logit
    (binary) or a value in label units (regression) -- through `mtlrec.serve.recommend.task_term`."""
    import torch

    from mtlrec.serve.recommend import task_term
    if task.type == "binary":
        v = float(task.predict(torch.tensor(float(v), dtype=torch.float64)))
    return float(task_term(run, task, v))


def fused_decomposition(run, tasks_out: dict, pair: dict) -> dict | None:
    """The fused score of ``pair`` (`mtlrec.serve.recommend.pair_score`: the number the
    Recommendations page shows) and its additive split into feature groups and tasks.

    Per task t the waterfall runs from ``b_t`` to ``b_t + sum_g phi_tg`` (logit, or label
    units for regression); its share of the fused score above the base,
    ``a_t * s_t(prediction) - a_t * s_t(b_t)``, is split over the groups in proportion to
    ``phi_tg`` (the rescale rule). So ``base_value + sum(contributions) == score``."""
    from mtlrec.serve.recommend import fusable_tasks
    fusable = fusable_tasks(run)
    if not fusable:
        return None
    a = pair["weights"]
    groups = list(next(iter(tasks_out.values()))["contributions"])
    contrib = {g: 0.0 for g in groups}
    base_total = 0.0
    for t in fusable:
        r = tasks_out[t.name]
        g = lambda v, t=t: _term_of_waterfall_value(run, t, v)  # noqa: E731
        b = float(r["base_value"])
        top = a[t.name] * g(b)
        base_total += top
        rise = pair["by_task"][t.name] - top              # a_t * (s_t(x) - s_t(base))
        total = sum(r["contributions"].values())
        if abs(total) > 1e-9 * max(1.0, abs(b)):
            for grp, v in r["contributions"].items():
                contrib[grp] += rise * v / total
        else:                        # no movement: the local slope at the base value
            slope = (g(b + 1e-4) - g(b - 1e-4)) / 2e-4
            for grp, v in r["contributions"].items():
                contrib[grp] += a[t.name] * slope * v
    return {"weights": dict(a), "score": float(pair["score"]), "base_value": base_total,
            "by_task": dict(pair["by_task"]), "contributions": contrib,
            "note": "fused score = sum_t a_t * s_t, the score the recommendation list ranks by; s_t = "
                    "probability (binary) or predicted value (label scale) scaled to [0, 1] by the "
                    "training range (regression); each task's rise above its base value is split over "
                    "the feature groups in proportion to their SHAP values"}


# ---------------------------------------------------------------------------------------------
# the local view
# ---------------------------------------------------------------------------------------------
def _entire_space_note(task, tasks) -> dict:
    """A chained binary task is explained in the entire space (what the list ranks by):
    ``{"output_kind", "entire_space": "p(interact ∧ like) = p(interact) · p(like | interact)"}``."""
    from mtlrec.chain import chain_of, ranked_quantity
    if len(chain_of(task, tasks)) == 1:
        return {}
    q = ranked_quantity(task, tasks)
    return {"output_kind": f"logit of {q.split(' = ')[0]} (entire space)", "entire_space": q}


def explain_recommendation(run, user, item, *, background: int = DEFAULT_BACKGROUND, weights: dict | None = None,
                           method: str = "auto", explainer=None, seed: int = 0,
                           classes: dict | None = None) -> dict:
    """Why ``user`` got ``item``: per-task waterfalls, fused score decomposition, a sentence.

    Binary tasks are explained in logit space, regression tasks in label units (the
    standardised output mapped by `TaskSpec.to_label_scale`: the base value shifts and scales,
    contributions scale by the target's std), a multilabel task as the logit of one class:
    ``classes`` {task: class name or index}, by default the pair's most likely class."""
    from mtlrec.serve.recommend import class_names, pair_score
    t0 = time.perf_counter()
    with_classes = [t.name for t in run.tasks if t.type in CLASS_TYPES]
    unknown = [k for k in (classes or {}) if k not in with_classes]
    if unknown:
        raise DataError(f"no multilabel or distribution task named {', '.join(map(repr, unknown))} to pick a "
                        "class of", fix="classes can be given for: " + (", ".join(with_classes) or "no task"))
    pair = pair_score(run, user, item, weights)
    chosen = {t.name: class_index(run, t, (classes or {}).get(t.name), pair["tasks"][t.name])
              for t in run.tasks if t.type in CLASS_TYPES}
    ex = explainer or make_explainer(run, background, method, seed)
    feats, x = row_inputs(run, user, item)
    features = feature_values(run, user, item, feats)
    att = ex.explain(x, method=None if method == "auto" else method, classes=chosen)
    tasks_out = {}
    for j, name in enumerate(att.tasks):
        t = run.task(name)
        base, out = float(att.base_values[j]), float(att.outputs[0, j])
        phi = {g: float(att.values[0, i, j]) for i, g in enumerate(att.groups)}
        r = {"type": t.type}
        if t.type == "regression":          # label units: affine map, exactly additive
            k = t.label_scale
            r.update(space="label", unit=f"{t.label} (label units)", output_kind=f"predicted {t.label}",
                     base_value=float(t.to_label_scale(base)), output=float(t.to_label_scale(out)),
                     contributions={g: v * k for g, v in phi.items()},
                     standardisation={"mean": t.target_mean, "std": t.target_std,
                                      "output": out, "base_value": base},
                     model_space={"space": "model output", "unit": f"standardised {t.label} (model output)",
                                  "base_value": base, "output": out, "contributions": dict(phi)})
        else:
            r.update(space="logit", unit="logit (log-odds)", base_value=base, output=out, contributions=phi)
        if t.type == "binary":
            r["output_kind"] = "logit (log-odds)"
            r["prediction"] = pair["tasks"][name]
            r.update(_entire_space_note(t, run.tasks))
        elif t.type == "regression":
            r["prediction"] = pair["tasks"][name]
        else:
            names = class_names(run, t)
            c = chosen[name]
            what = "log share" if t.type == "distribution" else "logit"
            r.update(space="log share" if t.type == "distribution" else "logit",
                     output_kind=f"{what} of class '{names[c]}'", unit=f"{what} of class '{names[c]}'",
                     **{"class": names[c]}, class_index=c, prediction=pair["tasks"][name][names[c]],
                     class_probabilities=dict(pair["tasks"][name]))
        if t.type in ("binary", "multilabel"):   # the same waterfall in probability units (still additive)
            r["probability"] = probability_view(base, phi)
        r["rows"] = [{"group": g, "feature": features.get(g, {}).get("text", g), "contribution": v,
                      **({"probability": r["probability"]["contributions"][g]} if "probability" in r else {})}
                     for g, v in sorted(r["contributions"].items(), key=lambda kv: -abs(kv[1]))]
        tasks_out[name] = r
    result = {"user": str(user), "item": str(item), "space": "per task", "method": att.method,
              "background": int(len(ex.background)), "tasks": tasks_out,
              "fused": fused_decomposition(run, tasks_out, pair), "features": features}
    result["sensitive"] = sensitive_flags(features, tasks_out, result["fused"])
    result["sensitive_check"] = sensitive_check(result["sensitive"])
    result["sentence"] = sentence(result)
    result["history"] = explain_history(run, user, item, weights=weights)
    result["elapsed_ms"] = (time.perf_counter() - t0) * 1000.0
    return result


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
