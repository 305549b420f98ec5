"""The loss-weighting seam: how per-task losses L_i become one training loss (or one gradient).

A strategy implements ``combine(losses) -> scalar``; the trainer calls
``backward(losses, shared_params, scaler)`` once per batch, whose default is
``combine(losses).backward()``. Gradient-based strategies (`mtlrec.weighting.gradients`)
override ``backward`` instead: they take the per-task gradients of the shared parameters
and aggregate them (task towers get their own task's gradient as usual). The total loss of
the article (§4.2) is ``L = combine({i: L_i}) + λ·Σ_i ‖θ_i‖²`` (`total_loss`), where
θ_i are the parameters of task i's tower.

Contract for the trainer:

* strategies are `nn.Module`s. Move one to the training device (``.to(device)``)
  *before* building the optimiser and add ``strategy.parameters()`` to it
  (empty for static/DWA; the log-variances for uncertainty weighting);
* per batch: ``optimizer.zero_grad()``, ``strategy.backward(losses, shared_params, scaler)``
  (``shared_params``: the model's parameters that are not in a task tower; ``scaler``: AMP's
  ``GradScaler`` or None), then ``scaler.step(optimizer)`` / ``optimizer.step()``. A strategy
  leaves the ``.grad`` fields *scaled* by the scaler like ``scaler.scale(loss).backward()`` does;
* call ``epoch_end(epoch_losses)`` once per epoch with the mean *training* loss
  per task (plain floats); DWA uses it, others ignore it;
* ``weights()`` returns the current effective weight per task for logging;
* ``state_dict()`` / ``load_state_dict()`` carry everything a strategy keeps between
  epochs (checkpoints and resume): parameters and buffers as usual, other state through
  ``get_extra_state`` / ``set_extra_state`` as plain lists, dicts and numbers (DWA's loss
  history), so that a checkpoint loads with ``torch.load(weights_only=True)``;
* data-parallel training (`mtlrec.training.distributed`): the trainer sets ``reduce`` to the
  mean over the processes. A strategy that looks at per-task gradients or loss values itself
  (not only through ``backward`` of a loss) passes them through ``self.reduce`` first, so
  that every process decides on the same, global, numbers.
"""
from __future__ import annotations

import torch
from torch import nn


class WeightingStrategy(nn.Module):
    name: str = ""
    label: str = ""          # the method's usual name, e.g. "PCGrad"
    summary: str = ""        # what it does, in one line (shown beside the choice on Tasks & model)
    # what the method combines: "losses" (one weighted loss sum, Σ_i w_i·L_i, backpropagated) or
    # "gradients" (the per-task gradients of the shared parameters, aggregated; `weights()` are then
    # the aggregator's implied coefficients of that combination, not loss weights)
    combines: str = "losses"

    def __init__(self, tasks):
        super().__init__()
        self.tasks = list(tasks)
        self.task_names = [t.name for t in self.tasks]

    @staticmethod
    def reduce(t: torch.Tensor) -> torch.Tensor:
        """The mean of ``t`` over the training processes (identity when training alone; the
        trainer replaces it in data-parallel training)."""
        return t

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """One scalar from the per-task mean losses of a batch."""
        raise NotImplementedError

    def weights(self) -> dict[str, float]:
        """Current effective weight of each task (for logging and the dashboard)."""
        raise NotImplementedError

    def epoch_end(self, epoch_losses: dict[str, float]) -> None:
        """Hook called after every training epoch with the mean training loss per task."""

    def backward(self, losses: dict[str, torch.Tensor], shared_params: list[torch.Tensor], scaler=None) -> None:
        """Fill the ``.grad`` fields from one batch's per-task losses (after ``zero_grad``).
        Default: backpropagate ``combine(losses)`` (scaled by AMP's ``scaler`` when given)."""
        total = self.combine(losses)
        (scaler.scale(total) if scaler is not None else total).backward()

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.combine(losses)

    def weighted_sum(self, losses: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
        """Σ_i weights[i] · losses[i] over this strategy's tasks (the shared arithmetic of
        strategies whose weights are plain numbers)."""
        total = None
        for name in self.task_names:
            term = weights[name] * losses[name]
            total = term if total is None else total + term
        return total


def l2_penalty(model) -> torch.Tensor | float:
    """Σ_i ‖θ_i‖² over the task towers' parameters (0.0 for a model without parameters)."""
    total = None
    for params in model.task_parameters().values():
        for p in params:
            sq = p.pow(2).sum()
            total = sq if total is None else total + sq
    return 0.0 if total is None else total


def total_loss(model, losses: dict[str, torch.Tensor], weighting: WeightingStrategy, l2: float = 0.0):
    """``L = weighting.combine(losses) + l2 · Σ_i ‖θ_i‖²``."""
    loss = weighting.combine(losses)
    if l2:
        loss = loss + float(l2) * l2_penalty(model)
    return loss
