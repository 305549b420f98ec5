"""Assembly, the last steps of a preparation: the encoded rows per split (with sampled negatives),
then the :class:`~mtlrec.dataset.PreparedDataset` -- its meta, the report's tables and the raw
display columns of users and items. Reads and sets fields of a
:class:`~mtlrec.prep.state.Preparation`.
"""
from __future__ import annotations

import numpy as np

from mtlrec.dataset import LabelField, PreparedDataset
from mtlrec.prep.negatives import PairSet, add_negatives
from mtlrec.prep.splits import TEST, TRAIN, VALID
from mtlrec.prep.state import Preparation

TIME_KEY = "event_time"   # rows[split][TIME_KEY]: the row's timestamp (seconds) when the data has one


def label_summary(lf: LabelField, y: np.ndarray) -> dict:
    """Statistics of a label on the observed training rows (e.g. to scale a regression target)."""
    if lf.task_type == "binary":
        return {"type": "binary", "positive_rate": float(y.mean()) if len(y) else 0.0}
    if lf.task_type == "regression":        # in float64: the float32 labels' squares may overflow float32
        y64 = np.asarray(y, dtype=np.float64)
        return {"type": "regression", "mean": float(y64.mean()) if len(y) else 0.0,
                "std": float(y64.std()) if len(y) else 0.0}
    if lf.task_type == "distribution":         # the training-mean distribution: the task's baseline
        from mtlrec.metrics import mean_distribution
        return {"type": "distribution", "classes": len(lf.classes),
                "mean": [round(float(v), 6) for v in mean_distribution(y)] if len(y) else []}
    return {"type": "multilabel", "classes": len(lf.classes)}


def rows_and_negatives(p: Preparation) -> None:
    """The rows of each split (``p.rows``) and, with negative sampling, their sampled negatives:
    never a known positive of any split, never a held-out (cold) item for train."""
    config = p.config
    neg_report = {"ratio": float(config.negative_ratio), "label": p.neg_label or None, "sampled": {},
                  "unfilled": 0, "method": config.negative_sampling}
    if p.neg_on:
        known = PairSet(int(len(p.r_u) * (1 + float(config.negative_ratio))))
        known.add(p.r_u * p.n_items + p.r_i)
        warm_cand = np.setdiff1d(np.arange(p.n_items), p.cold_items)
        p.reg_fill = {lf.name: float(np.nanmin(p.lab_rows[lf.name][p.train])) for lf in p.label_fields
                      if lf.task_type == "regression"}
        neg_report["regression_fill"] = p.reg_fill
    # label statistics of the observed training rows (e.g. to scale a regression target)
    p.label_summary = {lf.name: label_summary(lf, p.lab_rows[lf.name][p.train]) for lf in p.label_fields}
    _spread_rows(p)
    if p.neg_on:
        for sname, r in p.rows.items():
            r["sampled"] = np.zeros(len(r["user_index"]), bool)
        neg_tables = {name: (p.label_owner[name], tab) for name, tab in p.lab_tables.items()}
        neg_report.update(add_negatives(p.rows, config, known, n_items=p.n_items, warm_cand=warm_cand,
                                        cold={"valid": p.cold_valid, "test": p.cold_test},
                                        label_fields=p.label_fields, tables=neg_tables, reg_fill=p.reg_fill))
        for name, (owner, tab) in neg_tables.items():      # what the trainer's per-epoch draws need
            (p.item_table if owner == "item" else p.user_table)["label:" + name] = tab
    p.report["negatives"] = neg_report


def _spread_rows(p: Preparation) -> None:
    """The per-row arrays (user, item, row_id, time, context features, labels) copied into the
    splits column by column: each one is let go as soon as it is copied (on large data, all of them
    and all their split copies at once were the peak of prepare)."""
    sels = [(sname, np.flatnonzero(p.split == k)) for k, sname in ((TRAIN, "train"), (VALID, "valid"),
                                                                    (TEST, "test"))]
    p.rows = rows = {sname: {} for sname, _ in sels}

    def spread(key: str, take) -> None:
        for sname, sel in sels:
            rows[sname][key] = take(sel)

    r_u, r_i, p.r_u, p.r_i = p.r_u, p.r_i, None, None
    spread("user_index", lambda sel: r_u[sel].astype(np.int64))
    r_u = None
    spread("item_index", lambda sel: r_i[sel].astype(np.int64))
    r_i = None
    row_id, rows_idx = p.row_id, p.rows_idx
    spread("row_id", lambda sel: row_id[rows_idx[sel]].astype(np.int64))
    ts, p.ts = p.ts, None
    if ts is not None and TIME_KEY not in p.ctx:     # the time order of the rows (time-respecting CV)
        spread(TIME_KEY, lambda sel: ts[rows_idx[sel]].astype(np.float64))
    ts = None
    for c in list(p.ctx):
        arr = p.ctx[c]
        spread(c, lambda sel: arr[sel])
        p.ctx[c] = arr = None
    for lf in p.label_fields:
        arr = p.lab_rows[lf.name]
        spread("label:" + lf.name, lambda sel: arr[sel])
        p.lab_rows[lf.name] = arr = None


