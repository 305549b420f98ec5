"""Behaviour history: each row's last N interactions before its own time, as one more input.

`add_history(ds, length)` gives a prepared dataset the feature ``history`` (kind "history", owner
"context"): per row, the item codes of the user's last ``length`` interactions strictly before the
row's time, oldest first, padded with -1 at the front (``rows[split]["history"]``, int64
[n, length]) and the value each was given (``rows[split]["history:value"]``, float32, the rating
standardised on the training rows; 0 without a value label or for padding). The codes are those of
the ``item_id`` field, so the model embeds a history item with the same table as a candidate item.

Which interactions a row may see (no leakage):

* only observed rows (sampled negatives are never history) of the *history pool*: the training
  rows for a random, cold-item or predefined split; every split for a temporal split (a test row
  then sees the user's earlier validation and test interactions too: they happened before it);
* with timestamps, only those strictly before the row's own time (a training row never sees a
  later interaction, nor one at the same second); a sampled negative has its source row's user and
  time, so it has its source row's history;
* without timestamps "before" is unknown: a row sees the user's training interactions in file
  order, except itself (the set a user rated, as SVD++'s implicit feedback).

``user_table["history"]`` / ``["history:value"]`` hold what recommendations use: each user's last
``length`` interactions of the training split (and validation, for a temporal split) -- the history
known when the test rows are ranked and when the app recommends. ``meta["history"]`` says how the
history was built (length, value label and its mean/std, pool, by time or not).
"""
from __future__ import annotations

import numpy as np

from mtlrec.config import HISTORY_MAX_LENGTH
from mtlrec.dataset import FeatureField, PreparedDataset
from mtlrec.errors import DataError

FIELD = "history"
VALUE = FIELD + ":value"
PAD = -1
MAX_LENGTH = HISTORY_MAX_LENGTH


def with_history(ds: PreparedDataset, settings: dict | None) -> PreparedDataset:
    """``ds`` as a run with ``model.history`` = ``settings`` sees it: a copy with the history
    feature of that length (None: a copy without one; ``ds`` itself when nothing changes). The
    arrays of ``ds`` are shared, never changed: the app keeps one prepared dataset for many runs."""
    length = None if settings is None else int(settings["length"])
    current = (ds.meta.get("history") or {}).get("length") if has_history(ds) else None
    if length == current:
        return ds
    out = PreparedDataset([f for f in ds.fields if f.name != FIELD], list(ds.labels),
                          {s: {k: v for k, v in r.items() if k not in (FIELD, VALUE)} for s, r in ds.rows.items()},
                          {k: v for k, v in ds.user_table.items() if k not in (FIELD, VALUE)},
                          dict(ds.item_table), ds.user_ids, ds.item_ids,
                          {k: v for k, v in ds.meta.items() if k != "history"}, ds.item_info, ds.user_info)
    return out if length is None else add_history(out, length)


def add_history(ds: PreparedDataset, length: int, value_label: str | None = "auto") -> PreparedDataset:
    """Add the ``history`` feature to ``ds`` (in place; returns ``ds``; `with_history` leaves the
    dataset given alone). ``value_label``: the label whose value each history item carries
    ("auto": the first regression label, else none; None: none)."""
    length = int(length)
    if not 1 <= length <= MAX_LENGTH:
        raise ValueError(f"history length must be between 1 and {MAX_LENGTH}, not {length}")
    codes = _item_codes(ds)
    value_label = _value_label(ds, value_label)
    pool = _Pool(ds, codes, value_label)
    for split, rows in ds.rows.items():
        times = pool.times_of(rows)
        rids = np.asarray(rows["row_id"], np.int64) if "row_id" in rows else None
        h, v = pool.histories(np.asarray(rows["user_index"], np.int64), times, rids, length)
        rows[FIELD], rows[VALUE] = h, v
    users = np.arange(len(ds.user_ids), dtype=np.int64)
    h, v = pool.serving().histories(users, None, None, length)
    ds.user_table[FIELD], ds.user_table[VALUE] = h, v
    item_field = ds.field("item_id")
    ds.fields = [f for f in ds.fields if f.name != FIELD]
    ds.fields.append(FeatureField(FIELD, "history", "context", group="user history",
                                  vocab_size=int(item_field.vocab_size), dim=length))
    ds.meta["history"] = {"length": length, "value_label": value_label or "", "value_mean": pool.mean,
                          "value_std": pool.std, "pool": pool.pool_name, "by_time": pool.by_time}
    return ds


def has_history(ds) -> bool:
    return any(f.name == FIELD and f.kind == "history" for f in ds.fields)


def value_as_label(ds, v: float) -> float:
    """A stored (standardised) history value back on the label's scale (e.g. a rating)."""
    h = ds.meta.get("history") or {}
    return float(v) * float(h.get("value_std") or 1.0) + float(h.get("value_mean") or 0.0)


def standardized_value(ds, label_value: float) -> float:
    """A label value (e.g. a rating of 4) as the history stores it."""
    h = ds.meta.get("history") or {}
    if not h.get("value_label"):
        return 0.0
    return (float(label_value) - float(h.get("value_mean") or 0.0)) / float(h.get("value_std") or 1.0)


def _item_codes(ds) -> np.ndarray:
    """The item_id code of every catalogue item (the history's vocabulary)."""
    if not ds.has_items or "item_id" not in ds.item_table or not ds.has_users:
        raise DataError("behaviour history needs user and item ids: this data has no item_id or user_id role",
                        fix="map a user id and an item id column on the Data page, or switch the history off")
    return np.asarray(ds.item_table["item_id"], np.int64)


