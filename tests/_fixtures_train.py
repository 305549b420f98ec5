"""A tiny hand-built PreparedDataset with learnable signal, for the training tests.

Users and items have hidden 2-d tastes; click, like, rating and genres depend on them,
so a model that learns the user/item embeddings beats a constant predictor on every task.
"""
from __future__ import annotations

import numpy as np
import torch

# Small models train several times faster on one intra-op thread, above all on a busy
# 2-core machine where OpenMP threads spin against each other (process-wide setting).
torch.set_num_threads(1)

from mtlrec.dataset import FeatureField, LabelField, PreparedDataset

GENRES = ["Action", "Comedy", "Drama", "Horror"]


def make_dataset(n_users: int = 80, n_items: int = 60, n_rows: int = 4000, seed: int = 0,
                 splits=(0.7, 0.15, 0.15)) -> PreparedDataset:
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n_users, 2))
    v = rng.normal(size=(n_items, 2))
    age = rng.normal(size=n_users).astype(np.float32)
    occ = rng.integers(1, 4, size=n_users)
    item_genre = (rng.random((n_items, len(GENRES))) < 0.35).astype(np.float32)
    ui = rng.integers(0, n_users, n_rows)
    ii = rng.integers(0, n_items, n_rows)
    ub = rng.normal(size=n_users)          # user and item biases: learnable from the id embeddings
    ib = rng.normal(size=n_items)
    s = ub[ui] + ib[ii] + 0.8 * age[ui] + 0.3 * (u[ui] * v[ii]).sum(1)
    click = (rng.random(n_rows) < 1 / (1 + np.exp(-2.0 * s))).astype(np.float32)
    like = (rng.random(n_rows) < 1 / (1 + np.exp(-2.0 * (s - 0.5)))).astype(np.float32)
    rating = np.clip(3 + 1.2 * s + rng.normal(scale=0.3, size=n_rows), 1, 5).astype(np.float32)
    # genres the user engages with: the item's genres, kept more often for users who like them
    taste = rng.random((n_users, len(GENRES)))
    genres = (item_genre[ii] * (rng.random((n_rows, len(GENRES))) < 0.2 + 0.8 * taste[ui])).astype(np.float32)
    perm = rng.permutation(n_rows)
    n_tr, n_va = int(splits[0] * n_rows), int(splits[1] * n_rows)
    parts = {"train": perm[:n_tr], "valid": perm[n_tr:n_tr + n_va], "test": perm[n_tr + n_va:]}
    rows = {}
    for name, p in parts.items():
        rows[name] = {"user_index": ui[p].astype(np.int64), "item_index": ii[p].astype(np.int64),
                      "label:click": click[p], "label:like": like[p], "label:rating": rating[p],
                      "label:genres": genres[p]}
    fields = [FeatureField("user_id", "categorical", "user", "user id", vocab_size=n_users + 1),
              FeatureField("item_id", "categorical", "item", "item id", vocab_size=n_items + 1),
              FeatureField("age", "numeric", "user"),
              FeatureField("occupation", "categorical", "user", vocab_size=4)]
    labels = [LabelField("click", "binary"), LabelField("like", "binary"),
              LabelField("rating", "regression"), LabelField("genres", "multilabel", list(GENRES))]
    user_table = {"user_id": np.arange(1, n_users + 1, dtype=np.int64), "age": age,
                  "occupation": occ.astype(np.int64)}
    item_table = {"item_id": np.arange(1, n_items + 1, dtype=np.int64)}
    import pandas as pd
    item_info = pd.DataFrame({"item_id": [f"i{j}" for j in range(n_items)],
                              "title": [f"Movie {j}" for j in range(n_items)]})
    return PreparedDataset(fields, labels, rows, user_table, item_table,
                           user_ids=[f"u{j}" for j in range(n_users)],
                           item_ids=[f"i{j}" for j in range(n_items)],
                           meta={"context_defaults": {}}, item_info=item_info)


TASKS = [{"name": "click", "type": "binary", "label": "click"},
         {"name": "like", "type": "binary", "label": "like"},
         {"name": "rating", "type": "regression", "label": "rating"},
         {"name": "genres", "type": "multilabel", "label": "genres"}]


def with_label_stats(ds: PreparedDataset) -> PreparedDataset:
    """Record the training label statistics as `mtlrec.prep.prepare` does (``meta['report']
    ['labels']``), so that regression tasks learn the standardised target (y - mean) / std --
    the default of every prepared dataset. Without them (`make_dataset` alone) the target is raw."""
    y = np.asarray(ds.rows["train"]["label:rating"], dtype=np.float64)
    labels = {"rating": {"type": "regression", "mean": float(y.mean()), "std": float(y.std())}}
    ds.meta = {**ds.meta, "report": {**ds.meta.get("report", {}), "labels": labels}}
    return ds


def finished_tiny_job(run_dir, task_names, given: dict | None = None, **train):
    """A finished TrainingJob of a tiny MMoE (2 experts of [16], towers [8], embeddings 8) on the
    hand-built training fixture (1,500 rows; regression targets standardised), as the Train page
    leaves it; ``given`` {task: parent} chains tasks (e.g. like given click); ``train`` overrides
    the 1-epoch CPU settings."""
    import torch

    from mtlrec.config import RunConfig
    from mtlrec.training.jobs import TrainingJob
    tasks = [{**t, **({"given": given[t["name"]]} if t["name"] in (given or {}) else {})}
             for t in TASKS if t["name"] in task_names]
    cfg = RunConfig.from_dict({"tasks": tasks,
                               "model": {"arch": "mmoe", "n_experts": 2, "expert_dims": [16], "tower_dims": [8],
                                         "embedding_dim": 8},
                               "train": {"epochs": 1, "batch_size": 512, "device": "cpu", **train}})
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        j = TrainingJob(cfg, run_dir=run_dir, dataset=with_label_stats(make_dataset(n_rows=1500))).start()
        j.join(timeout=240)
    finally:
        torch.set_num_threads(n)
    snap = j.snapshot()
    assert snap["status"] == "finished", snap
    return j


def tiny_run_folder(run_dir, dataset):
    """A tiny shared-bottom run folder (all TASKS, one epoch, one torch thread) trained on ``dataset``
    through the training API; returns ``run_dir``."""
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import run_training
    cfg = RunConfig.from_dict({"tasks": TASKS, "model": {"arch": "shared_bottom", "shared_dims": [32, 16],
                                                         "tower_dims": [8], "embedding_dim": 8},
                               "train": {"epochs": 1, "batch_size": 512, "device": "cpu", "seed": 0}})
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = run_training(cfg, run_dir=run_dir, dataset=dataset)
    finally:
        torch.set_num_threads(n)
    assert res.status == "finished"
    return run_dir
