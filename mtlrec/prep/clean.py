"""Cleaning, the first steps of a preparation: validation, ids, timestamps, the labels per row
(derived and implicit-feedback labels included), rows with a missing label, duplicate
(user, item) pairs. Each step reads and sets fields of a :class:`~mtlrec.prep.state.Preparation`.
"""
from __future__ import annotations

import numpy as np

from mtlrec.dataset import LabelField
from mtlrec.errors import DataError, DataWarning
from mtlrec.prep import encoders as enc
from mtlrec.prep.splits import split_codes
from mtlrec.prep.state import Preparation, Tables, row_list

_OPS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less, "==": np.equal}


def split_column(raw, spec, config, src_name: str) -> str | None:
    """The column of a predefined split (prep.split "column"), checked; None for other splits."""
    if config.split != "column":
        return None
    col = config.split_column or (getattr(raw, "meta", None) or {}).get("split_column")
    if not col:
        from mtlrec.data.suggest import split_columns
        found = split_columns(raw)
        if len(found) != 1:
            raise DataError("the 'column' split needs the column that says train / valid / test, and "
                            + ("no column of the interactions holds only such values" if not found else
                               f"several columns could be it ({', '.join(found)})"), file=src_name,
                            fix="set the split column (prep option split_column), or choose another split")
        col = found[0]
    if col not in raw.interactions.columns:
        raise DataError(f"the split column is not a column of the interactions (they have: "
                        f"{', '.join(map(str, raw.interactions.columns))})", file=src_name, column=col,
                        fix="name a column of the interactions file as split_column")
    for role, c in (("user id", spec.user_id), ("item id", spec.item_id), ("timestamp", spec.timestamp)):
        if c == col:
            raise DataError(f"the split column is also the {role}", file=src_name, column=col,
                            fix="choose another split column, or another split method")
    return col


def without_columns(spec, cols: set):
    """``spec`` without ``cols`` as labels or features (a split column is neither)."""
    from mtlrec.data.roles import FEATURE_KINDS
    if not cols or not any(c in spec.labels or any(c in getattr(spec, k, {}) for k in FEATURE_KINDS)
                           for c in cols):
        return spec
    d = spec.to_dict()
    for kind in ("labels",) + FEATURE_KINDS:
        d[kind] = {c: v for c, v in d[kind].items() if c not in cols}
    return type(spec).from_dict(d)


def start(raw, spec, config, *, t_start: float, progress, validation, release_input: bool) -> Preparation:
    """Validate (unless ``validation`` is given) and open the report: rows in, rows validation kept
    (by row_id: each row's position in the interactions as given) and dropped, by reason."""
    from mtlrec.data.validate import validate
    n_input = len(raw.interactions)
    src_name = raw.source("interactions") if hasattr(raw, "source") else "interactions"
    raw_meta = getattr(raw, "meta", None) or {}
    split_col = split_column(raw, spec, config, src_name)
    not_features = {c for c in (split_col, raw_meta.get("split_column")) if c}
    spec_in = spec
    spec = without_columns(spec, not_features)
    vreport = validation if validation is not None else validate(raw, spec, missing_items=config.missing_items)
    raw_in = raw
    raw = vreport.raw if getattr(vreport, "raw", None) is not None else raw
    inter = raw.interactions.reset_index(drop=True)
    # row_id of each row still here: its position in the interactions as given
    kept = getattr(vreport, "kept_rows", None)
    row_id = np.asarray(kept, dtype=np.int64) if kept is not None and len(kept) == len(inter) \
        else np.arange(len(inter), dtype=np.int64)
    report: dict = {"input_rows": int(n_input), "rows_after_validation": int(len(inter)),
                    "validation": {k: v for k, v in vreport.to_dict().items() if k != "warnings"},
                    "warnings": [str(w) for w in vreport.warnings], "prep_warnings": [], "notes": []}
    dropped_rows: dict[str, dict] = {}
    for reason, pos in (getattr(vreport, "dropped_by_reason", None) or {}).items():
        if len(pos):
            dropped_rows[reason] = row_list(pos)
    report["dropped_rows"] = dropped_rows
    for c in sorted(not_features):
        if spec_in is not spec and c in spec_in.columns():
            report["notes"].append(f"the split column '{c}' is not used as a feature or label")
    return Preparation(raw=raw, raw_in=raw_in, spec=spec, spec_in=spec_in, config=config, src_name=src_name,
                       raw_meta=raw_meta, split_col=split_col, inter=inter, row_id=row_id, n_input=n_input,
                       report=report, progress=progress, release_input=release_input, t_stage=t_start)


