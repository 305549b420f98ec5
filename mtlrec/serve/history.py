"""A user's behaviour history as a request sees it, in words, and edited hypothetically.

The history input (`mtlrec.prep.history`, field ``history``) is a per-request input of a
recommendation: `mtlrec.serve.recommend.score_items` takes an edited one (``history=``) and scores
it through the same path as the user's own (the item-side cache included). This module builds
those edits -- never by changing the dataset's arrays (read-only memory maps): every function
returns new arrays.

* `has_history_input(run)` -- whether the run's model reads a history.
* `user_history(run, user)` -- (codes [N], values [N]) of an existing user (None: a new user, empty).
* `history_entries(run, codes, values)` -- the real entries in words: item id, title, the value
  given on the label's scale ("5★"), position and recency (1 = most recent).
* `without_item` / `with_item` / `edit_history` -- the history less one item, or with one item added
  as the most recent (the oldest drops out when it is full), with the rating given.
* `history_features(run, codes, values)` -- the edited history as model features ``{name: [r, N]}``.
"""
from __future__ import annotations

import math

import numpy as np

from mtlrec.errors import DataError
from mtlrec.prep.history import FIELD, PAD, VALUE, standardized_value, value_as_label
from mtlrec.serve.recommend import item_columns, item_index, label_range, user_index

STAR_LABELS = ("rating", "ratings", "stars", "star", "score")


def has_history_input(run) -> bool:
    """Whether ``run``'s model reads the user's behaviour history."""
    names = getattr(getattr(run.model, "input", None), "history_names", None) or []
    return FIELD in names and FIELD in run.dataset.user_table


def history_length(run) -> int:
    return int(next(f.dim for f in run.dataset.fields if f.name == FIELD))


def user_history(run, user=None) -> tuple[np.ndarray, np.ndarray]:
    """Copies of the history recommendations use for ``user`` (codes, values); a new user's is empty."""
    ds = run.dataset
    n = history_length(run)
    if user is None:
        return np.full(n, PAD, np.int64), np.zeros(n, np.float32)
    u = user_index(run, user)
    return (np.array(ds.user_table[FIELD][u], dtype=np.int64, copy=True),
            np.array(ds.user_table[VALUE][u], dtype=np.float32, copy=True))


def code_items(run) -> np.ndarray:
    """Item index of each item_id code (-1: no item; code 0, the unknown bucket, is never an item)."""
    cache = getattr(run, "_cache", None)
    if isinstance(cache, dict) and "history_code_items" in cache:
        return cache["history_code_items"]
    codes = np.asarray(run.dataset.item_table["item_id"], np.int64)
    out = np.full(int(codes.max(initial=0)) + 1, -1, np.int64)
    ok = np.flatnonzero(codes > 0)
    out[codes[ok]] = ok
    if isinstance(cache, dict):
        cache["history_code_items"] = out
    return out


def value_label(run) -> str:
    """The label whose value each history item carries ("" when none, e.g. a click-only dataset)."""
    return str((run.dataset.meta.get("history") or {}).get("value_label") or "")


def value_text(run, value: float | None) -> str:
    """A value given, in words: "5★" for a rating-like label, else "rating 0.7"."""
    label = value_label(run)
    if not label or value is None:
        return ""
    v = round(float(value), 1)
    num = f"{v:g}"
    if label.lower() in STAR_LABELS and 0 <= v <= 10:
        return f"{num}★"
    return f"{label.replace('_', ' ')} {num}"


def item_titles(run) -> list[str] | None:
    """Each item's title (by item index) from the title column of ``item_info``; None without one."""
    cache = getattr(run, "_cache", None)
    if isinstance(cache, dict) and "history_titles" in cache:
        return cache["history_titles"]
    ds = run.dataset
    info = getattr(ds, "item_info", None)
    title = item_columns(ds)[0] if info is not None and len(info) == len(ds.item_ids) else None
    titles = None if title is None else ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                                         for v in info[title].astype(object).tolist()]
    if isinstance(cache, dict):
        cache["history_titles"] = titles
    return titles


def item_name(run, item) -> str:
    """An item in words: "The Maltese Falcon (item 42)", or "item 42" without titles."""
    titles = item_titles(run)
    title = titles[item_index(run, item)] if titles is not None else ""
    return f"{title} (item {item})" if title else f"item {item}"


