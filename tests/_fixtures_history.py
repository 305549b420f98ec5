"""A generated dataset with a planted history signal, and small runs trained on it.

Item "A" causes item "B": users who rated A high (5) before B rate B high (5); every other user
rates B low (1) -- half of them rated A low (1) first, half never saw A. Every user also rates 6 of
40 noise items at random times, each noise item always its own rating (the item id tells it). So the
only thing that tells a user's B rating is A's place (and rating) in their history before B.

Training (`train_planted`): embedding 16, id dropout 0.5 (a user id must not memorise the B rating),
lr 0.02, 20 epochs of batches of 64, best epoch by the rating task, one thread: ~4-10 s per
architecture. Measured: A is the first history reason of B for 34-37 of the 37 held-out fans per
architecture (data seeds 0 and 1).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

N_NOISE = 40
PER_USER = 6
LENGTH = 10
TASKS = [{"name": "like", "type": "binary", "label": "like"},
         {"name": "rating", "type": "regression", "label": "rating"}]


def planted_interactions(n_users: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    typical = rng.integers(1, 6, N_NOISE)
    rows = []
    for u in range(n_users):
        group = u % 4                       # 0, 1: liked A; 2: disliked A; 3: never saw A
        times = np.sort(rng.choice(np.arange(10, 1000), PER_USER, replace=False))
        for t, i in zip(times, rng.choice(N_NOISE, PER_USER, replace=False)):
            r = int(typical[i])
            rows.append((f"u{u}", f"n{i}", r, int(t)))
        if group < 3:
            rows.append((f"u{u}", "A", 5 if group < 2 else 1, int(rng.integers(10, 900))))
        rows.append((f"u{u}", "B", 5 if group < 2 else 1, 1000 + int(rng.integers(0, 50))))
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "ts"])
    df["like"] = (df["rating"] >= 4).astype(int)
    items = sorted(df["item"].unique())
    titles = {i: ("Item A" if i == "A" else "Item B" if i == "B" else f"Noise {i[1:]}") for i in items}
    return df, pd.DataFrame({"item": items, "title": [titles[i] for i in items]})


def planted_dataset(seed: int = 0):
    from mtlrec.data.raw import RawData
    from mtlrec.data.roles import DataSpec
    from mtlrec.prep import prepare
    df, items = planted_interactions(seed=seed)
    spec = DataSpec(user_id="user", item_id="item", timestamp="ts", labels={"like": "binary", "rating": "regression"})
    raw = RawData(df, items=items)
    return prepare(raw, spec, {"split": "random", "valid_frac": 0.1, "test_frac": 0.15, "negative_ratio": 0,
                               "seed": 1})


def train_planted(ds, arch: str, out, encoder: str = "attention", epochs: int = 30):
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import run_training
    cfg = RunConfig.from_dict({"tasks": TASKS, "model": {"arch": arch, "embedding_dim": 16, "id_dropout": 0.5,
                                                          "history": {"length": LENGTH, "encoder": encoder}},
                               "train": {"epochs": epochs, "batch_size": 64, "lr": 0.02, "embedding_l2": 0.0, "ranking_k": 0, "threads": 1,
                                         "dynamics_every": 0, "amp": False, "device": "cpu",
                                         "early_stopping": {"task": "rating", "patience": 0}}})
    return run_training(cfg, out, dataset=ds)
