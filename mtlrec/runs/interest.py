"""A user's interest profile as a run predicts it and as it is (distribution tasks: user-level interest
mining, `mtlrec.prep.interest`), for Results and the report: `interest_users`, `interest_profile`.

The profile of a user is the mean over the user's rows of a split (in the task's own space: observed
rows with a known distribution) of the predicted shares and of the actual ones, beside the
training-mean distribution every row would get from the constant baseline.
"""
from __future__ import annotations

import numpy as np

from mtlrec.errors import DataError


def distribution_tasks(run) -> list:
    """The run's distribution tasks (TaskSpecs)."""
    from mtlrec.runs.predictions import run_tasks
    return [t for t in run_tasks(run) if t.type == "distribution"]


def _task(run, task: str | None):
    tasks = distribution_tasks(run)
    if not tasks:
        raise DataError("this run has no distribution task (a user's interests)",
                        fix="add an interest label on Data and a distribution task on it on Tasks & model")
    if task is None:
        return tasks[0]
    for t in tasks:
        if t.name == task:
            return t
    raise DataError(f"'{task}' is not a distribution task of this run",
                    fix="pick one of: " + ", ".join(t.name for t in tasks))


def _rows(run, t, split: str):
    """(user index per row, actual shares, predicted shares) of ``split`` in the task's own space."""
    from mtlrec.runs.predictions import predictions
    p = predictions(run, split)[t.name]
    users = np.asarray(run.dataset.rows[split]["user_index"], dtype=np.int64)
    y, yhat = np.asarray(p["y"], dtype=np.float64), np.asarray(p["p"], dtype=np.float64)
    m = p.get("mask")
    if m is not None:
        users, y, yhat = users[m], y[m], yhat[m]
    return users, y, yhat


def interest_users(run, task: str | None = None, split: str = "test") -> list[str]:
    """Ids of the users with at least one row of ``split`` in the task's own space, most rows first."""
    t = _task(run, task)
    users, _, _ = _rows(run, t, split)
    if not len(users):
        return []
    counts = np.bincount(users)
    order = np.flatnonzero(counts)[np.argsort(-counts[np.flatnonzero(counts)], kind="stable")]
    return [str(run.dataset.user_ids[u]) for u in order]


def interest_profile(run, user: str, task: str | None = None, split: str = "test") -> dict:
    """``{"task", "user", "split", "rows", "classes", "predicted", "actual", "training_mean"}``: the mean
    predicted and actual shares over the user's rows of ``split`` (classes in the label's order),
    and the training-mean distribution (the constant baseline). DataError for an unknown user or
    one without such rows."""
    from mtlrec.metrics import mean_distribution
    from mtlrec.serve.recommend import class_names
    t = _task(run, task)
    ds = run.dataset
    pos = np.flatnonzero(ds.user_ids == str(user))
    if not len(pos):
        raise DataError(f"user '{user}' is not in this run's data", fix="pick a user id from the data")
    users, y, yhat = _rows(run, t, split)
    mine = users == int(pos[0])
    if not mine.any():
        raise DataError(f"user '{user}' has no {split} row with a known interest distribution",
                        fix="pick another user (the list offers those with rows)")
    stats = (ds.meta.get("report") or {}).get("labels", {}).get(t.label, {})
    mean = stats.get("mean") or mean_distribution(np.asarray(ds.rows["train"]["label:" + t.label])).tolist()
    return {"task": t.name, "user": str(user), "split": split, "rows": int(mine.sum()),
            "classes": class_names(run, t), "predicted": yhat[mine].mean(axis=0).tolist(),
            "actual": y[mine].mean(axis=0).tolist(), "training_mean": [float(v) for v in mean]}
