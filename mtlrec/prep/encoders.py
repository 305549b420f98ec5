"""Vectorised encoders: ids, categories, numbers and multi-label strings.

Every ``fit_*`` sees training values only; ``encode_*`` maps any values with the fitted
state (unseen categories -> code 0, the unknown bucket).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

MISSING_TOKEN = "(missing)"


def as_id_strings(values) -> np.ndarray:
    """Ids as strings, with integer-valued floats written as integers (``3.0`` -> ``"3"``)."""
    s = pd.Series(values)
    if pd.api.types.is_float_dtype(s.dtype):
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        if np.all(np.isnan(v) | (v == np.round(v))):
            s = s.astype("Int64")
    elif pd.api.types.is_bool_dtype(s.dtype):
        s = s.astype("int64")
    return s.astype(str).to_numpy(dtype=object).astype(str)


def build_index(inter_ids: pd.Series, table: pd.DataFrame | None, col: str):
    """Rows -> table positions.

    The table holds the rows of ``table`` (first row per id, file order), then ids that
    occur only in the interactions (first appearance order). Returns
    ``(row_index int64 [n_rows], ids str [n_table], src_rows int64 [n_table])`` where
    ``src_rows`` is the row of ``table`` behind each position (-1: not in the table).
    """
    codes, uniq = pd.factorize(inter_ids, sort=False)
    if table is not None and col in table.columns and _int_like(inter_ids) and _int_like(table[col]):
        # fast path: integer ids on both sides
        tab_int = pd.Series(table[col]).to_numpy(dtype=np.int64)
        uniq_int = np.asarray(uniq, dtype=np.int64)
        keep = ~pd.Index(tab_int).duplicated(keep="first")
        tab_ids = tab_int[keep]
        src = np.flatnonzero(keep).astype(np.int64)
        extra = uniq_int[pd.Index(tab_ids).get_indexer(uniq_int) < 0]
        ids_int = np.concatenate([tab_ids, extra])
        src = np.concatenate([src, np.full(len(extra), -1, np.int64)])
        pos = pd.Index(ids_int).get_indexer(uniq_int).astype(np.int64)
        row_index = pos[codes] if len(codes) else np.zeros(0, np.int64)
        return row_index, ids_int.astype(str), src
    uniq_str = as_id_strings(np.asarray(uniq))
    if table is not None and col in table.columns:
        tab_str = as_id_strings(table[col].to_numpy())
        keep = ~pd.Index(tab_str).duplicated(keep="first")
        tab_ids = tab_str[keep]
        src = np.flatnonzero(keep).astype(np.int64)
        extra_mask = pd.Index(tab_ids).get_indexer(uniq_str) < 0
        extra = uniq_str[extra_mask]
        ids = np.concatenate([tab_ids, extra])
        src = np.concatenate([src, np.full(len(extra), -1, np.int64)])
    else:
        ids = uniq_str
        src = np.full(len(ids), -1, np.int64)
    pos = pd.Index(ids).get_indexer(uniq_str).astype(np.int64)
    row_index = pos[codes] if len(codes) else np.zeros(0, np.int64)
    return row_index, ids, src


def _int_like(s) -> bool:
    s = pd.Series(s)
    return pd.api.types.is_integer_dtype(s.dtype) and not s.isna().any()


# ---- categorical ------------------------------------------------------------------------
def _cat_strings(values) -> tuple[np.ndarray, np.ndarray]:
    """-> (codes into uniques [-1 = missing], unique values as strings)."""
    s = pd.Series(values)
    if pd.api.types.is_float_dtype(s.dtype):
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        if np.all(np.isnan(v) | (v == np.round(v))):
            s = s.astype("Int64")
    codes, uniq = pd.factorize(s, sort=False, use_na_sentinel=True)
    return codes.astype(np.int64), np.asarray([str(u) for u in uniq], dtype=object)


def fit_categorical(values, missing: str = "unknown") -> dict:
    """Vocabulary from training values, most frequent first. Missing values become the token
    ``(missing)`` ("unknown") or the most frequent value ("most_frequent")."""
    codes, uniq = _cat_strings(values)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniq)) if len(uniq) else np.zeros(0, int)
    n_missing = int((codes < 0).sum())
    order = np.argsort(-counts, kind="stable")
    vocab = [str(uniq[i]) for i in order if counts[i] > 0]
    fill = None
    if missing == "most_frequent":
        fill = vocab[0] if vocab else MISSING_TOKEN
    else:
        fill = MISSING_TOKEN
    if fill == MISSING_TOKEN and n_missing > 0 and MISSING_TOKEN not in vocab:
        vocab.append(MISSING_TOKEN)
    return {"vocab": vocab, "fill": fill}


def encode_categorical(values, state: dict) -> tuple[np.ndarray, int, int]:
    """-> (codes int64: 1..len(vocab), 0 = unseen; number of missing values; number unseen)."""
    codes, uniq = _cat_strings(values)
    index = pd.Index(state["vocab"])
    uniq_codes = index.get_indexer(pd.Index(uniq, dtype=object)) + 1 if len(uniq) else np.zeros(0, np.int64)
    fill_code = index.get_indexer([state["fill"]])[0] + 1
    lut = np.append(uniq_codes, fill_code).astype(np.int64)   # last slot: missing
    out = lut[np.where(codes < 0, len(uniq_codes), codes)]
    n_missing = int((codes < 0).sum())
    n_unseen = int((out == 0).sum())
    return out, n_missing, n_unseen


# ---- numeric ----------------------------------------------------------------------------
def to_float(values) -> np.ndarray:
    s = pd.Series(values)
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64").to_numpy()
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def fit_numeric(values, missing: str = "median", standardize: bool = True) -> dict:
    v = to_float(values)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        fill = 0.0
    elif missing == "median":
        fill = float(np.median(v))
    elif missing == "mean":
        fill = float(v.mean())
    else:
        fill = 0.0
    # mean/std of the present training values
    mean = float(v.mean()) if len(v) else 0.0
    std = float(v.std()) if len(v) else 1.0
    if not standardize:
        mean, std = 0.0, 1.0
    elif not np.isfinite(std) or std < 1e-12:
        std = 1.0
    return {"fill": fill, "mean": mean, "std": std, "standardize": bool(standardize)}


def encode_numeric(values, state: dict) -> tuple[np.ndarray, int]:
    v = to_float(values)
    bad = ~np.isfinite(v)
    v = np.where(bad, state["fill"], v)
    return ((v - state["mean"]) / state["std"]).astype(np.float32), int(bad.sum())


# ---- multi-label --------------------------------------------------------------------------
def _split_uniques(values, sep: str):
    codes, uniq = pd.factorize(pd.Series(values), sort=False, use_na_sentinel=True)
    parts = [[p.strip() for p in str(u).split(sep) if p.strip()] for u in uniq]
    return codes.astype(np.int64), parts


def multilabel_missing(values) -> np.ndarray:
    """True where a multi-label value is missing (NaN/None or blank)."""
    codes, uniq = pd.factorize(pd.Series(values), sort=False, use_na_sentinel=True)
    blank = np.array([not str(u).strip() for u in uniq] + [True], dtype=bool)
    return blank[np.where(codes < 0, len(uniq), codes)]


def fit_multilabel(values, sep: str = "|", max_classes: int = 50, weights=None, min_count: float = 0) -> list[str]:
    """Classes of a delimited string column, most frequent first (training rows only).
    ``weights``: how many training rows each value stands for (values given per item);
    ``min_count``: classes of a lower (weighted) count are dropped."""
    codes, parts = _split_uniques(values, sep)
    if not parts:
        return []
    w_rows = np.ones(len(codes)) if weights is None else np.asarray(weights, dtype=np.float64)
    ok = codes >= 0
    weight = np.bincount(codes[ok], weights=w_rows[ok], minlength=len(parts))
    counts: dict[str, int] = {}
    for p, w in zip(parts, weight):
        if w <= 0:
            continue
        for c in set(p):
            counts[c] = counts.get(c, 0) + float(w)
    ranked = sorted((c for c in counts if counts[c] >= min_count), key=lambda c: (-counts[c], c))
    return ranked[:max_classes]


def encode_multihot(values, classes: list[str], sep: str = "|") -> np.ndarray:
    """float32 [n, K] 0/1 per class for a multi-valued feature; a missing value, or one with no
    known class, is a row of zeros (its mean-pooled embedding is the zero vector)."""
    return np.nan_to_num(encode_multilabel(values, classes, sep), nan=0.0)


def years_if_dates(values):
    """Date strings (e.g. '01-Jan-1995', '1995-03-02') as their year (float, NaN where missing or
    unreadable) when at least 90% of the present values read as dates; else ``values`` unchanged.
    A date column with the role numeric is its year."""
    s = pd.Series(values)
    if not (pd.api.types.is_string_dtype(s.dtype) or s.dtype == object):
        return values
    present = s.dropna().astype("str")
    if present.empty or present.str.len().mean() < 6 \
            or pd.to_numeric(present.iloc[:1000], errors="coerce").notna().mean() > 0.5:
        return values                 # numbers written as text stay numbers
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(s.where(s.notna(), None), errors="coerce", format="mixed")
    if parsed[s.notna()].notna().mean() < 0.9:
        return values
    return pd.Series(parsed.dt.year.astype("float64").to_numpy(), index=getattr(values, "index", None))


def encode_multilabel(values, classes: list[str], sep: str = "|") -> np.ndarray:
    """float32 [n, K] multi-hot; missing values -> NaN rows (dropped as missing labels)."""
    codes, parts = _split_uniques(values, sep)
    pos = {c: k for k, c in enumerate(classes)}
    table = np.zeros((len(parts) + 1, len(classes)), np.float32)
    for i, p in enumerate(parts):
        for c in p:
            k = pos.get(c)
            if k is not None:
                table[i, k] = 1.0
    table[-1] = np.nan
    return table[np.where(codes < 0, len(parts), codes)]
