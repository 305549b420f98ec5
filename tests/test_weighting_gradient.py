"""Gradient-based loss weighting (issue 14 §2): the ``backward`` seam, PCGrad and MGDA against
hand-computed values, GradNorm's weights, every method on every architecture, AMP scaling, resume."""
from __future__ import annotations

import math

import pytest
import torch

from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig
from mtlrec.tasks import TaskSpec
from mtlrec.weighting import WEIGHTINGS, get_weighting

TWO = [TaskSpec("a", "binary"), TaskSpec("b", "regression")]
GRADIENT_METHODS = ["gradnorm", "pcgrad", "mgda", "cagrad", "nash_mtl", "imtlg", "aligned_mtl", "upgrad"]


def linear_toy(g1, g2, tower=2.0):
    """A shared θ with L_a = g1·θ + tower·t_a and L_b = g2·θ: constant task gradients g1, g2 on θ,
    and a tower parameter t_a of task a only."""
    theta = torch.nn.Parameter(torch.zeros(len(g1)))
    t_a = torch.nn.Parameter(torch.tensor(1.0))
    g1, g2 = torch.tensor(g1), torch.tensor(g2)
    losses = {"a": g1 @ theta + tower * t_a, "b": g2 @ theta}
    return theta, t_a, g1, g2, losses


def test_registry_has_the_gradient_methods_and_the_default_backward_is_combine():
    assert set(GRADIENT_METHODS) | {"rlw", "static", "uncertainty", "dwa"} <= set(WEIGHTINGS)
    theta, t_a, g1, g2, losses = linear_toy([1.0, 0.0], [0.0, 3.0])
    get_weighting("static", TWO, weights={"a": 2.0, "b": 0.5}).backward(losses, [theta])
    assert torch.allclose(theta.grad, 2.0 * g1 + 0.5 * g2) and float(t_a.grad) == pytest.approx(4.0)


@pytest.mark.parametrize("method", sorted(WEIGHTINGS))
def test_one_task_gets_its_plain_gradient(method):
    """A single-task baseline trains with the run's weighting: nothing to aggregate."""
    theta = torch.nn.Parameter(torch.zeros(3))
    g = torch.tensor([1.0, 2.0, 3.0])
    w = get_weighting(method, TWO[:1])
    w.backward({"a": g @ theta}, [theta])
    assert torch.allclose(theta.grad, g * w.weights()["a"]) and w.weights()["a"] > 0


def test_pcgrad_projects_conflicting_gradients_by_hand():
    theta, t_a, g1, g2, losses = linear_toy([1.0, 0.0, 2.0], [-1.0, 1.0, 0.2])
    assert float(g1 @ g2) < 0                          # they conflict
    w = get_weighting("pcgrad", TWO)
    w.backward(losses, [theta])
    p1 = g1 - (g1 @ g2) / (g2 @ g2) * g2               # g1 projected on the normal plane of g2
    p2 = g2 - (g2 @ g1) / (g1 @ g1) * g1
    assert torch.allclose(theta.grad, p1 + p2, atol=1e-5)
    assert float(p1 @ g2) == pytest.approx(0.0, abs=1e-6)
    assert float(t_a.grad) == pytest.approx(2.0)       # the tower keeps its own task's gradient
    # no conflict: the plain sum
    theta, _, g1, g2, losses = linear_toy([1.0, 0.0, 2.0], [1.0, 1.0, 0.5])
    get_weighting("pcgrad", TWO).backward(losses, [theta])
    assert torch.allclose(theta.grad, g1 + g2, atol=1e-5)


@pytest.mark.parametrize("g1,g2", [([1.0, 0.0, 2.0], [-1.0, 1.0, 0.2]), ([3.0, 1.0], [0.5, 0.2]),
                                   ([0.2, 1.0], [2.0, -0.5])])
def test_mgda_two_task_weights_are_the_closed_form(g1, g2):
    theta, _, g1, g2, losses = linear_toy(g1, g2)
    w = get_weighting("mgda", TWO)
    w.backward(losses, [theta])
    alpha = min(max(float((g2 - g1) @ g2) / float((g1 - g2) @ (g1 - g2)), 0.0), 1.0)
    ws = w.weights()
    assert ws["a"] == pytest.approx(alpha, abs=2e-2) and ws["b"] == pytest.approx(1 - alpha, abs=2e-2)
    assert torch.allclose(theta.grad, alpha * g1 + (1 - alpha) * g2, atol=5e-2)


