"""Loss-weighting strategies, chosen by name from `WEIGHTINGS`.

``get_weighting(name, tasks, **options)`` builds one. To add a strategy: one file
with a `WeightingStrategy` subclass implementing ``combine`` and ``weights``, plus
one line in `WEIGHTINGS`.
"""
from __future__ import annotations

from mtlrec.weighting.base import WeightingStrategy, l2_penalty, total_loss
from mtlrec.weighting.dwa import DynamicWeightAverage
from mtlrec.weighting.static import StaticWeighting
from mtlrec.weighting.uncertainty import UncertaintyWeighting

WEIGHTINGS: dict[str, type[WeightingStrategy]] = {
    "static": StaticWeighting,
    "uncertainty": UncertaintyWeighting,
    "dwa": DynamicWeightAverage,
}


def get_weighting(name: str, tasks, **options) -> WeightingStrategy:
    try:
        cls = WEIGHTINGS[name]
    except KeyError:
        raise ValueError(f"unknown loss weighting '{name}'; choose one of: {', '.join(WEIGHTINGS)}") from None
    return cls(tasks, **options)


__all__ = ["WEIGHTINGS", "WeightingStrategy", "get_weighting", "l2_penalty", "total_loss"]
