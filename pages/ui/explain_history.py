"""The Explain page's history parts: "Because of the user's history" (each history item's contribution
to the pair's fused score and every task, the DIN attention weights beside them, the sentence) and the
history what-if ("remove from history", "add an item"), hypothetical and never saved.

The numbers come from `mtlrec.explain.history` and `mtlrec.serve.whatif.history_change`.
"""
from __future__ import annotations

import streamlit as st

from pages.ui.messages import md_text, show_exception

RESULT_KEY = "whatif_history_result"     # session: the last history what-if (run, user, item, edit) and its result
TOP_K = 10


def history_section(history: dict | None) -> None:
    """The explanation's history part (nothing for a run without a history input)."""
    if history is None:
        return
    import pandas as pd

    from mtlrec.figures import explain as fig
    st.subheader("Because of the user's history")
    st.success(md_text(history["sentence"]))
    if not history["items"]:
        return
    st.caption(md_text(f"Each of the user's last {history['n_items']} items: how much the score drops when it is "
                       f"removed from the history, the others kept (exact ablation; what the what-if below shows)."))
    st.plotly_chart(fig.history_figure(history), key="explain_history_chart")
    tasks = list(history["units"])
    rows = [{"#": e["recency"], "item": e["item"], "title": e["title"] or "", "given": e["value_text"],
             **({"fused": round(e["fused"], 4)} if e["fused"] is not None else {}),
             **{t: round(e["contributions"][t], 4) for t in tasks},
             **({"attention": round(e["attention"], 3)} if e["attention"] is not None else {})}
            for e in history["items"]]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="explain_history_table")
    units = "; ".join(f"{t}: {u}" for t, u in history["units"].items())
    st.caption(md_text(f"Recency #1 is the most recent item. Units — {units}; fused: the fused score."))
    if history.get("attention_note"):
        st.info(md_text(history["attention_note"]), icon=":material/info:")


def render_history_whatif(run, run_dir: str) -> None:
    """The history what-if below the feature what-if, for the explained pair."""
    from mtlrec.serve.history import has_history_input, history_entries, user_history, value_label
    if not has_history_input(run):
        return
    user = st.session_state.get(f"explain_user_{run_dir}")
    item = st.session_state.get(f"explain_item_{run_dir}")
    if user is None or item is None:
        return
    st.markdown("#### What if the history were different…")
    st.caption("Remove one item from the user's history, or add one as their most recent interaction — "
               "**hypothetical**: nothing is saved to the run or the workspace.")
    entries = history_entries(run, *user_history(run, user))[::-1]
    tag = f"{run_dir}_{user}_{item}"
    remove_col, add_col = st.columns(2, gap="large")
    try:
        edit = None
        with remove_col:
            edit = _remove_form(entries, tag) or edit
        with add_col:
            edit = _add_form(run, tag, value_label(run)) or edit
        if edit is not None:
            from mtlrec.serve.whatif import history_change
            with st.spinner("Rescoring with the edited history ..."):
                st.session_state[RESULT_KEY] = {"key": (run_dir, user, item), "edit": edit,
                                                "change": history_change(run, user, item, k=TOP_K, **edit)}
    except Exception as e:
        show_exception(e, "The history what-if")
        return
    res = st.session_state.get(RESULT_KEY)
    if res and res["key"] == (run_dir, user, item):
        _show(res["change"], item)


def _remove_form(entries: list[dict], tag: str) -> dict | None:
    if not entries:
        st.caption("This user's history is empty: there is nothing to remove.")
        return None
    with st.form(key=f"whatif_hist_remove_{tag}", border=True):
        names = {e["item"]: f"#{e['recency']} {e['name']} {e['value_text']}".strip() for e in entries}
        pick = st.selectbox("Remove from history", list(names), format_func=lambda i: names[i],     # plain text
                            key=f"whatif_hist_pick_{tag}")
        go = st.form_submit_button("Score without it", icon=":material/remove_circle:",
                                   key=f"whatif_hist_remove_go_{tag}")
    return {"remove": pick} if go else None


def _add_form(run, tag: str, label: str) -> dict | None:
    from mtlrec.serve.history import item_titles
    ds = run.dataset
    titles = item_titles(run)
    items = [str(i) for i in ds.item_ids]
    with st.form(key=f"whatif_hist_add_{tag}", border=True):
        pick = st.selectbox(f"Add an item ({len(items):,})", items, key=f"whatif_hist_add_item_{tag}",
                            format_func=lambda i: f"{i} — {titles[ds.item_index(i)]}" if titles else i)
        rating = None
        if label:
            rating = st.number_input(f"with the {md_text(label)} given", value=4.0, step=0.5,
                                     key=f"whatif_hist_add_rating_{tag}")
        go = st.form_submit_button("Score with it", icon=":material/add_circle:", key=f"whatif_hist_add_go_{tag}")
    return {"add": pick, "rating": rating} if go else None


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dict):
        c = next(iter(v), None)
        return f"{c} ({v[c]:.2f})" if c is not None else ""
    return "" if v is None else str(v)


def _rank(r: int) -> str:
    return "seen (not in the list)" if r == 0 else f"#{r}"


def _show(change: dict, item: str) -> None:
    import pandas as pd
    e = change["history_edit"]
    what = (f"without {e['remove_name']}" if e["remove"] else "") + (" and " if e["remove"] and e["add"] else "") + \
        (f"with {e['add_name']}" + (f" rated {e['rating']:g}" if e["rating"] is not None else "") if e["add"] else "")
    st.warning(f"**Hypothetical — not saved.** User {md_text(change['user'])}'s history {md_text(what)}.",
               icon=":material/science:")
    before, after = change["before"], change["after"]
    rows = [{"": n, "before": _fmt(before["tasks"][n]), "after": _fmt(v)} for n, v in after["tasks"].items()]
    rows.append({"": "fused score", "before": _fmt(before["score"]), "after": _fmt(after["score"])})
    rows.append({"": "rank", "before": _rank(before["rank"]), "after": _rank(after["rank"])})
    delta = after["score"] - before["score"]
    st.markdown(f"**Item {md_text(item)}: fused score {before['score']:.3f} → {after['score']:.3f} "
                f"({delta:+.4f}), rank {md_text(_rank(before['rank']))} → {md_text(_rank(after['rank']))}**")
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.table(pd.DataFrame(rows), hide_index=True)
    with right:
        st.markdown(f"##### Top {len(change['items'])} with the edited history")
        st.table(pd.DataFrame([{"rank": r["rank"], "item": r["item"], **({"title": r["title"]} if "title" in r else {}),
                                "fused": f"{r['score']:.3f}"} for r in change["items"]]), hide_index=True)