def timestamps(series) -> np.ndarray:
    """A timestamp column as float seconds (NaN where missing or unreadable)."""
    import pandas as pd
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return series.astype("datetime64[ns]").astype("int64").to_numpy() / 1e9
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(series, errors="coerce")
        if parsed.isna().any():
            parsed = pd.to_datetime(series, errors="coerce", format="mixed")
    return parsed.astype("datetime64[ns]").astype("int64").to_numpy() / 1e9


def index_ids(p: Preparation) -> None:
    """ids -> user / item table positions (the users/items tables first, then ids seen only in the
    interactions); timestamps; the codes of a predefined split (bad values are an error before
    anything else)."""
    spec, inter, raw = p.spec, p.inter, p.raw
    p.n = n = len(inter)
    if spec.user_id:
        p.uidx, p.user_ids, p.u_src = enc.build_index(inter[spec.user_id], raw.users, spec.user_id)
    else:
        p.uidx, p.user_ids, p.u_src = np.full(n, -1, np.int64), np.zeros(0, str), np.zeros(0, np.int64)
    if spec.item_id:
        p.iidx, p.item_ids, p.i_src = enc.build_index(inter[spec.item_id], raw.items, spec.item_id)
    else:
        p.iidx, p.item_ids, p.i_src = np.full(n, -1, np.int64), np.zeros(0, str), np.zeros(0, np.int64)
    p.tables = Tables(raw, spec, p.uidx, p.iidx, p.u_src, p.i_src)
    p.ts = timestamps(inter[spec.timestamp]) if spec.timestamp else None
    if p.split_col is not None:
        p.given_split = split_codes(inter[p.split_col], file=p.src_name, column=p.split_col, row_ids=p.row_id)


def extract_labels(p: Preparation) -> None:
    """The raw value of each label per row; a label of the users / items table is read on the
    (small) table and gathered to the rows (multi-label: only whether it is missing)."""
    from mtlrec.data.validate import binary_values
    spec, tables = p.spec, p.tables
    p.sep = spec.multilabel_sep or "|"
    for col, task in spec.labels.items():
        loc = tables.location(col)
        owner = "row"
        if loc == "items" and spec.item_id:
            owner = "item"
        elif loc == "users" and spec.user_id:
            owner = "user"
        p.label_owner[col] = owner
        p.label_fields.append(LabelField(col, task))
        if owner != "row":
            # described per user/item: work on the (small) table, gather numbers to rows
            tv = tables.table_values(col, owner)
            p.label_table_raw[col] = tv
            idx = p.uidx if owner == "user" else p.iidx
            if task == "multilabel":
                miss_t = enc.multilabel_missing(tv)
                p.ml_table_missing[col] = np.where(idx >= 0, miss_t[np.maximum(idx, 0)], True)
                p.label_rows[col] = None
            else:
                t_vals = binary_values(tv)[0] if task == "binary" else enc.to_float(tv)
                p.label_rows[col] = np.where(idx >= 0, t_vals[np.maximum(idx, 0)], np.nan)
            continue
        values = tables.row_values(col)
        if task == "binary":
            p.label_rows[col] = binary_values(values)[0]
        elif task == "regression":
            p.label_rows[col] = enc.to_float(values)
        else:
            p.label_rows[col] = values.to_numpy(dtype=object)


