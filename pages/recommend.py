"""Recommendations: one user's history beside their top-K list; task weights re-rank; CSV; Explain."""
from __future__ import annotations

import re

import streamlit as st

from mtlrec.export import csv_bytes
from mtlrec.serve.recommend import ranked_by
from mtlrec.app.workflow import rec_frame, user_history
from pages.ui.actions import load_run_cached, open_run, run_version
from pages.ui.downloads import download
from pages.ui.messages import md_text, show_exception
from pages.ui.state import (ensure_app_navigation, explain_page_exists, get_state, need_run, request_explanation,
                             synced_selectbox)
from pages.ui.tables import show_table


@st.cache_data(show_spinner="Scoring the catalogue for this user ...", max_entries=64)
def _scores(rd: str, user: str, version: str) -> dict:
    """Per-task predictions of every item for ``user``: the one model pass of a user (a slider
    move only re-weights them, see `_recs`)."""
    from mtlrec.serve import recommend as rec
    r = load_run_cached(rd)
    return rec.score_items(r, rec.user_index(r, user))


@st.cache_data(show_spinner=False, max_entries=256)
def _recs(rd: str, user: str, k: int, weights: tuple, version: str) -> list[dict]:
    from mtlrec.explain.history import with_history_reasons
    from mtlrec.serve.recommend import recommend_from_scores
    run = load_run_cached(rd)
    recs = recommend_from_scores(run, user, _scores(rd, user, version), k=k, weights=dict(weights))
    return with_history_reasons(run, user, recs, dict(weights))     # one batched ablation; none without history


def _user_section(ds) -> tuple[str, int]:
    """The user picker and Top K; returns (user, k)."""
    users = [str(u) for u in ds.user_ids]
    c1, c2 = st.columns([3, 1])
    user = synced_selectbox(f"User ({len(users):,}; type to search)", users, key="rec_user", attr="rec_user",
                            container=c1)
    k = int(c2.number_input("Top K", 1, 100, 10, key="rec_k"))
    return user, k


def _history_section(ds, user: str) -> None:
    """The items the user interacted with."""
    hist = user_history(ds, user)
    st.markdown(f"#### History of user {md_text(user)} ({len(hist)} items)")
    show_table(hist, hide_index=True, height=420, key="rec_history")


# The list is one row per item, each a horizontal container of fixed-width cells beside the item's
# stretching one: ranks, numbers, headers and the Explain button keep the room their text needs at
# any page width (relative columns gave "1 0.", "suppor t" and "Ex…" at 1500 px); titles wrap by word.
RANK_W, NUMBER_W, BUTTON_W = 40, 52, 116
SUPPORT_HELP = "the item's number of training interactions: a score resting on few of them rests on little evidence"


def _text_width(label: str, least: int) -> int:
    """Pixels a cell needs for the caption ``label`` (about 7.5 px a character), at least ``least``."""
    return max(least, int(7.5 * len(label)) + 12)


def _list_header(tasks: list[str]) -> dict:
    """The header row; returns the cell widths the rows use (a score column as wide as its task's name)."""
    widths = {"tasks": [_text_width(t, NUMBER_W) for t in tasks], "support": _text_width("support", 0) + 24}
    head = st.container(horizontal=True, vertical_alignment="bottom", wrap=False, gap="xsmall")
    head.caption("\\#", width=RANK_W)
    head.caption("item", width="stretch")
    for t, w in zip(tasks, widths["tasks"]):
        head.caption(md_text(t), width=w, text_alignment="right")
    head.caption("fused", width=NUMBER_W, text_alignment="right")
    head.caption("support", width=widths["support"], text_alignment="right", help=SUPPORT_HELP)
    head.space(BUTTON_W)
    return widths


def _list_row(row: dict, task_cols: list[str], top_cols: list[str], widths: dict, run_dir: str, user: str) -> None:
    line = st.container(horizontal=True, vertical_alignment="center", wrap=False, gap="xsmall")
    line.markdown(f"**{row['rank']}.**", width=RANK_W)
    sub = row.get("text") or ""
    tops = " · ".join(f"{c.split(':', 1)[1]}: {row[c]}" for c in top_cols)
    # uploaded titles, descriptions and ids are text, never markdown (no links, images, styling)
    line.markdown(f"**{md_text(row['title'])}** · {md_text(row['item_id'])}"
                  + (f"  \n:gray[{md_text(sub)}]" if sub else "")
                  + (f"  \n:green[{md_text(row['because'])}]" if row.get("because") else "")
                  + (f"  \n:violet[{md_text(tops)}]" if tops else ""), width="stretch")
    for c, w in zip(task_cols, widths["tasks"]):
        line.markdown(f"{row[c]:.3f}", width=w, text_alignment="right")
    line.markdown(f"**{row['fused']:.3f}**", width=NUMBER_W, text_alignment="right")
    line.markdown(f"{int(row.get('support', 0)):,}", width=widths["support"], text_alignment="right")
    if line.button("Explain", key=f"explain_{row['item_id']}", icon=":material/psychology:", width=BUTTON_W,
                   disabled=not explain_page_exists(),
                   help=None if explain_page_exists() else "explanations are not installed yet"):
        request_explanation(run_dir, user, row["item_id"])


@st.fragment
def ranked_list(run, run_dir: str, user: str, k: int, scored: list[dict]) -> None:
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
        recs = _recs(run_dir, user, k, tuple(sorted(weights.items())), run_version(run_dir))
    except Exception as e:
        show_exception(e, "Recommending")
        return

    ds = run.dataset
    frame = rec_frame(recs, ds)
    st.markdown(f"#### Top {len(frame)} for user {md_text(user)}")
    st.caption(md_text(ranked_by(run, weights)))
    task_cols = [c for c in frame.columns if c.startswith("score:")]
    with st.container(key="rec_list"):
        widths = _list_header([c.split(":", 1)[1] for c in task_cols])
        for row in frame.to_dict("records"):
            _list_row(row, task_cols, [c for c in frame.columns if c.startswith("top:")], widths, run_dir, user)
    safe_user = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(user))[:60]
    download("Download as CSV", csv_bytes(frame), file_name=f"recommendations_user_{safe_user}.csv",
             mime="text/csv", key="rec_download")


def render() -> None:
    """The Recommendations page of the current run."""
    ensure_app_navigation()
    get_state()
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

    user, k = _user_section(ds)
    left, right = st.columns([1, 2], gap="large")
    with left:
        _history_section(ds, user)
    with right:
        ranked_list(run, run_dir, user, k, scored)


render()
