"""Random loss weighting (Lin, Ye, Xu, Shi & Zhang, TMLR 2022, "Reasonable effectiveness of random
weighting: a litmus test for multi-task learning"): every training step draws
w = softmax(z), z ~ N(0, I_T), and trains on Σ_i w_i·L_i (the weights sum to 1).

The draws come from the strategy's own seeded generator (not torch's global RNG), whose state
travels in ``state_dict()``, so a resumed run draws the same weights as an uninterrupted one.
Every call of ``combine`` (one per training step) draws new weights.
"""
from __future__ import annotations

import torch

from mtlrec.weighting.base import WeightingStrategy


class RandomLossWeighting(WeightingStrategy):
    name = "rlw"
    label = "RLW"
    summary = "random weights every step, softmax of normal draws (Lin et al. 2022)"

    def __init__(self, tasks, seed: int = 0):
        super().__init__(tasks)
        self._gen = torch.Generator().manual_seed(int(seed))
        self._w = {n: 1.0 / len(self.task_names) for n in self.task_names}

    def combine(self, losses):
        z = torch.randn(len(self.task_names), generator=self._gen)
        self._w = dict(zip(self.task_names, torch.softmax(z, 0).tolist()))
        return self.weighted_sum(losses, self._w)

    def weights(self):
        return dict(self._w)

    def get_extra_state(self):
        return {"generator": self._gen.get_state(), "weights": dict(self._w)}

    def set_extra_state(self, state):
        if state.get("generator") is not None:
            self._gen.set_state(state["generator"])
        w = state.get("weights") or {}
        self._w = {n: float(w.get(n, 1.0 / len(self.task_names))) for n in self.task_names}
