"""Tasks: what a multi-task model predicts and how each prediction is scored.

A `TaskSpec` names one output of the model: its type (``binary`` click/like,
``regression`` rating, ``multilabel`` the classes of an item such as its genres -- item
classification --, ``distribution`` a share per class such as a user's interest in each genre,
`mtlrec.prep.interest`), the label it learns from
(a label of the `PreparedDataset`), its static loss weight ``w_i`` and the
validation metric (with its direction) used for early stopping and comparison.

Losses always take *logits* (``binary_cross_entropy_with_logits``; a distribution's
KL(target || softmax(logits)) through ``log_softmax``), never probabilities; ``predict`` turns
logits into probabilities / values (a distribution: the softmax, summing to 1 per row).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from mtlrec.errors import DataError

TASK_TYPES = ("binary", "regression", "multilabel", "distribution")
DEFAULT_METRIC = {"binary": "auc", "regression": "rmse", "multilabel": "micro_auc", "distribution": "class_ndcg"}
CLASS_TYPES = ("multilabel", "distribution")     # task types with one output per class


@dataclass
class TaskSpec:
    name: str                   # key of the model's output dict, e.g. "click"
    type: str                   # "binary" | "regression" | "multilabel" | "distribution"
    label: str = ""             # label name in the PreparedDataset (default: the task name)
    weight: float = 1.0         # static loss weight w_i
    metric: str | None = None   # validation metric (default per type, see DEFAULT_METRIC)
    n_outputs: int = 1          # number of logits: K classes for multilabel / distribution, else 1
    # regression only: the model learns the standardised target (y - mean) / std, so a rating
    # on a 1-5 scale does not swamp the BCE losses of the binary tasks; `predict` maps back.
    target_mean: float = 0.0
    target_std: float = 1.0
    # a task chain (mtlrec.chain): the binary task this one is conditional on ("" = none), and that
    # task's label (filled by `tasks_from_config`): the loss and metrics count only rows where it is 1
    given: str = ""
    given_label: str = ""

    def __post_init__(self) -> None:
        from mtlrec.metrics import METRICS, metric_info

        if not self.name or not isinstance(self.name, str):
            raise ValueError("a task needs a non-empty name")
        if self.type not in TASK_TYPES:
            raise ValueError(f"task '{self.name}': type must be one of {', '.join(TASK_TYPES)}, "
                             f"not '{self.type}'")
        if not self.label:
            self.label = self.name
        try:
            self.weight = float(self.weight)
        except (TypeError, ValueError):
            raise ValueError(f"task '{self.name}': weight must be a number, not {self.weight!r}") from None
        if not math.isfinite(self.weight) or self.weight < 0:
            raise ValueError(f"task '{self.name}': weight must be a finite number >= 0, not {self.weight}")
        if self.metric is None or self.metric == "":
            self.metric = DEFAULT_METRIC[self.type]
        info = metric_info(self.metric)  # raises a clear ValueError for unknown names
        if self.type not in info.task_types:
            usable = sorted(n for n, i in METRICS.items() if self.type in i.task_types and i.selectable)
            raise ValueError(f"task '{self.name}': metric '{self.metric}' does not apply to {self.type} "
                             f"tasks; choose one of {', '.join(usable)}")
        self.n_outputs = int(self.n_outputs)
        if self.type not in CLASS_TYPES:
            self.n_outputs = 1
        elif self.n_outputs < 1:
            raise ValueError(f"task '{self.name}': a {self.type} task needs n_outputs >= 1 (its classes)")
        self.given = str(self.given or "")
        self.given_label = str(self.given_label or self.given)
        if self.given == self.name:
            raise ValueError(f"task '{self.name}' cannot be given itself; leave 'given' empty or name another task")
        self.target_mean = float(self.target_mean)
        self.target_std = float(self.target_std)
        if self.type != "regression":
            self.target_mean, self.target_std = 0.0, 1.0
        elif not (math.isfinite(self.target_std) and self.target_std > 0 and math.isfinite(self.target_mean)):
            raise ValueError(f"task '{self.name}': target_std must be a finite number > 0")

    # ---- model side -----------------------------------------------------------------
    def loss(self, logits, y, mask=None):
        """Mean loss of one batch: BCE-with-logits (binary, multilabel: mean over K), MSE on the
        standardised target (regression), KL(y || softmax(logits)) per row (distribution: ``y``
        holds shares that sum to 1; a row of zeros -- no interest known -- counts 0). ``mask`` (bool, per row; None = all rows): only those rows
        count (`mtlrec.chain.own_space`); none of them gives a zero loss that still has a gradient."""
        import torch.nn.functional as F

        logits = logits.float()
        y = y.float()
        if mask is not None:
            if not bool(mask.any()):
                return logits.sum() * 0.0
            logits, y = logits[mask], y[mask]
        if self.type == "regression":
            return F.mse_loss(logits, (y - self.target_mean) / self.target_std)
        if self.type == "distribution":
            return distribution_kl(logits, y)
        return F.binary_cross_entropy_with_logits(logits, y)

    def predict(self, logits):
        """Probabilities (binary, multilabel), predicted values (regression) or shares summing to 1
        per row (distribution: the softmax) from logits."""
        import torch

        if self.type == "regression":
            return self.to_label_scale(logits)
        if self.type == "distribution":
            return torch.softmax(logits, dim=-1)
        return torch.sigmoid(logits)

    @property
    def label_scale(self) -> float:
        """Label units per unit of the model's output: ``target_std`` (regression), else 1.

        The map output -> label is affine, so a SHAP contribution ``phi`` of the output is
        ``phi * label_scale`` in label units (and the base value maps by `to_label_scale`)."""
        return self.target_std if self.type == "regression" else 1.0

    def to_label_scale(self, output):
        """The model's output on the label scale: ``output * target_std + target_mean``
        (regression; identity otherwise). Tensors, arrays and floats.

        THE one place where a regression output is de-standardised: `predict`,
        `mtlrec.serve.recommend` (fused score) and `mtlrec.explain` (waterfalls in label units) use it."""
        if self.type != "regression":
            return output
        return output * self.target_std + self.target_mean

    # ---- metric side ----------------------------------------------------------------
    @property
    def higher_is_better(self) -> bool:
        from mtlrec.metrics import metric_info
        return metric_info(self.metric).higher_is_better

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TaskSpec":
        known = {"name", "type", "label", "weight", "metric", "n_outputs", "target_mean", "target_std",
                 "given", "given_label"}
        extra = set(d) - known
        if extra:
            raise ValueError(f"task {d.get('name', '?')!r}: unknown keys {sorted(extra)}; "
                             f"allowed: {sorted(known)}")
        return cls(**d)


def distribution_kl(logits, y):
    """Mean over rows of KL(y || softmax(logits)) = sum_k y_k (log y_k - log_softmax(logits)_k),
    with 0 log 0 = 0 (``torch.xlogy``); ``y`` [b, K] shares per row. Stable for any logits."""
    import torch
    import torch.nn.functional as F

    logq = F.log_softmax(logits.float(), dim=-1)
    y = y.float()
    kl = (torch.xlogy(y, y) - y * logq).sum(dim=-1)
    return kl.mean() if kl.numel() else logits.sum() * 0.0


def tasks_from_config(configs: list[dict[str, Any]], dataset) -> list[TaskSpec]:
    """TaskSpecs from config dicts ``{name, type, label, weight, metric}``, checked against a dataset.

    ``label`` defaults to ``name`` and ``type`` to the label's type; ``n_outputs`` is
    filled from the label's classes. Unknown labels, type mismatches and duplicate
    task names raise `DataError` (a ValueError) saying what to change.
    """
    if not configs:
        raise DataError("no tasks configured",
                        fix="add at least one task, e.g. {\"name\": \"click\", \"type\": \"binary\"}")
    labels = {lab.name: lab for lab in dataset.labels}
    available = ", ".join(f"{n} ({lab.task_type})" for n, lab in labels.items()) or "none"
    out: list[TaskSpec] = []
    seen: set[str] = set()
    for i, cfg in enumerate(configs):
        cfg = dict(cfg)
        name = cfg.get("name") or cfg.get("label")
        if not name:
            raise DataError(f"task #{i + 1} has neither a name nor a label",
                            fix=f"give it a label, one of: {available}")
        label = cfg.get("label") or name
        if label not in labels:
            raise DataError(f"task '{name}': the data has no label '{label}'",
                            fix=f"use one of the prepared labels: {available}")
        lab = labels[label]
        ttype = cfg.get("type") or lab.task_type
        if ttype != lab.task_type:
            raise DataError(f"task '{name}' is configured as {ttype} but label '{label}' is {lab.task_type}",
                            fix=f"set the task type to {lab.task_type} or change the label's role")
        if name in seen:
            raise DataError(f"two tasks are named '{name}'", fix="give every task a different name")
        seen.add(name)
        n_out = len(lab.classes) if ttype in CLASS_TYPES else 1
        if ttype in CLASS_TYPES and n_out < 1:
            raise DataError(f"task '{name}': {ttype} label '{label}' has no classes",
                            fix="check the label column's separator and values")
        scale = {}
        if ttype == "regression":  # standardise with the training split's statistics
            stats = dataset.meta.get("report", {}).get("labels", {}).get(label, {})
            if stats.get("std") and stats["std"] > 0 and math.isfinite(stats.get("mean", float("nan"))):
                scale = {"target_mean": stats["mean"], "target_std": stats["std"]}
        try:
            out.append(TaskSpec(name=name, type=ttype, label=label, weight=cfg.get("weight", 1.0),
                                metric=cfg.get("metric"), n_outputs=n_out, given=cfg.get("given") or "", **scale))
        except ValueError as e:
            raise DataError(str(e)) from None
    return _resolve_chain(out)


def _resolve_chain(tasks: list[TaskSpec]) -> list[TaskSpec]:
    """Check the chain (`mtlrec.chain.check_chain`) and give each chained task its parent's label."""
    from mtlrec.chain import check_chain
    check_chain(tasks)
    by_name = {t.name: t for t in tasks}
    for t in tasks:
        if t.given:
            t.given_label = by_name[t.given].label
    return tasks


def clean_tasks(tasks: list[dict]) -> list[dict]:
    """Task dicts without the app's private keys (those starting with "_")."""
    return [{k: v for k, v in t.items() if not k.startswith("_")} for t in tasks]
