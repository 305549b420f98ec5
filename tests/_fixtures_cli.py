"""A small CSV data set with a run config beside it, for tests that train through the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_cli_case(d: Path, *, n_rows: int = 600, seed: int = 0, click_per_user: float = 0.0,
                   model: dict | None = None, train: dict | None = None) -> Path:
    """``d/interactions.csv`` (user and item ids, a binary click and a regression rating label, a
    numeric and a categorical context feature) and ``d/config.json`` (those two tasks, ``model``
    and ``train`` on top of a tiny CPU default); returns the config's path. ``click_per_user``
    makes the click rate grow with the user id (a signal to learn)."""
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    lines = ["user_id,item_id,click,rating,age,genre"]
    for _ in range(n_rows):
        u, i = int(rng.integers(1, 40)), int(rng.integers(1, 30))
        lines.append(f"{u},{i},{int(rng.random() < 0.4 + click_per_user * u)},{rng.integers(1, 6)},"
                     f"{rng.normal():.3f},{rng.choice(['a', 'b', 'c'])}")
    (d / "interactions.csv").write_text("\n".join(lines) + "\n")
    cfg = {"data": {"paths": ["interactions.csv"],
                    "roles": {"user_id": "user_id", "item_id": "item_id",
                              "labels": {"click": "binary", "rating": "regression"},
                              "numeric": {"age": "context"}, "categorical": {"genre": "context"}}},
           "tasks": [{"name": "click", "type": "binary", "label": "click"},
                     {"name": "rating", "type": "regression", "label": "rating"}],
           "model": model or {"arch": "shared_bottom"},
           "train": {"epochs": 1, "batch_size": 128, "device": "cpu", "ranking_k": 0, "threads": 1, **(train or {})}}
    (d / "config.json").write_text(json.dumps(cfg))
    return d / "config.json"
