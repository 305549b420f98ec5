"""Explain: why one user got one item (per-task SHAP waterfalls, fused score, one sentence),
and what the model relies on overall (feature importance per task, inputs x shared units,
towers / gates). Reached from the Recommendations page with one click on "Explain".
"""
from __future__ import annotations

import streamlit as st

from pages.ui import explain_lime
from pages.ui import explain_pair as pairs
from pages.ui import explain_values as xv
from pages.ui.actions import load_run_cached, open_run, run_version
from pages.ui.explain_cache import cached_global_summary, explainer, global_summary
from pages.ui.explain_history import history_section, render_history_whatif
from pages.ui.explain_whatif import render_whatif
from pages.ui.messages import md_text, show_exception
from pages.ui.state import ensure_app_navigation, get_state

METHODS = {"deep": "DeepExplainer (exactly additive for this architecture)",
           "exact": "exact Shapley values of the feature groups",
           "permutation": "Shapley values of the feature groups from sampled orders (additive)",
           "shap_exact": "shap's Exact explainer over the feature groups",
           "gradient": "expected gradients (GradientExplainer; approximate, for mean |SHAP| only)"}


@st.cache_data(show_spinner=False, max_entries=256)
def _explanation(run_dir: str, user: str, item: str, background: int, weights: tuple, classes: tuple,
                 version: str) -> dict:
    from mtlrec.explain.api import explain_recommendation
    run = load_run_cached(run_dir)
    return explain_recommendation(run, user, item, background=background, weights=dict(weights) or None,
                                  explainer=explainer(run_dir, background), classes=dict(classes) or None)


@st.cache_data(show_spinner=False, max_entries=256)
def _pair(run_dir: str, user: str, item: str, version: str) -> dict:
    """The pair's predictions (multi-label class probabilities for the class pickers)."""
    from mtlrec.serve.recommend import pair_score
    return pair_score(load_run_cached(run_dir), user, item)


def _run_section(runs: list[str]):
    """The run to explain and the background size; returns (run_dir, background, run, users, items).
    Stops the page when the run cannot be opened."""
    try:
        r1, r2 = st.columns([4, 1])
        run_dir = pairs.pick_run(r1, runs)
        background = int(r2.number_input("Background rows", 10, 1000, 100, 10, key="explain_background",
                                         help="training rows the SHAP base value is averaged over"))
        run = open_run(run_dir)
        if run is None:
            st.stop()
        ds = run.dataset
        users = [str(u) for u in ds.user_ids]
        items = [str(i) for i in ds.item_ids]
    except Exception as e:  # a broken run folder must not show a traceback
        show_exception(e, "Loading the run")
        st.stop()
    return run_dir, background, run, users, items


# ---------------------------------------------------------------------------- one recommendation
def _fused_weights(run, run_dir: str) -> dict[str, float]:
    """The task weights of the fused score, starting from the Recommendations page's (empty: equal weights)."""
    fusable = [t.name for t in run.tasks if t.type in ("binary", "regression")]
    weights: dict[str, float] = {}
    if fusable:
        # start from the Recommendations page's weights (its last run), so that the fused score here is the
        # one shown there; new weights there give new sliders here (the key carries them)
        handoff = st.session_state.get("rec_weights") or {}
        start = handoff.get("weights") or {} if handoff.get("run_dir") == run_dir else {}
        tag = "_".join(f"{float(start.get(n, 0.0)):g}" for n in fusable) if start else "default"
        with st.expander("Task weights of the fused score", expanded=False):
            wcols = st.columns(len(fusable))
            for col, name in zip(wcols, fusable):
                value = float(start.get(name, 0.0)) if start else 1.0 / len(fusable)
                weights[name] = col.slider(name, 0.0, 1.0, min(1.0, value), 0.05,
                                           key=f"explain_w_{run_dir}_{name}_{tag}")
        if sum(weights.values()) <= 0:
            st.warning("All weights are zero: the fused score uses equal weights.")
            weights = {}
    return weights


