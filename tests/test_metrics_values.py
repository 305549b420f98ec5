"""Metrics against hand-computed values, degenerate inputs, directions, ranking and k-fold."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtlrec.metrics import (METRICS, evaluate_task, gain, higher_is_better, is_better, kfold_indices,
                            precision_recall_points, roc_curve_points, summarize_folds)
from mtlrec.ranking import ranking_metrics
from mtlrec.tasks import TaskSpec

BIN = TaskSpec("click", "binary")


def test_binary_metrics_by_hand():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.8, 0.9])
    m = evaluate_task(BIN, y, p)
    assert m["auc"] == pytest.approx(5 / 6)               # 5 of 6 (pos, neg) pairs ordered right
    assert m["accuracy"] == pytest.approx(3 / 5)          # decisions 0,1,0,1,1
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    ll = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert m["logloss"] == pytest.approx(ll)
    # threshold 0.4 -> all three positives, one false positive: F1 = 6/7, the best
    assert m["best_f1"] == pytest.approx(6 / 7) and m["best_f1_threshold"] == pytest.approx(0.4)
    m2 = evaluate_task(BIN, y, p, threshold=0.35)
    assert m2["recall"] == 1.0


def test_degenerate_inputs_give_nan_not_crash():
    m = evaluate_task(BIN, np.ones(4), np.array([0.2, 0.4, 0.6, 0.9]))
    assert math.isnan(m["auc"]) and math.isfinite(m["logloss"])
    m = evaluate_task(BIN, np.array([0, 1]), np.array([np.nan, 0.3]))
    assert all(math.isnan(v) for v in m.values())
    g = TaskSpec("g", "multilabel", n_outputs=2)
    m = evaluate_task(g, np.array([[1, 0], [1, 0]]), np.array([[0.9, 0.1], [0.8, 0.3]]))
    assert math.isnan(m["macro_auc"])                      # no class has both values
    with pytest.raises(ValueError, match="shape"):
        evaluate_task(BIN, np.zeros(3), np.zeros(4))


def test_regression_and_multilabel_by_hand():
    r = evaluate_task(TaskSpec("r", "regression"), np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert r == {"rmse": pytest.approx(math.sqrt(4 / 3)), "mae": pytest.approx(2 / 3)}
    g = TaskSpec("g", "multilabel", n_outputs=3)
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    p = np.array([[0.9, 0.2, 0.1], [0.3, 0.7, 0.2], [0.6, 0.4, 0.5]])
    m = evaluate_task(g, y, p)
    # decisions: [1,0,0],[0,1,0],[1,0,1] -> TP 3, FP 1, FN 1 -> micro F1 = 6/8
    assert m["micro_f1"] == pytest.approx(0.75)
    # per class F1: 1, 2/3, 0 (class 2 has no positives, one false positive)
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert m["macro_auc"] == pytest.approx(1.0)            # classes 0 and 1 perfectly ranked; 2 skipped


def test_directions():
    for name in ("rmse", "mae", "logloss"):
        assert not higher_is_better(name)
    for name in ("auc", "f1", "micro_auc", "ndcg@10", "recall@5", "mrr"):
        assert higher_is_better(name)
    assert is_better("rmse", 0.9, 1.0) and not is_better("rmse", 1.1, 1.0)
    assert is_better("auc", 0.8, 0.7) and not is_better("auc", 0.7, 0.7)
    assert is_better("auc", 0.5, None) and is_better("rmse", 3.0, float("nan"))
    assert not is_better("auc", float("nan"), 0.1)
    assert gain("rmse", 0.9, 1.0) == pytest.approx(0.1) and gain("auc", 0.7, 0.75) == pytest.approx(-0.05)
    assert all(isinstance(i.higher_is_better, bool) for i in METRICS.values())
    with pytest.raises(ValueError, match="unknown metric"):
        higher_is_better("accuracyy")


def test_ndcg_recall_hitrate_mrr_on_a_known_ranking():
    # user 0 ranks items 4,3,2,1,0; relevant {3, 0}: hit at rank 2, the other at rank 5
    # user 1 ranks items 0,1,2,3,4; relevant {0}: hit at rank 1
    s = np.array([[0.1, 0.2, 0.3, 0.4, 0.5], [0.9, 0.8, 0.7, 0.6, 0.5]])
    m = ranking_metrics(s, [{3, 0}, {0}], k=3)
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert m["ndcg@3"] == pytest.approx((ndcg0 + 1.0) / 2)
    assert m["recall@3"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["hitrate@3"] == 1.0
    assert m["mrr"] == pytest.approx((1 / 2 + 1) / 2)


def test_ranking_excludes_seen_items_and_skips_users_without_relevant_items():
    s = torch.tensor([[0.9, 0.8, 0.1, 0.0], [0.5, 0.4, 0.3, 0.2], [0.1, 0.2, 0.3, 0.4]])
    # user 0 has seen items 0 and 1: item 2 moves to rank 1
    m = ranking_metrics(s, [{2}, {3}, set()], k=1, exclude=[{0, 1}, set(), set()])
    assert m["hitrate@1"] == pytest.approx(0.5)            # user 0 hits, user 1 misses, user 2 skipped
    assert m["mrr"] == pytest.approx((1 + 1 / 4) / 2)
    m = ranking_metrics(s[:1], [{2}], k=1)                 # without exclusion the seen items win
    assert m["hitrate@1"] == 0.0
    # ragged per-user candidate lists
    m = ranking_metrics([[0.3, 0.9], [0.1, 0.2, 0.8]], [np.array([1]), np.array([0])], k=2)
    assert m["hitrate@2"] == pytest.approx(0.5) and m["recall@2"] == pytest.approx(0.5)


def test_ranking_matches_a_loop_on_random_data():
    rng = np.random.default_rng(0)
    s = rng.random((40, 30))
    rel = [set(rng.choice(30, size=rng.integers(1, 5), replace=False).tolist()) for _ in range(40)]
    m = ranking_metrics(s, rel, k=5)
    rec, nd, mrr = [], [], []
    for u in range(40):
        order = list(np.argsort(-s[u]))
        top = order[:5]
        h = [i in rel[u] for i in top]
        rec.append(sum(h) / len(rel[u]))
        dcg = sum(1 / math.log2(r + 2) for r, x in enumerate(h) if x)
        nd.append(dcg / sum(1 / math.log2(r + 2) for r in range(min(5, len(rel[u])))))
        mrr.append(1 / (min(order.index(i) for i in rel[u]) + 1))
    assert m["recall@5"] == pytest.approx(np.mean(rec))
    assert m["ndcg@5"] == pytest.approx(np.mean(nd))
    assert m["mrr"] == pytest.approx(np.mean(mrr))


def test_curves_are_plain_lists():
    y, p = np.array([0, 1, 0, 1, 1]), np.array([0.2, 0.7, 0.4, 0.9, 0.3])
    roc = roc_curve_points(y, p)
    assert roc["fpr"][0] == 0.0 and roc["tpr"][-1] == 1.0 and isinstance(roc["fpr"], list)
    pr = precision_recall_points(y, p)
    assert len(pr["precision"]) == len(pr["recall"]) == len(pr["thresholds"])
    assert roc_curve_points(np.ones(3), p[:3])["fpr"] == []
    big = roc_curve_points(np.random.default_rng(0).integers(0, 2, 5000), np.random.default_rng(1).random(5000),
                           max_points=100)
    assert len(big["fpr"]) <= 100


def test_kfold_indices_partition():
    folds = kfold_indices(23, 5, seed=3)
    assert len(folds) == 5
    valid = np.concatenate([v for _, v in folds])
    assert sorted(valid.tolist()) == list(range(23))       # each row validates exactly once
    for tr, va in folds:
        assert not set(tr.tolist()) & set(va.tolist()) and len(tr) + len(va) == 23
        assert len(va) in (4, 5)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, kfold_indices(23, 5, seed=3)))
    assert not np.array_equal(folds[0][1], kfold_indices(23, 5, seed=4)[0][1])
    with pytest.raises(ValueError):
        kfold_indices(3, 5, 0)
    s = summarize_folds([{"click": {"auc": 0.7}}, {"click": {"auc": 0.8}}])
    assert s["click"]["auc"]["mean"] == pytest.approx(0.75) and s["click"]["auc"]["std"] == pytest.approx(0.05)
