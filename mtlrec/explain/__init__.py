"""SHAP explanations of multi-task recommendation models.

* `mtlrec.explain.core`: `ModelExplainer` -- attributions of every task's logit to the
  feature groups of the fused input X (and to the shared representation H), with
  `shap.DeepExplainer` where it is exactly additive and exact group Shapley values otherwise.
* `mtlrec.explain.api`: `explain_recommendation(run, user, item)`, `global_summary(run)`.
* `mtlrec.figures.explain`: plotly figures (waterfalls, importance bars, heatmaps).

Importing this package is cheap; torch and shap load with the functions that need them.
"""
from __future__ import annotations

_API = {"explain_recommendation", "global_summary", "make_explainer", "sentence", "fused_decomposition"}
_CORE = {"ModelExplainer", "Attribution", "GroupMasker", "exact_group_shapley", "state_snapshot"}

__all__ = sorted(_API | _CORE)


def __getattr__(name):
    if name in _API:
        from mtlrec.explain import api
        return getattr(api, name)
    if name in _CORE:
        from mtlrec.explain import core
        return getattr(core, name)
    raise AttributeError(f"module 'mtlrec.explain' has no attribute '{name}'")