def _class_choices(run, run_dir: str, user: str, item: str) -> dict[str, str]:
    """The class each multi-label task's waterfall explains (default: the most likely for the pair)."""
    classes: dict[str, str] = {}
    multilabel = [t.name for t in run.tasks if t.type in ("multilabel", "distribution")]
    if multilabel:
        pair = _pair(run_dir, user, item, run_version(run_dir))
        mcols = st.columns(min(3, len(multilabel)))
        for col, name in zip(mcols * len(multilabel), multilabel):
            probs = pair["tasks"][name]          # most likely class first
            classes[name] = col.selectbox(
                f"Class of {name} to explain", list(probs), index=0,
                format_func=lambda c, p=probs: f"{c} ({'share' if run.task(name).type == 'distribution' else 'probability'} {p[c]:.2f})",
                key=f"explain_class_{run_dir}_{user}_{item}_{name}",
                help="a multi-label task predicts one probability per class, a distribution task (the user's "
                     "interests) one share per class; its waterfall explains one class's logit (a distribution: its "
                     "log share) -- default: the most likely class for this pair")
    return classes


def local_view(run, run_dir: str, background: int, users: list[str], items: list[str]) -> None:
    """One recommendation (user, item): waterfalls per task, the fused score, the sentence."""
    ds = run.dataset
    if not users or not items:
        st.info("This run's data has no user or item ids, so there is no single recommendation to explain; "
                "the global summary below still shows what the model relies on.")
        return
    titles = {}
    if ds.item_info is not None and "title" in getattr(ds.item_info, "columns", []) \
            and len(ds.item_info) == len(items):
        titles = dict(zip(items, ds.item_info["title"].astype(str)))
    c1, c2 = st.columns([2, 3])
    user, item = pairs.pick_pair(run_dir, users, items, c1, c2,
                                 item_label=lambda i: f"{i} — {titles[i]}" if i in titles else i)
    weights = _fused_weights(run, run_dir)
    try:
        classes = _class_choices(run, run_dir, user, item)
        with st.spinner("Explaining (the first explanation of a run loads SHAP and builds the explainer) ..."):
            res = _explanation(run_dir, user, item, background, tuple(sorted(weights.items())),
                               tuple(sorted(classes.items())), run_version(run_dir))
    except Exception as e:
        show_exception(e, "Explaining")
        return

    label = f"{item} — {titles[item]}" if item in titles else item
    _explanation_view(res, user, label)


def _explanation_view(res: dict, user: str, label: str) -> None:
    """The explanation of one pair: the sentence, a waterfall per task, the values, the fused score, the JSON."""
    from mtlrec.figures import explain as fig  # plotly only once something is drawn

    st.subheader(f"Why user {md_text(user)} gets {md_text(label)}")
    st.success(md_text(res["sentence"]))
    xv.sensitive_notes(res)
    st.caption(f"{METHODS.get(res['method'], res['method'])} · {res['background']} background rows · {res['elapsed_ms']:.0f} ms · "
               f"base value + contributions = output for every task, in the units on its axis")
    logits = xv.logit_toggle()
    xv.units_caption(logits)
    xv.chain_caption(res)
    task_names = list(res["tasks"])
    cols = st.columns(min(2, len(task_names)))
    for j, name in enumerate(task_names):
        view, title, unit = xv.task_view(name, res["tasks"][name], logits)
        with cols[j % len(cols)]:
            st.plotly_chart(fig.waterfall_figure(view, title=title, unit=unit, features=res.get("features")),
                            key=f"explain_wf_{name}")
    xv.values_table(res)
    xv.id_profiles(res)
    fused = res.get("fused")
    if fused:
        _fused_view(res, fused)
    history_section(res.get("history"))
    with st.expander("Raw numbers (JSON, as `python -m mtlrec explain --json` prints them)"):
        st.json(res, expanded=False)


