"""Early stopping on one validation metric, in the metric's own direction."""
from __future__ import annotations

import math


class EarlyStopping:
    """Tracks the best value of a validation metric.

    ``higher_is_better`` comes from the metric (AUC: True, RMSE/log loss: False).
    ``patience``: epochs without improvement after which ``should_stop`` turns True
    (0 = never stop early, only track the best epoch). ``min_delta``: smallest change
    that counts as an improvement.
    """

    def __init__(self, higher_is_better: bool, patience: int = 3, min_delta: float = 0.0):
        self.higher_is_better = bool(higher_is_better)
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0

    @property
    def direction(self) -> str:
        return "max" if self.higher_is_better else "min"

    def is_better(self, value: float) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if self.best_value is None:
            return True
        if self.higher_is_better:
            return value > self.best_value + self.min_delta
        return value < self.best_value - self.min_delta

    def step(self, epoch: int, value: float) -> bool:
        """Record the metric of ``epoch``; True when it is the best so far."""
        if self.is_better(value):
            self.best_value = float(value)
            self.best_epoch = epoch
            self.bad_epochs = 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience


_METRIC_WORDS = {"auc": "AUC", "rmse": "RMSE", "mae": "MAE", "f1": "F1", "mrr": "MRR", "ndcg": "NDCG",
                 "logloss": "log loss", "loss": "loss"}


def metric_label(metric: str) -> str:
    """A metric's name as a reader writes it: ``auc`` -> ``AUC``, ``micro_auc`` -> ``micro AUC``."""
    return " ".join(_METRIC_WORDS.get(w, w) for w in str(metric).split("_"))


def describe(task: str, metric: str, higher_is_better: bool | None, patience: int) -> str:
    """The sentence the Train page shows: which task and metric early stopping follows, e.g.
    "Early stopping follows click's validation AUC (higher is better), patience 3: ..."."""
    direction = "" if higher_is_better is None else (
        f" ({'higher' if higher_is_better else 'lower'} is better)")
    s = f"Early stopping follows {task}'s validation {metric_label(metric)}{direction}, patience {int(patience)}"
    if int(patience) > 0:
        return (s + f": training stops after {int(patience)} epoch{'s' if int(patience) != 1 else ''} without "
                "improvement, and the best epoch's model is kept")
    return s + ": training never stops early; the best epoch's model is kept"
