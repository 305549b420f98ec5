"""``prepare(raw, spec, config)``: validated raw tables -> a model-ready PreparedDataset.

Steps (all vectorised; no Python loop over rows):

1. validate (``mtlrec.data.validate``), which may drop interactions of unknown items;
2. ids -> user / item table positions (the users/items tables first, then ids seen only in
   the interactions);
3. labels per row (columns of the users/items tables are joined through the ids), derived
   labels, rows with a missing label dropped (counted in the report);
4. duplicate (user, item) pairs: keep last / first, or aggregate;
5. split: random, per-user temporal, item cold-start, or predefined (a column of train / valid /
   test names, e.g. from one file per split; valid carved from train when it has no rows);
6. fit every statistic on the training rows only (numeric transforms: clip / winsorise / log1p,
   ``mtlrec.prep.transforms``; numeric fill values and mean/std, category / id vocabularies,
   multi-label classes) and encode all rows (unseen -> 0);
7. negative sampling (implicit feedback) per split, never a known positive of any split (valid and
   test fixed by the seed; training negatives drawn anew each epoch by the trainer);
8. text columns -> one text per item (user) -> ``text_encoder`` -> dense "item_text" field.

Every prepared row keeps its ``row_id``: its 0-based position in the interactions as read (for
several split files, in their concatenation train, valid, test; ``meta["row_sources"]`` says
which file each range of row_ids came from); sampled negatives have row_id -1. The report lists
the rows dropped by cleaning by row_id (``report["dropped_rows"]``).
"""
from __future__ import annotations

import inspect
import time
from typing import Callable

import numpy as np

from mtlrec.dataset import FeatureField, LabelField, PreparedDataset
from mtlrec.display import with_article
from mtlrec.errors import DataError, DataWarning
from mtlrec.prep import encoders as enc
from mtlrec.prep.config import PrepConfig
from mtlrec.prep.negatives import SEED_TAGS, PairSet, draw_split, item_cdf, rng_for, shortfall
from mtlrec.prep.splits import (NAMES, TEST, TRAIN, VALID, carve_valid, cold_item_split, random_split,
                                split_codes, temporal_split)
from mtlrec.prep.transforms import NumericTransforms

_OPS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less, "==": np.equal}
TIME_KEY = "event_time"   # rows[split][TIME_KEY]: the row's timestamp (seconds) when the data has one
SHOWN_ROW_IDS = 20      # row_ids listed per reason in the preparation report


def _row_list(row_ids: np.ndarray) -> dict:
    row_ids = np.sort(np.asarray(row_ids, dtype=np.int64))
    return {"count": int(len(row_ids)), "row_ids": row_ids[:SHOWN_ROW_IDS].tolist()}


def _split_column(raw, spec, config: PrepConfig, src_name: str) -> str | None:
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


def _without_columns(spec, cols: set):
    """``spec`` without ``cols`` as labels or features (a split column is neither)."""
    from mtlrec.data.roles import FEATURE_KINDS
    if not cols or not any(c in spec.labels or any(c in getattr(spec, k, {}) for k in FEATURE_KINDS)
                           for c in cols):
        return spec
    d = spec.to_dict()
    for kind in ("labels",) + FEATURE_KINDS:
        d[kind] = {c: v for c, v in d[kind].items() if c not in cols}
    return type(spec).from_dict(d)


class _Tables:
    """Raw values of any column, aligned with interaction rows or user/item table positions."""

    def __init__(self, raw, spec, uidx, iidx, u_src, i_src):
        self.raw, self.spec = raw, spec
        self.uidx, self.iidx = uidx, iidx          # per original interaction row (-1: none)
        self.u_src, self.i_src = u_src, i_src      # table position -> row of raw.users / raw.items
        self.n_users = len(u_src)
        self.n_items = len(i_src)

    def location(self, col: str) -> str | None:
        return self.raw.locate(col)

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


def _timestamps(series) -> np.ndarray:
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


def _owner(spec, col: str, owner: str, tables: _Tables) -> str:
    """Effective owner: the table a column lives in wins; no ids -> context."""
    loc = tables.location(col)
    if loc == "users":
        owner = "user"
    elif loc == "items":
        owner = "item"
    if owner == "user" and not spec.user_id:
        owner = "context"
    if owner == "item" and not spec.item_id:
        owner = "context"
    return owner


def label_types(spec, config=None) -> dict[str, str]:
    """The labels `prepare` gives (name -> task type), known before preparing: the spec's labels,
    the derived labels of ``config`` (binary) and, with negative sampling, the implicit-feedback
    label ("interaction" when the data has no binary label, else ``config.negative_label``). Pages use
    it to offer a task on a derived label before (or without) a prepared dataset."""
    config = config if config is not None else PrepConfig()
    out = {str(k): str(v) for k, v in spec.labels.items()}
    for d in config.derived_labels:
        out.setdefault(str(d["name"]), "binary")
    if float(config.negative_ratio) > 0:
        neg = config.negative_label or ("" if "binary" in out.values() else "interaction")
        if neg:
            out.setdefault(neg, "binary")
    return out


