"""Training dynamics (issue 14 §1): task-gradient norms and cosines on the shared parameters, gate
entropy and expert shares, stored per epoch in history.json; their figures; the early-stopping sentence."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig, TrainConfig
from mtlrec.errors import TrainingError
from mtlrec.training.dynamics import (DynamicsRecorder, aggregate, gate_entropy, gradient_gram, norms_and_cosines,
                                      sampled_batches, shared_parameters, task_gradient_gram)

SMALL = {"n_experts": 3, "expert_dims": [16], "tower_dims": [8], "embedding_dim": 8}


def cfg_for(arch="mmoe", tasks=TASKS, **train) -> RunConfig:
    t = {"epochs": 2, "batch_size": 256, "lr": 0.01, "log_every": 4, "device": "cpu", "dynamics_every": 4}
    t.update(train)
    hp = dict(SMALL) if arch == "mmoe" else {"tower_dims": [8], "embedding_dim": 8}
    return RunConfig.from_dict({"tasks": tasks, "model": {"arch": arch, **hp}, "train": t})


@pytest.fixture(scope="module")
def ds():
    return make_dataset(n_rows=2400)


# ---------------------------------------------------------------------------- the measurement
def test_cosine_and_norms_of_hand_made_gradients():
    # two tasks, two parameters; the second task has no gradient on the second parameter (None)
    g1 = [torch.tensor([1.0, 2.0]), torch.tensor([[2.0]])]
    g2 = [torch.tensor([-1.0, 0.0]), None]
    G = gradient_gram([g1, g2])
    n, cos = norms_and_cosines(G)
    assert n.tolist() == pytest.approx([3.0, 1.0])
    assert cos[0, 1].item() == pytest.approx(-1.0 / 3.0)          # (1*-1 + 2*0 + 2*0) / (3 * 1)
    assert cos[0, 0].item() == pytest.approx(1.0)
    # a zero gradient has cosine 0 with everything, not NaN
    _, cos0 = norms_and_cosines(gradient_gram([g1, [torch.zeros(2), torch.zeros(1, 1)]]))
    assert cos0[0, 1].item() == 0.0


class Toy(nn.Module):
    """Shared parameter theta (2 numbers), one linear tower per task. With a fixed input x the task
    loss L_i = w_i * (theta . x) has the gradient w_i * x on theta: tasks with weights of opposite
    signs conflict (cosine -1), their norms are |w_i| * |x|."""

    has_gates = False

    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([0.5, -0.25]))
        self.towers = nn.ModuleList([nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)])
        with torch.no_grad():
            self.towers[0].weight.fill_(2.0)
            self.towers[1].weight.fill_(-3.0)

    def task_parameters(self):
        return {"a": list(self.towers[0].parameters()), "b": list(self.towers[1].parameters())}

    def forward(self, x):
        h = (self.theta * x).sum().reshape(1, 1)
        return {"a": self.towers[0](h).sum(), "b": self.towers[1](h).sum()}


def test_conflict_of_a_toy_with_known_gradients():
    model = Toy()
    assert shared_parameters(model) == [model.theta]              # the towers are not shared
    x = torch.tensor([3.0, 4.0])                                  # |x| = 5
    rec = DynamicsRecorder(model, ["a", "b"], every=1)
    for _ in range(2):
        out = model(x)
        losses = {"a": out["a"], "b": out["b"]}
        rec.batch(0, 1, None, losses)
        (losses["a"] + losses["b"]).backward()                   # the graph is still there for the step
        assert model.theta.grad.tolist() == pytest.approx([(2 - 3) * 3.0, (2 - 3) * 4.0])
        model.theta.grad = None
    d = rec.epoch_end()
    assert d["batches"] == 2
    assert d["grad_norm"] == pytest.approx({"a": 10.0, "b": 15.0})
    assert d["pairs"] == [{"tasks": ["a", "b"], "cosine": pytest.approx(-1.0), "conflict": 1.0}]
    assert "gates" not in d
    assert rec.epoch_end() is None                                # the next epoch starts empty


def test_measuring_leaves_no_gradient_behind_and_unscales_mixed_precision():
    model = Toy()
    out = model(torch.tensor([1.0, 1.0]))
    G = task_gradient_gram([out["a"], out["b"]], [model.theta])
    assert model.theta.grad is None
    # under AMP the losses are multiplied by the grad scaler's factor first; the result is unscaled
    scaled = task_gradient_gram([out["a"], out["b"]], [model.theta], scale=1024.0)
    assert torch.allclose(scaled, G)


def test_aggregate_conflict_share_and_mean_cosine():
    # three sampled batches of two tasks: cosines +0.6, -0.8, -0.2 -> mean -0.133, conflict 2/3
    grams = []
    for c in (0.6, -0.8, -0.2):
        grams.append(torch.tensor([[4.0, c * 2 * 3], [c * 2 * 3, 9.0]]))
    d = aggregate(["x", "y"], grams)
    assert d["grad_norm"] == pytest.approx({"x": 2.0, "y": 3.0})
    p = d["pairs"][0]
    assert p["cosine"] == pytest.approx((0.6 - 0.8 - 0.2) / 3)
    assert p["conflict"] == pytest.approx(2 / 3)
    # a batch that overflowed (inf) is left out, not averaged in
    d2 = aggregate(["x", "y"], grams + [torch.full((2, 2), float("inf"))])
    assert d2["batches"] == 3 and d2["pairs"][0]["conflict"] == pytest.approx(2 / 3)


def test_gate_entropy_bounds():
    one_hot = torch.tensor([[1.0, 0.0, 0.0, 0.0]] * 5)
    uniform = torch.full((5, 4), 0.25)
    assert gate_entropy(one_hot).item() == pytest.approx(0.0, abs=1e-6)
    assert gate_entropy(uniform).item() == pytest.approx(math.log(4))


def test_sampled_batches_keep_about_one_in_k_and_at_least_one_per_epoch():
    assert sampled_batches(47, 20) == [0, 23]
    assert sampled_batches(200, 20) == list(range(0, 200, 20))
    assert sampled_batches(3, 20) == [0]
    assert sampled_batches(10, 0) == []


# ---------------------------------------------------------------------------- in training runs
@pytest.mark.parametrize("arch", ["mmoe", "ple"])
def test_training_records_finite_norms_and_gate_stats(ds, arch):
    from mtlrec.training.pipeline import run_training
    res = run_training(cfg_for(arch), dataset=ds)
    eps = res.history.epochs
    assert all("dynamics" in e for e in eps)
    names = [t["name"] for t in TASKS]
    for e in eps:
        d = e["dynamics"]
        assert d["batches"] >= 1
        assert set(d["grad_norm"]) == set(names)
        assert all(math.isfinite(v) and v > 0 for v in d["grad_norm"].values()), d["grad_norm"]
        assert len(d["pairs"]) == len(names) * (len(names) - 1) // 2
        for p in d["pairs"]:
            assert -1.0 <= p["cosine"] <= 1.0 and 0.0 <= p["conflict"] <= 1.0
        gates = d["gates"]
        assert set(gates) == set(names)
        n_exp = len(d["experts"])
        assert d["max_entropy"] == pytest.approx(math.log(n_exp))
        for g in gates.values():
            assert 0.0 <= g["entropy"] <= math.log(n_exp) + 1e-6
            assert len(g["shares"]) == n_exp and sum(g["shares"]) == pytest.approx(1.0, abs=1e-4)
    if arch == "ple":
        assert d["experts"][0].startswith("own") and d["experts"][-1].startswith("shared")


def test_history_json_keeps_the_records_and_old_histories_still_load(ds, tmp_path):
    from mtlrec.runs.load import load_run
    from mtlrec.training.pipeline import run_training
    from mtlrec.figures.dynamics import dynamics_figs, has_dynamics
    run_dir = tmp_path / "run"
    run_training(cfg_for("shared_bottom"), run_dir, dataset=ds)
    hist = json.loads((run_dir / "history.json").read_text())
    assert all("grad_norm" in e["dynamics"] for e in hist["epochs"])
    assert "gates" not in hist["epochs"][0]["dynamics"]            # shared-bottom has no gates
    assert set(dynamics_figs(hist)) == {"weights", "grad_norm", "cosine"}
    # a run from before: the same folder without the records still loads, with nothing to plot
    for e in hist["epochs"]:
        e.pop("dynamics")
    (run_dir / "history.json").write_text(json.dumps(hist))
    run = load_run(run_dir)
    assert len(run.history) == 2 and not run.notes
    assert not has_dynamics(run.history.to_dict()) and dynamics_figs(run.history.to_dict()) == {}


def test_dynamics_off_records_nothing_and_do_not_change_training(ds):
    from mtlrec.training.pipeline import run_training
    off = run_training(cfg_for("mmoe", dynamics_every=0), dataset=ds).history.epochs
    on = run_training(cfg_for("mmoe", dynamics_every=1), dataset=ds).history.epochs
    assert not any("dynamics" in e for e in off)
    assert all("dynamics" in e for e in on)
    # measuring does not change what is learned: same validation metrics
    for a, b in zip(on, off):
        for t, ms in b["valid"].items():
            for m, v in ms.items():
                assert a["valid"][t][m] == pytest.approx(v, rel=1e-4, abs=1e-6), (t, m)


def test_dynamics_every_is_validated():
    assert TrainConfig().dynamics_every > 0
    with pytest.raises(TrainingError, match="dynamics_every"):
        TrainConfig(dynamics_every=-1).validate()


# ---------------------------------------------------------------------------- figures and words
def test_figures_and_conflict_sentence():
    from mtlrec.figures.dynamics import TITLES, conflict_summary, dynamics_figs, live_dynamics_fig
    hist = {"epochs": [
        {"epoch": 1, "weights": {"a": 1.0, "b": 0.5},
         "dynamics": {"batches": 3, "grad_norm": {"a": 0.2, "b": 0.1},
                      "pairs": [{"tasks": ["a", "b"], "cosine": -0.3, "conflict": 2 / 3}],
                      "gates": {"a": {"entropy": 0.9, "shares": [0.7, 0.3]},
                                "b": {"entropy": 0.5, "shares": [0.1, 0.9]}},
                      "max_entropy": math.log(2), "experts": ["expert 1", "expert 2"]}},
        {"epoch": 2, "weights": {"a": 1.0, "b": 0.5}}]}             # an epoch without a measured batch
    figs = dynamics_figs(hist)
    assert set(figs) == {"weights", "grad_norm", "cosine", "entropy", "shares"}
    for name, fig in figs.items():
        assert fig.layout.title.text == TITLES[name]
    assert list(figs["weights"].data[0].x) == [1, 2]
    assert list(figs["grad_norm"].data[0].x) == [1]
    assert [tr.name for tr in figs["shares"].data] == ["expert 1", "expert 2"]
    assert live_dynamics_fig(hist) is not None and live_dynamics_fig({"epochs": []}) is None
    [line] = conflict_summary(hist)                 # 3 sampled batches: too few to call it a conflict
    assert line.startswith("Only 3 sampled batches so far: too few to call any pair of tasks in conflict")


def test_early_stopping_sentence():
    from mtlrec.training.early_stopping import describe
    s = describe("click", "auc", True, 3)
    assert s.startswith("Early stopping follows click's validation AUC (higher is better), patience 3")
    assert "lower is better" in describe("rating", "rmse", False, 2) and "RMSE" in describe("rating", "rmse", False, 2)
    assert "never stops early" in describe("click", "auc", True, 0)


def test_a_gradient_methods_weights_are_named_implied_weights():
    """Issue 21 #8: PCGrad's recorded weights are the aggregator's coefficients, not loss weights."""
    from mtlrec.figures.dynamics import TITLES, dynamics_figs, weights_fig
    hist = {"epochs": [{"epoch": 1, "weights": {"a": 1.0, "b": 6.2},
                        "dynamics": {"batches": 2, "grad_norm": {"a": 0.2, "b": 0.1},
                                     "pairs": [{"tasks": ["a", "b"], "cosine": -0.4, "conflict": 1.0}]}}]}
    pc = weights_fig(hist, "pcgrad")
    assert pc.layout.title.text == TITLES["implied_weights"] and "Loss weight" not in pc.layout.title.text
    assert pc.layout.yaxis.title.text.startswith("implied weight")
    assert dynamics_figs(hist, "mgda")["weights"].layout.title.text == TITLES["implied_weights"]
    for loss_method in ("static", "dwa", None):
        assert weights_fig(hist, loss_method).layout.title.text == "Loss weight per task"