def derive_labels(p: Preparation) -> None:
    """The derived binary labels of ``config.derived_labels`` ("like" = rating >= 4), per row."""
    tables, src_name = p.tables, p.src_name
    for d in p.config.derived_labels:
        name, source = str(d["name"]), str(d["source"])
        if name in p.label_rows or (tables.location(name) is not None and name != source):
            raise DataError(f"the derived label '{name}' has the name of an existing column or label",
                            file=src_name, column=name, fix="give the derived label another name")
        if tables.location(source) is None:
            raise DataError(f"the derived label '{name}' needs the column '{source}', which is in no table",
                            file=src_name, column=source, fix="check the source column name of the derived label")
        src_vals = enc.to_float(tables.row_values(source))
        lab = np.where(np.isnan(src_vals), np.nan, _OPS[d["op"]](src_vals, d["threshold"]).astype(np.float64))
        if np.nanmin(lab, initial=np.inf) == np.nanmax(lab, initial=-np.inf):
            raise DataError(f"the derived label '{name}' ({source} {d['op']} {d['threshold']:g}) has a single class "
                            f"on every row", file=src_name, column=source, fix="choose another threshold")
        p.label_rows[name] = lab
        p.label_owner[name] = "row"
        p.label_fields.append(LabelField(name, "binary"))


def implicit_label(p: Preparation) -> None:
    """With negative sampling: the binary label of the implicit feedback (an "interaction" label, 1
    on every observed row, when the data has no binary label). Then at least one label is needed."""
    config, src_name = p.config, p.src_name
    p.neg_on = float(config.negative_ratio) > 0
    p.neg_label = neg_label = config.negative_label
    if p.neg_on:
        if not (p.spec.user_id and p.spec.item_id):
            raise DataError("negative sampling needs a user id and an item id column", file=src_name,
                            fix="set the user id and item id roles, or set negative_ratio to 0")
        has_binary = any(f.task_type == "binary" for f in p.label_fields)
        if not neg_label and not has_binary:
            p.neg_label = neg_label = "interaction"
        if neg_label and neg_label not in p.label_rows:
            p.label_rows[neg_label] = np.ones(p.n, np.float64)
            p.label_owner[neg_label] = "row"
            p.label_fields.append(LabelField(neg_label, "binary"))
        elif neg_label and next(f for f in p.label_fields if f.name == neg_label).task_type != "binary":
            raise DataError(f"negative_label '{neg_label}' is not a binary label", column=neg_label,
                            file=src_name, fix="name a binary label, or leave negative_label empty")
    if not p.label_fields:
        raise DataError("no label: at least one column must be a label (binary, regression or multi-label)",
                        file=src_name, fix="give a column a label role, add a derived label, or turn on "
                        "negative sampling for implicit feedback")


def drop_missing_labels(p: Preparation) -> None:
    """Rows with a missing label value (or timestamp) are dropped, counted per label and listed by
    row_id; ``rows_idx``: the input rows still in play."""
    keep = np.ones(p.n, bool)
    dropped_label: dict[str, int] = {}
    dropped_rows = p.report["dropped_rows"]
    for name, vals in p.label_rows.items():
        if vals is None:
            miss = p.ml_table_missing[name]
        elif vals.dtype == object:
            miss = enc.multilabel_missing(vals)
        else:
            miss = np.isnan(vals)
        k = int((miss & keep).sum())
        if k:
            dropped_label[name] = k
        keep &= ~miss
    if not keep.all():
        dropped_rows["missing_label"] = row_list(p.row_id[~keep])
    if p.ts is not None:
        miss_ts = np.isnan(p.ts)
        if miss_ts.any():
            dropped_label["(timestamp)"] = int((miss_ts & keep).sum())
            if (miss_ts & keep).any():
                dropped_rows["missing_timestamp"] = row_list(p.row_id[miss_ts & keep])
            keep &= ~miss_ts
    p.report["dropped_missing_label"] = dropped_label
    p.rows_idx = np.flatnonzero(keep)
    if len(p.rows_idx) == 0:
        raise DataError("every row has a missing label value", file=p.src_name,
                        fix="fill in the labels, or choose other label columns")