def prepare(raw, spec, config: PrepConfig | dict | None = None, *, text_encoder: Callable | None = None,
            progress: Callable[[str, float], None] | None = None, validation=None,
            release_input: bool = False) -> PreparedDataset:
    """Clean, split, encode and (optionally) add text features. Raises DataError for bad data.

    ``text_encoder``: callable ``list[str] -> float32 [n, d]`` (e.g. ``mtlrec.serve.text.TextEncoder``),
    called once with the distinct item (user) texts. ``progress(stage, fraction)``: optional.
    ``validation``: the ValidationReport of ``validate(raw, spec, missing_items=config.missing_items)``
    when the caller already has it (saves validating twice). ``release_input``: the caller will not
    use ``raw.interactions`` again (the command line): it is replaced by ever narrower frames as
    its columns are turned into arrays (ids, times and labels first, then the features, each
    group in one step), which lowers the peak memory on large data (the table is otherwise held
    for the whole preparation next to the arrays built from it)."""
    import pandas as pd
    from mtlrec.data.validate import binary_values, validate

    if config is None:
        config = PrepConfig()
    elif isinstance(config, dict):
        config = PrepConfig.from_dict(config)
    timing: dict[str, float] = {}
    t_stage = [time.perf_counter()]

    def stage(name: str, frac: float) -> None:
        now = time.perf_counter()
        timing[name] = round(now - t_stage[0], 4)
        t_stage[0] = now
        if progress is not None:
            progress(name, frac)

    if progress is not None:
        progress("validate", 0.0)
    n_input = len(raw.interactions)
    src_name = raw.source("interactions") if hasattr(raw, "source") else "interactions"
    raw_meta = getattr(raw, "meta", None) or {}
    split_col = _split_column(raw, spec, config, src_name)
    not_features = {c for c in (split_col, raw_meta.get("split_column")) if c}
    spec_in = spec
    spec = _without_columns(spec, not_features)
    vreport = validation if validation is not None else validate(raw, spec, missing_items=config.missing_items)
    raw_in = raw
    raw = vreport.raw if getattr(vreport, "raw", None) is not None else raw
    inter = raw.interactions.reset_index(drop=True)

    def release(cols) -> None:
        """Drop interaction columns that are no longer needed (``release_input`` only), all of them in
        one step per table: a ``del`` per column rebuilds the frame's block list each time
        (quadratic in the number of columns: 1,200 columns took minutes). ``drop`` slices, never copies."""
        nonlocal inter
        if not release_input:
            return
        for holder in {id(h): h for h in (raw, raw_in)}.values():
            gone = [c for c in cols if c in holder.interactions.columns]
            if gone:
                holder.interactions = holder.interactions.drop(columns=gone)
        inter = inter.drop(columns=[c for c in cols if c in inter.columns])

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
            dropped_rows[reason] = _row_list(pos)
    report["dropped_rows"] = dropped_rows
    for c in sorted(not_features):
        if spec_in is not spec and c in spec_in.columns():
            report["notes"].append(f"the split column '{c}' is not used as a feature or label")
    stage("validate", 0.1)

    # ---- ids ------------------------------------------------------------------------------
    n = len(inter)
    if spec.user_id:
        uidx, user_ids, u_src = enc.build_index(inter[spec.user_id], raw.users, spec.user_id)
    else:
        uidx, user_ids, u_src = np.full(n, -1, np.int64), np.zeros(0, str), np.zeros(0, np.int64)
    if spec.item_id:
        iidx, item_ids, i_src = enc.build_index(inter[spec.item_id], raw.items, spec.item_id)
    else:
        iidx, item_ids, i_src = np.full(n, -1, np.int64), np.zeros(0, str), np.zeros(0, np.int64)
    tables = _Tables(raw, spec, uidx, iidx, u_src, i_src)
    n_users, n_items = len(user_ids), len(item_ids)
    ts = _timestamps(inter[spec.timestamp]) if spec.timestamp else None
    given_split = None
    if split_col is not None:   # a predefined split: bad values are an error before anything else
        given_split = split_codes(inter[split_col], file=src_name, column=split_col, row_ids=row_id)

    # ---- labels (raw values per row) ---------------------------------------------------------
    sep = spec.multilabel_sep or "|"
    label_fields: list[LabelField] = []
    label_rows: dict[str, np.ndarray] = {}          # name -> float values per row (multilabel: strings)
    label_owner: dict[str, str] = {}                # "row" | "user" | "item"
    label_table_raw: dict[str, object] = {}          # user/item-owned: raw values per table position
    ml_table_missing: dict[str, np.ndarray] = {}      # table-owned multi-label: missing per row
    for col, task in spec.labels.items():
        loc = tables.location(col)
        owner = "row"
        if loc == "items" and spec.item_id:
            owner = "item"
        elif loc == "users" and spec.user_id:
            owner = "user"
        label_owner[col] = owner
        label_fields.append(LabelField(col, task))
        if owner != "row":
            # described per user/item: work on the (small) table, gather numbers to rows
            tv = tables.table_values(col, owner)
            label_table_raw[col] = tv
            idx = uidx if owner == "user" else iidx
            if task == "multilabel":
                miss_t = enc.multilabel_missing(tv)
                ml_table_missing[col] = np.where(idx >= 0, miss_t[np.maximum(idx, 0)], True)
                label_rows[col] = None
            else:
                t_vals = binary_values(tv)[0] if task == "binary" else enc.to_float(tv)
                label_rows[col] = np.where(idx >= 0, t_vals[np.maximum(idx, 0)], np.nan)
            continue
        values = tables.row_values(col)
        if task == "binary":
            label_rows[col] = binary_values(values)[0]
        elif task == "regression":
            label_rows[col] = enc.to_float(values)
        else:
            label_rows[col] = values.to_numpy(dtype=object)
    for d in config.derived_labels:
        name, source = str(d["name"]), str(d["source"])
        if name in label_rows or (tables.location(name) is not None and name != source):
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
        label_rows[name] = lab
        label_owner[name] = "row"
        label_fields.append(LabelField(name, "binary"))
    # ids, timestamps, the split column and the labels are arrays now: of the interactions only
    # the feature and text columns are still read (release_input)
    still_read = set(spec.categorical) | set(spec.numeric) | set(spec.text) | set(spec.multivalued)
    release([c for c in inter.columns if c not in still_read])
    neg_on = float(config.negative_ratio) > 0
    neg_label = config.negative_label
    if neg_on:
        if not (spec.user_id and spec.item_id):
            raise DataError("negative sampling needs a user id and an item id column", file=src_name,
                            fix="set the user id and item id roles, or set negative_ratio to 0")
        has_binary = any(f.task_type == "binary" for f in label_fields)
        if not neg_label and not has_binary:
            neg_label = "interaction"
        if neg_label and neg_label not in label_rows:
            label_rows[neg_label] = np.ones(n, np.float64)
            label_owner[neg_label] = "row"
            label_fields.append(LabelField(neg_label, "binary"))
        elif neg_label and next(f for f in label_fields if f.name == neg_label).task_type != "binary":
            raise DataError(f"negative_label '{neg_label}' is not a binary label", column=neg_label,
                            file=src_name, fix="name a binary label, or leave negative_label empty")
    if not label_fields:
        raise DataError("no label: at least one column must be a label (binary, regression or multi-label)",
                        file=src_name, fix="give a column a label role, add a derived label, or turn on "
                        "negative sampling for implicit feedback")

    # rows with a missing label are dropped
    keep = np.ones(n, bool)
    dropped_label: dict[str, int] = {}
    for name, vals in label_rows.items():
        if vals is None:
            miss = ml_table_missing[name]
        elif vals.dtype == object:
            miss = enc.multilabel_missing(vals)
        else:
            miss = np.isnan(vals)
        k = int((miss & keep).sum())
        if k:
            dropped_label[name] = k
        keep &= ~miss
    if not keep.all():
        dropped_rows["missing_label"] = _row_list(row_id[~keep])
    if ts is not None:
        miss_ts = np.isnan(ts)
        if miss_ts.any():
            dropped_label["(timestamp)"] = int((miss_ts & keep).sum())
            if (miss_ts & keep).any():
                dropped_rows["missing_timestamp"] = _row_list(row_id[miss_ts & keep])
            keep &= ~miss_ts
    report["dropped_missing_label"] = dropped_label
    rows_idx = np.flatnonzero(keep)                 # original interaction rows still in play
    if len(rows_idx) == 0:
        raise DataError("every row has a missing label value", file=src_name,
                        fix="fill in the labels, or choose other label columns")

    # ---- duplicates -------------------------------------------------------------------------
    dup_info = {"policy": config.duplicates, "rows_removed": 0, "pairs": 0}
    agg_labels: dict[str, np.ndarray] = {}
    if spec.user_id and spec.item_id and len(rows_idx):
        key = uidx[rows_idx] * max(n_items, 1) + iidx[rows_idx]
        if given_split is not None:     # a predefined split: duplicates within each split only
            key = key * 3 + given_split[rows_idx]
            in_splits = np.unique(np.unique(key) // 3, return_counts=True)[1]
            dup_info["pairs_in_several_splits"] = across = int((in_splits > 1).sum())
            if across:
                w = DataWarning(f"{across} (user, item) pair{'s occur' if across > 1 else ' occurs'} in more than one split (e.g. in train and "
                                "in test): the model sees their answers in training", file=src_name,
                                fix="remove those rows from all splits but one")
                report["prep_warnings"].append(str(w))
        if ts is not None:      # by pair, then time, then file order (two stable sorts)
            by_time = np.argsort(ts[rows_idx], kind="stable")
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
            if config.duplicates == "mean":
                gid = np.cumsum(first_of_group) - 1
                cnt = np.bincount(gid)
                for name, vals in label_rows.items():
                    task = next(f.task_type for f in label_fields if f.name == name)
                    if vals is None or vals.dtype == object or label_owner[name] != "row":
                        continue
                    v = vals[rows_idx][order]
                    if task == "regression":
                        agg = np.bincount(gid, weights=v) / cnt
                    else:  # binary: 1 if any row of the pair is 1
                        agg = (np.bincount(gid, weights=v) > 0).astype(np.float64)
                    agg_labels[name] = (order[pick], agg)
            # rows_idx is sorted and unique: a mask keeps both parts in row order (np.setdiff1d
            # re-sorted and hashed both arrays: over half of "clean" at 2M rows)
            removed = np.ones(len(rows_idx), bool)
            removed[order[pick]] = False
            new_rows = rows_idx[~removed]
            dup_info["rows_removed"] = int(len(rows_idx) - len(new_rows))
            dropped_rows["duplicate"] = _row_list(row_id[rows_idx[removed]])
            if agg_labels:
                for name, (pos, agg) in agg_labels.items():
                    vals = label_rows[name].copy()
                    vals[rows_idx[pos]] = agg
                    label_rows[name] = vals
            rows_idx = new_rows
        # the sort keys and orders (an int64 array per row each) are not needed any more: free them
        # now rather than when prepare returns (peak memory on large data)
        key = order = k_sorted = first_of_group = by_time = None
    report["duplicates"] = dup_info
    # numeric labels from here on: those of the rows still in play, in the float32 they are stored
    # in (the float64 values of every input row are not needed any more: peak memory on large data)
    for name, vals in label_rows.items():
        if vals is not None and vals.dtype != object:
            label_rows[name] = vals[rows_idx].astype(np.float32)
    stage("clean", 0.25)

    # ---- split -----------------------------------------------------------------------------
    rng = np.random.default_rng(config.seed)
    r_u = uidx[rows_idx]
    r_i = iidx[rows_idx]
    cold_valid = cold_test = np.zeros(0, np.int64)
    if config.split == "random":
        split = random_split(len(rows_idx), config.valid_frac, config.test_frac, rng)
    elif config.split == "temporal":
        if ts is None:
            raise DataError("the temporal split needs a timestamp column", file=src_name,
                            fix="set the timestamp role of a column, or use the random split")
        split = temporal_split(r_u, ts[rows_idx], config.min_user_rows, config.valid_frac, config.test_frac)
    elif config.split == "column":
        split = given_split[rows_idx].copy()
        given = {NAMES[k]: int((split == k).sum()) for k in (TRAIN, VALID, TEST)}
        files = raw_meta.get("split_files")
        for k in (TRAIN, TEST):
            if given[NAMES[k]] == 0:
                raise DataError(f"the split column has no {NAMES[k]} rows" + (" left after cleaning" if
                                (given_split == k).any() else "") + f" (rows per split: "
                                + ", ".join(f"{n} {c}" for n, c in given.items()) + ")", file=src_name,
                                column=split_col, fix=f"mark some rows as {NAMES[k]}" + (
                                    f", or give a {NAMES[k]} file" if files else ""))
        carved = 0
        if given["valid"] == 0:
            carved = carve_valid(split, config.valid_frac, rng)
            report["notes"].append(f"the predefined split has no valid rows: {carved} of the {given['train']} train "
                                   f"rows (valid_frac {config.valid_frac:g}, seed {config.seed}) became valid")
        report["predefined_split"] = {"column": split_col, "rows": given, "valid_carved": carved,
                                      "files": files}
    else:
        if not spec.item_id:
            raise DataError("the item cold-start split needs an item id column", file=src_name,
                            fix="set the item id role of a column, or use the random split")
        split, cold_valid, cold_test = cold_item_split(r_i, config.cold_item_frac, config.valid_frac,
                                                       config.test_frac, rng, file=src_name)
    counts = {NAMES[k]: int((split == k).sum()) for k in (TRAIN, VALID, TEST)}
    if counts["train"] == 0:
        raise DataError("no rows are left for training after the split", file=src_name,
                        fix="lower valid_frac/test_frac or use more data")
    for k, frac in ((VALID, config.valid_frac), (TEST, config.test_frac)):
        if frac > 0 and counts[NAMES[k]] == 0 and config.split not in ("temporal", "column"):
            raise DataError(f"the {NAMES[k]} split is empty: too few rows to split", file=src_name,
                            fix="add rows or raise the split shares")
    cold_items = np.union1d(cold_valid, cold_test).astype(np.int64)
    train = split == TRAIN
    train_users = np.zeros(n_users, bool)
    train_items = np.zeros(n_items, bool)
    if n_users:
        train_users[r_u[train]] = True
    if n_items:
        train_items[r_i[train]] = True
    if len(cold_items) and train_items[cold_items].any():   # guarded by construction
        raise AssertionError("a held-out item reached the training rows")
    report["unseen_in_train"] = _unseen(split, r_u, r_i, train_users, train_items, row_id[rows_idx])
    if config.split == "column":
        for sname, info in report["unseen_in_train"].items():
            for who, col in (("user", spec.user_id), ("item", spec.item_id)):
                k = info.get(f"{who}_rows", 0)
                if k:
                    n_split = info["rows"]
                    share = (f"every {sname} row ({k}) has" if k == n_split else
                             f"{k} of the {n_split} {sname} rows ({k / n_split:.1%}) {'have' if k > 1 else 'has'}")
                    w = DataWarning(f"{share} {with_article(who)} that is not in the training rows "
                                    f"(first row_ids: {', '.join(map(str, info[f'{who}_row_ids'][:10]))}): the model "
                                    f"knows such {who}s only by their features, not by their id",
                                    file=src_name, column=col,
                                    fix=f"expected for {with_article(who)} cold-start split; otherwise give those {who}s "
                                        "some training rows")
                    report["prep_warnings"].append(str(w))
    stage("split", 0.35)

    # ---- encode features (statistics from training rows only) --------------------------------
    fields: list[FeatureField] = []
    user_table: dict[str, np.ndarray] = {}
    item_table: dict[str, np.ndarray] = {}
    ctx: dict[str, np.ndarray] = {}                  # context features per kept row
    stats: dict[str, dict] = {}
    vocabularies: dict[str, list[str]] = {}        # categorical feature -> its categories, code order
    imputed: dict[str, int] = {}
    unseen: dict[str, int] = {}
    numeric_tf = NumericTransforms(config.numeric_transforms, spec, split=split, row_users=r_u, row_items=r_i,
                                   row_ids=row_id, kept=rows_idx, tables=tables, file=src_name)

    def id_codes(train_mask: np.ndarray) -> tuple[np.ndarray, int]:
        codes = np.zeros(len(train_mask), np.int64)
        codes[train_mask] = np.arange(1, int(train_mask.sum()) + 1)
        return codes, int(train_mask.sum()) + 1

    if n_users:
        user_table["user_id"], vs = id_codes(train_users)
        fields.append(FeatureField("user_id", "categorical", "user", "user id", vocab_size=vs))
    if n_items:
        item_table["item_id"], vs = id_codes(train_items)
        fields.append(FeatureField("item_id", "categorical", "item", "item id", vocab_size=vs))

    id_cols = {spec.user_id, spec.item_id, spec.timestamp} - {None}
    feature_cols = [(c, o, "categorical") for c, o in spec.categorical.items()] + \
                   [(c, o, "numeric") for c, o in spec.numeric.items()]
    read_out: list[str] = []                      # interaction columns read for the last time
    for col, owner, kind in feature_cols:
        if col in id_cols or col in spec.labels:
            continue
        owner = _owner(spec, col, owner, tables)
        if owner == "context":
            values = tables.row_values(col).iloc[rows_idx].reset_index(drop=True)
            fit_vals = values[train]
            if tables.location(col) == "interactions" and col not in spec.text:
                read_out.append(col)      # read for the last time: released after this loop (release_input)
        else:
            values = tables.table_values(col, owner)
            fit_vals = values[train_users if owner == "user" else train_items]
        if kind == "categorical":
            st = enc.fit_categorical(fit_vals, config.missing_categorical)
            codes, n_miss, n_unseen = enc.encode_categorical(values, st)
            arr = codes
            fields.append(FeatureField(col, "categorical", owner, vocab_size=len(st["vocab"]) + 1))
            stats[col] = {"kind": "categorical", "vocab_size": len(st["vocab"]) + 1, "fill": st["fill"],
                          "top": st["vocab"][:10]}
            vocabularies[col] = list(st["vocab"])        # code k is vocab[k - 1] (explanations decode it)
            if n_unseen:
                unseen[col] = n_unseen
        else:
            values, fit_vals = enc.years_if_dates(values), enc.years_if_dates(fit_vals)   # a date: its year
            values, fit_vals = numeric_tf.apply(col, owner, values, fit_vals)   # clip / winsorise / log1p
            st = enc.fit_numeric(fit_vals, config.missing_numeric, config.standardize)
            arr, n_miss = enc.encode_numeric(values, st)
            fields.append(FeatureField(col, "numeric", owner))
            stats[col] = {"kind": "numeric", "fill": st["fill"], "mean": st["mean"], "std": st["std"],
                          **numeric_tf.fitted(col)}
        if n_miss:
            imputed[col] = n_miss
        if owner == "user":
            user_table[col] = arr
        elif owner == "item":
            item_table[col] = arr
        else:
            ctx[col] = arr
    release(read_out)            # in one step (release_input)
    for col, owner in spec.multivalued.items():
        if col in id_cols or col in spec.labels or col in stats:
            continue
        owner = _owner(spec, col, owner, tables)
        if owner == "context":
            report["notes"].append(f"the multi-valued feature '{col}' needs a user or item id: it is not used")
            continue
        f, arr, stats[col] = _multihot_field(tables, col, owner, config, sep,
                                             train_users if owner == "user" else train_items)
        if not f.dim:
            report["notes"].append(f"the multi-valued feature '{col}' has no class on "
                                   f"{config.min_multivalued_items} training {owner}s or more: it is not used")
            continue
        fields.append(f)
        vocabularies[col] = stats[col]["classes"]
        (user_table if owner == "user" else item_table)[col] = arr

    numeric_tf.write_report(report)
    # labels encoded (multilabel classes fitted on training rows)
    lab_rows: dict[str, np.ndarray] = {}
    lab_tables: dict[str, np.ndarray] = {}          # user/item-owned labels per table position
    for lf in label_fields:
        name = lf.name
        if lf.task_type == "multilabel" and label_owner[name] != "row":
            owner = label_owner[name]
            idx = (uidx if owner == "user" else iidx)[rows_idx]
            tv = np.asarray(label_table_raw[name], dtype=object)
            weights = np.bincount(idx[train], minlength=len(tv))      # training rows per user/item
            lf.classes = enc.fit_multilabel(tv, sep, config.max_multilabel_classes, weights=weights)
            lab_tables[name] = enc.encode_multilabel(tv, lf.classes, sep)
            lab_rows[name] = lab_tables[name][idx]
        elif lf.task_type == "multilabel":
            vals = label_rows[name][rows_idx]
            lf.classes = enc.fit_multilabel(vals[train], sep, config.max_multilabel_classes)
            lab_rows[name] = enc.encode_multilabel(vals, lf.classes, sep)
        else:
            lab_rows[name] = label_rows[name]       # the kept rows' float32 values (see "clean")
            label_rows[name] = None
            if label_owner[name] != "row":
                raw_t = label_table_raw[name]
                t_vals = binary_values(raw_t)[0] if lf.task_type == "binary" else enc.to_float(raw_t)
                lab_tables[name] = t_vals.astype(np.float32)
        if lf.task_type == "multilabel" and not lf.classes:
            raise DataError(f"the multi-label label '{name}' has no classes in the training rows",
                            file=src_name, column=name, fix="check the separator (multilabel_sep)")
    # every input row's raw labels (float64) and the last feature's values are encoded by now
    label_rows = values = fit_vals = None
    stage("encode", 0.55)

    # ---- assemble rows per split (+ negatives) ------------------------------------------------
    rows: dict[str, dict[str, np.ndarray]] = {}
    neg_report = {"ratio": float(config.negative_ratio), "label": neg_label or None, "sampled": {}, "unfilled": 0,
                  "method": config.negative_sampling}
    if neg_on:
        known = PairSet(int(len(r_u) * (1 + float(config.negative_ratio))))
        known.add(r_u * n_items + r_i)
        warm_cand = np.setdiff1d(np.arange(n_items), cold_items)
        reg_fill = {lf.name: float(np.nanmin(lab_rows[lf.name][train])) for lf in label_fields
                    if lf.task_type == "regression"}
        neg_report["regression_fill"] = reg_fill
    # label statistics of the observed training rows (e.g. to scale a regression target)
    label_summary = {lf.name: _label_summary(lf, lab_rows[lf.name][train]) for lf in label_fields}
    sels = [(k, sname, np.flatnonzero(split == k)) for k, sname in ((TRAIN, "train"), (VALID, "valid"), (TEST, "test"))]
    rows = {sname: {} for _, sname, _ in sels}

    def spread(key: str, take) -> None:
        for _, sname, sel in sels:
            rows[sname][key] = take(sel)

    # column by column: each per-row array is freed as soon as it is copied into the splits (on
    # large data, all of them and all their split copies at once were the peak of prepare)
    spread("user_index", lambda sel: r_u[sel].astype(np.int64))
    r_u = None
    spread("item_index", lambda sel: r_i[sel].astype(np.int64))
    r_i = None
    spread("row_id", lambda sel: row_id[rows_idx[sel]].astype(np.int64))
    if ts is not None and TIME_KEY not in ctx:     # the time order of the rows (time-respecting CV)
        spread(TIME_KEY, lambda sel: ts[rows_idx[sel]].astype(np.float64))
    ts = None
    for c in list(ctx):
        arr = ctx[c]
        spread(c, lambda sel: arr[sel])
        ctx[c] = arr = None
    for lf in label_fields:
        arr = lab_rows[lf.name]
        spread("label:" + lf.name, lambda sel: arr[sel])
        lab_rows[lf.name] = arr = None
    if neg_on:
        spread("sampled", lambda sel: np.zeros(len(sel), bool))
        neg_tables = {name: (label_owner[name], tab) for name, tab in lab_tables.items()}
        neg_report.update(_add_negatives(rows, config, known, n_items=n_items, warm_cand=warm_cand,
                                         cold={"valid": cold_valid, "test": cold_test},
                                         label_fields=label_fields, tables=neg_tables, reg_fill=reg_fill))
        for name, (owner, tab) in neg_tables.items():      # what the trainer's per-epoch draws need
            (item_table if owner == "item" else user_table)["label:" + name] = tab
    report["negatives"] = neg_report
    stage("rows_and_negatives", 0.7)

    # ---- text features -------------------------------------------------------------------
    text_report = {}
    if text_encoder is not None:
        for owner, ids_len in (("item", n_items), ("user", n_users)):
            cols = [c for c, o in spec.text.items() if _owner(spec, c, o, tables) == owner
                    and c not in spec.labels]
            if not cols or not ids_len:
                continue
            texts = _table_texts(tables, cols, owner, sep)
            vec, info = _encode_texts(texts, text_encoder, lambda f: progress and progress("text", 0.7 + 0.25 * f))
            name = f"{owner}_text"
            (item_table if owner == "item" else user_table)[name] = vec
            fields.append(FeatureField(name, "dense", owner, f"{owner} text", dim=int(vec.shape[1])))
            text_report[name] = {"columns": cols, **info,
                                 "model": getattr(text_encoder, "model_name", type(text_encoder).__name__)}
    report["text"] = text_report
    stage("text", 0.95)

    # ---- meta and display tables ----------------------------------------------------------------
    context_defaults = {}
    for f in fields:
        if f.owner != "context":
            continue
        tr = rows["train"][f.name]
        if f.kind == "categorical":
            context_defaults[f.name] = int(np.bincount(tr).argmax()) if len(tr) else 0
        else:
            context_defaults[f.name] = float(np.mean(tr)) if len(tr) else 0.0
    report["warnings"] += report["prep_warnings"]
    report.update({
        "rows": {s: int(len(rows[s]["user_index"])) for s in rows},
        "observed_rows": counts,
        "split": config.split,
        "users": int(n_users), "items": int(n_items),
        "train_users": int(train_users.sum()), "train_items": int(train_items.sum()),
        "cold_items": {"valid": int(len(cold_valid)), "test": int(len(cold_test))},
        "imputed": imputed, "unseen_codes": unseen, "stats": stats,
        "labels": label_summary,
        "timing_s": timing,
    })
    row_sources = raw_meta.get("split_files") or [{"file": src_name, "first_row_id": 0, "rows": int(n_input)}]
    meta = {"spec": spec.to_dict(), "prep": config.to_dict(), "report": report, "row_sources": row_sources,
            "cold_items": cold_items.tolist(), "cold_items_valid": cold_valid.tolist(),
            "cold_items_test": cold_test.tolist(), "context_defaults": context_defaults,
            "vocabularies": vocabularies}
    if neg_on:      # what `mtlrec.prep.negatives.epoch_sampler` needs to draw training negatives per epoch
        meta["negatives"] = {"per_epoch": True, "ratio": float(config.negative_ratio),
                             "method": config.negative_sampling, "seed": int(config.seed),
                             "regression_fill": reg_fill, "label_tables": {n: label_owner[n] for n in lab_tables}}
    item_info = _info_frame(raw.items, spec.item_id, item_ids, i_src) if n_items else None
    user_info = _info_frame(raw.users, spec.user_id, user_ids, u_src) if n_users else None
    # order fields: user id, user features, item id, item features, context
    rank = {"user": 0, "item": 1, "context": 2}
    fields.sort(key=lambda f: (rank[f.owner], f.name not in ("user_id", "item_id"), f.kind == "dense"))
    ds = PreparedDataset(fields, label_fields, rows, user_table, item_table, user_ids, item_ids, meta,
                         item_info, user_info)
    stage("done", 1.0)
    return ds


def _multihot_field(tables: _Tables, col: str, owner: str, config: PrepConfig, sep: str, in_train: np.ndarray):
    """A multi-valued column (e.g. genres "Action|Comedy") as a multihot feature of its user/item
    table: classes fitted on the users/items of the training rows (at least
    ``config.min_multivalued_items`` of them, the ``config.max_multivalued_classes`` most frequent),
    others dropped; a user/item without a known class gets zeros. -> (field, [n, K] float32, stats)."""
    values = np.asarray(tables.table_values(col, owner), dtype=object)
    classes = enc.fit_multilabel(values, sep, int(config.max_multivalued_classes),
                                 weights=in_train.astype(np.float64), min_count=int(config.min_multivalued_items))
    arr = enc.encode_multihot(values, classes, sep)
    field = FeatureField(col, "multihot", owner, group=col, dim=len(classes), vocab_size=len(classes))
    st = {"kind": "multihot", "classes": list(classes), "top": list(classes[:10]),
          f"{owner}s_without_class": int((arr.sum(axis=1) == 0).sum())}
    return field, arr, st


def _add_negatives(rows: dict, config: PrepConfig, known: PairSet, *, n_items: int, warm_cand, cold: dict,
                   label_fields, tables: dict, reg_fill: dict) -> dict:
    """Sampled negatives appended to every split (``config.negative_ratio`` per observed row, never a
    pair of ``known``): valid and test first, uniformly, each with its own seed from ``config.seed``
    (the same dataset and seed give the same evaluation negatives, whatever the training method);
    then one draw for train by ``config.negative_sampling`` -- what readers of the prepared train
    split see; the trainer draws its own every epoch. Returns the report's ``sampled``,
    ``unfilled`` and ``shortfall``."""
    ratio = float(config.negative_ratio)
    train_items = rows["train"]["item_index"]
    drawn, tallies = {}, []
    for sname in ("valid", "test", "train"):
        r = rows[sname]
        method = config.negative_sampling if sname == "train" else "uniform"
        neg, tally = draw_split(r, ratio, known, rng_for(config.seed, SEED_TAGS[sname]), candidates=warm_cand,
                                n_items=n_items, labels=label_fields, tables=tables, reg_fill=reg_fill,
                                cdf=item_cdf(method, train_items, warm_cand, n_items), cold=cold.get(sname))
        drawn[sname] = tally["drawn"]
        tallies.append(tally)
        for key in r:
            r[key] = np.concatenate([r[key], neg[key]])
    sf = shortfall(tallies)
    return {"sampled": {s: drawn[s] for s in NAMES}, "unfilled": sf["requested"] - sf["drawn"],
            "shortfall": sf}


def _unseen(split, r_u, r_i, train_users, train_items, row_ids) -> dict:
    """Per valid/test split: its rows, and those whose user (item) has no training row, by row_id."""
    out = {}
    for k in (VALID, TEST):
        sel = split == k
        info = {"rows": int(sel.sum())}
        for who, idx, known in (("user", r_u, train_users), ("item", r_i, train_items)):
            if not len(known):
                continue
            bad = sel & (idx >= 0) & ~known[np.maximum(idx, 0)]
            info[f"{who}_rows"] = int(bad.sum())
            info[f"{who}_row_ids"] = np.sort(row_ids[bad])[:SHOWN_ROW_IDS].tolist()
        out[NAMES[k]] = info
    return out


def _label_summary(lf: LabelField, y: np.ndarray) -> dict:
    if lf.task_type == "binary":
        return {"type": "binary", "positive_rate": float(y.mean()) if len(y) else 0.0}
    if lf.task_type == "regression":        # in float64: the float32 labels' squares may overflow float32
        y64 = np.asarray(y, dtype=np.float64)
        return {"type": "regression", "mean": float(y64.mean()) if len(y) else 0.0,
                "std": float(y64.std()) if len(y) else 0.0}
    return {"type": "multilabel", "classes": len(lf.classes)}


def _table_texts(tables: _Tables, cols: list[str], owner: str, sep: str) -> list[str]:
    """One text per user/item: its text columns joined as sentences ("Title. Description.");
    delimited lists such as genres are written as words ("Genres: Drama, Romance")."""
    import pandas as pd
    frame = pd.DataFrame({c: pd.Series(tables.table_values(c, owner)).reset_index(drop=True) for c in cols})
    try:   # the same text layout as mtlrec.serve.text (so its disk cache is shared)
        from mtlrec.serve.text import _multilabel_columns, texts_from_frame
        ml = _multilabel_columns(tables.spec, frame, cols)
        return texts_from_frame(frame, cols, multilabel=ml, sep=sep)
    except (ImportError, AttributeError):
        parts = [frame[c].astype(object).where(frame[c].notna(), "").astype(str).str.strip()
                 .str.replace(sep, ", ", regex=False).str.rstrip(". ") for c in cols]
        joined = parts[0]
        for p in parts[1:]:
            joined = joined.str.cat(p, sep=". ")
        return (joined.str.replace(r"^(\. )+|(\. )+$", "", regex=True)
                .str.replace(r"(\. ){2,}", ". ", regex=True) + ".").str.replace(r"^\.$", "", regex=True).tolist()


def _encode_texts(texts: list[str], encoder, progress) -> tuple[np.ndarray, dict]:
    """Encode each distinct non-empty text once; empty texts get a zero vector."""
    import pandas as pd
    codes, uniq = pd.factorize(pd.Series(texts), sort=False)
    uniq = [str(u) for u in uniq]
    nonempty = [k for k, u in enumerate(uniq) if u.strip()]
    t0 = time.perf_counter()
    vecs = None
    if nonempty:
        batch = [uniq[k] for k in nonempty]
        try:
            takes_progress = "progress" in inspect.signature(encoder).parameters
        except (TypeError, ValueError):
            takes_progress = False
        if takes_progress and progress:
            out = encoder(batch, progress=lambda done, total: progress(done / max(total, 1)))
        else:
            out = encoder(batch)
        vecs = np.asarray(out, dtype=np.float32)
        if vecs.ndim != 2 or len(vecs) != len(batch):
            raise ValueError(f"the text encoder returned shape {vecs.shape} for {len(batch)} texts")
    if progress:
        progress(1.0)
    dim = int(vecs.shape[1]) if vecs is not None else int(getattr(encoder, "dim", 1))
    table = np.zeros((len(uniq), dim), np.float32)
    if vecs is not None:
        table[nonempty] = vecs
    return table[codes], {"dim": dim, "texts": len(texts), "unique_texts": len(nonempty),
                          "seconds": round(time.perf_counter() - t0, 3)}


def _info_frame(df, id_col: str, ids: np.ndarray, src: np.ndarray):
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
