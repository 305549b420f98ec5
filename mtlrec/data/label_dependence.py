"""Labels that are a property of the item (or of the user), not of the interaction.

A label that takes the same value on every interaction with an item -- the genres of the
clicked movie in MovieLens, the ``genres`` label of the sample data -- says what the item
*is*, not what the user thinks of it. Its task is item classification, not a prediction of
the user's interest, and its share of the multi-task loss mostly teaches the shared layers to
recognise items: part of the "multi-task" benefit is then an artefact. The same holds for a
label constant per user (user classification).

`label_dependence` finds such labels, on raw data + roles or on a prepared dataset's training
rows; `dependence_message` is the one sentence the app, the CLI and ``run_training`` show.
The models take one fused input for all tasks, so the item's own features cannot be hidden
from one task only; the honest fixes are dropping the task or keeping it as an auxiliary task
with a low loss weight.

The rule, per owner (item first, then user), over the rows whose label is known:
* coverage: at least half of the rows belong to owners with two or more rows (one row says
  nothing about constancy);
* constancy: on those rows, at least 99% carry their owner's most common value;
* the owner explains the label: the rows that disagree with their owner's value are at most a
  tenth of those that disagree with the overall most common value -- so a label that is
  nearly constant everywhere (e.g. 99.5% zeros) is not called a property of the item, and a
  constant label is never one.
A label kept in the items (users) table is a property of the item (user) by construction.
"""
from __future__ import annotations

from typing import Any

import numpy as np

MIN_CONSTANCY = 0.99        # share of an owner's rows carrying its most common value
MIN_COVERAGE = 0.5          # share of rows on owners with at least two rows
MAX_UNEXPLAINED = 0.1       # disagreement within owners / disagreement with the overall mode
OWNER_WORDS = {"item": ("item", "item classification"), "user": ("user", "user classification")}


