"""Nash-MTL (Navon et al., ICML 2022, "Multi-task learning as a bargaining game"): weights α with
(JJᵀ)α = 1/α, the Nash bargaining solution, solved by a sequence of convex problems warm-started
from the previous step's α. Needs cvxpy and ecos (torchjd[nash_mtl]).

Aggregator: ``torchjd.aggregation.NashMTL`` (torchjd 0.18.0), see `mtlrec.weighting.gradients`.
Its warm-start state (previous α and step counter) travels in ``state_dict()`` for resume.
"""
from __future__ import annotations

import warnings

import numpy as np

from mtlrec.weighting.gradients import JacobianAggregation

# torchjd's problem is re-solved with new parameters every step; cvxpy warns (once) that it is not
# DPP, i.e. that it cannot cache the compilation -- expected here, and nothing for the user to fix
warnings.filterwarnings("ignore", message="You are solving a parameterized problem that is not DPP",
                        category=UserWarning)


class NashMTLStrategy(JacobianAggregation):
    name = "nash_mtl"
    label = "Nash-MTL"
    summary = "weights from a bargaining game, a small convex problem solved every step (Navon et al. 2022)"

    def make_aggregator(self, max_norm: float = 1.0, update_weights_every: int = 1, optim_niter: int = 20):
        from torchjd.aggregation import NashMTL
        return NashMTL(n_tasks=len(self.task_names), max_norm=float(max_norm),
                       update_weights_every=int(update_weights_every), optim_niter=int(optim_niter))

    def get_extra_state(self):
        w = self.aggregator.weighting
        return {"step": float(w.step), "alpha": [float(v) for v in np.asarray(w.prvs_alpha).reshape(-1)]}

    def set_extra_state(self, state):
        w = self.aggregator.weighting
        if state.get("alpha"):
            w.prvs_alpha = np.asarray(state["alpha"], dtype=np.float32)
        step = float(state.get("step", 0.0))
        if step > 0 and w.prvs_alpha_param is None:   # torchjd builds its problem at step 0 only
            w._init_optim_problem()
        w.step = step
