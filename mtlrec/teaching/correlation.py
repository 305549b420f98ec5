"""Task-selection aids: how the candidate labels of a prepared dataset move together.

``label_correlation(dataset)`` is the Pearson correlation between every pair of labels over the
TRAINING rows (the rows a model learns from; validation and test never look in), as a
DataFrame label x label:

* binary (0/1) and regression labels enter as they are (for two binary labels Pearson is the
  phi coefficient);
* a multi-label label enters as its number of classes per row (how many genres a movie has);
  one column per class would swamp the matrix, and the count is what can move with the others;
* sampled negatives (rows with ``sampled`` True) are left out: their labels are made up by
  negative sampling (0 clicks, the smallest rating), which would correlate labels by construction;
* rows where a label is missing (NaN) are left out of that label's pairs only (pairwise).

A label that never varies on the training rows has no correlation (NaN; shown as empty).

``cv_rows(cv, task_metric)``: the cross-validation of a run (``metrics["cv"]``) as one row per task,
each task's metric as "mean ± std" over the folds (validation folds and test), for the app and the
report alike.
"""
from __future__ import annotations

import numpy as np


def label_correlation(dataset, split: str = "train"):
    """Pearson correlation of the labels of ``dataset`` on its ``split`` rows (see the module doc)."""
    import pandas as pd
    rows = dataset.rows.get(split) or {}
    keep = None
    if "sampled" in rows:
        keep = ~np.asarray(rows["sampled"], dtype=bool)
    cols = {}
    for lab in dataset.labels:
        v = rows.get("label:" + lab.name)
        if v is None:
            continue
        v = np.asarray(v, dtype=np.float64)
        if v.ndim == 2:                      # multilabel: classes per row
            name = f"{lab.name} (number of classes)"
            v = np.where(np.isnan(v).all(axis=1), np.nan, np.nansum(v, axis=1)) if len(v) else v.sum(axis=1)
        else:
            name = lab.name
        cols[name] = v if keep is None else v[keep]
    frame = pd.DataFrame(cols)
    return frame.corr(method="pearson")


def cv_rows(cv: dict, task_metric: dict) -> list[dict]:
    """One row per task: mean ± std of the task's metric over the folds (validation fold and test)."""
    from mtlrec.display import format_number
    rows = []
    for task, m in task_metric.items():
        row = {"task": task, "metric": m}
        for part in ("valid", "test"):
            s = ((cv.get(part) or {}).get(task) or {}).get(m) or {}
            row["validation folds" if part == "valid" else "test"] = \
                f"{format_number(s.get('mean'))} ± {format_number(s.get('std'))}"
        rows.append(row)
    return rows
