"""Loss weighting: static sums, uncertainty learns, DWA reacts to slow tasks, registry errors."""
from __future__ import annotations

import math

import pytest
import torch

from mtlrec.tasks import TaskSpec
from mtlrec.weighting import WEIGHTINGS, get_weighting

TASKS = [TaskSpec("click", "binary", weight=2.0), TaskSpec("rating", "regression", weight=0.5)]


def test_registry_names_and_unknown():
    assert {"static", "uncertainty", "dwa"} <= set(WEIGHTINGS)
    with pytest.raises(ValueError, match="static.*uncertainty.*dwa"):
        get_weighting("gradnormx", TASKS)


def test_static_is_the_weighted_sum():
    w = get_weighting("static", TASKS)
    losses = {"click": torch.tensor(0.7), "rating": torch.tensor(3.0)}
    assert float(w.combine(losses)) == pytest.approx(2.0 * 0.7 + 0.5 * 3.0)
    assert w.weights() == {"click": 2.0, "rating": 0.5}
    assert list(w.parameters()) == []


def test_uncertainty_has_learnable_weights_that_move_toward_the_noisier_task():
    w = get_weighting("uncertainty", TASKS)
    params = list(w.parameters())
    assert len(params) == 1 and params[0].requires_grad
    before = w.weights()
    assert before == {"click": pytest.approx(1.0), "rating": pytest.approx(0.5)}   # exp(0), ½·exp(0)
    opt = torch.optim.Adam(w.parameters(), lr=0.05)
    for _ in range(200):   # constant losses: rating is 10x larger, so its weight must drop relative to click
        loss = w.combine({"click": torch.tensor(0.2), "rating": torch.tensor(2.0)})
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = w.weights()
    assert after["rating"] < before["rating"] and after["click"] > before["click"]
    # the optimum of ½e^{-s}L + ½s is e^{-s} = 1/L; of e^{-s}L + ½s it is e^{-s} = 1/(2L)
    assert after["rating"] == pytest.approx(0.5 / 2.0, rel=0.1)
    assert after["click"] == pytest.approx(1 / (2 * 0.2), rel=0.1)


def test_dwa_upweights_the_task_whose_loss_stalls():
    w = get_weighting("dwa", TASKS)
    losses = {"click": torch.tensor(1.0), "rating": torch.tensor(1.0)}
    assert float(w.combine(losses)) == pytest.approx(2.0)
    w.epoch_end({"click": 1.0, "rating": 1.0})
    assert w.weights() == {"click": 1.0, "rating": 1.0}       # needs two epochs
    w.epoch_end({"click": 0.5, "rating": 1.0})                # click halves, rating stalls
    ws = w.weights()
    assert ws["rating"] > 1.0 > ws["click"]
    assert ws["rating"] + ws["click"] == pytest.approx(2.0)   # weights sum to the number of tasks
    r = math.exp(0.5) / (math.exp(0.25) + math.exp(0.5))      # T = 2: exp(1/2) vs exp(0.5/2)
    assert ws["rating"] == pytest.approx(2 * r)


def test_every_method_says_what_it_does_and_what_it_cost_on_the_benchmark():
    """Issue 21 #14: one home for the measured figures (mtlrec.weighting.facts, from bench/weighting.py);
    every registered method describes itself and says what it combines."""
    from mtlrec.weighting import describe, methods_table
    from mtlrec.weighting.facts import MEASURED, measured_line
    assert MEASURED["source"].startswith("bench/weighting.py") and MEASURED["seeds"] == 3
    gradient = {"pcgrad", "mgda", "cagrad", "nash_mtl", "imtlg", "aligned_mtl", "upgrad"}
    for name in WEIGHTINGS:
        d = describe(name)
        assert d["label"] and len(d["summary"]) > 20, name
        assert d["combines"] == ("gradients" if name in gradient else "losses"), name
        m = d["measured"]
        assert isinstance(m["delta_m_pct"], float) and m["cost_vs_static"] > 0, name
    assert describe("static")["measured"]["cost_vs_static"] == 1.0
    worse = [n for n in WEIGHTINGS if describe(n)["measured"]["delta_m_pct"] < 0]
    for n in worse:
        assert "worse than training each task alone" in measured_line(describe(n)["measured"])
    assert [r["method"] for r in methods_table()] == list(WEIGHTINGS)
    with pytest.raises(ValueError, match="static"):
        describe("nope")


def test_the_weighting_bench_writes_the_figures_facts_holds(monkeypatch):
    """The figures of facts.MEASURED are what bench/weighting.py's summary computes: Δm the mean over
    the seeds, cost the median CPU seconds per epoch over static's."""
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("bench_weighting",
                                                  Path(__file__).resolve().parents[1] / "bench" / "weighting.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    row = {"test": {"like": 0.8}, "best_epoch": 3, "epochs_run": 6, "s_per_epoch": 1.0, "total_s": 6.0}
    per_seed = {s: {"static": {**row, "delta_m_pct": dm, "cpu_s_per_epoch": 1.0},
                    "pcgrad": {**row, "delta_m_pct": dm - 1, "cpu_s_per_epoch": c}}
                for s, dm, c in ((0, 0.5, 2.0), (1, 0.1, 9.0), (2, 0.3, 2.2))}
    out = bench.summarize(per_seed, ["static", "pcgrad"])
    assert out["static"]["delta_m_pct"] == 0.3 and out["pcgrad"]["delta_m_pct"] == -0.7
    assert out["pcgrad"]["cost_vs_static"] == 2.2 and out["static"]["cost_vs_static"] == 1.0
