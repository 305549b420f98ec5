"""Static weighting: ``Σ_i w_i·L_i`` with the weights ``w_i`` from the task config."""
from __future__ import annotations

from mtlrec.weighting.base import WeightingStrategy


class StaticWeighting(WeightingStrategy):
    name = "static"
    label = "Static"
    summary = "fixed weights: Σᵢ wᵢ·Lᵢ with the loss weights set above"

    def __init__(self, tasks, weights: dict[str, float] | None = None):
        super().__init__(tasks)
        self._w = {t.name: float(t.weight) for t in self.tasks}
        if weights:
            unknown = set(weights) - set(self._w)
            if unknown:
                raise ValueError(f"weights for unknown tasks {sorted(unknown)}; tasks: {self.task_names}")
            self._w.update({k: float(v) for k, v in weights.items()})

    def combine(self, losses):
        return self.weighted_sum(losses, self._w)

    def weights(self):
        return dict(self._w)
