"""UPGrad (Quinton & Rey, 2024, "Jacobian descent for multi-objective optimization"): each task
gradient is projected onto the dual cone of all task gradients (so it conflicts with none) and
the projections are averaged. Needs quadprog and qpsolvers (torchjd[quadprog_projector]).

Aggregator: ``torchjd.aggregation.UPGrad`` (torchjd 0.18.0), see `mtlrec.weighting.gradients`.
"""
from __future__ import annotations

from mtlrec.weighting.gradients import JacobianAggregation


class UPGradStrategy(JacobianAggregation):
    name = "upgrad"
    label = "UPGrad"
    summary = "projects each task gradient so it conflicts with none, then averages (Quinton & Rey 2024)"

    def make_aggregator(self):
        from torchjd.aggregation import UPGrad
        return UPGrad()
