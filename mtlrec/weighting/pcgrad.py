"""PCGrad (Yu et al., NeurIPS 2020, "Gradient surgery for multi-task learning"): each task
gradient is projected onto the normal plane of every other task gradient it conflicts with
(negative dot product) and the projected gradients are summed.

Aggregator: ``torchjd.aggregation.PCGrad`` (torchjd 0.18.0), see `mtlrec.weighting.gradients`.
"""
from __future__ import annotations

from mtlrec.weighting.gradients import JacobianAggregation


class PCGradStrategy(JacobianAggregation):
    name = "pcgrad"

    def make_aggregator(self):
        from torchjd.aggregation import PCGrad
        return PCGrad()
