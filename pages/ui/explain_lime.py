"""Explain page sections: LIME beside SHAP and the experts (gates) for the pair picked above,
and a SHAP dependence plot in the global view. Thin: the numbers come from
`mtlrec.explain.lime`, `mtlrec.explain.gates` and `mtlrec.explain.dependence`."""
from __future__ import annotations

import streamlit as st

from pages.ui import explain_cache as cache
from pages.ui.actions import load_run_cached, run_version
from pages.ui.messages import md_text, show_exception

LIME_SHOWN = "explain_lime_shown"      # session: the LIME results this session asked for (kept in explain_cache)
DEP_SHOWN = "explain_dep_shown"        # session: the dependence plots this session asked for


@st.cache_data(show_spinner=False, max_entries=64)
def _gates(run_dir: str, user: str, item: str, version: str) -> dict:
    from mtlrec.explain.gates import pair_gates
    return pair_gates(load_run_cached(run_dir), user, item)


def _shown(shown: set, key: tuple, what: str, result):
    """``result()`` (from the shared cache) when this session asked for ``key``, else None; a failure
    (computed again after the cache let it go) is said, and the button offered again."""
    if key not in shown:
        return None
    try:
        return result()
    except Exception as e:
        shown.discard(key)
        show_exception(e, what)
        return None


def _lime_class(run, run_dir: str, user: str, item: str, task: str, col) -> str | None:
    """The class of a multi-label task LIME explains: the one picked for its waterfall in the
    local view (the same session-state key), else a picker here. None for other tasks."""
    spec = run.task(task)
    if spec.type not in ("multilabel", "distribution"):
        return None
    picked = st.session_state.get(f"explain_class_{run_dir}_{user}_{item}_{task}")
    if picked is not None:
        col.caption(md_text(f"Class **{picked}**, as in the waterfall above."))
        return str(picked)
    from mtlrec.serve.recommend import class_names
    return col.selectbox(f"Class of {task}", class_names(run, spec), key=f"explain_lime_class_{run_dir}_{task}",
                         help="a multi-label task is explained one class at a time (its logit)")


def local_section(run, run_dir: str, background: int) -> None:
    """Under the waterfalls: the experts of this pair (MMoE/PLE) and LIME beside SHAP, for the
    user and item picked in the local view."""
    user = st.session_state.get(f"explain_user_{run_dir}")
    item = st.session_state.get(f"explain_item_{run_dir}")
    if user is None or item is None:
        return
    st.subheader("Experts for this pair")
    try:
        g = _gates(run_dir, str(user), str(item), run_version(run_dir))
    except Exception as e:
        show_exception(e, "Reading the gates")
        g = None
    if g is not None and not g["has_gates"]:
        st.caption(md_text(g["note"][0].upper() + g["note"][1:] + "."))
    elif g is not None:
        from mtlrec.explain.gates import gates_frame
        st.caption(md_text(f"How much each task's gate weighs each expert for user {user} and item {item}, beside "
                           f"the mean over {g['n_rows']} test rows (the global view's gates chart). "
                           + ("PLE: last-level gates, the task's own experts first, then the shared experts."
                              if g["arch"] == "ple" else "")))
        st.dataframe(gates_frame(g), hide_index=True, key="explain_pair_gates",
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in ("this pair", "average", "difference")})

    st.subheader("LIME beside SHAP")
    names = [t.name for t in run.tasks]
    c1, c2 = st.columns([2, 3])
    task = c1.selectbox("Task", names, key=f"explain_lime_task_{run_dir}")
    cls = _lime_class(run, run_dir, str(user), str(item), task, c1)
    shown = st.session_state.setdefault(LIME_SHOWN, set())    # what this session asked for (then drawn from the cache)
    key = (run_dir, run_version(run_dir), str(user), str(item), task, cls, int(background))
    if c2.button("Compare with LIME", key="explain_lime_go", icon=":material/compare_arrows:",
                 disabled=key in shown,
                 help="a local linear surrogate (the lime package, 1000 samples) over the same feature groups"):
        try:
            with st.spinner("Fitting LIME ..."):
                cache.lime(run_dir, user, item, task, cls, background)
        except Exception as e:
            show_exception(e, "LIME")
        else:
            shown.add(key)
            st.rerun()          # redraw with the result (and the button disabled)
    res = _shown(shown, key, "LIME", lambda: cache.lime(run_dir, user, item, task, cls, background))
    if res is None:
        st.caption("LIME fits a local linear model to the task's output with feature groups switched on and off; "
                   "compare its ranking of the groups with SHAP's.")
        return
    from mtlrec.explain.lime import lime_figure
    same = res["top_lime"] == res["top_shap"]
    st.markdown(md_text(f"Rank agreement (Spearman, |importance|): **{res['agreement']:.2f}** · top group: "
                        f"SHAP {res['top_shap']}, LIME {res['top_lime']}"
                        + (" (the same)" if same else " (they differ)")))
    st.plotly_chart(lime_figure(res), key="explain_lime_fig")
    st.caption(md_text(f"{res['n_samples']} samples · {res['lime_ms']:.0f} ms · {res['note']}"))