def _pair_keys(p: Preparation, dup_info: dict) -> np.ndarray:
    """One int64 key per row in play for its (user, item) pair -- with a predefined split, per
    (pair, split): duplicates are looked for within each split (pairs in several splits: a warning)."""
    rows_idx = p.rows_idx
    key = p.uidx[rows_idx] * max(p.n_items, 1) + p.iidx[rows_idx]
    if p.given_split is not None:
        key = key * 3 + p.given_split[rows_idx]
        in_splits = np.unique(np.unique(key) // 3, return_counts=True)[1]
        dup_info["pairs_in_several_splits"] = across = int((in_splits > 1).sum())
        if across:
            w = DataWarning(f"{across} (user, item) pair{'s occur' if across > 1 else ' occurs'} in more than one split (e.g. in train and "
                            "in test): the model sees their answers in training", file=p.src_name,
                            fix="remove those rows from all splits but one")
            p.report["prep_warnings"].append(str(w))
    return key


def _mean_labels(p: Preparation, order, pick, first_of_group) -> dict:
    """duplicates "mean": per label of the rows (numeric), one value per pair -- regression labels
    averaged, binary ones 1 if any row of the pair is 1. -> name -> (positions in rows_idx, values)."""
    agg_labels = {}
    gid = np.cumsum(first_of_group) - 1
    cnt = np.bincount(gid)
    for name, vals in p.label_rows.items():
        task = next(f.task_type for f in p.label_fields if f.name == name)
        if vals is None or vals.dtype == object or p.label_owner[name] != "row":
            continue
        v = vals[p.rows_idx][order]
        if task == "regression":
            agg = np.bincount(gid, weights=v) / cnt
        else:  # binary: 1 if any row of the pair is 1
            agg = (np.bincount(gid, weights=v) > 0).astype(np.float64)
        agg_labels[name] = (order[pick], agg)
    return agg_labels


def drop_duplicates(p: Preparation) -> None:
    """Repeated (user, item) pairs: one row kept per pair, the "last" (by timestamp, else file
    order), the "first", or the "mean" (the last row with the pair's aggregated labels)."""
    config = p.config
    dup_info = {"policy": config.duplicates, "rows_removed": 0, "pairs": 0}
    rows_idx = p.rows_idx
    if p.spec.user_id and p.spec.item_id and len(rows_idx):
        key = _pair_keys(p, dup_info)
        if p.ts is not None:      # by pair, then time, then file order (two stable sorts)
            by_time = np.argsort(p.ts[rows_idx], kind="stable")
            order = by_time[np.argsort(key[by_time], kind="stable")]
        else:
            order = np.argsort(key, kind="stable")
        k_sorted = key[order]
        first_of_group = np.ones(len(order), bool)
        first_of_group[1:] = k_sorted[1:] != k_sorted[:-1]
        if not first_of_group.all():
            last_of_group = np.ones(len(order), bool)
            last_of_group[:-1] = k_sorted[1:] != k_sorted[:-1]
            pick = last_of_group if config.duplicates in ("last", "mean") else first_of_group
            sizes = np.diff(np.flatnonzero(first_of_group), append=len(order))
            dup_info["pairs"] = int((sizes > 1).sum())
            agg_labels = _mean_labels(p, order, pick, first_of_group) if config.duplicates == "mean" else {}
            # rows_idx is sorted and unique: a mask keeps both parts in row order (np.setdiff1d
            # re-sorted and hashed both arrays: over half of "clean" at 2M rows)
            removed = np.ones(len(rows_idx), bool)
            removed[order[pick]] = False
            new_rows = rows_idx[~removed]
            dup_info["rows_removed"] = int(len(rows_idx) - len(new_rows))
            p.report["dropped_rows"]["duplicate"] = row_list(p.row_id[rows_idx[removed]])
            for name, (pos, agg) in agg_labels.items():
                vals = p.label_rows[name].copy()
                vals[rows_idx[pos]] = agg
                p.label_rows[name] = vals
            p.rows_idx = new_rows
        # the sort keys and orders (an int64 array per row each) are freed when this step returns
        # rather than when prepare does (peak memory on large data)
    p.report["duplicates"] = dup_info


def keep_label_rows(p: Preparation) -> None:
    """Numeric labels from here on: those of the rows still in play, in the float32 they are stored
    in (the float64 values of every input row are not needed any more: peak memory on large data)."""
    for name, vals in p.label_rows.items():
        if vals is not None and vals.dtype != object:
            p.label_rows[name] = vals[p.rows_idx].astype(np.float32)


def release_read_columns(p: Preparation) -> None:
    """Ids, timestamps, the split column and the labels are arrays now: of the interactions only
    the feature and text columns are still read (``release_input``)."""
    spec = p.spec
    still_read = set(spec.categorical) | set(spec.numeric) | set(spec.text) | set(spec.multivalued)
    p.release([c for c in p.inter.columns if c not in still_read])
