"""GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018), written here by hand.

Learnable task weights w_i (start at 1). Every step, with g_i = ∂L_i/∂W over the shared
parameters W, G_i = w_i·‖g_i‖, the relative inverse training rate r_i = L̃_i / mean_j L̃_j where
L̃_i = L_i(t) / L_i(0), the weights take a gradient step on

    L_grad = Σ_i | G_i − mean_j(G_j) · r_i^α |      (target treated as a constant; α = 1.5)

so a task that learns faster (small r_i) loses weight; the weights are renormalised to sum to
T before every use. The model is trained on Σ_i w_i·L_i with w held constant. w (parameter)
and L_i(0) (buffer) are in ``state_dict()``, so a resumed run continues with them. Uses the
whole set of shared parameters for the norms (the paper: the last shared layer).
"""
from __future__ import annotations

import torch
from torch import nn

from mtlrec.weighting.base import WeightingStrategy
from mtlrec.weighting.gradients import task_jacobian


class GradNorm(WeightingStrategy):
    name = "gradnorm"
    label = "GradNorm"
    summary = "learns weights that balance the tasks' gradient norms by their training rates (Chen et al. 2018)"

    def __init__(self, tasks, alpha: float = 1.5):
        super().__init__(tasks)
        if alpha < 0:
            raise ValueError(f"GradNorm alpha must be >= 0, not {alpha}")
        self.alpha = float(alpha)
        self.task_weights = nn.Parameter(torch.ones(len(self.task_names)))
        self.register_buffer("initial_losses", torch.zeros(len(self.task_names)))
        self._has_initial = False

    def get_extra_state(self):
        return {"has_initial": bool(self._has_initial)}

    def set_extra_state(self, state):
        self._has_initial = bool(state.get("has_initial", False))

    @torch.no_grad()
    def _renormalise(self) -> None:
        w = self.task_weights
        w.clamp_(min=1e-3)
        w.mul_(len(self.task_names) / w.sum())

    def combine(self, losses):
        self._renormalise()
        w = self.task_weights.detach()
        return sum(w[i] * losses[n] for i, n in enumerate(self.task_names))

    def backward(self, losses, shared_params, scaler=None):
        self._renormalise()
        L = self.reduce(torch.stack([losses[n].detach().float() for n in self.task_names]))
        if not self._has_initial:
            self.initial_losses.copy_(L.detach())
            self._has_initial = True
        params = [p for p in shared_params if p.requires_grad]
        total = self.combine(losses)
        if params:
            jac, scale = task_jacobian(losses, self.task_names, params, scaler)
            jac = self.reduce(jac)
            G = self.task_weights * jac.norm(dim=1)
            ratio = L.detach() / self.initial_losses.clamp(min=1e-12)
            target = (G.mean() * (ratio / ratio.mean()).pow(self.alpha)).detach()
            grad_loss = (G - target).abs().sum()
            (g,) = torch.autograd.grad(grad_loss, self.task_weights)
            self.task_weights.grad = torch.nan_to_num(g) * scale   # the scaler's step unscales it
        (scaler.scale(total) if scaler is not None else total).backward()

    def weights(self):
        w = self.task_weights.detach().clamp(min=1e-3)
        w = w * len(self.task_names) / w.sum()
        return dict(zip(self.task_names, (float(v) for v in w.cpu().tolist())))
