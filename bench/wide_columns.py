"""Preparation time of wide tables (issue 21, item 18): ``prepare(..., release_input=True)`` (what
``train`` and ``prepare`` on the command line do) on N numeric context columns, against the same
preparation keeping the input (``release_input=False``, no column released).

    .venv/bin/python bench/wide_columns.py [--columns 300,1200] [--rows 20000] [--json]

Prints seconds per (columns, mode) and the ratios 1200/300 columns: linear preparation gives ~4,
quadratic releasing (one ``del df[c]`` per column) ~16 and more.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def one(n_cols: int, rows: int, release: bool) -> float:
    import numpy as np
    import pandas as pd

    from mtlrec.data.raw import RawData
    from mtlrec.data.roles import DataSpec
    from mtlrec.prep import prepare
    rng = np.random.default_rng(0)
    cols = {"user": rng.integers(0, 500, rows), "item": rng.integers(0, 300, rows), "click": rng.integers(0, 2, rows)}
    cols.update({f"f{k}": rng.normal(size=rows) for k in range(n_cols)})
    raw = RawData(interactions=pd.DataFrame(cols), sources={"interactions": "wide.csv"})
    spec = DataSpec(user_id="user", item_id="item", labels={"click": "binary"},
                    numeric={f"f{k}": "context" for k in range(n_cols)})
    t = time.perf_counter()
    prepare(raw, spec, {"split": "random"}, release_input=release)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--columns", default="300,1200")
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    widths = [int(x) for x in a.columns.split(",")]
    one(2, 1000, True)          # warm-up: the first preparation imports its modules
    out = {f"{n} columns, {'release' if rel else 'keep'}": round(one(n, a.rows, rel), 2)
           for n in widths for rel in (True, False)}
    if len(widths) == 2:
        lo, hi = widths
        for mode in ("release", "keep"):
            out[f"ratio {hi}/{lo} ({mode})"] = round(out[f"{hi} columns, {mode}"] / out[f"{lo} columns, {mode}"], 2)
    if a.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
