"""Nash-MTL (Navon et al., ICML 2022, "Multi-task learning as a bargaining game"): weights α with
(JJᵀ)α = 1/α, the Nash bargaining solution, found by a sequence of convex problems warm-started
from the previous step's α (Algorithm 1 of the paper, as in the reference code and torchjd 0.18.0:
``optim_niter`` iterations at most, ``max_norm`` clipping of ‖αᵀJ‖, new weights every
``update_weights_every`` steps, the previous α kept when the solver fails). Needs cvxpy (ECOS
when installed, as torchjd uses).

The convex problem (`mtlrec.weighting.nash_problem`) is DPP: cvxpy compiles it once per run and
every later solve only sets new parameter values. The previous α and the step counter travel in
``state_dict()`` for resume.
"""
from __future__ import annotations

import numpy as np
import torch

from mtlrec.weighting.gradients import JacobianAggregation


class NashWeighting:
    """Callable J [T, n] -> α [T]; keeps the warm-start α and the step counter."""

    def __init__(self, n_tasks: int, max_norm: float, update_weights_every: int, optim_niter: int):
        self.n_tasks, self.max_norm = n_tasks, max_norm
        self.update_weights_every, self.optim_niter = update_weights_every, optim_niter
        self.step = 0
        self.prvs_alpha = np.ones(n_tasks)
        self.problem = None      # a NashProblem, built at the first solve, then reused

    def solve(self, gtg: np.ndarray, scale: float) -> np.ndarray:
        """Algorithm 1's inner loop: iterate from the previous α until (Gα ≈ 1/α) or no change."""
        if self.problem is None:
            # cvxpy loads here, at the first solve: the weighting registry (read by the Results page and
            # the forms) stays cheap to import (cvxpy and its solvers take about 1 s)
            from mtlrec.weighting.nash_problem import NashProblem
            self.problem = NashProblem(self.n_tasks)
        alpha_t = self.prvs_alpha
        for _ in range(self.optim_niter):
            new = self.problem.solve(gtg, scale, alpha_t)
            if (new is None or np.linalg.norm(gtg @ alpha_t - 1 / (alpha_t + 1e-10)) < 1e-3
                    or np.linalg.norm(new - alpha_t) < 1e-6):
                break
            alpha_t = new
        self.prvs_alpha = alpha_t
        return alpha_t

    def __call__(self, jac: torch.Tensor) -> torch.Tensor:
        if self.step % self.update_weights_every == 0:
            gtg = (jac @ jac.T).detach().double().cpu().numpy()
            scale = float(np.linalg.norm(gtg))
            alpha = self.solve(gtg / scale if scale > 0 else gtg, scale)
        else:
            alpha = self.prvs_alpha
        self.step += 1
        alpha = torch.as_tensor(alpha, device=jac.device, dtype=jac.dtype)
        norm = torch.linalg.norm(alpha @ jac)
        if self.max_norm > 0 and norm > self.max_norm:
            alpha = alpha / norm * self.max_norm
        return alpha


class NashAggregator:
    """The ``aggregator`` seam of `JacobianAggregation`: ``weighting(J)`` gives α, ``(J)`` αᵀJ."""

    def __init__(self, weighting: NashWeighting):
        self.weighting = weighting

    def __call__(self, jac: torch.Tensor) -> torch.Tensor:
        return self.weighting(jac) @ jac


class NashMTLStrategy(JacobianAggregation):
    name = "nash_mtl"
    label = "Nash-MTL"
    summary = "weights from a bargaining game, a small convex problem solved every step (Navon et al. 2022)"

    def make_aggregator(self, max_norm: float = 1.0, update_weights_every: int = 1, optim_niter: int = 20):
        return NashAggregator(NashWeighting(len(self.task_names), float(max_norm),
                                            int(update_weights_every), int(optim_niter)))

    def get_extra_state(self):
        w = self.aggregator.weighting
        return {"step": float(w.step), "alpha": [float(v) for v in np.asarray(w.prvs_alpha).reshape(-1)]}

    def set_extra_state(self, state):
        w = self.aggregator.weighting
        if state.get("alpha"):
            w.prvs_alpha = np.asarray(state["alpha"], dtype=float)
        w.step = int(state.get("step", 0))
