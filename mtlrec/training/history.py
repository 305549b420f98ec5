"""Training history: what the dashboard plots and history.json stores.

Plain JSON-friendly records:

* ``epochs``: one dict per finished epoch ``{"epoch", "train_loss": {task: v},
  "valid_loss": {task: v}, "valid": {task: {metric: v}}, "weights": {task: w},
  "samples_per_s", "time_s", "best"}``
* ``batches``: one dict every ``log_every`` batches (in epoch 1 every ``max(1, min(log_every,
  n_batches // 20))``, so that the first epoch already draws a curve) ``{"epoch", "batch", "step",
  "train_loss": {task: v}, "weights": {task: w}, "samples_per_s"}`` (mean loss over
  the batches since the previous record).
"""
from __future__ import annotations

import copy
import math


def _clean(v):
    """Floats that JSON can carry (NaN/inf become None)."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class History:
    def __init__(self, epochs: list[dict] | None = None, batches: list[dict] | None = None):
        self.epochs: list[dict] = list(epochs or [])
        self.batches: list[dict] = list(batches or [])

    def add_batch(self, record: dict) -> None:
        self.batches.append(_clean(record))

    def add_epoch(self, record: dict) -> None:
        self.epochs.append(_clean(record))

    def to_dict(self) -> dict:
        return {"epochs": copy.deepcopy(self.epochs), "batches": copy.deepcopy(self.batches)}

    @classmethod
    def from_dict(cls, d: dict | None) -> "History":
        d = d or {}
        return cls(d.get("epochs"), d.get("batches"))

    def series(self, key: str, task: str, metric: str | None = None) -> list[float | None]:
        """Per-epoch values: ``series("train_loss", "click")``, ``series("valid", "click", "auc")``."""
        out = []
        for e in self.epochs:
            v = e.get(key, {}).get(task)
            if metric is not None:
                v = v.get(metric) if isinstance(v, dict) else None
            out.append(v)
        return out

    def __len__(self) -> int:
        return len(self.epochs)