def test_gradnorm_moves_weight_away_from_the_task_that_learns_faster():
    w = get_weighting("gradnorm", TWO, alpha=1.5)
    opt = torch.optim.SGD(w.parameters(), lr=0.05)
    p = torch.nn.Parameter(torch.ones(2))
    history = []
    for step in range(30):
        # task a learns fast (its loss falls to 0.09 of its start), task b does not move
        with torch.no_grad():
            p[0] = 1.0 if step == 0 else 0.3
        losses = {"a": p[0] ** 2, "b": p[1] ** 2}
        opt.zero_grad()
        w.backward(losses, [p])
        opt.step()
        history.append(w.weights())
    assert history[0] == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}   # equal rates at the start
    last = history[-1]
    assert last["a"] + last["b"] == pytest.approx(2.0)            # renormalised to sum T
    assert last["a"] < history[1]["a"] < 1.0 < history[1]["b"] < last["b"]
    # the weighted gradient norms move toward the target ratio r_a^α : r_b^α (a far below b)
    ga, gb = last["a"] * 2 * 0.3, last["b"] * 2 * 1.0
    assert ga / gb < (2 * 0.3) / 2.0


def test_rlw_weights_are_a_fresh_softmax_each_step_and_sum_to_one():
    w = get_weighting("rlw", TWO)
    seen = []
    for _ in range(3):
        w.combine({"a": torch.tensor(1.0), "b": torch.tensor(1.0)})
        ws = w.weights()
        assert sum(ws.values()) == pytest.approx(1.0) and all(v > 0 for v in ws.values())
        seen.append(ws["a"])
    assert len(set(seen)) == 3


def test_amp_scaler_gradients_are_scaled_like_a_scaled_backward():
    """With a GradScaler the aggregated direction lands in .grad multiplied by the scale, so that
    ``scaler.step`` unscales it as usual (CPU GradScaler, float32: scaling only)."""
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    theta, t_a, g1, g2, losses = linear_toy([1.0, 0.0, 2.0], [-1.0, 1.0, 0.2])
    get_weighting("pcgrad", TWO).backward(losses, [theta], scaler=scaler)
    p1 = g1 - (g1 @ g2) / (g2 @ g2) * g2
    p2 = g2 - (g2 @ g1) / (g1 @ g1) * g1
    assert torch.allclose(theta.grad, 1024.0 * (p1 + p2), rtol=1e-4)
    assert float(t_a.grad) == pytest.approx(2048.0)


# ---- every method trains every architecture ------------------------------------------------
@pytest.fixture(scope="module")
def ds():
    return make_dataset(n_rows=1500)


def _cfg(method, arch="shared_bottom", **train):
    t = {"epochs": 2, "batch_size": 512, "lr": 0.02, "device": "cpu", "weighting": method, "log_every": 2,
         "early_stopping": {"task": "click", "metric": "auc", "patience": 10}}
    t.update(train)
    tasks = [dict(x) for x in TASKS if x["name"] in ("click", "rating")]
    return RunConfig.from_dict({"tasks": tasks, "model": {"arch": arch}, "train": t})


def _fit(cfg, ds, **fit):
    from mtlrec.training.build import build_model_for, build_tasks
    from mtlrec.training.trainer import Trainer
    tasks = build_tasks(cfg, ds)
    trainer = Trainer(build_model_for(cfg, ds, tasks), tasks, cfg.train, "cpu", **fit.pop("trainer", {}))
    return trainer, trainer.fit(ds.to_device("cpu"), **fit)


@pytest.mark.parametrize("arch", ["shared_bottom", "mmoe", "ple"])
@pytest.mark.parametrize("method", ["rlw"] + GRADIENT_METHODS)
def test_every_method_trains_every_architecture(ds, method, arch):
    _, res = _fit(_cfg(method, arch), ds)
    assert res.status == "finished" and res.epochs_run == 2
    for e in res.history.epochs:
        assert all(math.isfinite(v) for v in e["train_loss"].values())
        assert all(math.isfinite(v) for v in e["weights"].values())
    assert res.test["click"]["auc"] > 0.55                      # beats a constant predictor (0.5)
    assert math.isfinite(res.test["rating"]["rmse"])


@pytest.mark.parametrize("method", ["gradnorm", "nash_mtl"])
def test_resume_with_a_gradient_method_continues_its_state(ds, method):
    class Keep:
        def __init__(self):
            self.states = []

        def write_checkpoint(self, state):
            self.states.append(state)

        def write_model(self, state): ...

        def write_history(self, history): ...

    cfg = _cfg(method, "mmoe", epochs=3)
    keep = Keep()
    _, full = _fit(cfg, ds, trainer={"writer": keep})
    after1 = keep.states[0]
    if method == "gradnorm":
        w = after1["weighting"]["task_weights"]
        assert not torch.allclose(w, torch.ones_like(w))         # the learnt weights are in the checkpoint
    _, resumed = _fit(cfg, ds, resume=after1)
    assert resumed.epochs_run == 3
    for a, b in zip(full.history.epochs[1:], resumed.history.epochs[1:]):
        for task in a["train_loss"]:
            assert b["train_loss"][task] == pytest.approx(a["train_loss"][task], rel=1e-3)
        for task in a["weights"]:
            assert b["weights"][task] == pytest.approx(a["weights"][task], rel=1e-2, abs=1e-3)
