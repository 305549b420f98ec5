"""The task chain on Tasks & model: a "Given" select box per task, the chain's diagram and formulas
(`mtlrec.chain`)."""
from __future__ import annotations

import streamlit as st

from mtlrec.chain import as_specs, chain_dot, check_chain, describe
from mtlrec.errors import DataError
from pages.ui.messages import md_text, show_data_error

UNCONDITIONAL = "none"          # short: the column is narrow


def given_choice(task: dict, tasks: list[dict], container, key: str) -> str:
    """The parent ``task`` is given ("" = none): any other binary task of ``tasks``."""
    opts = [UNCONDITIONAL] + [t["name"] for t in tasks if t is not task and t.get("type") == "binary" and t.get("name")]
    cur = task.get("given") or ""
    if cur and cur not in opts:            # kept and shown as missing, never replaced unasked
        opts.append(cur)
    names = {UNCONDITIONAL} | {t.get("name") for t in tasks}
    pick = container.selectbox("Given", opts, index=opts.index(cur) if cur else 0, key=key,
                               format_func=lambda n: n if n in names else f"{n} (not a task)",
                               help="none: the task is unconditional. Or make it conditional on a binary task (like given interact): its "
                                    "loss and metrics count only the rows where that task's label is 1, and "
                                    "lists rank it by the product along the chain, p(interact ∧ like) = "
                                    "p(interact) · p(like | interact)")
    return "" if pick == UNCONDITIONAL else pick


def show_chain(tasks: list[dict]) -> None:
    """The chain's diagram (each edge "given") and its formulas; nothing without a chain."""
    dot = chain_dot(tasks)
    if dot is None:
        return
    try:
        check_chain(as_specs(tasks))
    except DataError as e:
        show_data_error(e)
        return
    st.markdown("**The task chain**")
    left, right = st.columns([2, 3], vertical_alignment="center")
    with left:
        st.graphviz_chart(dot, width="content")
    with right:
        for line in describe(as_specs(tasks)):
            st.markdown(f"- {md_text(line)}")
        st.caption("Each chained task's loss and metrics count its own space only (the rows where its parent's "
                   "label is 1; a regression task never counts sampled negatives). Recommendations, Explain and "
                   "the ranking metrics use the entire-space probability, the product along the chain.")


def offer_recommended_chain(state, key: str) -> bool:
    """The one-click recommended chain for ratings data (`mtlrec.app.workflow.recommended_chain`): sets the
    sampled negatives, the derived label like and the three tasks (the genres task only when ticked).
    True when it was applied (the caller prepares the data again and reruns)."""
    import dataclasses
    import uuid

    from mtlrec.app.workflow import recommended_chain
    if state.raw is None or state.spec is None:
        return False
    rec = recommended_chain(state.spec, state.raw, state.prep)
    if rec is None:
        return False
    if any(t.get("given") for t in state.tasks):
        return False                      # the visitor has a chain already (e.g. the sample's)
    with st.container(border=True):
        st.markdown(f"**Ratings data:** the recommended chain ranks what a user will engage with *and* like — "
                    f"{md_text(rec['note'])}; {rec['prep']['negative_ratio']:g} sampled negatives per observed "
                    "row (popularity-weighted) make interact, and ESMM learns the chain over the entire space.")
        extra = [t for t in rec["optional"]
                 if st.checkbox(f"also learn {t['name']} as an auxiliary task (weight {t['weight']:g})", value=False,
                                key=f"{key}_opt_{t['name']}",
                                help="an item property: useful only as a helper task at a low loss weight")]
        if not st.button(f"Use the recommended chain: {rec['title']}", key=key, icon=":material/account_tree:",
                         help="replaces the tasks below and turns on sampled negatives (Data, Preprocessing)"):
            return False
    state.prep = dataclasses.replace(state.prep, **rec["prep"])
    state.model = dict(rec["model"])       # the architecture the chain ranks best with (its defaults)
    state.tasks = [{**t, "_uid": uuid.uuid4().hex[:8]} for t in rec["tasks"] + extra]
    state.counter += 1          # fresh widget keys: the editors show the new tasks
    return True
