"""Loss-weighting strategies, chosen by name from `WEIGHTINGS`.

``get_weighting(name, tasks, **options)`` builds one. To add a strategy: one file
with a `WeightingStrategy` subclass implementing ``combine`` and ``weights`` (gradient-based
ones override ``backward`` too, see `mtlrec.weighting.gradients`), plus one line in `WEIGHTINGS`.
Hand-written: static, uncertainty, dwa, gradnorm, rlw, nash_mtl (torchjd's algorithm with a DPP
cvxpy problem); aggregators from torchjd 0.18.0: pcgrad, mgda, cagrad, imtlg, aligned_mtl, upgrad.

``describe(name)``: what a method does (its class's ``label``, ``summary``, ``combines``) and what
it cost on the benchmark (`mtlrec.weighting.facts.MEASURED`, from ``bench/weighting.py``).
"""
from __future__ import annotations

from mtlrec.weighting.base import WeightingStrategy, l2_penalty, total_loss
from mtlrec.weighting.aligned_mtl import AlignedMTLStrategy
from mtlrec.weighting.cagrad import CAGradStrategy
from mtlrec.weighting.dwa import DynamicWeightAverage
from mtlrec.weighting.gradnorm import GradNorm
from mtlrec.weighting.imtlg import IMTLGStrategy
from mtlrec.weighting.mgda import MGDAStrategy
from mtlrec.weighting.nash_mtl import NashMTLStrategy
from mtlrec.weighting.pcgrad import PCGradStrategy
from mtlrec.weighting.rlw import RandomLossWeighting
from mtlrec.weighting.static import StaticWeighting
from mtlrec.weighting.uncertainty import UncertaintyWeighting
from mtlrec.weighting.upgrad import UPGradStrategy

WEIGHTINGS: dict[str, type[WeightingStrategy]] = {
    "static": StaticWeighting,
    "uncertainty": UncertaintyWeighting,
    "dwa": DynamicWeightAverage,
    "gradnorm": GradNorm,
    "rlw": RandomLossWeighting,
    "pcgrad": PCGradStrategy,
    "mgda": MGDAStrategy,
    "cagrad": CAGradStrategy,
    "nash_mtl": NashMTLStrategy,
    "imtlg": IMTLGStrategy,
    "aligned_mtl": AlignedMTLStrategy,
    "upgrad": UPGradStrategy,
}


def get_weighting(name: str, tasks, **options) -> WeightingStrategy:
    try:
        cls = WEIGHTINGS[name]
    except KeyError:
        raise ValueError(f"unknown loss weighting '{name}'; choose one of: {', '.join(WEIGHTINGS)}") from None
    return cls(tasks, **options)


def describe(name: str) -> dict:
    """``{"name", "label", "summary", "combines", "measured"}`` of a registered method; ``measured``:
    its row of `facts.MEASURED` (``delta_m_pct``, ``cost_vs_static``, ...) or None when the benchmark
    did not run it. ValueError for an unknown name."""
    from mtlrec.weighting.facts import MEASURED
    try:
        cls = WEIGHTINGS[name]
    except KeyError:
        raise ValueError(f"unknown loss weighting '{name}'; choose one of: {', '.join(WEIGHTINGS)}") from None
    return {"name": name, "label": cls.label or name, "summary": cls.summary, "combines": cls.combines,
            "measured": MEASURED["methods"].get(name)}


def methods_table() -> list[dict]:
    """One row per registered method: its name, what it combines, what it does and its benchmark
    figures (None where not measured)."""
    rows = []
    for name in WEIGHTINGS:
        d = describe(name)
        m = d["measured"] or {}
        rows.append({"method": name, "name": d["label"], "combines": d["combines"], "what it does": d["summary"],
                     "Δm % vs single-task": m.get("delta_m_pct"), "± (seeds)": m.get("delta_m_std"),
                     "CPU time per epoch vs static": m.get("cost_vs_static")})
    return rows


__all__ = ["WEIGHTINGS", "WeightingStrategy", "describe", "methods_table", "get_weighting", "l2_penalty", "total_loss"]
