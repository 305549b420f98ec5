"""SHAP explanations of multi-task recommendation models.

* `mtlrec.explain.inputs`: the fused input X of sampled rows and of one (user, item) pair (the
  lowest layer: every other explain module takes its inputs from here).
* `mtlrec.explain.core`: `ModelExplainer` -- attributions of every task's logit to the
  feature groups of the fused input X (and to the shared representation H), with
  `shap.DeepExplainer` where it is exactly additive and exact group Shapley values otherwise.
* `mtlrec.explain.api`: `explain_recommendation(run, user, item)`, `global_summary(run)`.
* `mtlrec.explain.values` / `mtlrec.explain.sentence`: the pair's feature values in words, the
  sensitive-feature check, and the one-sentence summary.
* `mtlrec.figures.explain`: plotly figures (waterfalls, importance bars, heatmaps).

Importing this package is cheap; torch and shap load with the functions that need them.
"""
from __future__ import annotations

# name -> the module of this package that defines it (loaded when the name is first asked for)
_HOME = {**{n: "api" for n in ("explain_recommendation", "global_summary", "make_explainer", "fused_decomposition")},
         "sentence": "sentence",
         **{n: "core" for n in ("ModelExplainer", "Attribution", "GroupMasker", "exact_group_shapley",
                                "state_snapshot")}}

__all__ = sorted(_HOME)


def __getattr__(name):
    if name in _HOME:
        import importlib
        return getattr(importlib.import_module(f"mtlrec.explain.{_HOME[name]}"), name)
    raise AttributeError(f"module 'mtlrec.explain' has no attribute '{name}'")
