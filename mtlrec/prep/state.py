"""What one preparation works on: :class:`Preparation`, the arrays and report that the steps of
``mtlrec.prep.pipeline.prepare`` fill in turn, and :class:`Tables`, the raw tables seen per
interaction row or per user / item table position.

The steps (``clean``, ``splits``, ``encode``, ``assemble``, ``text_features``) read and set the
fields of one ``Preparation``; a field a later step no longer needs is set to None as soon as
it is used up (on large data the per-row arrays, not the tables, are the peak memory).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

SHOWN_ROW_IDS = 20      # row_ids listed per reason in the preparation report


def row_list(row_ids: np.ndarray) -> dict:
    """A count of rows and the first of their row_ids (the report's ``dropped_rows`` entries)."""
    row_ids = np.sort(np.asarray(row_ids, dtype=np.int64))
    return {"count": int(len(row_ids)), "row_ids": row_ids[:SHOWN_ROW_IDS].tolist()}


class Tables:
    """Raw values of any column, aligned with interaction rows or user/item table positions."""

    def __init__(self, raw, spec, uidx, iidx, u_src, i_src):
        self.raw, self.spec = raw, spec
        self.uidx, self.iidx = uidx, iidx          # per original interaction row (-1: none)
        self.u_src, self.i_src = u_src, i_src      # table position -> row of raw.users / raw.items
        self.n_users = len(u_src)
        self.n_items = len(i_src)

    def location(self, col: str) -> str | None:
        return self.raw.locate(col)

    def owner(self, col: str, owner: str) -> str:
        """Effective owner of a feature: the table a column lives in wins; no ids -> context."""
        loc = self.location(col)
        if loc == "users":
            owner = "user"
        elif loc == "items":
            owner = "item"
        if owner == "user" and not self.spec.user_id:
            owner = "context"
        if owner == "item" and not self.spec.item_id:
            owner = "context"
        return owner

    def table_values(self, col: str, owner: str):
        """Values of ``col`` for each user/item table position (object/float, NaN if unknown)."""
        import pandas as pd
        table = self.location(col)
        src = self.u_src if owner == "user" else self.i_src
        df = self.raw.users if owner == "user" else self.raw.items
        if table == ("users" if owner == "user" else "items"):
            s = df[col]
            vals = s.to_numpy()
            out = pd.Series(vals[np.maximum(src, 0)]) if len(vals) else pd.Series([np.nan] * len(src))
            if (src < 0).any():
                out = out.astype(object) if not pd.api.types.is_float_dtype(out.dtype) else out
                out[src < 0] = np.nan
            return out
        # a column of the interactions (or of the other table) described per user/item:
        # the last known value of each user/item
        rows = self.row_values(col)
        idx = self.uidx if owner == "user" else self.iidx
        frame = pd.DataFrame({"k": idx, "v": rows}).dropna()
        frame = frame[frame["k"] >= 0].drop_duplicates("k", keep="last")
        out = pd.Series(frame["v"].to_numpy(), index=frame["k"].to_numpy()).reindex(np.arange(len(src)))
        return out.reset_index(drop=True)

    def row_values(self, col: str):
        """Values of ``col`` for each (original) interaction row."""
        import pandas as pd
        table = self.location(col)
        if table == "interactions":
            return self.raw.interactions[col].reset_index(drop=True)
        owner = "user" if table == "users" else "item"
        idx = self.uidx if owner == "user" else self.iidx
        tv = self.table_values(col, owner)
        vals = tv.to_numpy()
        out = pd.Series(vals[np.maximum(idx, 0)]) if len(vals) else pd.Series([np.nan] * len(idx))
        if (idx < 0).any():
            out = out.astype(object)
            out[idx < 0] = np.nan
        return out


@dataclass
class Preparation:
    """One preparation in progress. Set by ``clean.start``: the inputs, the interactions frame
    ``inter`` and the report; by ``clean.index_ids``: ids and timestamps; by the label steps: the
    labels per row; by ``splits.split_rows``: the split; by ``encode``: fields, tables and encoded
    labels; by ``assemble``: the rows per split."""
    # inputs
    raw: Any
    raw_in: Any                     # the caller's raw (validation may give a narrower copy: ``raw``)
    spec: Any                       # the spec without the split column (``spec_in``: as given)
    spec_in: Any
    config: Any
    src_name: str
    raw_meta: dict
    split_col: str | None
    inter: Any                      # the (validated) interactions, index reset
    row_id: np.ndarray              # each row's position in the interactions as given
    n_input: int
    report: dict
    progress: Callable[[str, float], None] | None = None
    release_input: bool = False
    timing: dict = field(default_factory=dict)
    t_stage: float = field(default_factory=time.perf_counter)
    # ids (clean.index_ids)
    n: int = 0
    uidx: Any = None
    iidx: Any = None
    user_ids: Any = None
    item_ids: Any = None
    u_src: Any = None
    i_src: Any = None
    tables: Tables | None = None
    ts: Any = None
    given_split: Any = None
    # labels (clean.extract_labels ...)
    sep: str = "|"
    label_fields: list = field(default_factory=list)
    label_rows: Any = field(default_factory=dict)    # name -> float values per row (multilabel: strings)
    label_owner: dict = field(default_factory=dict)  # "row" | "user" | "item"
    label_table_raw: dict = field(default_factory=dict)   # user/item-owned: raw values per table position
    ml_table_missing: dict = field(default_factory=dict)  # table-owned multi-label: missing per row
    neg_on: bool = False
    neg_label: str = ""
    rows_idx: Any = None            # original interaction rows still in play
    # split (splits.split_rows)
    split: Any = None
    r_u: Any = None
    r_i: Any = None
    cold_valid: Any = None
    cold_test: Any = None
    cold_items: Any = None
    counts: dict = field(default_factory=dict)
    train: Any = None
    train_users: Any = None
    train_items: Any = None
    # encoded (encode)
    fields: list = field(default_factory=list)
    user_table: dict = field(default_factory=dict)
    item_table: dict = field(default_factory=dict)
    ctx: dict = field(default_factory=dict)              # context features per kept row
    stats: dict = field(default_factory=dict)
    vocabularies: dict = field(default_factory=dict)     # categorical feature -> its categories, code order
    imputed: dict = field(default_factory=dict)
    unseen: dict = field(default_factory=dict)
    lab_rows: dict = field(default_factory=dict)
    lab_tables: dict = field(default_factory=dict)       # user/item-owned labels per table position
    # rows per split (assemble)
    rows: dict = field(default_factory=dict)
    reg_fill: dict = field(default_factory=dict)
    label_summary: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def stage(self, name: str, frac: float) -> None:
        """End of a stage: its seconds into ``timing``, then ``progress(name, frac)``."""
        now = time.perf_counter()
        self.timing[name] = round(now - self.t_stage, 4)
        self.t_stage = now
        if self.progress is not None:
            self.progress(name, frac)

    def release(self, cols) -> None:
        """Drop interaction columns that are no longer needed (``release_input`` only), all of them in
        one step per table: a ``del`` per column rebuilds the frame's block list each time
        (quadratic in the number of columns: 1,200 columns took minutes). ``drop`` slices, never copies."""
        if not self.release_input:
            return
        for holder in {id(h): h for h in (self.raw, self.raw_in)}.values():
            gone = [c for c in cols if c in holder.interactions.columns]
            if gone:
                holder.interactions = holder.interactions.drop(columns=gone)
        self.inter = self.inter.drop(columns=[c for c in cols if c in self.inter.columns])
