"""Encoding, the step after the split: every statistic (numeric transforms, fill values, mean/std,
category and id vocabularies, multi-label classes) fitted on the training rows only, and all rows
encoded with it (unseen -> 0) by :mod:`mtlrec.prep.encoders`. Reads and sets fields of a
:class:`~mtlrec.prep.state.Preparation`.
"""
from __future__ import annotations

import numpy as np

from mtlrec.dataset import FeatureField
from mtlrec.errors import DataError
from mtlrec.prep import encoders as enc
from mtlrec.prep.state import Preparation
from mtlrec.prep.transforms import NumericTransforms


def _id_codes(train_mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes 1.. for the users (items) of the training rows, 0 for the others; -> (codes, vocab size)."""
    codes = np.zeros(len(train_mask), np.int64)
    codes[train_mask] = np.arange(1, int(train_mask.sum()) + 1)
    return codes, int(train_mask.sum()) + 1


def encode_features(p: Preparation) -> None:
    """The id fields, the categorical and numeric features (context ones per kept row, user / item
    ones per table position), then the multi-valued ones; the numeric transforms reported."""
    spec = p.spec
    numeric_tf = NumericTransforms(p.config.numeric_transforms, spec, split=p.split, row_users=p.r_u,
                                   row_items=p.r_i, row_ids=p.row_id, kept=p.rows_idx, tables=p.tables,
                                   file=p.src_name)
    if p.n_users:
        p.user_table["user_id"], vs = _id_codes(p.train_users)
        p.fields.append(FeatureField("user_id", "categorical", "user", "user id", vocab_size=vs))
    if p.n_items:
        p.item_table["item_id"], vs = _id_codes(p.train_items)
        p.fields.append(FeatureField("item_id", "categorical", "item", "item id", vocab_size=vs))
    id_cols = {spec.user_id, spec.item_id, spec.timestamp} - {None}
    feature_cols = [(c, o, "categorical") for c, o in spec.categorical.items()] + \
                   [(c, o, "numeric") for c, o in spec.numeric.items()]
    read_out: list[str] = []                      # interaction columns read for the last time
    for col, owner, kind in feature_cols:
        if col in id_cols or col in spec.labels:
            continue
        if _encode_feature(p, col, owner, kind, numeric_tf):
            read_out.append(col)
    p.release(read_out)            # in one step (release_input)
    for col, owner in spec.multivalued.items():
        if col in id_cols or col in spec.labels or col in p.stats:
            continue
        _encode_multivalued(p, col, owner)
    numeric_tf.write_report(p.report)


def _encode_feature(p: Preparation, col: str, owner: str, kind: str, numeric_tf: NumericTransforms) -> bool:
    """One categorical or numeric feature, fitted on the training rows (users, items), into its
    table; True when it is an interactions column read for the last time (``release_input``)."""
    config, tables = p.config, p.tables
    owner = tables.owner(col, owner)
    last_read = False
    if owner == "context":
        values = tables.row_values(col).iloc[p.rows_idx].reset_index(drop=True)
        fit_vals = values[p.train]
        last_read = tables.location(col) == "interactions" and col not in p.spec.text
    else:
        values = tables.table_values(col, owner)
        fit_vals = values[p.train_users if owner == "user" else p.train_items]
    if kind == "categorical":
        st = enc.fit_categorical(fit_vals, config.missing_categorical)
        arr, n_miss, n_unseen = enc.encode_categorical(values, st)
        p.fields.append(FeatureField(col, "categorical", owner, vocab_size=len(st["vocab"]) + 1))
        p.stats[col] = {"kind": "categorical", "vocab_size": len(st["vocab"]) + 1, "fill": st["fill"],
                        "top": st["vocab"][:10]}
        p.vocabularies[col] = list(st["vocab"])        # code k is vocab[k - 1] (explanations decode it)
        if n_unseen:
            p.unseen[col] = n_unseen
    else:
        values, fit_vals = enc.years_if_dates(values), enc.years_if_dates(fit_vals)   # a date: its year
        values, fit_vals = numeric_tf.apply(col, owner, values, fit_vals)   # clip / winsorise / log1p
        st = enc.fit_numeric(fit_vals, config.missing_numeric, config.standardize)
        arr, n_miss = enc.encode_numeric(values, st)
        p.fields.append(FeatureField(col, "numeric", owner))
        p.stats[col] = {"kind": "numeric", "fill": st["fill"], "mean": st["mean"], "std": st["std"],
                        **numeric_tf.fitted(col)}
    if n_miss:
        p.imputed[col] = n_miss
    if owner == "user":
        p.user_table[col] = arr
    elif owner == "item":
        p.item_table[col] = arr
    else:
        p.ctx[col] = arr
    return last_read


def _encode_multivalued(p: Preparation, col: str, owner: str) -> None:
    """A multi-valued feature of the users / items table as a multihot field (not used, with a note,
    without an id or without a class on enough training users / items)."""
    config = p.config
    owner = p.tables.owner(col, owner)
    if owner == "context":
        p.report["notes"].append(f"the multi-valued feature '{col}' needs a user or item id: it is not used")
        return
    f, arr, p.stats[col] = multihot_field(p.tables, col, owner, config, p.sep,
                                          p.train_users if owner == "user" else p.train_items)
    if not f.dim:
        p.report["notes"].append(f"the multi-valued feature '{col}' has no class on "
                                 f"{config.min_multivalued_items} training {owner}s or more: it is not used")
        return
    p.fields.append(f)
    p.vocabularies[col] = p.stats[col]["classes"]
    (p.user_table if owner == "user" else p.item_table)[col] = arr


def multihot_field(tables, col: str, owner: str, config, sep: str, in_train: np.ndarray):
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


def encode_labels(p: Preparation) -> None:
    """The labels per kept row (``lab_rows``) and, for labels of the users / items table, per table
    position (``lab_tables``: what sampled negatives take); multi-label classes fitted on the
    training rows. The raw labels of every input row are let go."""
    from mtlrec.data.validate import binary_values
    config, sep = p.config, p.sep
    for lf in p.label_fields:
        name = lf.name
        if lf.task_type == "multilabel" and p.label_owner[name] != "row":
            owner = p.label_owner[name]
            idx = (p.uidx if owner == "user" else p.iidx)[p.rows_idx]
            tv = np.asarray(p.label_table_raw[name], dtype=object)
            weights = np.bincount(idx[p.train], minlength=len(tv))      # training rows per user/item
            lf.classes = enc.fit_multilabel(tv, sep, config.max_multilabel_classes, weights=weights)
            p.lab_tables[name] = enc.encode_multilabel(tv, lf.classes, sep)
            p.lab_rows[name] = p.lab_tables[name][idx]
        elif lf.task_type == "multilabel":
            vals = p.label_rows[name][p.rows_idx]
            lf.classes = enc.fit_multilabel(vals[p.train], sep, config.max_multilabel_classes)
            p.lab_rows[name] = enc.encode_multilabel(vals, lf.classes, sep)
        else:
            p.lab_rows[name] = p.label_rows[name]       # the kept rows' float32 values (see "clean")
            p.label_rows[name] = None
            if p.label_owner[name] != "row":
                raw_t = p.label_table_raw[name]
                t_vals = binary_values(raw_t)[0] if lf.task_type == "binary" else enc.to_float(raw_t)
                p.lab_tables[name] = t_vals.astype(np.float32)
        if lf.task_type == "multilabel" and not lf.classes:
            raise DataError(f"the multi-label label '{name}' has no classes in the training rows",
                            file=p.src_name, column=name, fix="check the separator (multilabel_sep)")
    # every input row's raw labels (float64) are encoded by now
    p.label_rows = None
