"""The ranking over the whole catalogue: its settings (Train) and what a run's ranking covers (Results)."""
from __future__ import annotations

import streamlit as st

from mtlrec.config import train_defaults
from mtlrec.metrics import ranking_note
from mtlrec.ranking import AUTO_PAIRS, AUTO_USERS, auto_users, estimate_seconds
from pages.ui.messages import md_text


def catalogue_size(dataset, raw, spec) -> int | None:
    """The items a run ranks: the prepared dataset's catalogue, else (not prepared yet) the rows of
    the items table; None when unknown."""
    if dataset is not None:
        return len(dataset.item_ids) if dataset.has_items else None
    items = getattr(raw, "items", None)
    return len(items) if items is not None and getattr(spec, "item_id", None) else None


def _keep(train: dict, name: str, value, default) -> None:
    """Write a setting only when it differs from the default or was set before (a visit that
    changes nothing saves nothing)."""
    if name in train or value != default:
        train[name] = value


def ranking_option(train: dict, n_items: int | None, arch: str | None, *, key: str) -> None:
    """Whether a run ranks its test users over the whole catalogue at its end (``train.ranking_k``,
    0 = off), how many users (``train.ranking_users``: "auto" or a number) and K, with what it
    costs for ``arch`` over ``n_items`` items."""
    d = train_defaults(("ranking_k", "ranking_users"))
    k = int(train.get("ranking_k", d["ranking_k"]) or 0)
    c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
    on = c1.checkbox("Rank the test users over the whole catalogue at the end (Recall@K, NDCG@K, HitRate@K, "
                     "MRR, beside the popularity baseline)", value=k > 0, key=f"{key}_on",
                     help="after training, every ranked test user is scored against every item; their test "
                          "positives are looked for in the top K. Off: the run ends after the test metrics")
    if not on:
        _keep(train, "ranking_k", 0, d["ranking_k"])
        st.caption("Ranking off: the run ends after the test metrics, and Results has no ranking over the catalogue.")
        return
    users = train.get("ranking_users", d["ranking_users"])
    auto_n = auto_users(n_items) if n_items else AUTO_USERS
    picked = c2.number_input("Users ranked", min_value=1, max_value=1_000_000, step=50,
                             value=None if users == "auto" else int(users), placeholder=f"auto ({auto_n})",
                             key=f"{key}_users",
                             help=f"at most this many test users (a seeded sample); empty = auto: {AUTO_USERS}, "
                                  f"fewer on a large catalogue (at most {AUTO_PAIRS / 1e6:.0f} million scored "
                                  "user–item pairs)")
    topk = int(c3.number_input("K", min_value=1, max_value=1000, value=k or d["ranking_k"], key=f"{key}_k",
                               help="how long a list each user gets (Recall@K, NDCG@K, HitRate@K)"))
    _keep(train, "ranking_users", "auto" if picked is None else int(picked), d["ranking_users"])
    _keep(train, "ranking_k", topk, d["ranking_k"])
    st.caption(md_text(_cost_text(auto_n if picked is None else int(picked), n_items, arch)))


def _cost_text(users: int, n_items: int | None, arch: str | None) -> str:
    if not n_items:
        return ("Each ranked user is scored against every item: users × items scored pairs, after training "
                "(on a CPU a few million pairs a second for MMoE or shared-bottom, about 7× fewer for PLE). Fewer "
                "users: faster, noisier metrics.")
    pairs = users * n_items
    seconds = estimate_seconds(users, n_items, arch)
    shown = f"{pairs / 1e6:,.1f} million" if pairs >= 10**6 else f"{pairs:,}"
    took = "under a second" if seconds < 1 else f"about {round(seconds):,} s"
    return (f"{users:,} users × {n_items:,} items = {shown} scored pairs after training — {took} for this "
            f"architecture on a 2-core CPU. Fewer users: faster, noisier metrics.")


def show_ranking_note(metrics: dict) -> None:
    """Under the ranking table: which users were ranked (N of M, over how many items); in its place
    when the run skipped the ranking, why."""
    info = metrics.get("ranking_info") if isinstance(metrics.get("ranking_info"), dict) else {}
    note = ranking_note(metrics)
    if note is None:
        return
    if info.get("status") == "skipped":
        st.info("**Ranking over the whole catalogue: skipped** — it was switched off for this run, so there is no "
                "Recall@K, NDCG@K, HitRate@K or MRR. Switch it on under **Train** (*Rank the test users over the "
                "whole catalogue*) for the next run.", icon=":material/block:")
    else:
        st.caption(md_text(note))
