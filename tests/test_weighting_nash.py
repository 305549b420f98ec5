"""Nash-MTL (issue 25): a DPP cvxpy problem built once and re-solved, the same weights as
torchjd's NashMTL (the reference algorithm), resume keeps the warm-start α, no "not DPP" warning."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig
from mtlrec.tasks import TaskSpec
from mtlrec.weighting import get_weighting

THREE = [TaskSpec("a", "binary"), TaskSpec("b", "regression"), TaskSpec("c", "binary")]


def jacobians(n_tasks, steps=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    scale = torch.tensor([1.0, 3.0, 0.5, 2.0][:n_tasks], dtype=torch.float64)[:, None]
    return [torch.randn(n_tasks, 7, generator=g, dtype=torch.float64) * scale for _ in range(steps)]


def nash(tasks, **options):
    return get_weighting("nash_mtl", tasks, **options)


@pytest.mark.parametrize("n_tasks", [2, 3, 4])
@pytest.mark.parametrize("options", [{}, {"max_norm": 0.0}, {"update_weights_every": 2}])
def test_weights_equal_torchjd_nash_mtl_step_by_step(n_tasks, options):
    from torchjd.aggregation import NashMTL
    tasks = [TaskSpec(f"t{i}", "binary") for i in range(n_tasks)]
    ours, ref = nash(tasks, **options), NashMTL(n_tasks=n_tasks, **options).weighting
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                  # torchjd's own problem is not DPP
        for jac in jacobians(n_tasks):
            a = ref(jac).numpy()
            b = ours.aggregator.weighting(jac).numpy()
            assert np.round(b, 3).tolist() == pytest.approx(np.round(a, 3).tolist(), rel=1e-3, abs=2e-3)


def test_first_step_of_a_real_run_where_ecos_stops_at_max_iters_uses_its_solution():
    """The Gram matrix (×1e6) of MMoE's first batch on the sample data: tiny gradients, ECOS stops at
    its 100 iterations (status user_limit); torchjd, like the reference, takes that solution."""
    from torchjd.aggregation import NashMTL
    gram = 1e-6 * torch.tensor([[32.667, -0.858, 4.322, -2.148], [-0.858, 3.484, -0.54, 0.813],
                                [4.322, -0.54, 60.403, 1.523], [-2.148, 0.813, 1.523, 64.245]], dtype=torch.float64)
    jac = torch.linalg.cholesky(gram).float()                  # J Jᵀ = gram
    tasks = [TaskSpec(f"t{i}", "binary") for i in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = NashMTL(n_tasks=4, max_norm=0.0).weighting(jac).numpy()
        b = nash(tasks, max_norm=0.0).aggregator.weighting(jac).numpy()
    assert a.min() > 10                                         # far from the starting α = 1
    assert np.round(b, 1).tolist() == pytest.approx(np.round(a, 1).tolist(), rel=1e-2)


def test_problem_is_dpp_compiled_once_and_never_warns():
    strategy = nash(THREE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for jac in jacobians(3, steps=2):
            strategy.aggregator.weighting(jac)
        problem = strategy.aggregator.weighting.problem
        compiled = problem.problem._cache.param_prog
        for jac in jacobians(3, steps=5, seed=1):
            strategy.aggregator.weighting(jac)
    assert problem.problem.is_dpp()
    assert compiled is not None and problem.problem._cache.param_prog is compiled   # not recompiled
    assert problem.solves > 5 and strategy.aggregator.weighting.problem is problem
    assert not [w for w in caught if "DPP" in str(w.message)]


def test_a_zero_jacobian_keeps_the_previous_weights():
    strategy = nash(THREE, max_norm=0.0)
    first = strategy.aggregator.weighting(jacobians(3, steps=1)[0]).numpy()
    again = strategy.aggregator.weighting(torch.zeros(3, 7, dtype=torch.float64)).numpy()
    assert np.round(again, 4).tolist() == np.round(first, 4).tolist()


def test_resume_keeps_alpha_and_step():
    jacs = jacobians(3, steps=4)
    full = nash(THREE, update_weights_every=3)
    for jac in jacs[:2]:
        full.aggregator.weighting(jac)
    resumed = nash(THREE, update_weights_every=3)
    resumed.set_extra_state(full.get_extra_state())
    for jac in jacs[2:]:
        a, b = full.aggregator.weighting(jac).numpy(), resumed.aggregator.weighting(jac).numpy()
        assert np.round(b, 4).tolist() == np.round(a, 4).tolist()
    assert resumed.get_extra_state()["step"] == 4.0


def test_short_training_with_nash_mtl_has_no_dpp_warning():
    from mtlrec.training.build import build_model_for, build_tasks
    from mtlrec.training.trainer import Trainer
    ds = make_dataset(n_rows=600)
    tasks = [dict(x) for x in TASKS if x["name"] in ("click", "like", "rating")]
    cfg = RunConfig.from_dict({"tasks": tasks, "model": {"arch": "mmoe"},
                               "train": {"epochs": 1, "batch_size": 128, "device": "cpu", "weighting": "nash_mtl",
                                         "early_stopping": {"task": "click", "metric": "auc"}}})
    built = build_tasks(cfg, ds)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = Trainer(build_model_for(cfg, ds, built), built, cfg.train, "cpu").fit(ds.to_device("cpu"))
    assert res.status == "finished"
    assert not [str(w.message)[:80] for w in caught if "DPP" in str(w.message)]
