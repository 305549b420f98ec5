"""Explain page, local view: the pair's feature values, units (probability / label units or the
logit one toggle away), learned id profiles and sensitive-feature notes.

Draws an `mtlrec.explain.api.explain_recommendation` result; computes nothing of its own."""
from __future__ import annotations

import streamlit as st

from pages.ui.messages import md_text

LOGIT_KEY = "explain_logit_view"


def logit_toggle() -> bool:
    """The unit toggle: False (default) = each task in its own unit (probability, label units),
    True = the model's raw output (logit; standardised output for a regression task)."""
    return st.toggle("Show logits (the model's raw output)", key=LOGIT_KEY,
                     help="Off: each waterfall in the task's own unit — probability for a yes/no task and for "
                          "the picked class of a multi-label task, the label's units (e.g. rating points) for "
                          "a regression task. On: the logit (log-odds), or the standardised output of a "
                          "regression task — the space SHAP adds up in.")


def task_view(name: str, t: dict, logits: bool) -> tuple[dict, str, str]:
    """(the waterfall to draw, its title, its y-axis unit) of one task in the chosen units."""
    if t["type"] == "regression":
        if logits and t.get("model_space"):
            v = t["model_space"]
            return v, f"{name}: standardised output {v['output']:.3f} (predicted {t['prediction']:.2f})", v["unit"]
        return t, f"{name}: predicted {t['prediction']:.2f}, in {t['unit']}", t["unit"]
    what = f"class '{t['class']}'" if t["type"] in ("multilabel", "distribution") else \
        t["entire_space"].split(" = ")[0] if t.get("entire_space") else ""
    if t["type"] == "distribution":        # a user's interest: the log share of one class
        return t, f"{name}: log share of {what} → share {t['prediction']:.3f}", t["unit"]
    if logits or not t.get("probability"):
        head = f"{name}: logit of {what}" if what else f"{name}: logit"
        return t, f"{head} → probability {t['prediction']:.3f}", t["unit"]
    v = t["probability"]
    head = f"{name}: probability of {what}" if what else f"{name}: probability"
    return v, f"{head} {v['output']:.3f}", "probability" + (f" of {what}" if what else "")


def chain_caption(res: dict) -> None:
    """Which tasks are explained in the entire space (a chained task, as the list ranks it)."""
    chained = [f"{name}: {t['entire_space']}" for name, t in res["tasks"].items() if t.get("entire_space")]
    if chained:
        st.caption(md_text("Chained tasks are explained in the entire space, the number the list ranks by — "
                           + "; ".join(chained)))


def units_caption(logits: bool) -> None:
    if logits:
        st.caption("Logit view: base value + contributions = the model's output, exactly (SHAP adds up here).")
    else:
        st.caption("Probability view: the cumulative logit sums (largest contribution first) are mapped through "
                   "the sigmoid, so each bar is the rise in probability its feature adds at its place in that "
                   "order, and the bars add up to the predicted probability. A regression task is shown in its "
                   "label's units.")


def sensitive_notes(res: dict) -> None:
    """A warning per flagged sensitive-looking feature group (share of the explanation >= threshold),
    and always what the check looked at: the groups checked, their shares and the threshold."""
    for s in res.get("sensitive") or []:
        if not s.get("flagged"):
            continue
        st.warning(f"**{md_text(s['group'])}** looks like a protected attribute or a proxy of one "
                   f"({md_text(s['kind'])}) and carries {s['share']:.0%} of the explanation "
                   f"({md_text(s['where'])}). {md_text(s['note'])}", icon=":material/policy:")
    check = res.get("sensitive_check")
    if check:
        st.caption(md_text(check["text"]))


def _fused_share(res: dict, group: str) -> str:
    fused = res.get("fused")
    if not fused:
        return ""
    return f"{fused['contributions'].get(group, 0.0):+.3f}"


def values_table(res: dict) -> None:
    """What the model saw for this pair: one row per feature group, with its value in words and
    its part of the fused score (or of each task)."""
    import pandas as pd
    features = res.get("features") or {}
    if not features:
        return
    rows = []
    for g, info in features.items():
        row = {"feature group": g, "value for this pair": info.get("text", "")}
        if res.get("fused"):
            row["fused score"] = round(res["fused"]["contributions"].get(g, 0.0), 4)
        for name, t in res["tasks"].items():
            view = t.get("probability") or t
            unit = "probability" if t.get("probability") else "label units" if t["type"] == "regression" else "logit"
            row[f"{name} ({unit})"] = round(view["contributions"].get(g, 0.0), 4)
        rows.append(row)
    st.markdown("**What the model saw for this pair**")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="explain_values_table")


def id_profiles(res: dict) -> None:
    """The user id / item id contributions in words: what the model learned from their history."""
    for g, info in (res.get("features") or {}).items():
        fields = info.get("fields") or []
        if len(fields) != 1 or fields[0]["field"] not in ("user_id", "item_id"):
            continue
        who = fields[0]["owner"]
        if not info.get("learned", True):
            st.caption(f"**{md_text(g)}**: this {who} had no training interactions, so the model learned no "
                       f"profile for it and knows it only by its other features.")
            continue
        n = int(info.get("support", 0))
        line = (f"**{md_text(g)}** ({md_text(fields[0]['value'])}): what the model learned from this {who}'s "
                f"{n:,} training interaction{'s' if n != 1 else ''}")
        similar = info.get("similar") or []
        if similar:
            names = ", ".join(md_text(s.get("title") or s["item"]) + f" ({s['similarity']:.2f})" for s in similar)
            line += f"; most similar items by the learned profile (cosine): {names}"
        st.caption(line + ".")
