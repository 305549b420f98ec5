"""MGDA (Sener & Koltun, NeurIPS 2018, "Multi-task learning as multi-objective optimization"):
the minimum-norm point of the convex hull of the task gradients (Frank-Wolfe solver).

Aggregator: ``torchjd.aggregation.MGDA`` (torchjd 0.18.0), see `mtlrec.weighting.gradients`.
"""
from __future__ import annotations

from mtlrec.weighting.gradients import JacobianAggregation


class MGDAStrategy(JacobianAggregation):
    name = "mgda"
    label = "MGDA"
    summary = "the smallest-norm convex combination of the task gradients (Sener & Koltun 2018)"

    def make_aggregator(self):
        from torchjd.aggregation import MGDA
        return MGDA()
