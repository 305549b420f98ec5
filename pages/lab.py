"""Lab: Ma et al.'s synthetic experiment live -- task relatedness vs architecture, and weighting methods."""
from __future__ import annotations

import streamlit as st

from mtlrec.teaching import lab
from mtlrec.figures.teaching import curves_fig, dynamics_fig
from pages.ui.lab import (cached_fig, lab_jobs, progress_line, running_jobs, runs_table,
                          start_job, sweep_panel)
from pages.ui.state import ensure_app_navigation

# every experiment here runs with the lab's one size (mtlrec.teaching.lab.LAB_N rows, LAB_TRAIN's epochs), and
# the prepared sweep is bench/lab.py's: the card, the sweep and the benchmark cannot disagree by size
SWEEP_SIZE = lab.sweep_size({"n": lab.LAB_N, "seeds": lab.SWEEP_SEEDS, "epochs": lab.LAB_TRAIN["epochs"]})
SWEEP_RUNS = len(lab.sweep_plan())


# ---------------------------------------------------------------------------- card 1: architectures
def _architectures_card(running: list, card1_running: list) -> float:
    """Card 1: the task correlation p, Train / prepared sweep / Cancel, and their results; returns p."""
    with st.container(border=True):
        st.subheader("Related tasks and architectures")
        p = st.slider("Task correlation p", 0.0, 1.0, 0.5, 0.05, key="lab_p",
                      help="1: the same task twice (up to the shared noise); 0: unrelated tasks")
        c1, c2, c4 = st.columns([2, 2, 1], vertical_alignment="bottom")
        if c1.button("Train shared-bottom, MMoE and PLE", type="primary", icon=":material/play_arrow:",
                     key="lab_run", disabled=bool(running), width="stretch",
                     help=f"each on {lab.LAB_N:,} rows of the data of p, {lab.LAB_TRAIN['epochs']} epochs"):
            start_job("archs", p=p)
            st.rerun()
        if c2.button("Prepared sweep (p = 0.5, 0.9, 1.0)", icon=":material/science:", key="lab_sweep",
                     disabled=bool(running), width="stretch",
                     help=f"the benchmark's sweep (bench/lab.py): every architecture at each p, {SWEEP_SIZE}; "
                          f"{SWEEP_RUNS} short runs, about half a minute on a 2-core CPU"):
            start_job("sweep", ps=lab.SWEEP_PS, seeds=lab.SWEEP_SEEDS)
            st.rerun()
        if c4.button("Cancel", icon=":material/stop:", key="lab_cancel", disabled=not running, width="stretch"):
            for j in running:
                j.cancel()

        st.fragment(card1, run_every=1.0 if card1_running else None)(card1_running)
        st.caption("How to read the sweep: each point is the test RMSE of one architecture averaged over "
                   "both tasks and the seeds. The paper's finding is that MMoE beats shared-bottom, and the "
                   "more so the lower p (less related tasks); the verdict under the chart checks both on the "
                   "numbers drawn. One seed alone is noisy: the sweep uses the benchmark's three.")
    return p


def card1(card1_running: list) -> None:
    """Card 1's results; run as a fragment that redraws itself every second while ``card1_running``."""
    if card1_running and not running_jobs():
        st.rerun(scope="app")          # an experiment ended: redraw the buttons too
    jobs = lab_jobs()
    if "archs" not in jobs and "sweep" not in jobs:
        st.info("Choose p and press **Train**, or run the **prepared sweep**.")
        return
    if "archs" in jobs:
        snap = jobs["archs"].snapshot()
        progress_line(snap, f"p = {snap['p']:g}")
        if snap["runs"]:
            st.plotly_chart(cached_fig("arch", snap, lambda: curves_fig(
                snap["runs"], "Validation RMSE per task (lower is better)")), key="lab_arch_curves")
            runs_table(snap["runs"])
            st.caption("One data set, one seed: a gap of this size can flip with the seed. The prepared "
                       "sweep averages three seeds before it reads an ordering.")
    if "sweep" in jobs:
        snap = jobs["sweep"].snapshot()
        progress_line(snap, "Sweep")
        sweep_panel(snap)


# ---------------------------------------------------------------------------- card 2: weightings
def _weightings_card(running: list, card2_running: list, p: float) -> None:
    """Card 2: two loss-weighting methods on the data of ``p``, Compare, and their results."""
    with st.container(border=True):
        st.subheader("Loss weighting on the same data")
        from mtlrec.weighting import WEIGHTINGS
        methods = list(WEIGHTINGS)            # read at run time: new methods appear here by themselves
        w1, w2, w3, w4 = st.columns([2, 2, 2, 2], vertical_alignment="bottom")
        m1 = w1.selectbox("Method A", methods, index=0, key="lab_w1")
        m2 = w2.selectbox("Method B", methods, index=min(1, len(methods) - 1), key="lab_w2")
        arch = w3.selectbox("Architecture", list(lab.ARCHS), index=1, key="lab_w_arch",
                            format_func=lambda a: lab.ARCH_LABELS.get(a, a))
        if w4.button("Compare", type="primary", icon=":material/compare_arrows:", key="lab_wrun",
                     disabled=bool(running) or m1 == m2, width="stretch"):
            start_job("weightings", p=p, methods=(m1, m2), arch=arch)
            st.rerun()
        if m1 == m2:
            st.caption("Pick two different methods.")

        st.fragment(card2, run_every=1.0 if card2_running else None)(card2_running, arch)


def card2(card2_running: list, arch: str) -> None:
    """Card 2's results; run as a fragment that redraws itself every second while ``card2_running``."""
    if card2_running and not running_jobs():
        st.rerun(scope="app")
    job = lab_jobs().get("weightings")
    if job is None:
        st.info(f"Trains {lab.ARCH_LABELS.get(arch, arch)} twice on the data of p above, once per method.")
        return
    snap = job.snapshot()
    progress_line(snap, f"{' vs '.join(snap['runs']) or 'weightings'} at p = {snap['p']:g}")
    if snap["runs"]:
        st.plotly_chart(cached_fig("weightings", snap, lambda: curves_fig(
            snap["runs"], "Validation RMSE per task")), key="lab_w_curves")
        runs_table(snap["runs"])
        dyn = cached_fig("weightings_dyn", snap, lambda: dynamics_fig(snap["runs"]))
        if dyn is not None:
            st.plotly_chart(dyn, key="lab_w_dynamics")
            every = lab.LAB_TRAIN["dynamics_every"]
            st.caption(f"Each point is one epoch's sampled batches (one batch in {every}; hover for the count): "
                       "read a share of conflicting batches as a tendency, not a measurement.")
        else:
            st.caption("No gradient-conflict measurements in these runs' histories.")


def render() -> None:
    """The Lab page: the architectures card, then the weightings card on the same p."""
    ensure_app_navigation()
    st.title("Lab")
    st.markdown("Two regression tasks whose **correlation p** you choose (the synthetic data of Ma et al., "
                "KDD 2018, §3.2: y₁ and y₂ are built from the same 16 inputs through weight vectors at "
                "cosine p). Train the architectures on the same data and watch how much sharing helps "
                "or hurts as the tasks drift apart. Everything runs on the CPU in seconds.")
    running = running_jobs()
    card1_running = [j for j in running if j.kind in ("archs", "sweep")]
    card2_running = [j for j in running if j.kind == "weightings"]
    p = _architectures_card(running, card1_running)
    _weightings_card(running, card2_running, p)


render()
