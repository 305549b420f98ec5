"""The Explain page's "What if…" section: change the explained user's features (or describe a new
user by features only) and see, marked hypothetical and never saved, how the pair's scores and
rank move, the hypothetical user's top list and the SHAP waterfall of the hypothetical pair.

All numbers come from `mtlrec.serve.whatif`; nothing is written to the workspace or the run. A value the
model cannot score (far outside the training range) is refused with what / where / fix; one outside
the training range is scored with a warning.
"""
from __future__ import annotations

import streamlit as st

from pages.ui.messages import md_text, msg_text, show_exception

RESULT_KEY = "whatif_result"      # session: the last what-if (run, user, item, edits) and its results
TOP_K = 10


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dict):          # multilabel: the most likely class
        c = next(iter(v), None)
        return f"{c} ({v[c]:.2f})" if c is not None else ""
    return "" if v is None else str(v)


def _rank(r: int | None) -> str:
    if r is None:
        return "—"
    return "seen (not in the list)" if r == 0 else f"#{r}"


def _defaults_caption(defaults: dict) -> None:
    """A new user: every value the form starts from, and how it was chosen."""
    said = "; ".join(f"**{md_text(k)}** = {md_text(_value(d['value']))} ({md_text(d['how'])})"
                     for k, d in defaults.items())
    st.caption(f"A new user is known only by these features. Each one starts at a default — {said}. "
               "Change any of them before scoring; the result says which values were left at their default.")