def owner_constancy(owners, values) -> dict[str, float]:
    """``{"constancy", "coverage", "base"}`` of integer ``values`` grouped by integer ``owners``
    (codes >= 0, same length): constancy = share of the rows on owners with >= 2 rows that carry
    their owner's most common value; coverage = share of all rows on such owners; base = share
    of those rows carrying the overall most common value. NaN when there are no such rows."""
    o = np.asarray(owners, dtype=np.int64)
    v = np.asarray(values, dtype=np.int64)
    nan = float("nan")
    if len(o) == 0:
        return {"constancy": nan, "coverage": 0.0, "base": nan}
    multi = np.bincount(o)[o] >= 2
    n_multi = int(multi.sum())
    coverage = n_multi / len(o)
    if n_multi == 0:
        return {"constancy": nan, "coverage": coverage, "base": nan}
    o, v = o[multi], v[multi]
    width = int(v.max()) + 1
    keys, counts = np.unique(o * width + v, return_counts=True)     # sorted: grouped by owner
    starts = np.flatnonzero(np.r_[True, np.diff(keys // width) != 0])
    agree = int(np.maximum.reduceat(counts, starts).sum())
    return {"constancy": agree / n_multi, "coverage": coverage, "base": int(np.bincount(v).max()) / n_multi}


def depends_on_owner(stats: dict[str, float]) -> bool:
    """True when `owner_constancy` stats say the label is a property of the owner (see the module doc)."""
    c, cov, base = stats["constancy"], stats["coverage"], stats["base"]
    if not (np.isfinite(c) and np.isfinite(base)) or cov < MIN_COVERAGE or base >= 1.0:
        return False
    return c >= MIN_CONSTANCY and (1.0 - c) <= MAX_UNEXPLAINED * (1.0 - base)


def dependence_of(users, items, values) -> str | None:
    """"item", "user" or None for one label: ``values`` integer codes per row, ``users`` /
    ``items`` the rows' owner codes (None when the data has no such id)."""
    for name, owners in (("item", items), ("user", users)):
        if owners is not None and depends_on_owner(owner_constancy(owners, values)):
            return name
    return None


# ---- raw data + roles ------------------------------------------------------------------
def _codes(s) -> np.ndarray:
    import pandas as pd
    return pd.factorize(s, use_na_sentinel=True)[0]


def _raw_dependence(raw, spec, labels) -> dict[str, str | None]:
    import pandas as pd
    inter = raw.interactions
    out: dict[str, str | None] = {}
    users = _codes(inter[spec.user_id]) if spec.user_id and spec.user_id in inter else None
    items = _codes(inter[spec.item_id]) if spec.item_id and spec.item_id in inter else None
    for col in labels:
        table = raw.locate(col)
        if table == "items" and items is not None:
            out[col] = "item"           # kept per item: a property of the item by construction
            continue
        if table == "users" and users is not None:
            out[col] = "user"
            continue
        if table != "interactions":
            out[col] = None
            continue
        s = inter[col]
        if spec.labels.get(col) == "multilabel":    # "Drama|Comedy" == "Comedy|Drama"
            sep = spec.multilabel_sep or "|"
            s = s.map(lambda x: x if pd.isna(x) else sep.join(sorted(
                t.strip() for t in str(x).split(sep) if t.strip())))
        v = _codes(s)
        ok = v >= 0
        if users is not None:
            ok &= users >= 0
        if items is not None:
            ok &= items >= 0
        out[col] = dependence_of(None if users is None else users[ok], None if items is None else items[ok], v[ok])
    return out


# ---- a prepared dataset ----------------------------------------------------------------
def _dataset_dependence(ds, labels, split: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {lab: None for lab in labels}
    rows = ds.rows.get(split) if hasattr(ds.rows, "get") else None
    if not rows:
        return out
    n = len(next(iter(rows.values())))
    real = ~np.asarray(rows["sampled"], bool) if "sampled" in rows else np.ones(n, bool)
    users = np.asarray(rows["user_index"], np.int64) if ds.has_users and "user_index" in rows else None
    items = np.asarray(rows["item_index"], np.int64) if ds.has_items and "item_index" in rows else None
    for owners in (users, items):
        if owners is not None:
            real &= owners >= 0
    for lab in labels:
        y = rows.get("label:" + lab)
        if y is None:
            continue
        y = np.asarray(y, dtype=np.float64)
        flat = y.reshape(len(y), -1)
        ok = real & np.isfinite(flat).all(1)
        if not ok.any():
            continue
        v = _row_codes(flat[ok])
        out[lab] = dependence_of(None if users is None else users[ok], None if items is None else items[ok], v)
    return out


def _row_codes(a: np.ndarray) -> np.ndarray:
    """One integer code per row of a 2-d label array (equal rows, equal codes)."""
    import pandas as pd
    if a.shape[1] == 1:
        return pd.factorize(np.round(a[:, 0], 9))[0]
    if a.shape[1] <= 62 and np.isin(a, (0.0, 1.0)).all():      # multi-hot: the rows as bit patterns
        return pd.factorize(a.astype(np.int64) @ (np.int64(1) << np.arange(a.shape[1], dtype=np.int64)))[0]
    return np.unique(np.round(a, 9), axis=0, return_inverse=True)[1].ravel()


def label_dependence(data, spec=None, labels=None, split: str = "train") -> dict[str, str | None]:
    """``{label: "item" | "user" | None}``: whether each label is a property of the item, of the
    user, or of the interaction (None). ``data`` is raw data (`RawData`, with its `DataSpec` as
    ``spec``) or a `PreparedDataset` (its ``split`` rows, sampled negatives left out).
    ``labels``: the labels to check (default: all of the spec / dataset)."""
    if hasattr(data, "rows") and hasattr(data, "labels"):
        names = list(labels) if labels is not None else [lab.name for lab in data.labels]
        return _dataset_dependence(data, names, split)
    if spec is None:
        raise ValueError("label_dependence of raw data needs its DataSpec")
    names = [c for c in (labels if labels is not None else spec.labels) if c in spec.labels]
    return _raw_dependence(data, spec, names)


def dependence_message(task: str | None, owner: str, label: str | None = None) -> str:
    """The warning for a task (or, with ``task`` None, a label) that is a property of the
    ``owner`` ("item" / "user")."""
    what, kind = OWNER_WORDS[owner]
    where = "with an item" if owner == "item" else "of a user"
    if task is None:
        head, this = f"label '{label}'", "a task on it"
    else:
        head, this = f"task '{task}'" + (f" (label '{label}')" if label and label != task else ""), "this task"
    return (f"{head}: the label is a property of the {what} (the same on every interaction {where}), so "
            f"{this} is {kind}, not a prediction of the user's interest in the item; its share of the "
            f"multi-task loss is partly an artefact (it teaches the model what the {what}s are). Fix: drop the "
            "task, or keep it only as an auxiliary task with a low loss weight (e.g. 0.1-0.3)."
            + (f" To predict what the user is interested in, add the label 'user interests over {label}' on Data "
               "(a distribution task: interest mining)." if owner == "item" and label else ""))


def degenerate_tasks(tasks: list[Any], dependence: dict[str, str | None]) -> dict[str, str]:
    """``{task name: "item" | "user"}`` for the tasks (dicts or TaskSpecs) whose label depends on an owner."""
    out = {}
    for t in tasks:
        name = t.get("name") if isinstance(t, dict) else t.name
        label = t.get("label", name) if isinstance(t, dict) else t.label
        if dependence.get(label):
            out[str(name)] = dependence[label]
    return out
