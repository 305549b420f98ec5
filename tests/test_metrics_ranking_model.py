"""Ranking a trained model over the catalogue: seen items left out, positives of the split relevant."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from mtlrec.dataset import FeatureField, LabelField, PreparedDataset
from mtlrec.ranking import evaluate_ranking
from mtlrec.tasks import TaskSpec




class ItemIdScore(nn.Module):
    """A stand-in model: the click logit is the item code (item 5 is ranked first, then 4, ...)."""

    def __init__(self):
        super().__init__()
        self.tasks = [TaskSpec("click", "binary"), TaskSpec("rating", "regression")]

    def forward(self, feats):
        x = feats["item_id"].float()
        return {"click": x, "rating": -x}


def _dataset():
    # 3 users, 6 items (item code = item index here)
    def split(u, i, click, sampled=None):
        r = {"user_index": np.array(u), "item_index": np.array(i), "label:click": np.array(click, np.float32),
             "label:rating": np.zeros(len(u), np.float32)}
        if sampled is not None:
            r["sampled"] = np.array(sampled)
        return r
    rows = {"train": split([0, 0, 1], [5, 4, 5], [1, 0, 1], [False, False, False]),
            "valid": split([2], [5], [1], [False]),
            "test": split([0, 0, 1, 1, 2, 2], [3, 0, 2, 3, 1, 4], [1, 1, 1, 0, 0, 0],
                          [False, False, False, True, False, True])}
    fields = [FeatureField("user_id", "categorical", "user", vocab_size=4),
              FeatureField("item_id", "categorical", "item", vocab_size=7)]
    return PreparedDataset(fields, [LabelField("click", "binary"), LabelField("rating", "regression")], rows,
                           user_table={"user_id": np.array([1, 2, 3])},
                           item_table={"item_id": np.arange(6)},
                           user_ids=np.array(["a", "b", "c"]), item_ids=np.array([f"i{j}" for j in range(6)]))


def test_evaluate_ranking_excludes_seen_items_and_uses_split_positives():
    ds = _dataset()
    res = evaluate_ranking(ItemIdScore(), ds.to_device("cpu"), split="test", k=2, rows_per_pass=13)
    assert set(res) == {"click"}                        # only binary tasks are ranked
    m = res["click"]
    # user 0: seen 5, 4 (train) -> ranking 3, 2, 1, 0; relevant {3, 0}: hit at 1, other at rank 4
    # user 1: seen 5 -> ranking 4, 3, 2, ...; relevant {2} (item 3 is a sampled negative): rank 3
    # user 2: no positive in test (item 1 has label 0, item 4 is sampled) -> skipped
    assert m["recall@2"] == pytest.approx((0.5 + 0.0) / 2)
    assert m["hitrate@2"] == pytest.approx(0.5)
    assert m["mrr"] == pytest.approx((1.0 + 1 / 3) / 2)
    ndcg0 = 1.0 / (1 + 1 / math.log2(3))
    assert m["ndcg@2"] == pytest.approx(ndcg0 / 2)


def test_evaluate_ranking_without_ids_or_binary_tasks_is_empty():
    ds = _dataset()
    model = ItemIdScore()
    assert evaluate_ranking(model, ds.to_device("cpu"), tasks=[model.tasks[1]]) == {}
    one_user = evaluate_ranking(model, ds.to_device("cpu"), max_users=1, seed=0)
    assert set(one_user) == {"click"}


def test_evaluate_ranking_on_a_trained_model_beats_random():
    from mtlrec.models import build_model
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 30
    # users like items of their own parity; train on half of each user's items, test on the rest
    u = np.repeat(np.arange(n_users), n_items)
    i = np.tile(np.arange(n_items), n_users)
    click = ((u % 2) == (i % 2)).astype(np.float32)
    test = rng.random(len(u)) < 0.3

    def split(m):
        return {"user_index": u[m], "item_index": i[m], "label:click": click[m]}
    fields = [FeatureField("user_id", "categorical", "user", vocab_size=n_users + 1),
              FeatureField("item_id", "categorical", "item", vocab_size=n_items + 1)]
    ds = PreparedDataset(fields, [LabelField("click", "binary")], {"train": split(~test), "test": split(test)},
                         user_table={"user_id": np.arange(1, n_users + 1)},
                         item_table={"item_id": np.arange(1, n_items + 1)},
                         user_ids=np.arange(n_users).astype(str), item_ids=np.arange(n_items).astype(str))
    data = ds.to_device("cpu")
    torch.manual_seed(0)
    tasks = [TaskSpec("click", "binary")]
    model = build_model("shared_bottom", fields, tasks, shared_dims=[16], tower_dims=[8], embedding_dim=4)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(60):
        feats, labels = data.batch("train")
        loss = tasks[0].loss(model(feats)["click"], labels["click"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    m = evaluate_ranking(model, data, k=5)["click"]
    # a random ranking of the ~21 unseen items with ~4.5 relevant ones has NDCG@5 around 0.2
    assert m["ndcg@5"] > 0.8 and m["hitrate@5"] == 1.0
