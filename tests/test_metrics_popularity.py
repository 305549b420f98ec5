"""The popularity baseline ("most popular items the user has not seen"), worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mtlrec.dataset import FeatureField, LabelField, PreparedDataset
from mtlrec.metrics import item_counts, popularity_scores, ranking_verdict
from mtlrec.ranking import evaluate_popularity


def _split(rows):
    u, i, click, sampled = zip(*rows)
    return {"user_index": np.array(u, np.int64), "item_index": np.array(i, np.int64),
            "label:click": np.array(click, np.float32), "sampled": np.array(sampled, bool)}


def _dataset():
    """3 users, 5 items.

    train positives of click: i0 x2, i1 x2, i2 x1 (i4 has two rows, both negative; a sampled
    row never counts) -> popularity order i0, i1 (tie: lower index first), i2, i3, i4.
    seen in train+valid: u0 {i0, i2}; u1 {i0, i1, i4}; u2 {i1, i4, i0 (valid)}.
    test positives: u0 {i3, i4}; u1 {i2}; u2 {i3} (its i2 row is negative, its i1 row sampled)."""
    train = [(0, 0, 1, False), (1, 0, 1, False), (1, 1, 1, False), (2, 1, 1, False), (0, 2, 1, False),
             (1, 4, 0, False), (2, 4, 0, False), (0, 3, 1, True)]
    valid = [(2, 0, 0, False)]
    test = [(0, 3, 1, False), (0, 4, 1, False), (1, 2, 1, False), (2, 3, 1, False), (2, 2, 0, False),
            (2, 1, 1, True)]
    fields = [FeatureField("user_id", "categorical", "user", vocab_size=4),
              FeatureField("item_id", "categorical", "item", vocab_size=6)]
    return PreparedDataset(fields, [LabelField("click", "binary"), LabelField("rating", "regression")],
                           {"train": {**_split(train), "label:rating": np.zeros(len(train), np.float32)},
                            "valid": {**_split(valid), "label:rating": np.zeros(len(valid), np.float32)},
                            "test": {**_split(test), "label:rating": np.zeros(len(test), np.float32)}},
                           user_table={"user_id": np.array([1, 2, 3])}, item_table={"item_id": np.arange(1, 6)},
                           user_ids=np.array(["a", "b", "c"]), item_ids=np.array([f"i{j}" for j in range(5)]))


def test_counts_are_real_training_rows_and_positives_per_item():
    ds = _dataset()
    assert item_counts(ds).tolist() == [2, 2, 1, 0, 2]          # support: every real training row
    assert item_counts(ds, label="click").tolist() == [2, 2, 1, 0, 0]
    order = np.argsort(-popularity_scores([2, 2, 1, 0, 0]))
    assert order.tolist() == [0, 1, 2, 3, 4]                     # ties: the lower item index first


def test_popularity_ranking_by_hand():
    ds = _dataset()
    # unseen items in popularity order: u0 -> i1, i3, i4; u1 -> i2, i3; u2 -> i2, i3
    a = 1 / math.log2(3)
    k2 = evaluate_popularity(ds, k=2)
    assert set(k2) == {"click"}                                   # binary labels only
    m = k2["click"]
    # u0: top [i1, i3], relevant {i3, i4}: one of two found at position 2, first relevant at rank 2
    # u1: top [i2, i3], relevant {i2}: found first; u2: top [i2, i3], relevant {i3}: found second
    assert m["recall@2"] == pytest.approx((1 / 2 + 1 + 1) / 3, abs=1e-9)
    assert m["hitrate@2"] == pytest.approx(1.0, abs=1e-9)
    assert m["ndcg@2"] == pytest.approx((a / (1 + a) + 1 + a) / 3, abs=1e-9)
    assert m["mrr"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3, abs=1e-9)
    m1 = evaluate_popularity(ds, k=1)["click"]
    assert m1["recall@1"] == pytest.approx(1 / 3, abs=1e-9)     # only u1's top item is relevant
    assert m1["hitrate@1"] == pytest.approx(1 / 3, abs=1e-9)
    assert m1["ndcg@1"] == pytest.approx(1 / 3, abs=1e-9)
    assert m1["mrr"] == pytest.approx(2 / 3, abs=1e-9)


def test_popularity_without_exclusions_recommends_seen_items():
    ds = _dataset()
    # nothing left out: everyone gets i0, i1 first -- no test positive among them
    m = evaluate_popularity(ds, k=2, exclude_splits=())["click"]
    assert m["hitrate@2"] == 0.0 and m["recall@2"] == 0.0


def test_popularity_is_empty_without_ids():
    ds = _dataset()
    ds.item_ids = np.asarray([], dtype=str)
    assert evaluate_popularity(ds) == {}


def test_verdict_says_who_wins():
    model = {"recall@10": 0.3, "ndcg@10": 0.2, "hitrate@10": 0.5, "mrr": 0.25}
    pop = {"recall@10": 0.1, "ndcg@10": 0.1, "hitrate@10": 0.2, "mrr": 0.1}
    assert ranking_verdict(model, pop).startswith("the model beats popularity on all 4 metrics (ndcg@10 0.200 vs 0.100")
    assert ranking_verdict(pop, model).startswith("popularity beats the model on all 4 metrics")
    assert "2 of 4" in ranking_verdict({**model, "ndcg@10": 0.05, "mrr": 0.05}, pop)
    assert ranking_verdict({"mrr": float("nan")}, pop) is None
