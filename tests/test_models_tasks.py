"""Tasks: losses on logits, predictions, metric directions, config validation against a dataset."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtlrec.dataset import LabelField, PreparedDataset
from mtlrec.errors import DataError
from mtlrec.tasks import TaskSpec, tasks_from_config


def _dataset():
    return PreparedDataset([], [LabelField("click", "binary"), LabelField("rating", "regression"),
                                LabelField("genres", "multilabel", ["Action", "Comedy", "Drama"])], rows={})


def test_binary_loss_is_bce_on_logits_and_predict_is_sigmoid():
    t = TaskSpec("click", "binary")
    logits, y = torch.tensor([2.0, -1.0, 0.0]), torch.tensor([1.0, 0.0, 1.0])
    p = 1 / (1 + np.exp(-logits.numpy()))
    expected = -np.mean(y.numpy() * np.log(p) + (1 - y.numpy()) * np.log(1 - p))
    assert float(t.loss(logits, y)) == pytest.approx(expected, rel=1e-5)
    assert torch.allclose(t.predict(logits), torch.tensor(p, dtype=torch.float32))
    # large logits stay finite (a sigmoid+log would give inf)
    assert math.isfinite(float(t.loss(torch.tensor([200.0]), torch.tensor([0.0]))))


def test_regression_loss_is_mse_and_predict_identity():
    t = TaskSpec("rating", "regression")
    logits, y = torch.tensor([3.0, 4.0]), torch.tensor([2.0, 5.0])
    assert float(t.loss(logits, y)) == pytest.approx(1.0)
    assert torch.equal(t.predict(logits), logits)


def test_multilabel_loss_is_mean_bce_over_classes():
    t = TaskSpec("genres", "multilabel", n_outputs=3)
    logits = torch.zeros(2, 3)
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    assert float(t.loss(logits, y)) == pytest.approx(math.log(2), rel=1e-6)


def test_default_metrics_and_direction():
    assert TaskSpec("c", "binary").metric == "auc" and TaskSpec("c", "binary").higher_is_better
    r = TaskSpec("r", "regression")
    assert r.metric == "rmse" and not r.higher_is_better
    assert TaskSpec("r", "regression", metric="mae").higher_is_better is False
    assert TaskSpec("c", "binary", metric="logloss").higher_is_better is False
    assert TaskSpec("g", "multilabel", n_outputs=2).higher_is_better


def test_bad_task_definitions_are_clear():
    with pytest.raises(ValueError, match="binary, regression, multilabel"):
        TaskSpec("x", "ranking")
    with pytest.raises(ValueError, match="does not apply to regression.*mae"):
        TaskSpec("r", "regression", metric="auc")
    with pytest.raises(ValueError, match="unknown metric 'aucc'"):
        TaskSpec("c", "binary", metric="aucc")
    with pytest.raises(ValueError, match=">= 0"):
        TaskSpec("c", "binary", weight=-1)


def test_to_dict_roundtrip():
    t = TaskSpec("genres", "multilabel", label="genres", weight=0.5, metric="macro_f1", n_outputs=3)
    assert TaskSpec.from_dict(t.to_dict()) == t


def test_tasks_from_config_fills_outputs_and_defaults():
    tasks = tasks_from_config([{"name": "click"}, {"name": "stars", "label": "rating", "weight": 0.3},
                               {"name": "genres", "type": "multilabel", "metric": "macro_auc"}], _dataset())
    assert [t.type for t in tasks] == ["binary", "regression", "multilabel"]
    assert tasks[1].label == "rating" and tasks[1].weight == 0.3
    assert tasks[2].n_outputs == 3 and tasks[2].metric == "macro_auc"


def test_tasks_from_config_errors_name_the_fix():
    with pytest.raises(DataError, match="no label 'like'.*click \\(binary\\), rating \\(regression\\)"):
        tasks_from_config([{"name": "like"}], _dataset())
    with pytest.raises(DataError, match="configured as binary but label 'rating' is regression"):
        tasks_from_config([{"name": "rating", "type": "binary"}], _dataset())
    with pytest.raises(DataError, match="two tasks are named 'click'"):
        tasks_from_config([{"name": "click"}, {"name": "click"}], _dataset())
    with pytest.raises(DataError, match="does not apply"):
        tasks_from_config([{"name": "rating", "metric": "auc"}], _dataset())


def test_regression_learns_the_standardised_target_and_predicts_on_the_label_scale():
    t = TaskSpec("rating", "regression", target_mean=3.0, target_std=2.0)
    y = torch.tensor([1.0, 3.0, 5.0])
    # a logit of 0 means "the training mean"; the loss is on (y - mean) / std
    assert torch.isclose(t.loss(torch.zeros(3), y), torch.tensor((1 + 0 + 1) / 3))
    assert torch.allclose(t.predict(torch.tensor([-1.0, 0.0, 1.0])), y)
    assert TaskSpec.from_dict(t.to_dict()) == t
    with pytest.raises(ValueError, match="target_std"):
        TaskSpec("rating", "regression", target_std=0.0)


def test_tasks_from_config_standardises_regression_with_training_statistics():
    ds = _dataset()
    ds.meta["report"] = {"labels": {"rating": {"type": "regression", "mean": 3.5, "std": 0.5}}}
    rating = [t for t in tasks_from_config([{"name": "rating"}, {"name": "click"}], ds)]
    assert (rating[0].target_mean, rating[0].target_std) == (3.5, 0.5)
    assert (rating[1].target_mean, rating[1].target_std) == (0.0, 1.0)   # binary: untouched