def _value(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _form(run, run_dir: str, user: str | None, new: bool) -> dict | None:
    """The feature form; the edits {feature: raw value} when submitted, else None (only the values
    that differ from where the form started: the user's own, or a new user's defaults)."""
    from mtlrec.serve.whatif import categories, current_values, default_values, editable_fields
    fields = editable_fields(run, "user")
    now = current_values(run, None if new else user)
    defaults = default_values(run, "user") if new else {}
    if new:
        _defaults_caption(defaults)
    tag = f"{run_dir}_{'new' if new else user}"
    with st.form(key=f"whatif_form_{tag}", border=True):
        cols = st.columns(min(3, max(1, len(fields))))
        edits = {}
        for j, f in enumerate(fields):
            col = cols[j % len(cols)]
            start = f"default: {defaults[f.name]['how']}" if new else f"user {user}'s own value: {now.get(f.name)}"
            if f.kind == "numeric":
                edits[f.name] = col.number_input(md_text(f.name), value=float(now.get(f.name) or 0.0), format="%.3f",
                                                 key=f"whatif_{tag}_{f.name}", help=md_text(start))
            else:
                options = list(categories(run, f.name, "user"))
                cur = str(now.get(f.name))
                edits[f.name] = col.selectbox(md_text(f.name), options,
                                              index=options.index(cur) if cur in options else 0,
                                              key=f"whatif_{tag}_{f.name}", help=md_text(start))
        go = st.form_submit_button("Score the hypothetical user", icon=":material/science:", key=f"whatif_go_{tag}")
    if not go:
        return None
    # only what changed is an edit: unchanged values reproduce the start (the user's own values, or the
    # new user's defaults -- which the result then names as defaults, with how each was chosen)
    return {k: v for k, v in edits.items()
            if (abs(float(v) - float(now[k])) > 1e-9 if isinstance(v, float) else str(v) != str(now[k]))}


def render_whatif(run, run_dir: str, explainer=None) -> None:
    """The section, below the local explanation of the pair chosen there (its session keys
    ``explain_user_<run>`` / ``explain_item_<run>``). ``explainer``: a callable returning the page's
    cached `ModelExplainer` (the same background as the explanation above)."""
    from mtlrec.serve.whatif import editable_fields
    ds = run.dataset
    st.divider()
    st.subheader("What if…")
    if not ds.has_items:
        return
    fields = editable_fields(run, "user")
    if not fields:
        st.info("This run's users have no features (only ids), so there is no feature to change in a what-if.")
        return
    users = [str(u) for u in ds.user_ids]
    user = st.session_state.get(f"explain_user_{run_dir}") or (users[0] if users else None)
    item = st.session_state.get(f"explain_item_{run_dir}") or str(ds.item_ids[0])
    st.caption("Change the user's features and see how the model would score them — a **hypothetical** user: "
               "nothing is saved to the run or the workspace. Numbers are on their original scale, categories "
               "are those seen in training.")
    who = [f"user {user} with changed features", "a new user (features only)"] if user is not None \
        else ["a new user (features only)"]
    choice = st.radio("Who", who, horizontal=True, key=f"whatif_who_{run_dir}", format_func=md_text)
    new = user is None or choice == who[1]
    try:
        edits = _form(run, run_dir, user, new)
        if edits is not None:
            with st.spinner("Scoring and explaining the hypothetical user ..."):
                st.session_state[RESULT_KEY] = _compute(run, run_dir, None if new else user, item, edits, explainer)
    except Exception as e:
        show_exception(e, "The what-if")
        return
    res = st.session_state.get(RESULT_KEY)
    if not res or res["key"] != (run_dir, None if new else user, item):
        return
    _show(res, item)


def _compute(run, run_dir, user, item, edits, explainer) -> dict:
    from mtlrec.serve.whatif import explain_whatif, pair_change, whatif_recommend, whatif_scores
    scores = whatif_scores(run, user, edits, item=item)
    top = whatif_recommend(run, user, edits, k=TOP_K, scores=scores)
    change = pair_change(run, user, item, edits)
    ex = explainer() if callable(explainer) else explainer
    expl = explain_whatif(run, user, item, edits, explainer=ex, scores=scores)
    return {"key": (run_dir, user, item), "edits": dict(edits), "top": top, "change": change, "explanation": expl}


def _who(change: dict, edits: dict, filled: dict) -> str:
    """'user 4 with age = 70', or a new user with every value, the defaults marked with how they were chosen."""
    given = ", ".join(f"{k} = {_value(v)}" for k, v in edits.items())
    if not change["new_user"]:
        return f"user {change['user']} with {given or 'no feature changed'}"
    left = "; ".join(f"{k} = {_value(v['value'])} ({v['how']})" for k, v in filled.items() if v["source"] == "default")
    return ("a new user with " + (given or "no value chosen") + (f" — left at their default: {left}" if left else ""))


def _show(res: dict, item: str) -> None:
    import pandas as pd

    from mtlrec.figures import explain as fig
    change, expl, top = res["change"], res["explanation"], res["top"]
    st.warning(f"**Hypothetical — not saved.** {md_text(_who(change, res['edits'], expl.get('filled') or {}))}",
               icon=":material/science:")
    for w in top.get("warnings") or []:          # a value outside the training range: scored, with care
        st.warning(msg_text(w), icon=":material/warning:")
    before, after = change["before"], change["after"]
    rows = [{"": name, "before": _fmt(before["tasks"][name]) if before else "—", "after": _fmt(v)}
            for name, v in after["tasks"].items()]
    rows.append({"": "fused score", "before": _fmt(before["score"]) if before else "—", "after": _fmt(after["score"])})
    rows.append({"": "rank", "before": _rank(before["rank"]) if before else "—", "after": _rank(after["rank"])})
    st.markdown(f"**Item {md_text(item)}: rank {md_text(_rank(before['rank']) if before else '—')} → "
                f"{md_text(_rank(after['rank']))}**")
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.markdown("##### Scores of the pair, before → after")
        st.table(pd.DataFrame(rows), hide_index=True)
    with right:
        st.markdown(f"##### Top {len(top['items'])} for the hypothetical user")
        frame = pd.DataFrame([{"rank": r["rank"], "item": r["item"], **({"title": r["title"]} if "title" in r else {}),
                               "fused": f"{r['score']:.3f}",
                               **{t: _fmt(v) for t, v in r["tasks"].items()}} for r in top["items"]])
        st.table(frame, hide_index=True)
    st.success(md_text(expl["sentence"]))
    if expl.get("sensitive_check"):
        st.caption(md_text(expl["sensitive_check"]["text"]))
    fused = expl.get("fused")
    if fused:
        data = {"base_value": fused["base_value"], "output": fused["score"], "contributions": fused["contributions"]}
        title, unit = f"hypothetical fused score {fused['score']:.3f}", "fused score"
    else:
        name, data = next(iter(expl["tasks"].items()))
        title, unit = f"hypothetical {name}", None
    st.plotly_chart(fig.waterfall_figure(data, title=title, unit=unit), key="whatif_waterfall")
