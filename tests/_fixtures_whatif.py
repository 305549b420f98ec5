"""A prepared dataset whose users have raw feature columns (age in years, occupation by name)
beside the coded tables, with the training statistics `mtlrec.prep` records -- what a what-if
needs to take edits in raw terms."""
from __future__ import annotations

import numpy as np
import pandas as pd

from _fixtures_train import make_dataset, with_label_stats

OCCUPATIONS = ["student", "engineer", "artist"]      # codes 1, 2, 3
AGE_MEAN, AGE_STD = 30.0, 10.0


def make_whatif_dataset(n_rows: int = 1500):
    ds = with_label_stats(make_dataset(n_rows=n_rows))
    age = np.asarray(ds.user_table["age"], dtype=np.float64) * AGE_STD + AGE_MEAN
    occ = [OCCUPATIONS[int(c) - 1] for c in ds.user_table["occupation"]]
    ds.user_info = pd.DataFrame({"user_id": list(ds.user_ids), "age": np.round(age, 3), "occupation": occ})
    report = dict(ds.meta.get("report", {}))
    report["stats"] = {"age": {"kind": "numeric", "fill": AGE_MEAN, "mean": AGE_MEAN, "std": AGE_STD},
                       "occupation": {"kind": "categorical", "vocab_size": 4, "fill": "student",
                                      "top": list(OCCUPATIONS)}}
    ds.meta = {**ds.meta, "report": report}
    return ds