def _context_defaults(p: Preparation) -> dict:
    """Per context feature, the value a what-if or a recommendation assumes: the most frequent
    training code (categorical), the training mean (numeric)."""
    context_defaults = {}
    for f in p.fields:
        if f.owner != "context":
            continue
        tr = p.rows["train"][f.name]
        if f.kind == "categorical":
            context_defaults[f.name] = int(np.bincount(tr).argmax()) if len(tr) else 0
        else:
            context_defaults[f.name] = float(np.mean(tr)) if len(tr) else 0.0
    return context_defaults


def _finish_report(p: Preparation) -> dict:
    """The report's closing tables: rows per split, users and items, imputed and unseen values, the
    fitted statistics, the labels, the seconds per stage."""
    report = p.report
    report["warnings"] += report["prep_warnings"]
    report.update({
        "rows": {s: int(len(p.rows[s]["user_index"])) for s in p.rows},
        "observed_rows": p.counts,
        "split": p.config.split,
        "users": int(p.n_users), "items": int(p.n_items),
        "train_users": int(p.train_users.sum()), "train_items": int(p.train_items.sum()),
        "cold_items": {"valid": int(len(p.cold_valid)), "test": int(len(p.cold_test))},
        "imputed": p.imputed, "unseen_codes": p.unseen, "stats": p.stats,
        "labels": p.label_summary,
        "timing_s": p.timing,
    })
    return report


def build_dataset(p: Preparation) -> PreparedDataset:
    """The PreparedDataset: fields in display order (user id, user features, item id, item
    features, context), rows per split, tables, meta (spec, options, report, what per-epoch
    negatives need) and the raw display columns of users and items."""
    config, spec = p.config, p.spec
    context_defaults = _context_defaults(p)
    report = _finish_report(p)
    row_sources = p.raw_meta.get("split_files") or [{"file": p.src_name, "first_row_id": 0,
                                                     "rows": int(p.n_input)}]
    meta = {"spec": spec.to_dict(), "prep": config.to_dict(), "report": report, "row_sources": row_sources,
            "cold_items": p.cold_items.tolist(), "cold_items_valid": p.cold_valid.tolist(),
            "cold_items_test": p.cold_test.tolist(), "context_defaults": context_defaults,
            "vocabularies": p.vocabularies}
    if p.neg_on:      # what `mtlrec.prep.negatives.epoch_sampler` needs to draw training negatives per epoch
        meta["negatives"] = {"per_epoch": True, "ratio": float(config.negative_ratio),
                             "method": config.negative_sampling, "seed": int(config.seed),
                             "regression_fill": p.reg_fill,
                             "label_tables": {n: p.label_owner[n] for n in p.lab_tables}}
    item_info = info_frame(p.raw.items, spec.item_id, p.item_ids, p.i_src) if p.n_items else None
    user_info = info_frame(p.raw.users, spec.user_id, p.user_ids, p.u_src) if p.n_users else None
    rank = {"user": 0, "item": 1, "context": 2}
    p.fields.sort(key=lambda f: (rank[f.owner], f.name not in ("user_id", "item_id"), f.kind == "dense"))
    return PreparedDataset(p.fields, p.label_fields, p.rows, p.user_table, p.item_table, p.user_ids, p.item_ids,
                           meta, item_info, user_info)


def info_frame(df, id_col: str, ids: np.ndarray, src: np.ndarray):
    """Raw display columns aligned with the table positions (id first, as text)."""
    import pandas as pd
    out = pd.DataFrame({id_col: ids.astype(str)})
    if df is not None:
        take = np.maximum(src, 0)
        for c in df.columns:
            if c == id_col:
                continue
            s = df[c]
            vals = s.to_numpy()[take] if len(s) else np.full(len(src), None, object)
            col = pd.Series(vals)
            if (src < 0).any():
                col = col.astype(object)
                col[src < 0] = None
            if col.dtype == object:
                col = col.astype("string")
            out[str(c)] = col.to_numpy() if col.dtype != "string" else col
    return out
