"""Teaching aids on Results and Data (issue 14 §5, §6): the seesaw and Δm over the single-task
baselines, cross-validation mean ± std, the label-correlation matrix."""
from __future__ import annotations

import streamlit as st

from mtlrec.runs.compare import gain_delta_m, seesaw
from mtlrec.teaching.correlation import cv_rows
from pages.ui.messages import md_text
from pages.ui.tables import show_table


def show_seesaw(gains: dict) -> None:
    """Δm over the single-task baselines and, when gains have mixed signs, the seesaw named in words."""
    dm = gain_delta_m(gains)
    if dm is not None:
        st.metric("Δm over the single-task baselines", f"{dm:+.2f} %",
                  help="Δm = 1/T Σ_t (−1)^{l_t} (M_t − M_t^STL) / M_t^STL · 100, l_t = 1 when the task's metric "
                       "is lower-is-better: the average relative improvement of the multi-task model over "
                       "one single-task model per task (positive = multi-task learning helped on average)")
    verdict = seesaw(gains)
    if verdict is not None:
        helped = ", ".join(f"**{md_text(t)}**" for t in verdict["helped"])
        hurt = ", ".join(f"**{md_text(t)}**" for t in verdict["hurt"])
        st.warning(f"**The seesaw**: multi-task learning helped {helped} and hurt {hurt}. Sharing layers moved "
                   "them toward some tasks at the cost of others (negative transfer). The "
                   "[Training dynamics](#training-dynamics) section of this page shows how the tasks pulled on the "
                   "shared layers during training; changing the loss weights, a weighting strategy, or an architecture with "
                   "task-own experts (PLE) are the usual remedies.", icon=":material/balance:")
    else:
        signs = {(g.get("gain") or 0) > 0 for g in (gains or {}).values()
                 if isinstance(g, dict) and isinstance(g.get("gain"), (int, float)) and g.get("gain")}
        if signs == {True}:
            st.caption("No seesaw: multi-task learning helped every task.")
        elif signs == {False}:
            st.caption("No seesaw, but multi-task learning hurt every task: the tasks may have too little in "
                       "common (see the label correlation on Data), or the loss weights need balancing.")


def show_cross_validation(metrics: dict, task_metric: dict) -> None:
    cv = metrics.get("cv") or {}
    st.subheader("Cross-validation")
    if not cv.get("folds"):
        st.info("This run has no cross-validation. Set **Cross-validation folds** above 1 on Train to see how much "
                "each task's metric varies from one fold of the data to another.")
        return
    show_table(cv_rows(cv, task_metric), hide_index=True, key="cv_table")
    how = cv.get("scheme_text") or "folds of shuffled rows"
    st.caption(f"Mean ± standard deviation over {len(cv['folds'])} folds ({md_text(how)}). Each fold trains a new "
               "model on the rest of the training and validation rows; *validation folds* scores it on its held-out "
               "fold, *test* on the test split. A small ± means the result does not hinge on which rows were "
               "held out.")


def cv_scheme_text(split: str | None) -> str:
    """How the folds are made for a preparation split (mirrors mtlrec.training.pipeline.cv_fold_indices)."""
    if split == "temporal":
        return ("temporal split: the training and validation rows are ordered by time and cut into k + 1 blocks; "
                "fold i trains on the blocks up to i and validates on the next, later block — never on the past")
    return ("folds grouped by user: each user's training and validation rows go to one fold, so a fold's model is "
            "validated on users it never saw")


def show_cv_option(train: dict, split: str | None, *, key: str) -> None:
    """The number of cross-validation folds (train.cv_folds; 1 = off), with how the folds are made."""
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    train["cv_folds"] = int(c1.number_input(
        "Cross-validation folds", 1, 20, int(train.get("cv_folds", 1) or 1), key=key,
        help="k > 1: after the main run, k more models are trained on folds of the training + validation rows "
             "and Results shows each task's metric as mean ± std over the folds (k times the training time); "
             "1 = off"))
    if train["cv_folds"] > 1:
        c2.caption(f"{train['cv_folds']} folds — {md_text(cv_scheme_text(split))}.")


def show_label_correlation(dataset) -> None:
    """Heatmap of the labels' Pearson correlations on the training rows (a task-selection aid)."""
    from mtlrec.figures.teaching import label_correlation_fig
    from mtlrec.teaching.correlation import label_correlation
    corr = label_correlation(dataset)
    if corr.shape[0] < 2:
        return
    st.markdown("**How the labels move together** (training rows)")
    st.plotly_chart(label_correlation_fig(corr), key="label_corr_fig")
    st.caption("Pearson correlation of every pair of labels on the training rows (sampled negatives left out; "
               "a multi-label label counts its classes per row). Near +1 or −1: the labels carry much the same "
               "signal, so learning them together is likely to help each other; near 0: little in common, and "
               "a shared model may trade one off against the other (the seesaw). Correlation only sees linear "
               "relations between the labels, not whether they share the same input features.")
