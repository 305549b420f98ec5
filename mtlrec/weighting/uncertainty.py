"""Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

Each task i learns a log-variance ``s_i = log σ_i²`` (initialised to 0, i.e. weight 1):

* regression:      ``½·exp(-s_i)·L_i + ½·s_i``
* classification:  ``exp(-s_i)·L_i + ½·s_i``  (binary and multilabel)

so noisier tasks are down-weighted automatically. The ``s_i`` are parameters: the
trainer adds ``strategy.parameters()`` to its optimiser. Static task weights are
not used by this strategy.
"""
from __future__ import annotations

import torch
from torch import nn

from mtlrec.weighting.base import WeightingStrategy


class UncertaintyWeighting(WeightingStrategy):
    name = "uncertainty"
    label = "Uncertainty"
    summary = "learns one variance per task and down-weights the noisier tasks (Kendall et al. 2018)"

    def __init__(self, tasks):
        super().__init__(tasks)
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)))
        self.register_buffer("_scale", torch.tensor([0.5 if t.type == "regression" else 1.0 for t in self.tasks]))

    def combine(self, losses):
        total = None
        for i, name in enumerate(self.task_names):
            s = self.log_vars[i]
            term = self._scale[i] * torch.exp(-s) * losses[name] + 0.5 * s
            total = term if total is None else total + term
        return total

    def weights(self):
        w = (self._scale * torch.exp(-self.log_vars.detach())).cpu().tolist()
        return dict(zip(self.task_names, (float(v) for v in w)))
