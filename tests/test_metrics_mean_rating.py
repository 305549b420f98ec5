"""The mean-rating ranking baseline ("best-rated items the user has not seen"), worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from mtlrec.dataset import FeatureField, LabelField, PreparedDataset
from mtlrec.metrics import MEAN_RATING_PRIOR, item_mean_ratings, mean_rating_scores, ranking_rows, ranking_verdicts
from mtlrec.ranking import evaluate_mean_rating, plan_ranking
from mtlrec.tasks import TaskSpec

NAN = float("nan")


def _split(rows, rating=True):
    u, i, like, r, sampled = zip(*rows)
    out = {"user_index": np.array(u, np.int64), "item_index": np.array(i, np.int64),
           "label:like": np.array(like, np.float32), "sampled": np.array(sampled, bool)}
    if rating:
        out["label:rating"] = np.array(r, np.float32)
    return out


def _dataset(rating=True):
    """6 users, 4 items. Real training ratings: i0 one 5 (and one missing); i1 5, 4, 5, 4, 5; i2 2, 1;
    i3 none (its one row is a sampled negative with a made-up 1). Global mean 31 / 8 = 3.875.
    Raw means would put i0 (5.0) first; shrunk: i1 > i0 > i3 (the global mean) > i2.
    Seen in train+valid: u0 {i0, i3 sampled: not seen}; u1 {i1, i2}; u2 {i1, i0 (valid)}.
    Test likes: u0 i3, u1 i0, u2 i2."""
    train = [(0, 0, 1, 5, False), (4, 0, 0, NAN, False),
             (1, 1, 1, 5, False), (2, 1, 1, 4, False), (3, 1, 1, 5, False), (4, 1, 1, 4, False), (5, 1, 1, 5, False),
             (1, 2, 0, 2, False), (3, 2, 0, 1, False),
             (0, 3, 0, 1, True)]
    valid = [(2, 0, 0, 3, False)]
    test = [(0, 3, 1, 4, False), (1, 0, 1, 5, False), (2, 2, 1, 4, False)]
    fields = [FeatureField("user_id", "categorical", "user", vocab_size=7),
              FeatureField("item_id", "categorical", "item", vocab_size=5)]
    labels = [LabelField("like", "binary")] + ([LabelField("rating", "regression")] if rating else [])
    return PreparedDataset(fields, labels,
                           {"train": _split(train, rating), "valid": _split(valid, rating),
                            "test": _split(test, rating)},
                           user_table={"user_id": np.arange(1, 7)}, item_table={"item_id": np.arange(1, 5)},
                           user_ids=np.array([f"u{j}" for j in range(6)]),
                           item_ids=np.array([f"i{j}" for j in range(4)]))


def test_shrunk_means_by_hand_and_the_best_rated_order():
    ds = _dataset()
    assert 5 <= MEAN_RATING_PRIOR <= 10
    mu = 31 / 8
    mean, count = item_mean_ratings(ds, "rating", prior=10)
    assert count.tolist() == [1, 5, 2, 0]                 # missing and sampled ratings never count
    assert mean == pytest.approx([(5 + 10 * mu) / 11, (23 + 10 * mu) / 15, (3 + 10 * mu) / 12, mu], abs=1e-9)
    for prior in (5, MEAN_RATING_PRIOR):                 # one 5-star rating does not top the list
        assert np.argsort(-mean_rating_scores(ds, "rating", prior=prior)).tolist() == [1, 0, 3, 2]
    assert np.argsort(-mean_rating_scores(ds, "rating", prior=0)).tolist()[0] == 0   # raw means would


def test_mean_rating_ranking_leaves_seen_items_out():
    ds = _dataset()
    # unseen items in best-rated order: u0 -> i1, i3, i2 (i3 at 2); u1 -> i0, i3 (i0 at 1); u2 -> i3, i2 (i2 at 2)
    m = evaluate_mean_rating(ds, k=1)["like"]
    assert m["hitrate@1"] == pytest.approx(1 / 3) and m["recall@1"] == pytest.approx(1 / 3)
    assert m["mrr"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert evaluate_mean_rating(ds, k=2)["like"]["hitrate@2"] == pytest.approx(1.0)


def test_the_mean_rating_baseline_exists_only_with_a_rating():
    from mtlrec.training.pipeline import rank_baselines
    like = TaskSpec("like", "binary")
    for rating in (True, False):
        ds = _dataset(rating)
        plan, info = plan_ranking(ds, [like], max_users=None), {}
        base = rank_baselines(ds, [like], plan, 1, info)
        assert set(base) == ({"popularity", "mean_rating"} if rating else {"popularity"})
        assert ("mean_rating" in info) is rating
    assert evaluate_mean_rating(_dataset(rating=False)) == {}
    metrics = {"ranking": {"like": {"hitrate@1": 0.0, "mrr": 0.2}}, "ranking_baseline": base | {
        "mean_rating": {"like": {"hitrate@1": 0.5, "mrr": 0.6}}}}
    assert [r["ranked by"] for r in ranking_rows(metrics)] == ["model", "popularity", "mean rating"]
    assert "mean rating beats the model on all 2 metrics" in ranking_verdicts(metrics)["like"]
    assert "best-rated unseen items" in ranking_verdicts(metrics)["like"]
