"""Preparation of wide tables (issue 21, item 18): letting the input columns go (``release_input``,
the command line and ``train``) takes the same number of frame operations whatever the number
of columns -- one ``del df[c]`` per column rebuilt the frame's block list each time, quadratic
in the columns (a 1,200-column table: 252 s of preparing). Speed itself: bench/wide_columns.py."""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtlrec.data.raw import RawData
from mtlrec.data.roles import DataSpec
from mtlrec.prep import prepare


def _wide(n_features: int, rows: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    cols = {"user": rng.integers(0, 40, rows), "item": rng.integers(0, 30, rows), "click": rng.integers(0, 2, rows),
            "unused": rng.normal(size=rows)}
    for k in range(n_features):
        cols[f"f{k}"] = rng.normal(size=rows) if k % 4 else rng.choice(["a", "b", "c"], rows)
    spec = DataSpec(user_id="user", item_id="item", labels={"click": "binary"},
                    numeric={f"f{k}": "context" for k in range(n_features) if k % 4},
                    categorical={f"f{k}": "context" for k in range(n_features) if not k % 4})
    return RawData(interactions=pd.DataFrame(cols), sources={"interactions": "wide.csv"}), spec


def _column_removals(monkeypatch, n_features: int) -> tuple[int, RawData]:
    """(calls that remove columns from a frame during ``prepare(..., release_input=True)``, the raw)."""
    calls = [0]
    for name in ("__delitem__", "pop", "drop"):
        orig = getattr(pd.DataFrame, name)

        def counted(self, *a, _orig=orig, **kw):
            calls[0] += 1
            return _orig(self, *a, **kw)
        monkeypatch.setattr(pd.DataFrame, name, counted)
    raw, spec = _wide(n_features)
    ds = prepare(raw, spec, {"split": "random"}, release_input=True)
    assert len([f for f in ds.fields if f.owner == "context"]) == n_features
    monkeypatch.undo()
    return calls[0], raw


def test_releasing_the_input_takes_as_many_steps_for_64_columns_as_for_8(monkeypatch):
    n_features = 8
    few, raw_few = _column_removals(monkeypatch, n_features)
    many, raw_many = _column_removals(monkeypatch, 8 * n_features)
    assert len(raw_few.interactions.columns) == 0 and len(raw_many.interactions.columns) == 0   # all let go
    assert many == few, f"{few} column removals for {n_features} features, {many} for {8 * n_features}"
    assert few <= 6           # a handful of steps per table, not one per column