def _value_label(ds, value_label):
    if value_label is None or value_label == "":
        return None
    if value_label == "auto":
        reg = [lab.name for lab in ds.labels if lab.task_type == "regression"]
        return reg[0] if reg else None
    ds.label(value_label)          # KeyError names it
    return value_label


class _Pool:
    """The interactions histories are drawn from, sorted by (user, time, row id)."""

    def __init__(self, ds, codes: np.ndarray, value_label):
        split = str((ds.meta.get("prep") or {}).get("split", "random"))
        self.by_time = len(ds.rows) > 0 and all("event_time" in r for r in ds.rows.values())
        names = [s for s in ds.rows if split == "temporal" and self.by_time] or ["train"]
        self.pool_name = "all splits" if len(names) > 1 else "train"
        self.serve_splits = [s for s in ("train", "valid") if s in names]
        parts = [_observed(ds, s, k, codes, value_label) for k, s in enumerate(names) if s in ds.rows]
        u, t, rid, c, v, sp = (np.concatenate([p[k] for p in parts]) if parts else np.zeros(0)
                               for k in range(6))
        train = sp == names.index("train") if "train" in names else np.ones(len(u), bool)
        self.mean = float(v[train].mean()) if value_label and train.any() else 0.0
        std = float(v[train].std()) if value_label and train.sum() > 1 else 1.0
        self.std = std if std > 0 else 1.0
        v = ((v - self.mean) / self.std) if value_label else np.zeros(len(u))
        order = np.lexsort((rid, t, u))
        self.n_users = len(ds.user_ids)
        self.names = names
        self._set(u[order].astype(np.int64), t[order], rid[order].astype(np.int64),
                  c[order].astype(np.int64), v[order].astype(np.float32), sp[order].astype(np.int64))

    def _set(self, u, t, rid, c, v, sp):
        self.u, self.t, self.rid, self.c, self.v, self.sp = u, t, rid, c, v, sp
        self.start = np.searchsorted(self.u, np.arange(self.n_users + 1), side="left")

    def serving(self) -> "_Pool":
        """The pool restricted to the splits known when recommending (train; + valid if temporal)."""
        keep = np.isin(self.sp, [self.names.index(s) for s in self.serve_splits])
        out = object.__new__(_Pool)
        out.__dict__.update(self.__dict__)
        out._set(self.u[keep], self.t[keep], self.rid[keep], self.c[keep], self.v[keep], self.sp[keep])
        return out

    def times_of(self, rows):
        return np.asarray(rows["event_time"], np.float64) if self.by_time else None

    def histories(self, users, times, row_ids, length: int):
        """[n, length] codes (-1 padding at the front) and values of each query's history: the
        user's entries before ``times`` (None: all of them, less the query's own row id)."""
        users = np.asarray(users, np.int64)
        known = (users >= 0) & (users < self.n_users)
        uu = np.where(known, users, 0)
        lo = self.start[uu]
        hi = self._before(uu, times) if times is not None else self.start[uu + 1]
        hi = np.where(known, hi, lo)
        width = length + (1 if times is None and row_ids is not None else 0)
        idx = hi[:, None] - width + np.arange(width)[None, :]
        ok = idx >= lo[:, None]
        if len(self.u) == 0:
            ok[:] = False
        safe = np.clip(idx, 0, max(len(self.u) - 1, 0))
        if width > length:            # without time: drop the row itself, then keep the last `length`
            ok &= self.rid[safe] != np.asarray(row_ids, np.int64)[:, None]
        return self._compact(safe, ok, length)

    def _compact(self, idx, ok, length):
        """Per row, the last ``length`` entries of ``idx`` where ``ok``, right-aligned (oldest first)."""
        n = idx.shape[0]
        rank = np.cumsum(ok[:, ::-1], axis=1)[:, ::-1]     # 1 = the row's most recent kept entry
        keep = ok & (rank <= length)
        codes = np.full((n, length), PAD, np.int64)
        vals = np.zeros((n, length), np.float32)
        r, c = np.nonzero(keep)
        pos = length - rank[r, c]
        codes[r, pos] = self.c[idx[r, c]]
        vals[r, pos] = self.v[idx[r, c]]
        return codes, vals

    def _before(self, users, times):
        """Per query, the end of the user's pool entries strictly before its time (one sorted
        search on (user, rank of time) keys)."""
        all_t = np.unique(np.concatenate([self.t, np.asarray(times, np.float64)]))
        r = np.int64(len(all_t) + 1)
        pool_key = self.u * r + np.searchsorted(all_t, self.t)
        q_key = users * r + np.searchsorted(all_t, np.asarray(times, np.float64))
        return np.searchsorted(pool_key, q_key, side="left")


def _observed(ds, split: str, k: int, codes, value_label):
    """(user, time, row id, item code, value, split number) of the observed rows of ``split``."""
    r = ds.rows[split]
    n = len(r["user_index"])
    keep = ~np.asarray(r["sampled"], bool) if "sampled" in r else np.ones(n, bool)
    u = np.asarray(r["user_index"], np.int64)[keep]
    items = np.asarray(r["item_index"], np.int64)[keep]
    t = np.asarray(r["event_time"], np.float64)[keep] if "event_time" in r else np.zeros(len(u))
    rid = np.asarray(r["row_id"], np.int64)[keep] if "row_id" in r else np.arange(len(u))
    v = np.asarray(r["label:" + value_label], np.float64)[keep] if value_label else np.zeros(len(u))
    ok = (u >= 0) & (items >= 0) & np.isfinite(v)
    return u[ok], t[ok], rid[ok], codes[items[ok]], v[ok], np.full(int(ok.sum()), k, np.int64)
