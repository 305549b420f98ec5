"""What every explanation starts from: the model's fused input X of rows and of one (user, item) pair.

The lowest layer of `mtlrec.explain` (it imports no other explain module): `mtlrec.explain.api`,
`mtlrec.explain.values`, `mtlrec.explain.dependence`, `mtlrec.explain.gates`, `mtlrec.explain.lime`
and `mtlrec.serve.whatif` take their inputs from here.

* `lookup` -- the index of a user or item id, or a DataError that names example ids.
* `row_inputs(run, user, item)` -- (features, X) of one pair as `mtlrec.serve.recommend` scores it.
* `sample_inputs(run, n)` -- (features, X) of ``n`` random rows of a split (`split_with_rows`).
* `cpu_model` / `model_device` -- embedding runs on CPU, on a copy when the model lives elsewhere.
* `class_index` -- which class of a multilabel task an explanation explains.
"""
from __future__ import annotations

import numpy as np

from mtlrec.display import with_article
from mtlrec.errors import DataError


def split_with_rows(ds, prefer=("train", "valid", "test")) -> str:
    """The first split of ``prefer`` that has rows (DataError when none has)."""
    for s in prefer:
        if s in ds.rows and ds.n_rows(s) > 0:
            return s
    raise DataError("the run's dataset has no rows to draw a background sample from",
                    fix="retrain the run on data with a training split")


def model_device(run) -> str:
    """The device the run's model lives on ("cpu" for a model without parameters)."""
    try:
        return str(next(run.model.parameters()).device)
    except StopIteration:  # pragma: no cover
        return "cpu"


def cpu_model(run):
    """The run's model for read-only embedding on CPU (a copy when it lives elsewhere)."""
    if model_device(run) == "cpu":
        return run.model
    import copy
    return copy.deepcopy(run.model).cpu().eval()


def sample_inputs(run, n: int, split: str | None = None, seed: int = 0, prefer=("train", "valid", "test")):
    """(features, X) of ``n`` random rows of ``split`` (default: the first non-empty of ``prefer``)."""
    import torch
    ds = run.dataset
    split = split or split_with_rows(ds, prefer)
    total = ds.n_rows(split)
    n = int(n)
    if n < 1:
        raise DataError(f"the sample size must be at least 1, not {n}", fix="use e.g. --background 100")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(total, size=min(n, total), replace=False))
    data = run.dataset.to_device("cpu") if model_device(run) != "cpu" else run.device_data()
    feats, _ = data.batch(split, torch.as_tensor(idx, dtype=torch.long))
    with torch.no_grad():
        x = cpu_model(run).embed(feats)
    return feats, x


def lookup(ds, kind: str, raw) -> int:
    """The index of user or item id ``raw`` (``kind``: "user" or "item") in ``ds``; a DataError
    naming a few ids of the run's data when it is not there."""
    ids = ds.user_ids if kind == "user" else ds.item_ids
    if len(ids) == 0:
        raise DataError(f"this run's data has no {kind} ids")
    try:
        return ds.user_index(raw) if kind == "user" else ds.item_index(raw)
    except KeyError:
        examples = ", ".join(map(str, ids[:5]))
        raise DataError(f"{kind} '{raw}' is not in this run's data",
                        fix=f"use {with_article(kind)} id from the run's data, e.g. {examples}") from None


def row_inputs(run, user, item):
    """(features, X) of one (user, item) pair as `mtlrec.serve.recommend` scores it."""
    import torch
    ds = run.dataset
    u, i = lookup(ds, "user", user), lookup(ds, "item", item)
    data = run.device_data() if model_device(run) == "cpu" else ds.to_device("cpu")
    feats = data.candidates(u, [i])
    with torch.no_grad():
        x = cpu_model(run).embed(feats)
    return feats, x


def class_index(run, task, want, probs: dict) -> int:
    """Index of the class of a multilabel task to explain: ``want`` (name or index), else the
    most likely class for this pair (first of ``probs``)."""
    from mtlrec.serve.recommend import class_names
    names = class_names(run, task)
    if want is None or want == "":
        want = next(iter(probs))
    if isinstance(want, (int, np.integer)) and not isinstance(want, bool):
        if 0 <= int(want) < len(names):
            return int(want)
    elif str(want) in names:
        return names.index(str(want))
    shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
    raise DataError(f"task '{task.name}' has no class {want!r}", fix=f"pick one of its classes: {shown}")