def _pair_history(epochs: int, batches: int, cosine: float, conflict: float) -> dict:
    return {"epochs": [{"epoch": e, "dynamics": {"batches": batches, "grad_norm": {"a": 0.1, "b": 0.1},
                                                 "pairs": [{"tasks": ["a", "b"], "cosine": cosine,
                                                            "conflict": conflict}]}}
                       for e in range(1, epochs + 1)]}


def test_conflict_needs_a_sample_an_interval_and_a_negative_cosine():
    """Issue 21 #9: "50 % of the 4 sampled batches ... mean cosine +0.00" is no conflict: too few
    batches, and a zero cosine is orthogonal. Enough batches, mostly negative, clearly negative
    cosine: a conflict, said with the sample size and a 95% interval."""
    from mtlrec.figures.dynamics import conflict_summary
    tiny = conflict_summary(_pair_history(1, 4, 0.0, 0.5))
    assert not any("opposite directions" in s for s in tiny)
    from mtlrec.figures.dynamics import pair_conflicts, wilson
    assert tiny == ["Only 4 sampled batches so far: too few to call any pair of tasks in conflict (at least 10 "
                    "needed; a smaller train.dynamics_every samples more)."]
    flat = conflict_summary(_pair_history(5, 4, 0.0, 0.5))            # 12 batches pooled, cosine 0
    assert len(flat) == 1 and "not called a conflict: their gradients are nearly orthogonal" in flat[0]
    assert "6 of 12 sampled batches of epochs 3–5" in flat[0]
    [c] = pair_conflicts(_pair_history(5, 4, -0.3, 1.0))
    assert (c["batches"], c["negative"], c["first"], c["last"], c["verdict"]) == (12, 12, 3, 5, "conflict")
    [line] = conflict_summary(_pair_history(5, 4, -0.3, 1.0))
    assert line == ("a and b pulled the shared parameters in opposite directions: 12 of 12 sampled batches of "
                    "epochs 3–5 (100%, 95% interval 76%–100%; mean cosine -0.30)")
    # a bare majority of 12 batches is not "most, beyond chance"
    assert pair_conflicts(_pair_history(3, 4, -0.2, 0.75))[0]["verdict"] == "unclear"
    lo, hi = wilson(9, 12)
    assert round(lo, 3) == 0.468 and round(hi, 3) == 0.911
