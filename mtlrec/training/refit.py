"""Refit on train + valid (``train.refit``): after early stopping chose the best epoch count on the
validation split, a new model (same seed, same initialisation) is trained from scratch on the
training and validation rows together for exactly that many epochs, and it is the run's model: its
test metrics, predictions, ranking and model.pt. The test split is never looked at before the
final evaluation, as without refit; the validation metrics in metrics.json stay those of the
early-stopping run (the refit model has trained on the validation rows). ``metrics["refit"]`` says
what was done.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from mtlrec.config import RunConfig


def fold_dataset(dataset, train_idx, valid_idx):
    """A PreparedDataset whose train/valid are folds of the original train+valid rows (test kept)."""
    import numpy as np
    from mtlrec.dataset import PreparedDataset
    pool = {k: np.concatenate([dataset.rows["train"][k], dataset.rows["valid"][k]])
            for k in dataset.rows["train"] if "valid" in dataset.rows and k in dataset.rows["valid"]}
    rows = {"train": {k: v[train_idx] for k, v in pool.items()},
            "valid": {k: v[valid_idx] for k, v in pool.items()}}
    if "test" in dataset.rows:
        rows["test"] = dataset.rows["test"]
    return PreparedDataset(dataset.fields, dataset.labels, rows, dataset.user_table, dataset.item_table,
                           dataset.user_ids, dataset.item_ids, dataset.meta, dataset.item_info, dataset.user_info)


def refit_dataset(dataset):
    """``dataset`` with its train and valid rows together as the train split (train first), no
    validation split, the test split kept."""
    import numpy as np
    n = dataset.n_rows("train") + dataset.n_rows("valid")
    return fold_dataset(dataset, np.arange(n), np.arange(0))


def refit(cfg: RunConfig, dataset, tasks, epochs: int, *, device=None, stop_event=None,
          on_batch: Callable | None = None, on_epoch: Callable | None = None):
    """(trainer, TrainResult, info) of a new model built as ``cfg`` says (seeded by ``train.seed``)
    and trained on train + valid (`refit_dataset`) for ``epochs`` epochs; ``info`` is metrics.json's
    ``"refit"``: {"epochs", "train_rows", "status"}."""
    from mtlrec.training.build import build_model_for
    from mtlrec.training.trainer import Trainer
    pooled = refit_dataset(dataset)
    model = build_model_for(cfg, pooled, tasks)
    tcfg = dataclasses.replace(cfg.train, epochs=int(epochs))
    trainer = Trainer(model, tasks, tcfg, device, stop_event=stop_event, on_batch=on_batch, on_epoch=on_epoch)
    res = trainer.fit(pooled.to_device(device), evaluate_test=False)
    info = {"epochs": int(res.epochs_run), "train_rows": int(pooled.n_rows("train")), "status": res.status,
            "test_metrics_of": "the refit model (trained on train + valid)"}
    return trainer, res, info
