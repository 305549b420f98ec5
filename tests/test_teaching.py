"""Teaching aids (issue 14 §4-§6): equations with the user's numbers, the seesaw verdict and Δm over
the single-task baselines, the label-correlation matrix, and cross-validation folds that keep users
apart (random split) or respect time (temporal split)."""
from __future__ import annotations

import numpy as np
import pytest

from mtlrec.dataset import FeatureField, LabelField, PreparedDataset
from mtlrec.teaching.formulas import architecture_equations, input_width
from mtlrec.metrics import group_kfold_indices, temporal_fold_indices
from mtlrec.runs.compare import gain_delta_m, seesaw
from mtlrec.teaching.correlation import label_correlation

TASKS = [{"name": "click", "weight": 1.0}, {"name": "rating", "weight": 0.5}]
TRAIN = {"l2": 0.002, "embedding_l2": 0.001, "weighting": "static"}


# ---------------------------------------------------------------------------- formulas
def test_shared_bottom_equations_hold_the_users_dims_weights_and_lambda():
    eqs = architecture_equations("shared_bottom", {"shared_dims": [96, 48], "tower_dims": [24], "embedding_dim": 8},
                                 TASKS, TRAIN, d_x=37)
    text = "\n".join(eqs)
    assert r"\sigma" in text and "W_H" in text and "b_H" in text          # the article's H = σ(W_H X + b_H)
    assert r"\mathbb{R}^{96\times 37}" in text and r"\mathbb{R}^{48\times 96}" in text
    assert "24" in text
    loss = eqs[-1]
    assert r"0.5\,L_{\text{rating}}" in loss and r"1\,L_{\text{click}}" in loss
    assert "0.002" in loss and "0.001" in loss                           # λ and μ


def test_mmoe_and_ple_equations_name_the_experts_and_gates():
    mmoe = "\n".join(architecture_equations("mmoe", {"n_experts": 5, "expert_dims": [40]}, TASKS, TRAIN, d_x=21))
    assert r"\mathrm{softmax}" in mmoe and r"\sum_{e=1}^{5}" in mmoe and r"\mathbb{R}^{5\times 21}" in mmoe
    assert "40" in mmoe
    ple = "\n".join(architecture_equations("ple", {"n_levels": 3, "n_shared_experts": 2, "n_specific_experts": 1},
                                           TASKS, TRAIN))
    assert "1..3" in ple and "2" in ple and "d_x" in ple              # symbolic input width without data
    assert "shared experts" in ple


def test_input_width_counts_embeddings_numerics_and_text_projections():
    fields = [FeatureField("user_id", "categorical", "user", vocab_size=5),
              FeatureField("age", "numeric", "user"),
              FeatureField("item_text", "dense", "item", dim=384)]
    assert input_width(fields, {"embedding_dim": 8, "dense_proj_dim": 32}) == 8 + 1 + 32


# ---------------------------------------------------------------------------- seesaw and Δm
def test_seesaw_names_the_helped_and_hurt_tasks():
    v = seesaw({"click": 0.02, "rating": -0.05, "like": 0.0})
    assert v["helped"] == ["click"] and v["hurt"] == ["rating"]
    assert "helped click" in v["text"] and "hurt rating" in v["text"] and "seesaw" in v["text"]
    # the metrics.json layout works too
    assert seesaw({"a": {"gain": 0.1}, "b": {"gain": -0.1}})["hurt"] == ["b"]


def test_no_seesaw_when_all_gains_agree():
    assert seesaw({"click": 0.02, "rating": 0.01}) is None
    assert seesaw({"click": -0.02, "rating": -0.01}) is None
    assert seesaw({}) is None


def test_delta_m_over_baselines_on_a_hand_made_example():
    gain = {"click": {"metric": "auc", "mtl": 0.8, "stl": 0.75, "gain": 0.05},          # +6.67 %
            "rating": {"metric": "rmse", "mtl": 1.1, "stl": 1.0, "gain": -0.1}}          # -10 % (lower is better)
    assert gain_delta_m(gain) == pytest.approx(100 * ((0.05 / 0.75) - 0.1) / 2)
    assert gain_delta_m(gain) < 0                          # the loss on rating outweighs the gain on click


