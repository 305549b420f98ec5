"""CAGrad (Liu et al., NeurIPS 2021, "Conflict-averse gradient descent for multi-task learning"):
the direction that maximises the worst task improvement within a ball of radius c·‖g_0‖
around the average gradient g_0 (c = 0.4 by default). Needs cvxpy and clarabel (torchjd[cagrad]).

Aggregator: ``torchjd.aggregation.CAGrad`` (torchjd 0.18.0), see `mtlrec.weighting.gradients`.
"""
from __future__ import annotations

from mtlrec.weighting.gradients import JacobianAggregation


class CAGradStrategy(JacobianAggregation):
    name = "cagrad"
    label = "CAGrad"
    summary = "the average gradient, moved to help the worst-off task most (c = 0.4; Liu et al. 2021)"

    def make_aggregator(self, c: float = 0.4):
        from torchjd.aggregation import CAGrad
        return CAGrad(c=float(c))
