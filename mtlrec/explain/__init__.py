"""SHAP explanations of multi-task recommendation models (see `mtlrec.explain.core`)."""