def history_entries(run, codes, values) -> list[dict]:
    """The real entries of a history (oldest first): ``[{"position", "recency", "code", "item",
    "title", "value", "value_text", "name"}]``. ``value`` is on the label's scale (None without a value
    label); ``name`` is the title, else "item <id>"; ``recency`` 1 is the most recent."""
    ds = run.dataset
    codes = np.asarray(codes, np.int64)
    pos = np.flatnonzero(codes >= 0)
    items = code_items(run)
    titles = item_titles(run)
    has_value = bool(value_label(run))
    out = []
    for k, p in enumerate(pos):
        c = int(codes[p])
        i = int(items[c]) if 0 <= c < len(items) else -1
        item = str(ds.item_ids[i]) if i >= 0 else None
        title = titles[i] if (titles is not None and i >= 0 and titles[i]) else None
        v = round(value_as_label(ds, float(values[p])), 6) if has_value else None
        name = title or (f"item {item}" if item is not None else "an item unseen in training")
        out.append({"position": int(p), "recency": int(len(pos) - k), "code": c, "item": item,
                    "item_index": i, "title": title, "value": v, "value_text": value_text(run, v), "name": name})
    return out


def without_item(run, codes, values, item) -> tuple[np.ndarray, np.ndarray]:
    """The history less ``item`` (every entry of it): its places become padding, the rest keep
    their order; the older item that would move into the window is not brought in."""
    codes, values = np.array(codes, np.int64, copy=True), np.array(values, np.float32, copy=True)
    code = _code_of(run, item)
    hit = codes == code
    if not hit.any():
        shown = ", ".join(e["item"] or "?" for e in history_entries(run, codes, values)[-8:]) or "none"
        raise DataError(f"item '{item}' is not in this user's history",
                        fix=f"pick an item of the history (most recent: {shown})")
    codes[hit], values[hit] = PAD, 0.0
    keep = codes >= 0                          # compact: padding at the front, as preparation stores it
    n = len(codes)
    return (np.concatenate([np.full(n - keep.sum(), PAD, np.int64), codes[keep]]),
            np.concatenate([np.zeros(n - keep.sum(), np.float32), values[keep]]))


def with_item(run, codes, values, item, rating=None) -> tuple[np.ndarray, np.ndarray]:
    """The history with ``item`` added as the most recent interaction, given ``rating`` (on the
    label's scale; needed when the history carries values). A full history drops its oldest entry."""
    code = _code_of(run, item)
    label = value_label(run)
    if label:
        if rating is None or rating == "":
            raise DataError(f"adding an item to the history needs the {label} the user gave it",
                            fix=f"give a {label}, e.g. 4")
        v = standardized_value(run.dataset, _rating(run, label, rating))
    else:
        v = 0.0
    codes = np.concatenate([np.asarray(codes, np.int64)[1:], [code]])
    values = np.concatenate([np.asarray(values, np.float32)[1:], [np.float32(v)]]).astype(np.float32)
    return codes, values


def edit_history(run, user=None, remove=None, add=None, rating=None) -> tuple[np.ndarray, np.ndarray]:
    """The history of ``user`` (None: a new user's, empty) less ``remove`` and with ``add`` (rated ``rating``)."""
    if not has_history_input(run):
        raise DataError("this run has no history input", fix="train with model.history to edit a user's history")
    codes, values = user_history(run, user)
    if remove not in (None, ""):
        codes, values = without_item(run, codes, values, remove)
    if add not in (None, ""):
        codes, values = with_item(run, codes, values, add, rating)
    return codes, values


def history_features(run, codes, values, device=None) -> dict:
    """``{"history": LongTensor [r, N], "history:value": FloatTensor [r, N]}`` of one history
    ([N]) or several ([r, N]), new tensors on ``device`` (default: the run's device data)."""
    import torch
    dev = device if device is not None else run.device_data().device
    c = torch.as_tensor(np.atleast_2d(np.asarray(codes, np.int64)), device=dev)
    v = torch.as_tensor(np.atleast_2d(np.asarray(values, np.float32)), device=dev)
    return {FIELD: c, VALUE: v}


def _code_of(run, item) -> int:
    i = item_index(run, item)
    code = int(np.asarray(run.dataset.item_table["item_id"])[i])
    if code <= 0:
        raise DataError(f"item '{item}' was unseen in training, so the model has no profile of it to put in a history",
                        fix="pick an item with training interactions")
    return code


def _rating(run, label: str, rating) -> float:
    """``rating`` as a finite number within the label's training range."""
    try:
        v = float(rating)
    except (TypeError, ValueError):
        raise DataError(f"the {label} must be a number, not {str(rating)[:24]!r}", fix="give e.g. 4") from None
    if isinstance(rating, bool) or not math.isfinite(v):
        raise DataError(f"the {label} must be a finite number, not {rating!r}", fix="give e.g. 4")
    task = next((t for t in run.tasks if getattr(t, "label", None) == label), None)
    r = label_range(run, task) if task is not None else None
    if r is not None and not (r[0] <= v <= r[1]):
        raise DataError(f"a {label} of {v:g} is outside the values seen in training ({r[0]:g} to {r[1]:g})",
                        fix=f"give a {label} between {r[0]:g} and {r[1]:g}")
    return v
