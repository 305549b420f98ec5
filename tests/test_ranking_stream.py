"""The ranking evaluation streams over users and items in bounded chunks (issue 27, item 3) and gives
the numbers of the dense users × items computation it replaced."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _fixtures_train import TASKS, make_dataset
from mtlrec import ranking
from mtlrec.serve import catalogue
from mtlrec.models import ARCHITECTURES, build_model
from mtlrec.ranking import (ItemLists, evaluate_popularity, evaluate_ranking, plan_ranking, ranking_metrics,
                            top_k)
from mtlrec.tasks import tasks_from_config


def dense_oracle(scores, relevant, k, exclude=None):
    """The computation before issue 27 (whole users × items float64 matrix and boolean masks),
    kept here as the reference: (metrics, top-K lists of the users with a relevant item)."""
    s = np.array(scores, dtype=np.float64)
    n_users, n_items = s.shape

    def mask(sets):
        m = np.zeros((n_users, n_items), dtype=bool)
        for u, items in enumerate(sets):
            m[u, list(items)] = True
        return m
    rel = mask(relevant)
    if exclude is not None:
        ex = mask(exclude)
        s[ex] = -np.inf
        rel &= ~ex
    rel &= np.isfinite(s) | (s > 0)
    n_rel = rel.sum(1)
    keep = n_rel > 0
    s, rel, n_rel = s[keep], rel[keep], n_rel[keep]
    kk = min(int(k), n_items)
    top = np.argpartition(-s, kk - 1, axis=1)[:, :kk] if kk < n_items else np.tile(np.arange(n_items), (len(s), 1))
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, 1), axis=1, kind="stable"), 1)
    hits = np.take_along_axis(rel, top, 1) & np.isfinite(np.take_along_axis(s, top, 1))
    disc = 1.0 / np.log2(np.arange(2, kk + 2))
    idcg = np.cumsum(disc)[np.minimum(n_rel, kk) - 1]
    best = np.where(rel, s, -np.inf).max(1)
    rank = (s > best[:, None]).sum(1) + 1
    m = {f"recall@{k}": (hits.sum(1) / n_rel).mean(), f"ndcg@{k}": ((hits * disc).sum(1) / idcg).mean(),
         f"hitrate@{k}": hits.any(1).mean(), "mrr": (1.0 / rank).mean()}
    return m, top


def random_case(seed, n_users=37, n_items=53):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n_users, n_items))                   # continuous: no ties
    s[rng.random(s.shape) < 0.02] = np.nan                      # unscored items are never relevant nor hits
    relevant = [set(rng.choice(n_items, rng.integers(0, 6), replace=False).tolist()) for _ in range(n_users)]
    exclude = [set(rng.choice(n_items, rng.integers(0, 12), replace=False).tolist()) for _ in range(n_users)]
    return s, relevant, exclude


@pytest.mark.parametrize("k", [1, 5, 53, 80])
def test_streamed_metrics_equal_the_dense_computation_in_any_chunking(k):
    s, relevant, exclude = random_case(k)
    want, _ = dense_oracle(s, relevant, k, exclude)
    for chunk_bytes in (1, 3 * 53 * 8, 10**9):                  # one user per chunk, 3 users, all at once
        got = ranking_metrics(s, relevant, k=k, exclude=exclude, chunk_bytes=chunk_bytes)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15), chunk_bytes


def test_top_k_lists_equal_the_dense_computation_and_ties_go_to_the_lower_index():
    s, relevant, exclude = random_case(7)
    _, want = dense_oracle(s, relevant, 10, exclude)
    plan_rows = [u for u in range(len(s)) if relevant[u] - exclude[u]]
    rows = np.array(s, dtype=np.float64)
    np.copyto(rows, -np.inf, where=np.isnan(rows))
    for u, items in enumerate(exclude):
        rows[u, list(items)] = -np.inf
    got = [top_k(rows[u], 10) for u in plan_rows]
    assert len(got) == len(want) and all((g == w).all() for g, w in zip(got, want))
    # ties: the lower item index first, also across the cut at K
    row = np.array([0.5, 0.9, 0.5, 0.1, 0.9, 0.5, 0.7])
    assert top_k(row, 4).tolist() == [1, 4, 6, 0]
    assert top_k(row, 5).tolist() == [1, 4, 6, 0, 2]
    assert top_k(np.full(6, -np.inf), 3).tolist() == [0, 1, 2]


def make_model(arch, ds, seed=0):
    specs = tasks_from_config(TASKS, ds)
    torch.manual_seed(seed)
    # wide embeddings: item scores far apart (float rounding of the two paths never reorders them)
    return build_model(arch, ds.fields, specs, embedding_dim=6, tower_dims=[8], embedding_std=0.5).eval()


@pytest.fixture(scope="module")
def ds():
    return make_dataset(n_users=45, n_items=70, n_rows=2500, seed=3)


def full_forward_scores(model, data, users, task):
    """Every item of every user through the model's own forward (the computation before issue 27)."""
    with torch.inference_mode():
        return np.stack([task.predict(model(data.candidates(int(u)))[task.name]).float().numpy() for u in users])


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_model_ranking_equals_the_full_forward_computation(ds, arch):
    """Through the item-side cache, in small tiles and chunks: the same scores (1e-5), the same top
    10 lists and the same metrics as ranking the full forward's users × items matrix."""
    data = ds.to_device("cpu")
    model = make_model(arch, ds)
    binary = [t for t in model.tasks if t.type == "binary"]
    plan = plan_ranking(ds, binary, "test", max_users=30, seed=1)
    assert len(plan.users) == 30 < plan.candidates
    split = catalogue.item_split(model, data, keep=False)
    assert split is not None                                      # the cached path is the one tested
    with torch.inference_mode():
        tile = catalogue.score_tile(model, data, split, plan.users[:4], 10, 45, binary)
    exclude = [set(ds.interacted_items(int(u), splits=("train", "valid")).tolist()) for u in plan.users]
    got = evaluate_ranking(model, data, k=10, plan=plan, rows_per_pass=50, chunk_bytes=5 * 70 * 2 * 4)
    for t in binary:
        full = full_forward_scores(model, data, plan.users, t)
        assert np.abs(tile[t.name] - full[:4, 10:45]).max() <= 1e-5
        rel = [set(plan.relevant[t.name].items[a:b].tolist()) for a, b in zip(plan.relevant[t.name].indptr[:-1],
                                                                               plan.relevant[t.name].indptr[1:])]
        want, want_top = dense_oracle(full, rel, 10, exclude)
        assert got[t.name] == pytest.approx(want, rel=1e-9), t.name
        rows = full.astype(np.float64)
        for j, items in enumerate(exclude):
            rows[j, list(items)] = -np.inf
        kept = [j for j in range(len(rel)) if rel[j] - exclude[j]]
        assert [top_k(rows[j], 10).tolist() for j in kept] == want_top.tolist()