# ---------------------------------------------------------------------------- label correlation
def _dataset(n_train=200, n_valid=50, sampled=False):
    rng = np.random.default_rng(1)

    def rows(n, offset):
        click = (rng.random(n) < 0.5).astype(np.float32)
        rating = (3 + 2 * click + rng.normal(size=n)).astype(np.float32)
        genres = (rng.random((n, 3)) < 0.4).astype(np.float32)
        r = {"user_index": rng.integers(0, 20, n), "item_index": rng.integers(0, 10, n),
             "label:click": click, "label:rating": rating, "label:genres": genres,
             "event_time": np.arange(n, dtype=np.float64) + offset}
        if sampled:
            r["sampled"] = np.arange(n) % 4 == 0
        return r
    return PreparedDataset([FeatureField("user_id", "categorical", "user", vocab_size=21)],
                           [LabelField("click", "binary"), LabelField("rating", "regression"),
                            LabelField("genres", "multilabel", ["a", "b", "c"])],
                           {"train": rows(n_train, 0), "valid": rows(n_valid, 1000), "test": rows(30, 2000)},
                           meta={"prep": {"split": "random"}})


def test_label_correlation_is_numpys_corrcoef_on_the_training_rows():
    ds = _dataset()
    corr = label_correlation(ds)
    tr = ds.rows["train"]
    expect = np.corrcoef([tr["label:click"], tr["label:rating"], tr["label:genres"].sum(axis=1)])
    assert list(corr.columns) == ["click", "rating", "genres (number of classes)"]
    np.testing.assert_allclose(corr.to_numpy(), expect, rtol=1e-6, atol=1e-6)
    assert corr.loc["click", "rating"] > 0.5            # rating was made to follow click


def test_label_correlation_leaves_sampled_negatives_out():
    ds = _dataset(sampled=True)
    tr = ds.rows["train"]
    keep = ~tr["sampled"]
    expect = np.corrcoef(tr["label:click"][keep], tr["label:rating"][keep])[0, 1]
    assert label_correlation(ds).loc["click", "rating"] == pytest.approx(expect, rel=1e-6)


# ---------------------------------------------------------------------------- CV folds
def test_group_folds_never_share_a_user_between_train_and_validation():
    users = np.random.default_rng(0).integers(0, 37, 1000)
    folds = group_kfold_indices(users, 4, seed=3)
    seen = np.zeros(len(users), int)
    for tr, va in folds:
        assert not set(users[tr]) & set(users[va])
        seen[va] += 1
        assert 150 < len(va) < 350                       # about a quarter of the rows each
    assert (seen == 1).all()                             # every row validated exactly once


def test_temporal_folds_never_validate_on_rows_earlier_than_training_rows():
    times = np.random.default_rng(0).permutation(np.repeat(np.arange(300), 2)).astype(float)
    folds = temporal_fold_indices(times, 3)
    assert len(folds) == 3
    for tr, va in folds:
        assert len(tr) and len(va)
        assert times[va].min() > times[tr].max()
    assert [len(tr) for tr, _ in folds] == sorted(len(tr) for tr, _ in folds)    # the training window grows


def test_cv_fold_indices_pick_the_scheme_from_the_split():
    from mtlrec.training.pipeline import cv_fold_indices
    ds = _dataset()
    scheme, folds = cv_fold_indices(ds, 3, seed=0)
    users = np.concatenate([ds.rows["train"]["user_index"], ds.rows["valid"]["user_index"]])
    assert scheme == "user" and all(not set(users[tr]) & set(users[va]) for tr, va in folds)
    ds.meta["prep"]["split"] = "temporal"
    scheme, folds = cv_fold_indices(ds, 3, seed=0)
    times = np.concatenate([ds.rows["train"]["event_time"], ds.rows["valid"]["event_time"]])
    assert scheme == "time" and all(times[va].min() > times[tr].max() for tr, va in folds)


def test_gradient_methods_show_the_gradient_combination_not_adapted_loss_weights():
    """Issue 21 #8: PCGrad combines task gradients; its equations say so instead of calling the w_i
    adapted loss weights. An adaptive loss weighting names who sets w_i(t); static keeps the numbers."""
    pc = architecture_equations("mmoe", {}, TASKS, {**TRAIN, "weighting": "pcgrad"})
    text = "\n".join(pc)
    assert "adapted" not in text and r"\sum_i w_i L_i" not in text           # no weighted loss
    assert r"\nabla_{\theta_s} = \sum_{i=1}^{2} w_i\,\nabla_{\theta_s} L_i" in text
    assert r"\mathcal{A}_{\text{PCGrad}}(J)" in text and "0.002" in text and "0.001" in text   # λ, μ kept
    assert r"L_{\text{click}}, L_{\text{rating}}" in pc[-3]
    dwa = architecture_equations("mmoe", {}, TASKS, {**TRAIN, "weighting": "dwa"})[-1]
    assert r"w_{\text{click}}(t)\,L_{\text{click}}" in dwa and "set by DWA" in dwa
    assert r"0.5\,L_{\text{rating}}" not in dwa                            # the sliders do not apply
    static = architecture_equations("mmoe", {}, TASKS, TRAIN)[-1]
    assert r"0.5\,L_{\text{rating}}" in static and "nabla" not in static
