"""Gradient-based weighting: aggregate the per-task gradients of the shared parameters.

`JacobianAggregation` overrides ``backward``: it takes the Jacobian J [T, n] of the T task
losses with respect to the shared parameters (``task_jacobian``: one ``autograd.grad`` per task),
asks an aggregator for the combined direction ``d = w @ J`` (the methods of ``torchjd``:
PCGrad, MGDA, CAGrad, Nash-MTL, IMTL-G, Aligned-MTL, UPGrad, one short file each) and writes
``d`` into the shared parameters' ``.grad``. Task towers get their own task's gradient, from one
ordinary backward pass of ``Σ_i L_i`` (tower i appears only in L_i). ``weights()`` reports the
last aggregation weights w.

AMP: with a ``GradScaler`` the per-task gradients are taken of the scaled losses and divided by
the scale before aggregating (not every aggregator is scale-invariant: Nash-MTL is not); the
direction is multiplied back, so ``scaler.step`` unscales it, checks it for inf/NaN and skips the
step as it always does. A non-finite Jacobian is not aggregated: the plain (non-finite) sum stays
in ``.grad``, so the scaler skips the step, or, without AMP, the trainer's NaN guard reports it.
With one task (a single-task baseline) there is nothing to aggregate: its plain gradient is used.
"""
from __future__ import annotations

import torch

from mtlrec.weighting.base import WeightingStrategy


def task_jacobian(losses: dict[str, torch.Tensor], names, params, scaler=None) -> tuple[torch.Tensor, float]:
    """(J, scale): row i is ∂L_i/∂params flattened (float32, unscaled); ``scale`` is the
    scaler's current scale (1.0 without one). The graph is kept for a later backward."""
    rows = []
    for name in names:
        loss = losses[name] if scaler is None else scaler.scale(losses[name])
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).float()
                               for g, p in zip(grads, params)]))
    jac = torch.stack(rows)
    scale = float(scaler.get_scale()) if scaler is not None else 1.0
    return (jac / scale if scale != 1.0 else jac), scale


def write_grads(params, vector: torch.Tensor) -> None:
    """Put the flat ``vector`` into ``p.grad`` of ``params`` (replacing what is there)."""
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = vector[offset:offset + n].reshape(p.shape).to(p.dtype).clone()
        offset += n


class JacobianAggregation(WeightingStrategy):
    """Base of the torchjd-backed strategies: subclasses return the aggregator in
    ``make_aggregator()``. Loss-level ``combine`` (for reporting) is the plain sum."""

    combines = "gradients"

    def __init__(self, tasks, **aggregator_options):
        super().__init__(tasks)
        self.aggregator = self.make_aggregator(**aggregator_options)
        self._last: torch.Tensor | None = None

    def make_aggregator(self, **options):
        raise NotImplementedError

    def combine(self, losses):
        return self.weighted_sum(losses, {n: 1.0 for n in self.task_names})

    def aggregate(self, jac: torch.Tensor) -> torch.Tensor:
        """d = w @ J with w from the aggregator's weighting (kept for ``weights()``)."""
        weighting = getattr(self.aggregator, "weighting", None)
        if weighting is None:
            return self.aggregator(jac)
        w = weighting(jac)
        self._last = w.detach()
        return w.to(jac.dtype) @ jac

    def backward(self, losses, shared_params, scaler=None):
        params = [p for p in shared_params if p.requires_grad]
        jac, scale = task_jacobian(losses, self.task_names, params, scaler)
        jac = self.reduce(jac)           # data-parallel: the global per-task gradients
        total = self.combine(losses)
        (scaler.scale(total) if scaler is not None else total).backward()
        if params and len(self.task_names) > 1 and bool(torch.isfinite(jac).all()):   # one task: its gradient
            write_grads(params, self.aggregate(jac) * scale)

    def weights(self):
        if self._last is None:
            return {n: 1.0 for n in self.task_names}
        return dict(zip(self.task_names, (float(v) for v in self._last.cpu().tolist())))
