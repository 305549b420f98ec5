"""The "Training dynamics" view: the task weights (loss weights, or a gradient method's implied
weights), per-task gradient norms and cosines on the shared parameters, gate entropy and expert
shares (MMoE / PLE), from a run's history.

Results draws the full view under the subheader "Training dynamics" (anchor
``#training-dynamics``: other sections link to it with ``[Training dynamics](#training-dynamics)``);
the Train page draws the compact live figure inside its polling fragment (main thread, from the job
snapshot's history, rebuilt only when a new epoch arrives).
"""
from __future__ import annotations

import streamlit as st

from mtlrec.figures import dynamics as vd
from pages.ui.messages import md_text
from pages.ui.state import lazy_section

ANCHOR = "training-dynamics"
TITLE = "Training dynamics"

EXPLAIN = ("Measured on every k-th training batch (train.dynamics_every): the gradient of each task's "
           "unweighted loss on the shared parameters (embeddings, shared layers, experts and gates; not the "
           "task towers). A large norm means the task dominates the shared parameters; a negative cosine "
           "between two tasks means their gradients pull the shared parameters in opposite directions "
           "(conflict), a common cause of the seesaw effect where one task gains and another loses. A pair is "
           f"called in conflict only over at least {vd.MIN_BATCHES} sampled batches (the latest epochs pooled), "
           f"when their mean cosine is below −{vd.COSINE_EPS:g} and the 95% interval of the share of opposed "
           "batches lies above one half.")


def _history_dict(history) -> dict:
    if hasattr(history, "to_dict"):
        return history.to_dict()
    return dict(history or {})


def _weighting(config) -> str | None:
    train = config.get("train") if isinstance(config, dict) else getattr(config, "train", None)
    w = train.get("weighting") if isinstance(train, dict) else getattr(train, "weighting", None)
    return str(w) if w else None


def results_section(history, key: str = "dyn", config=None) -> None:
    """The full view, with its subheader (the anchor target); ``config``: the run's RunConfig (or its
    dict), whose weighting method names the weights chart."""
    st.subheader(TITLE, anchor=ANCHOR)
    hist = _history_dict(history)
    weighting = _weighting(config)
    if not vd.has_dynamics(hist):
        st.info("This run has no training-dynamics records: it was trained before they existed or with "
                "train.dynamics_every = 0. Train it again to see per-task gradient norms, conflicts between "
                "tasks and (MMoE / PLE) how the gates use the experts.")
        return
    st.caption(EXPLAIN)
    for line in vd.conflict_summary(hist):
        st.markdown(f"- {md_text(line)}")
    implied = vd.combines_gradients(weighting)

    def charts() -> None:
        figs = vd.dynamics_figs(hist, weighting)
        c1, c2 = st.columns(2)
        c1.plotly_chart(figs["weights"], key=f"{key}_weights")
        if implied:
            c1.caption(f"{md_text(weighting)} does not weight the losses: it combines the tasks' gradients on the "
                       "shared parameters, ∇θₛ = Σᵢ wᵢ ∇θₛ Lᵢ. These wᵢ are its implied weights at the last batch of "
                       "each epoch (1 = a task's plain gradient; large when it rescales a small or conflicting one).")
        c2.plotly_chart(figs["grad_norm"], key=f"{key}_grad_norm")
        st.plotly_chart(figs["cosine"], key=f"{key}_cosine")
        if "entropy" in figs:
            c1, c2 = st.columns(2)
            c1.plotly_chart(figs["entropy"], key=f"{key}_entropy")
            c2.plotly_chart(figs["shares"], key=f"{key}_shares")
            st.caption("Gate entropy 0: the task's gate always picks one expert; log(n experts): it mixes all "
                       "experts alike. Tasks whose gates share the same experts share more of the model.")

    lazy_section(f"Charts: {'implied' if implied else 'loss'} weights, gradient norms and conflicts"
                 + (", experts" if vd.has_gates(hist) else ""),
                 f"{key}_open", charts, icon=":material/monitoring:")


def live_view(hist: dict, sig) -> None:
    """The compact live figure (gradient norms and cosines per epoch) on the Train page; ``sig``:
    what changes when the history gains an epoch (the cached figure is reused otherwise)."""
    if not vd.has_dynamics(hist):
        return
    cache = st.session_state.get("live_dyn_fig_cache")
    if cache is None or cache[0] != sig:
        cache = (sig, vd.live_dynamics_fig(hist), vd.conflict_summary(hist))
        st.session_state["live_dyn_fig_cache"] = cache
    st.markdown(f"**{TITLE}** (per epoch, from sampled batches)",
                help=EXPLAIN + " The full view is on Results.")
    st.plotly_chart(cache[1], key="live_dynamics")
    for line in cache[2]:
        st.caption(md_text(line))
