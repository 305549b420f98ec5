"""The chosen architecture's equations with the user's numbers (Tasks & model; issue 14 §4)."""
from __future__ import annotations

import streamlit as st

from mtlrec.teaching.formulas import architecture_equations, input_width
from mtlrec.weighting import WEIGHTINGS, describe


def show_equations(arch: str, hparams: dict, tasks: list[dict], train: dict, dataset=None) -> None:
    """One st.latex per equation of ``arch`` with the current sizes, task weights, λ and μ; for a
    gradient method, its combination of the task gradients in place of the weighted loss."""
    d_x = input_width(dataset.fields, hparams) if dataset is not None else None
    method = train.get("weighting") or "static"
    d = describe(method) if method in WEIGHTINGS else None
    gradients = bool(d) and d["combines"] == "gradients"
    with st.expander("The model as equations — with your numbers", expanded=True, icon=":material/function:"):
        st.caption("The forward pass of the architecture chosen above and how its tasks are trained together, "
                   "written with the layer sizes, "
                   + ("" if gradients else "task weights w_i, ")
                   + "λ (L2 on task towers) and μ (L2 on embeddings) set on this page. "
                   + (f"X is {d_x} numbers wide for the prepared dataset." if d_x is not None else
                      "d_x (the width of X) is known once the data is prepared on Data."))
        for eq in architecture_equations(arch, hparams, tasks, train, d_x=d_x):
            st.latex(eq)
        st.caption("σ is ReLU; each tower ends in one output (a logit for binary tasks, a number for regression, "
                   "one logit per class for multi-label tasks). L_i is task i's loss (cross-entropy or squared "
                   "error); θ_i are task i's tower parameters, E the embedding table.")
        if gradients:
            st.caption(f"{d['label']} is a gradient method: it does not weight the losses. Every step it takes the "
                       "gradient of each task's loss on the shared parameters θ_s (embeddings, shared layers, "
                       "experts and gates), the rows of J, and its aggregator A picks the coefficients w_i of "
                       f"their combination: {d['summary']}. Results plots these w_i as implied weights; the "
                       "loss-weight sliders are not used.")
