"""The weighting choice of Tasks & model: each method with what it does and what it cost on the
benchmark (`mtlrec.weighting.describe`; the figures live in `mtlrec.weighting.facts.MEASURED`)."""
from __future__ import annotations

import streamlit as st

from mtlrec.weighting import WEIGHTINGS, describe, methods_table
from mtlrec.weighting.facts import MEASURED, choice_label, measured_line


def _label(name: str) -> str:
    return choice_label(name, describe(name)["measured"])


def weighting_choice(current: str, key: str) -> str:
    """The selectbox of the methods (each with its benchmark Δm and cost), a line on the chosen one,
    a warning when it did worse than single-task training on the benchmark, and the full table."""
    names = list(WEIGHTINGS)
    chosen = st.selectbox(
        "Loss weighting", names, index=names.index(current) if current in names else 0, key=key,
        format_func=_label,
        help="Beside each method: Δm, its test metrics against single-task models trained alike (negative = "
             f"worse than training each task alone), and its time per epoch against static's, measured on "
             f"{MEASURED['data']} with {MEASURED['arch']} over {MEASURED['seeds']} seeds "
             f"({MEASURED['source']}). On your data the figures will differ; the order is a guide.")
    d = describe(chosen)
    how = ("combines the tasks' **gradients** on the shared layers (the loss weights above are not used)"
           if d["combines"] == "gradients" else
           "weights the tasks' **losses**" + (" with the loss weights above" if chosen == "static" else
                                              " with weights it sets itself (the loss weights above are not used)"))
    st.caption(f"**{d['label']}** {how}: {d['summary']}. {measured_line(d['measured'])}")
    dm = (d["measured"] or {}).get("delta_m_pct")
    if dm is not None and dm < 0:
        static = describe("static")["measured"]
        st.warning(f"On the benchmark, {d['label']} did **worse than training each task alone** "
                   f"(Δm {dm:+.2f} % on average)"
                   + (f"; static weighting reached Δm {static['delta_m_pct']:+.2f} % there" if static else "")
                   + ". Try it against static on your data before relying on it.", icon=":material/warning:")
    with st.expander("What each method does, and what it cost on the benchmark", icon=":material/table:"):
        st.dataframe(methods_table(), hide_index=True, width="stretch", key=f"{key}_table")
        st.caption(f"Measured by `{MEASURED['source']}` ({MEASURED['data']}, {MEASURED['arch']}, "
                   f"{MEASURED['seeds']} seeds, {MEASURED['machine']}). Δm is the mean ± standard deviation over "
                   "the seeds: differences smaller than the spread are within seed noise. Gradient methods take one "
                   "backward pass per task, hence their cost.")
    return chosen
