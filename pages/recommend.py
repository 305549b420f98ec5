"""Recommendations: one user's history beside their top-K list; task weights re-rank; CSV; Explain."""
from __future__ import annotations

import re

import streamlit as st

from mtlrec.export import csv_bytes
from mtlrec.workflow import rec_frame, user_history
from pages.ui.actions import load_run_cached, open_run
from pages.ui.messages import md_text, show_exception
from pages.ui.state import (ensure_app_navigation, explain_page_exists, get_state, need_run, request_explanation,
                             synced_selectbox)

ensure_app_navigation()

state = get_state()
st.title("Recommendations")
run_dir = need_run("Recommendations")
if run_dir is None:
    st.stop()
run = open_run(run_dir)
if run is None:
    st.stop()
ds = run.dataset
tasks_cfg = [t for t in (run.config.tasks if hasattr(run.config, "tasks") else run.config["tasks"])]
scored = [t for t in tasks_cfg if t.get("type") in ("binary", "regression")]

users = [str(u) for u in ds.user_ids]
c1, c2 = st.columns([3, 1])
user = synced_selectbox(f"User ({len(users):,}; type to search)", users, key="rec_user", attr="rec_user",
                        container=c1)
k = int(c2.number_input("Top K", 1, 100, 10, key="rec_k"))


@st.cache_data(show_spinner="Scoring the catalogue for this user ...", max_entries=64)
def _scores(rd: str, user: str) -> dict:
    """Per-task predictions of every item for ``user``: the one model pass of a user (a slider
    move only re-weights them, see `_recs`)."""
    from mtlrec import recommend as rec
    r = load_run_cached(rd)
    return rec.score_items(r, rec._user_index(r, user))


@st.cache_data(show_spinner=False, max_entries=256)
def _recs(rd: str, user: str, k: int, weights: tuple) -> list[dict]:
    from mtlrec.recommend import recommend_from_scores
    return recommend_from_scores(load_run_cached(rd), user, _scores(rd, user), k=k, weights=dict(weights))


left, right = st.columns([2, 3], gap="large")
with left:
    hist = user_history(ds, user)
    st.markdown(f"#### History of user {md_text(user)} ({len(hist)} items)")
    st.dataframe(hist, hide_index=True, height=420, key="rec_history")


@st.fragment
def ranked_list() -> None:
    """Task weights and the top-K list: a slider move reruns only this part (the user's history and
    the sidebar stay as they are) and only re-weights the user's cached scores."""
    st.markdown("**Task weights of the fused score** — move a slider and the list re-ranks at once.")
    wcols = st.columns(max(1, len(scored)))
    weights = {}
    for col, t in zip(wcols, scored):
        weights[t["name"]] = col.slider(t["name"], 0.0, 1.0, 1.0 / max(1, len(scored)) if len(scored) > 1 else 1.0, 0.05,
                                        key=f"rec_w_{run_dir}_{t['name']}")
    if sum(weights.values()) <= 0:
        st.warning("All weights are zero: the list falls back to equal weights.")
        weights = {n: 1.0 for n in weights}
    st.session_state["rec_weights"] = {"run_dir": run_dir, "weights": dict(weights)}   # Explain starts from them

    try:
        recs = _recs(run_dir, user, k, tuple(sorted(weights.items())))
    except Exception as e:
        show_exception(e, "Recommending")
        return

    frame = rec_frame(recs, ds)
    st.markdown(f"#### Top {len(frame)} for user {md_text(user)}")
    task_cols = [c for c in frame.columns if c.startswith("score:")]
    widths = [0.4, 4] + [1] * len(task_cols) + [1, 1, 1.8]
    head = st.columns(widths)
    head[0].caption("#")
    head[1].caption("item")
    for h, c in zip(head[2:], task_cols):
        h.caption(md_text(c.split(":", 1)[1]))
    head[2 + len(task_cols)].caption("fused")
    head[3 + len(task_cols)].caption("support", help="the item's number of training interactions: a score "
                                                     "resting on few of them rests on little evidence")
    for i, row in enumerate(frame.to_dict("records")):
        cols = st.columns(widths, vertical_alignment="center")
        cols[0].markdown(f"**{row['rank']}.**")
        sub = row.get("text") or ""
        tops = " · ".join(f"{c.split(':', 1)[1]}: {row[c]}" for c in frame.columns if c.startswith("top:"))
        # uploaded titles, descriptions and ids are text, never markdown (no links, images, styling)
        cols[1].markdown(f"**{md_text(row['title'])}** · {md_text(row['item_id'])}"
                         + (f"  \n:gray[{md_text(sub)}]" if sub else "")
                         + (f"  \n:violet[{md_text(tops)}]" if tops else ""))
        for cc, c in zip(cols[2:], task_cols):
            cc.markdown(f"{row[c]:.3f}")
        cols[2 + len(task_cols)].markdown(f"**{row['fused']:.3f}**")
        cols[3 + len(task_cols)].markdown(f"{int(row.get('support', 0)):,}")
        if cols[-1].button("Explain", key=f"explain_{row['item_id']}", icon=":material/psychology:",
                           disabled=not explain_page_exists(),
                           help=None if explain_page_exists() else "explanations are not installed yet"):
            request_explanation(run_dir, user, row["item_id"])
    safe_user = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(user))[:60]
    st.download_button("Download as CSV", csv_bytes(frame), file_name=f"recommendations_user_{safe_user}.csv",
                       mime="text/csv", icon=":material/download:", key="rec_download")


with right:
    ranked_list()