def dependence_section(run, run_dir: str, background: int) -> None:
    """In the global view: a SHAP dependence plot of a chosen group, coloured by another."""
    from mtlrec.explain.dependence import plottable_groups
    st.subheader("Dependence plot")
    groups = plottable_groups(run)
    if not groups:
        st.info("No feature group with a single value to plot (ids, numeric or categorical features).")
        return
    names = list(groups)
    default = next((i for i, g in enumerate(names) if groups[g] != "support"), 0)
    c1, c2, c3 = st.columns(3)
    group = c1.selectbox("Feature group", names, index=default, key=f"explain_dep_group_{run_dir}",
                         help="ids are shown by their support: the number of training rows of the user or item")
    others = ["(none)"] + [g for g in names if g != group]
    colour = c2.selectbox("Colour by", others, index=min(1, len(others) - 1), key=f"explain_dep_color_{run_dir}")
    task = c3.selectbox("Task", [t.name for t in run.tasks], key=f"explain_dep_task_{run_dir}")
    cls = None
    if run.task(task).type in ("multilabel", "distribution"):
        from mtlrec.explain.dependence import default_class
        from mtlrec.serve.recommend import class_names
        names_k = class_names(run, run.task(task))
        cls = c3.selectbox(f"Class of {task}", names_k, index=default_class(run, task),
                           key=f"explain_dep_class_{run_dir}_{task}",
                           help="a multi-label task is plotted one class at a time (its logit); "
                                "default: the class most often positive in training")
    shown = st.session_state.setdefault(DEP_SHOWN, set())
    b1, b2 = st.columns([1, 3], vertical_alignment="bottom")
    rows = int(b1.number_input("Rows", 20, 2000, 500, 20, key=f"explain_dep_rows_{run_dir}",
                               help="test pairs to plot; fewer rows leave a slow model more background rows"))
    colour = None if colour == "(none)" else colour
    key = (run_dir, run_version(run_dir), group, colour, task, cls, rows, int(background))
    if b2.button("Draw the dependence plot", key="explain_dep_go", icon=":material/scatter_plot:",
                 disabled=key in shown):
        try:
            with st.spinner(f"SHAP values of {rows} test rows ..."):
                cache.dependence(run_dir, group, colour, task, cls, rows, background)
        except Exception as e:
            show_exception(e, "The dependence plot")
        else:
            shown.add(key)
            st.rerun()
    data = _shown(shown, key, "The dependence plot",
                  lambda: cache.dependence(run_dir, group, colour, task, cls, rows, background))
    if data is None:
        st.caption("Each dot is one test pair: the group's value (original scale; ids: training rows of the user "
                   "or item) against its SHAP contribution to the task.")
        return
    from mtlrec.explain.dependence import dependence_figure
    st.plotly_chart(dependence_figure(data), key="explain_dep_fig")
    st.caption(f"{data['n_rows']} test rows · {data['method']} SHAP over {data['background']} background rows · "
               f"{data['elapsed_ms'] / 1000:.1f} s")
    if data.get("warning"):
        st.warning(md_text(data["warning"]), icon=":material/warning:")
