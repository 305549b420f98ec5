"""Nash-MTL's convex sub-problem, written so that cvxpy can compile it once and re-solve it.

Step t of Navon et al.'s Algorithm 1 (reference: github.com/AvivNavon/nash-mtl, MIT) solves, for
G = JJᵀ/‖JJᵀ‖ and the current iterate α̂ (warm start: the previous α),

    min_α≥0  Σ_i (Gα)_i + φ'(α̂)·(α − α̂)/s     s.t.  −log(α_i s) − log((Gα)_i) ≤ 0  for each task i

with s = ‖JJᵀ‖ and φ'(α̂) = 1/α̂ + Gᵀ(1/(Gα̂)). Written that way (as in the reference and torchjd)
the problem multiplies and divides parameters by parameters, which is not DPP ("disciplined
parametrised programming"): cvxpy warns and recompiles it on every solve. Here the parts that
depend only on the data are computed in numpy and passed as parameters of their own:

* ``G``  — the normalised Gram matrix (a parameter times the variable α: DPP);
* ``c``  — the linear term φ'(α̂)/s (the constant −φ'(α̂)·α̂/s does not move the minimiser);
* ``log_s`` — log s, moved to the right-hand side: −log α_i − log((Gα)_i) ≤ log s.

The minimiser is the same; ``problem.is_dpp()`` holds and the compiled problem is reused.
"""
from __future__ import annotations

import numpy as np


class NashProblem:
    """The DPP problem for ``n_tasks`` tasks; ``solve(gtg, scale, alpha_hat)`` returns the new α
    (a numpy vector) or None when the solver fails or finds no solution."""

    def __init__(self, n_tasks: int):
        import cvxpy as cp          # here, not at import: cvxpy takes ~1.4 s to import (every worker would pay it)
        self.alpha = cp.Variable(n_tasks, nonneg=True)
        self.G = cp.Parameter((n_tasks, n_tasks), value=np.eye(n_tasks))
        self.c = cp.Parameter(n_tasks, value=np.zeros(n_tasks))
        self.log_s = cp.Parameter(value=0.0)
        g_alpha = self.G @ self.alpha
        constraints = [-cp.log(self.alpha) - cp.log(g_alpha) <= self.log_s]
        self.problem = cp.Problem(cp.Minimize(cp.sum(g_alpha) + self.c @ self.alpha), constraints)
        self.solver = cp.ECOS if cp.ECOS in cp.installed_solvers() else None   # as torchjd; else cvxpy's pick
        self.solves = 0

    def solve(self, gtg: np.ndarray, scale: float, alpha_hat: np.ndarray) -> np.ndarray | None:
        with np.errstate(divide="ignore", invalid="ignore"):
            phi_tag = 1.0 / alpha_hat + (1.0 / (gtg @ alpha_hat)) @ gtg
        if not (np.isfinite(phi_tag).all() and np.isfinite(gtg).all() and scale > 0):
            return None                     # a zero gradient or a degenerate α̂: keep the previous α
        self.G.value = gtg
        self.c.value = phi_tag / scale
        self.log_s.value = float(np.log(scale))
        self.solves += 1
        import cvxpy as cp
        options = {"max_iters": 100} if self.solver == cp.ECOS else {}
        try:
            self.problem.solve(solver=self.solver, warm_start=True, **options)
        except (cp.SolverError, ValueError, ZeroDivisionError, FloatingPointError):
            return None
        if self.alpha.value is None:        # infeasible or unbounded: cvxpy leaves no value
            return None
        # an inaccurate solution (ECOS stopped at max_iters) is used, as the reference and torchjd do
        alpha = np.asarray(self.alpha.value, dtype=float)
        return alpha if np.isfinite(alpha).all() else None
