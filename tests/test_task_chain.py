"""Task chains (issue 22): a task given another is trained and scored on its own space, its
entire-space probability is the product along the chain, and sampled negatives never reach a
regression loss or metric."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtlrec.chain import (SAMPLED_KEY, check_chain, describe, entire_space, entire_space_logit, own_space,
                          task_losses)
from mtlrec.errors import DataError
from mtlrec.tasks import TaskSpec

INTERACT = TaskSpec("interact", "binary")
LIKE = TaskSpec("like", "binary", given="interact")
RATING = TaskSpec("rating", "regression", given="interact", target_mean=3.0, target_std=1.0)
TASKS = [INTERACT, LIKE, RATING]

# six rows: four observed (interact 1), two sampled negatives (interact 0, made-up rating 1)
LABELS = {"interact": torch.tensor([1., 1., 1., 1., 0., 0.]),
          "like": torch.tensor([1., 0., 1., 0., 0., 0.]),
          "rating": torch.tensor([5., 2., 4., 3., 1., 1.]),
          SAMPLED_KEY: torch.tensor([False, False, False, False, True, True])}
OUT = {"interact": torch.tensor([2., 1., 0., -1., -2., 0.5]),
       "like": torch.tensor([1., -1., 0.5, 0., 3., -3.]),
       "rating": torch.tensor([1.5, -0.5, 1., 0., 9., 9.])}


def _bce(logit, y):
    p = 1 / (1 + math.exp(-logit))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_a_chained_task_counts_only_the_rows_where_its_parent_is_one():
    losses = task_losses(TASKS, OUT, LABELS)
    like = [_bce(float(OUT["like"][i]), float(LABELS["like"][i])) for i in range(4)]
    assert float(losses["like"]) == pytest.approx(sum(like) / 4, rel=1e-6)
    rating = [(float(OUT["rating"][i]) - (float(LABELS["rating"][i]) - 3.0)) ** 2 for i in range(4)]
    assert float(losses["rating"]) == pytest.approx(sum(rating) / 4, rel=1e-6)
    inter = [_bce(float(OUT["interact"][i]), float(LABELS["interact"][i])) for i in range(6)]
    assert float(losses["interact"]) == pytest.approx(sum(inter) / 6, rel=1e-6)


def test_the_entire_space_probability_is_the_product_along_the_chain():
    probs = {t.name: t.predict(OUT[t.name]) for t in TASKS}
    es = entire_space(TASKS, probs)
    want = torch.sigmoid(OUT["interact"]) * torch.sigmoid(OUT["like"])
    assert torch.allclose(es["like"], want)
    assert torch.allclose(es["interact"], probs["interact"]) and torch.allclose(es["rating"], probs["rating"])
    assert torch.allclose(torch.sigmoid(entire_space_logit(LIKE, TASKS, OUT)), want, atol=1e-6)
    assert describe(TASKS)[0] == "p(interact ∧ like) = p(interact) · p(like | interact)"


def test_entire_space_training_fits_the_product_against_the_product_of_labels_on_every_row():
    losses = task_losses(TASKS, OUT, LABELS, mode="entire_space")
    p = torch.sigmoid(OUT["interact"]) * torch.sigmoid(OUT["like"])
    y = LABELS["interact"] * LABELS["like"]
    want = float(-(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean())
    assert float(losses["like"]) == pytest.approx(want, rel=1e-5)


def test_a_regression_task_ignores_sampled_rows_even_without_a_chain():
    free = TaskSpec("rating", "regression", target_mean=3.0, target_std=1.0)
    mask = own_space(free, LABELS)
    assert mask.tolist() == [True] * 4 + [False] * 2
    with_negatives = float(task_losses([free], OUT, LABELS)["rating"])
    observed = {k: v[:4] for k, v in LABELS.items()}
    without = float(task_losses([free], {k: v[:4] for k, v in OUT.items()}, observed)["rating"])
    assert with_negatives == pytest.approx(without, rel=1e-6)


def test_a_batch_without_rows_of_the_own_space_gives_a_zero_loss_with_a_gradient():
    logits = torch.zeros(2, requires_grad=True)
    labels = {"interact": torch.tensor([0., 0.]), "like": torch.tensor([0., 0.])}
    loss = LIKE.loss(logits, labels["like"], own_space(LIKE, labels))
    loss.backward()
    assert float(loss) == 0.0 and logits.grad is not None


@pytest.mark.parametrize("tasks, words", [
    ([TaskSpec("like", "binary", given="click")], "not one of the tasks"),
    ([TaskSpec("r", "regression"), TaskSpec("like", "binary", given="r")], "must be binary"),
    ([TaskSpec("a", "binary", given="b"), TaskSpec("b", "binary", given="a")], "loops back"),
])
def test_a_broken_chain_is_refused_in_words(tasks, words):
    with pytest.raises(DataError, match=words):
        check_chain(tasks)


def test_numpy_masks_match_the_tensor_ones():
    np_labels = {k: v.numpy() for k, v in LABELS.items()}
    assert own_space(LIKE, np_labels).tolist() == own_space(LIKE, LABELS).tolist() == [True] * 4 + [False] * 2
    assert np.array_equal(entire_space(TASKS, {"interact": np.array([0.5]), "like": np.array([0.4])})["like"],
                          np.array([0.2]))
