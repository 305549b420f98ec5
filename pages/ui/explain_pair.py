"""The pair the Explain page explains (run, user, item): kept in ``AppState.explain_pair``, which the
workspace saves, so a reload or a bookmark explains the same recommendation.

A request from Recommendations (``st.session_state["explain_request"]``) becomes the pair once. Without
a pair, the user is the one picked on Recommendations and the item is that user's top recommendation
(never an item the user already rated). The widgets are set from the pair before they are drawn and
only the visitor's own change writes it back (as `pages.ui.state.synced_selectbox` does).
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages.ui.actions import load_run_cached, run_version
from pages.ui.state import get_state

_APPLIED = "explain_request_applied"
_FIELDS = ("run_dir", "user", "item")


def take_request() -> None:
    """A new ``explain_request`` (the Explain button on Recommendations) becomes the explained pair."""
    req = st.session_state.get("explain_request")
    if isinstance(req, dict) and req != st.session_state.get(_APPLIED):
        get_state().explain_pair = {k: str(req[k]) for k in _FIELDS if req.get(k) is not None}
        st.session_state[_APPLIED] = dict(req)


def runs_with_pair(runs: list[str]) -> list[str]:
    """The finished runs, with the pair's run first when it is a run folder not among them (e.g. opened
    through a link)."""
    state = get_state()
    rd = (state.explain_pair or {}).get("run_dir")
    if rd and rd not in runs and (Path(rd) / "model.pt").exists() and state.readable(rd):
        return [rd] + list(runs)
    return list(runs)


def pick_run(container, runs: list[str]) -> str:
    """The run selectbox: the pair's run, else the selected run, else the newest."""
    state = get_state()
    pair = state.explain_pair or {}
    run = next((r for r in (pair.get("run_dir"), state.selected_run) if r in runs), runs[0])
    if pair.get("run_dir") != run:
        state.explain_pair = {"run_dir": run}
    st.session_state["explain_run"] = run

    def changed() -> None:
        get_state().explain_pair = {"run_dir": st.session_state["explain_run"]}

    container.selectbox("Run", runs, key="explain_run", on_change=changed, format_func=lambda p: Path(p).name)
    return run


@st.cache_data(show_spinner=False, max_entries=256)
def _top_item(run_dir: str, user: str, weights: tuple, version: str) -> str | None:
    """The user's top recommendation (items the user interacted with left out), None when there is none."""
    from mtlrec.errors import DataError
    from mtlrec.serve.recommend import recommend
    try:
        recs = recommend(load_run_cached(run_dir), user, k=1, weights=dict(weights) or None, item_info=False)
    except DataError:
        return None
    return recs[0]["item"] if recs else None


def _default_item(run_dir: str, user: str, items: list[str]) -> str:
    handoff = st.session_state.get("rec_weights") or {}
    weights = handoff.get("weights") or {} if handoff.get("run_dir") == run_dir else {}
    top = _top_item(run_dir, user, tuple(sorted(weights.items())), run_version(run_dir))
    return top if top in items else items[0]


def pick_pair(run_dir: str, users: list[str], items: list[str], c_user, c_item, item_label) -> tuple[str, str]:
    """The user and item selectboxes of ``run_dir``, set from (and writing) the explained pair."""
    state = get_state()
    pair = dict(state.explain_pair or {"run_dir": run_dir})
    user = next((u for u in (pair.get("user"), state.rec_user) if u in users), users[0])
    item = pair.get("item") if pair.get("user") == user and pair.get("item") in items \
        else _default_item(run_dir, user, items)
    state.explain_pair = {"run_dir": run_dir, "user": user, "item": item}
    ukey, ikey = f"explain_user_{run_dir}", f"explain_item_{run_dir}"
    st.session_state[ukey], st.session_state[ikey] = user, item

    def user_changed() -> None:       # another user: that user's top recommendation
        get_state().explain_pair = {"run_dir": run_dir, "user": st.session_state[ukey]}

    def item_changed() -> None:
        get_state().explain_pair = {"run_dir": run_dir, "user": st.session_state[ukey],
                                    "item": st.session_state[ikey]}

    c_user.selectbox(f"User ({len(users):,}; type to search)", users, key=ukey, on_change=user_changed)
    c_item.selectbox(f"Item ({len(items):,})", items, key=ikey, on_change=item_changed, format_func=item_label,
                     help="the user's top recommendation unless you pick another item")
    return user, item
