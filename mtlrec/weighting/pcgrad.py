"""PCGrad (Yu et al., NeurIPS 2020, "Gradient surgery for multi-task learning"): each task
gradient is projected onto the normal plane of every other task gradient it conflicts with
(negative dot product) and the projected gradients are summed.

Aggregator: ``torchjd.aggregation.PCGrad`` (torchjd 0.18.0), see `mtlrec.weighting.gradients`.
"""
from __future__ import annotations

from mtlrec.weighting.gradients import JacobianAggregation


class PCGradStrategy(JacobianAggregation):
    name = "pcgrad"
    label = "PCGrad"
    summary = "projects each task gradient off the ones it conflicts with, then sums them (Yu et al. 2020)"

    def make_aggregator(self):
        from torchjd.aggregation import PCGrad
        return PCGrad()