def _fused_view(res: dict, fused: dict) -> None:
    """The fused score split into feature groups, and into tasks."""
    from mtlrec.figures import explain as fig

    st.subheader("The fused score")
    st.metric("Fused score", f"{fused['score']:.3f}")
    st.caption("The score the Recommendations page shows and ranks by, Σ a_t·s_t (s_t: probability, or the "
               "predicted value scaled to [0, 1] by the training range), split into the same feature groups: "
               "each task's rise above its base value is shared out in proportion to its SHAP values.")
    f1, f2 = st.columns([3, 2])
    with f1:
        st.plotly_chart(fig.waterfall_figure({"base_value": fused["base_value"], "output": fused["score"],
                                              "contributions": fused["contributions"]},
                                             title=f"fused score {fused['score']:.3f} by feature",
                                             unit="fused score", features=res.get("features")),
                        key="explain_wf_fused")
    with f2:
        st.plotly_chart(fig.fused_by_task_figure(fused), key="explain_fused_tasks")


# ---------------------------------------------------------------------------- global view
def _global_section(run, run_dir: str, background: int) -> None:
    """What the model relies on overall: computed on a click (once per run and settings), then drawn."""
    st.divider()
    st.subheader("What the model relies on overall")
    g1, g2 = st.columns([1, 3])
    n_rows = int(g1.number_input("Rows", 50, 5000, 500, 50, key="explain_global_rows",
                                 help="test rows the mean |SHAP| is taken over"))
    summary = cached_global_summary(run_dir, n_rows, background)
    if g2.button("Compute the global summary", key="explain_global_go", icon=":material/insights:",
                 disabled=summary is not None):
        bar = st.progress(0.0, text="starting ...")
        try:
            global_summary(run_dir, n_rows, background, progress=lambda f, msg: bar.progress(f, text=msg))
            bar.progress(1.0, text="done")
        except Exception as e:
            show_exception(e, "The global summary")
        else:
            st.rerun()          # redraw with the cached summary (and the button disabled)
    if summary is None:
        st.caption("Feature importance per task, which inputs drive which shared units, and which shared units "
                   "(or experts) each task relies on. Computed once per run and settings, and kept with the run.")
    else:
        _global_view(summary)


def _global_view(summary: dict) -> None:
    """The global summary's figures: importance, inputs x shared units, towers, gates, experts."""
    from mtlrec.figures import explain as fig

    st.caption(f"{summary['n_rows']} rows · {METHODS.get(summary['importance_method'], '')} · "
               f"{summary['elapsed_ms'] / 1000:.1f} s")
    st.plotly_chart(fig.importance_figure(summary["importance"]), key="explain_importance")
    st.plotly_chart(fig.heatmap_figure(summary["heatmap"]), key="explain_heatmap")
    if "tower_reliance" in summary:
        st.plotly_chart(fig.tower_reliance_figure(summary["tower_reliance"]),
                        key="explain_towers")
    if "gates" in summary:
        st.plotly_chart(fig.gates_figure(summary["gates"]), key="explain_gates")
        if summary.get("gates_note"):
            st.caption(summary["gates_note"])
    if "expert_reliance" in summary:
        st.plotly_chart(fig.expert_reliance_figure(summary["expert_reliance"]), key="explain_experts")


def render() -> None:
    """The Explain page: the run, one recommendation, LIME and what-if, then the global view."""
    ensure_app_navigation()
    state = get_state()
    st.title("Explain a recommendation")
    st.caption("SHAP values per feature group: each task's waterfall goes from the base value (the mean over a "
               "background sample of training rows) through the contribution of every feature group to the "
               "model's output for this user and item — as a **probability** for binary tasks and for one class of a "
               "multi-label task (the logit one toggle away), in the **label's units** for a regression task "
               "(e.g. rating points).")

    pairs.take_request()                 # the Explain button on Recommendations: its pair
    runs = pairs.runs_with_pair(state.finished_run_dirs())
    if not runs:
        st.info("No finished run in this session yet: train a model on **Train**, then open a recommendation's "
                "**Explain** button (or come back here).")
        st.stop()

    run_dir, background, run, users, items = _run_section(runs)
    local_view(run, run_dir, background, users, items)
    explain_lime.local_section(run, run_dir, background)
    render_whatif(run, run_dir, explainer=lambda: explainer(run_dir, background))
    render_history_whatif(run, run_dir)
    _global_section(run, run_dir, background)
    explain_lime.dependence_section(run, run_dir, background)


render()
