"""Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019, "End-to-end multi-task learning with attention").

Tasks whose loss decreases slowly get more weight. With ``r_i = L_i(t-1) / L_i(t-2)``
(mean training losses of the two previous epochs, fed through ``epoch_end``):

    w_i(t) = K · exp(r_i / T) / Σ_j exp(r_j / T)

(K tasks, temperature T = 2). All weights are 1 until two epochs have been seen.
Static task weights are not used by this strategy.
"""
from __future__ import annotations

import math

from mtlrec.weighting.base import WeightingStrategy


class DynamicWeightAverage(WeightingStrategy):
    name = "dwa"
    label = "DWA"
    summary = "weights each task by how slowly its loss fell over the last two epochs (Liu et al. 2019)"

    def __init__(self, tasks, temperature: float = 2.0):
        super().__init__(tasks)
        if temperature <= 0:
            raise ValueError(f"DWA temperature must be > 0, not {temperature}")
        self.temperature = float(temperature)
        self._history: list[dict[str, float]] = []
        self._w = {n: 1.0 for n in self.task_names}

    def epoch_end(self, epoch_losses):
        self._history.append({n: float(epoch_losses[n]) for n in self.task_names})
        self._history = self._history[-2:]
        if len(self._history) < 2:
            return
        prev2, prev1 = self._history
        ratios = {n: prev1[n] / prev2[n] if prev2[n] > 0 and math.isfinite(prev2[n]) else 1.0
                  for n in self.task_names}
        if not all(math.isfinite(r) for r in ratios.values()):
            return
        m = max(r / self.temperature for r in ratios.values())
        e = {n: math.exp(r / self.temperature - m) for n, r in ratios.items()}
        z = sum(e.values())
        k = len(self.task_names)
        self._w = {n: k * v / z for n, v in e.items()}

    # the loss history and current weights travel in state_dict() (nn.Module "extra state"):
    # plain lists/dicts of floats, so a checkpoint loads with torch.load(weights_only=True)
    def get_extra_state(self):
        return {"history": [dict(h) for h in self._history], "weights": dict(self._w)}

    def set_extra_state(self, state):
        self._history = [{n: float(h[n]) for n in self.task_names} for h in state.get("history", [])][-2:]
        w = state.get("weights") or {}
        self._w = {n: float(w.get(n, 1.0)) for n in self.task_names}

    def combine(self, losses):
        return self.weighted_sum(losses, self._w)

    def weights(self):
        return dict(self._w)
