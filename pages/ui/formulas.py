"""The chosen architecture's equations with the user's numbers (Tasks & model; issue 14 §4)."""
from __future__ import annotations

import streamlit as st

from mtlrec.formulas import architecture_equations, input_width


def show_equations(arch: str, hparams: dict, tasks: list[dict], train: dict, dataset=None) -> None:
    """One st.latex per equation of ``arch`` with the current sizes, task weights, λ and μ."""
    d_x = input_width(dataset.fields, hparams) if dataset is not None else None
    with st.expander("The model as equations — with your numbers", expanded=True, icon=":material/function:"):
        st.caption("The forward pass of the architecture chosen above and the loss it is trained with, written "
                   "with the layer sizes, task weights w_i, λ (L2 on task towers) and μ (L2 on embeddings) set "
                   "on this page. "
                   + (f"X is {d_x} numbers wide for the prepared dataset." if d_x is not None else
                      "d_x (the width of X) is known once the data is prepared on Data."))
        for eq in architecture_equations(arch, hparams, tasks, train, d_x=d_x):
            st.latex(eq)
        st.caption("σ is ReLU; each tower ends in one output (a logit for binary tasks, a number for regression, "
                   "one logit per class for multi-label tasks). L_i is task i's loss (cross-entropy or squared "
                   "error); θ_i are task i's tower parameters, E the embedding table.")
