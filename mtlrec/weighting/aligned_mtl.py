"""Aligned-MTL (Senushkin et al., CVPR 2023, "Independent component alignment for multi-task
learning"): the task gradients are made orthogonal with equal norms (condition number 1).

Aggregator: ``torchjd.aggregation.AlignedMTL`` (torchjd 0.18.0), see `mtlrec.weighting.gradients`.
"""
from __future__ import annotations

from mtlrec.weighting.gradients import JacobianAggregation


class AlignedMTLStrategy(JacobianAggregation):
    name = "aligned_mtl"
    label = "Aligned-MTL"
    summary = "makes the task gradients orthogonal and of equal norm before summing (Senushkin et al. 2023)"

    def make_aggregator(self):
        from torchjd.aggregation import AlignedMTL
        return AlignedMTL()
