"""IMTL-G (Liu et al., ICLR 2021, "Towards impartial multi-task learning"): the combination
of task gradients whose projections onto every unit task gradient are equal.

Aggregator: ``torchjd.aggregation.IMTLG`` (torchjd 0.18.0), see `mtlrec.weighting.gradients`.
"""
from __future__ import annotations

from mtlrec.weighting.gradients import JacobianAggregation


class IMTLGStrategy(JacobianAggregation):
    name = "imtlg"
    label = "IMTL-G"
    summary = "the combination whose projection on every task gradient is equal (Liu et al. 2021)"

    def make_aggregator(self):
        from torchjd.aggregation import IMTLG
        return IMTLG()