def test_memory_is_bounded_by_the_chunk_budget_not_the_catalogue(ds, monkeypatch):
    """Every array that spans the catalogue is one chunk of score rows within ``chunk_bytes``; every
    forward pass holds at most ``rows_per_pass`` (user, item) pairs; the numbers do not depend on
    either."""
    data = ds.to_device("cpu")
    model = make_model("mmoe", ds)
    buffers, tiles = [], []
    real_buffer, real_tile = ranking._buffer, catalogue.score_tile
    monkeypatch.setattr(ranking, "_buffer", lambda shape, dtype: buffers.append(real_buffer(shape, dtype)) or
                        buffers[-1])
    monkeypatch.setattr(catalogue, "score_tile",
                        lambda m, d, sp, users, a, b, *r, **kw: tiles.append(len(users) * (b - a)) or
                        real_tile(m, d, sp, users, a, b, *r, **kw))
    budget = 3 * 70 * 4 * 2                               # 3 users × 70 items × float32 × 2 ranked tasks
    small = evaluate_ranking(model, data, k=5, max_users=None, rows_per_pass=32, chunk_bytes=budget)
    n_users = len(plan_ranking(ds, [t for t in model.tasks if t.type == "binary"], max_users=None).users)
    assert n_users == 37
    assert buffers and sum(b.nbytes for b in buffers[:2]) <= budget and max(b.shape[0] for b in buffers) == 3
    assert max(tiles) <= 32 and sum(tiles) == n_users * 70                  # every (user, item) pair scored once
    buffers.clear()
    large = evaluate_ranking(model, data, k=5, max_users=None, rows_per_pass=32)
    assert max(b.shape[0] for b in buffers) == n_users                      # one chunk: all users
    for task in large:
        assert small[task] == pytest.approx(large[task], rel=1e-12)


def test_popularity_streamed_equals_the_dense_computation(ds):
    binary = [t for t in tasks_from_config(TASKS, ds) if t.type == "binary"]
    plan = plan_ranking(ds, binary, "test", max_users=25, seed=2)
    got = evaluate_popularity(ds, k=7, tasks=binary, plan=plan, chunk_bytes=4 * 70 * 8)
    exclude = [set(ds.interacted_items(int(u), splits=("train", "valid")).tolist()) for u in plan.users]
    from mtlrec.metrics import item_counts, popularity_scores
    for t in binary:
        s = np.broadcast_to(popularity_scores(item_counts(ds, "train", label=t.label)), (len(plan.users), 70))
        lists = plan.relevant[t.name]
        rel = [set(lists.items[a:b].tolist()) for a, b in zip(lists.indptr[:-1], lists.indptr[1:])]
        assert got[t.name] == pytest.approx(dense_oracle(s, rel, 7, exclude)[0], rel=1e-12)


def test_auto_users_keeps_500_on_small_catalogues_and_caps_scored_pairs_on_large_ones():
    assert ranking.auto_users(800) == ranking.auto_users(100_000) == 500
    assert ranking.auto_users(200_000) == 250 and ranking.auto_users(10**9) == 1
    assert ranking.resolve_users("auto", 200_000) == 250 and ranking.resolve_users(37, 200_000) == 37
    assert ranking.resolve_users(None, 200_000) is None
    lists = ItemLists.for_users(np.array([2, 5]), [5, 2, 5, 9, 2, 5], [3, 1, 3, 0, -1, 0], 4)
    assert lists.indptr.tolist() == [0, 1, 3] and lists.items.tolist() == [1, 0, 3]   # sorted, distinct, no -1


def test_plan_samples_the_users_the_old_code_sampled(ds):
    """"auto" on a small catalogue ranks the same seeded sample as the fixed 500 of before."""
    binary = [t for t in tasks_from_config(TASKS, ds) if t.type == "binary"]
    plan = plan_ranking(ds, binary, max_users=12, seed=4)
    r = ds.rows["test"]
    pos = np.unique(np.concatenate([r["user_index"][r["label:" + t.label] > 0.5] for t in binary]))
    assert plan.candidates == len(pos)
    assert plan.users.tolist() == np.sort(np.random.default_rng(4).choice(pos, 12, replace=False)).tolist()
    assert plan.info() == {"users": 12, "of_users": len(pos), "items": 70, "sampled": True}
    assert math.isclose(len(plan_ranking(ds, binary, max_users="auto").users), len(pos))
