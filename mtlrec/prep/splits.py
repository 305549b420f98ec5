"""Train / validation / test splits of the observed interaction rows.

Each function returns ``split`` (int8 per row: 0 train, 1 valid, 2 test); the item cold-start
split also returns the held-out item indices of valid and test. A predefined split (a column of
the interactions, or one file per split) is read by :func:`split_codes`.
"""
from __future__ import annotations

import numpy as np

from mtlrec.display import with_article
from mtlrec.errors import DataError, DataWarning
from mtlrec.prep.state import SHOWN_ROW_IDS

TRAIN, VALID, TEST = 0, 1, 2
NAMES = ("train", "valid", "test")
# the values a predefined split column may hold (compared stripped and lower-case); nothing else,
# in particular no numbers: 0/1/2 mean different things in different datasets
SPLIT_VALUES = {"train": TRAIN, "training": TRAIN,
                "valid": VALID, "validation": VALID, "val": VALID, "dev": VALID,
                "test": TEST}
SPLIT_VALUES_TEXT = "train (or training), valid (or validation, val, dev) or test"


def random_split(n: int, valid_frac: float, test_frac: float, rng) -> np.ndarray:
    split = np.zeros(n, np.int8)
    perm = rng.permutation(n)
    n_test = int(round(test_frac * n))
    n_valid = int(round(valid_frac * n))
    if test_frac > 0 and n >= 3:
        n_test = max(1, n_test)
    if valid_frac > 0 and n >= 3:
        n_valid = max(1, n_valid)
    split[perm[:n_test]] = TEST
    split[perm[n_test:n_test + n_valid]] = VALID
    return split


def temporal_split(user_index: np.ndarray, ts: np.ndarray, min_user_rows: int = 3,
                   valid_frac: float = 0.1, test_frac: float = 0.1) -> np.ndarray:
    """Per user, leave the last interaction out (test) and the second last (valid); users with
    fewer than ``min_user_rows`` rows stay in training. Without users (``user_index`` all -1)
    the latest ``test_frac`` of all rows by time is test and the ``valid_frac`` before it valid."""
    n = len(ts)
    split = np.zeros(n, np.int8)
    if n == 0:
        return split
    if user_index is None or (user_index < 0).all():
        order = np.argsort(ts, kind="stable")
        n_test = int(round(test_frac * n))
        n_valid = int(round(valid_frac * n))
        split[order[n - n_test:]] = TEST
        split[order[n - n_test - n_valid:n - n_test]] = VALID
        return split
    by_time = np.argsort(ts, kind="stable")                 # by user, then time, then file order
    order = by_time[np.argsort(user_index[by_time], kind="stable")]
    u_sorted = user_index[order]
    counts = np.bincount(user_index)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(n) - starts[u_sorted]
    from_end = counts[u_sorted] - 1 - pos
    enough = counts[u_sorted] >= max(3, min_user_rows)
    s = np.zeros(n, np.int8)
    s[(from_end == 0) & enough] = TEST
    s[(from_end == 1) & enough] = VALID
    split[order] = s
    return split


def cold_item_split(item_index: np.ndarray, cold_frac: float, valid_frac: float, test_frac: float,
                    rng, file: str | None = None):
    """Hold a share of the items out entirely: their rows go to valid/test only (the held-out
    items are divided between valid and test in proportion valid_frac : test_frac); the rows
    of the other (warm) items are split at random with valid_frac / test_frac.

    Returns ``(split, cold_valid_items, cold_test_items)``."""
    valid_ii = item_index[item_index >= 0]
    items = np.flatnonzero(np.bincount(valid_ii)) if len(valid_ii) else np.zeros(0, np.int64)
    n_cold = int(round(cold_frac * len(items)))
    if cold_frac > 0:
        n_cold = max(n_cold, 2)
    if n_cold >= len(items):
        raise DataError(f"the item cold-start split holds out {n_cold} of only {len(items)} items: no item would "
                        "be left for training", file=file, fix="lower cold_item_frac or use more items")
    cold = rng.permutation(items)[:n_cold]
    share_test = test_frac / (valid_frac + test_frac) if valid_frac + test_frac > 0 else 0.5
    n_cold_test = int(round(share_test * n_cold))
    if n_cold >= 2:
        n_cold_test = min(max(n_cold_test, 1 if test_frac > 0 else 0), n_cold - (1 if valid_frac > 0 else 0))
    cold_test = np.sort(cold[:n_cold_test])
    cold_valid = np.sort(cold[n_cold_test:])
    split = random_split(len(item_index), valid_frac, test_frac, rng)
    size = int(item_index.max()) + 1 if len(item_index) else 0
    test_mask = np.zeros(size, bool)
    test_mask[cold_test] = True
    valid_mask = np.zeros(size, bool)
    valid_mask[cold_valid] = True
    safe = np.maximum(item_index, 0)
    in_test = test_mask[safe] & (item_index >= 0)
    in_valid = valid_mask[safe] & (item_index >= 0)
    split[in_test] = TEST
    split[in_valid] = VALID
    # warm rows that the random split sent to valid/test stay there; nothing cold is in train
    return split, cold_valid, cold_test


# ---- predefined splits ------------------------------------------------------------------------
def _normalised(values):
    import pandas as pd
    s = pd.Series(values).reset_index(drop=True)
    present = s.notna().to_numpy()
    low = s.astype(object).where(s.notna(), "").astype(str).str.strip().str.lower()
    return low, present


def split_codes(values, *, file: str | None = None, column: str | None = None,
                row_ids: np.ndarray | None = None) -> np.ndarray:
    """int8 split codes of a predefined split column (train/valid/test, see ``SPLIT_VALUES``).

    A missing value or any other value is a DataError naming the column, the first offending
    rows (1-based data rows of ``file``; ``row_ids`` maps positions to source rows) and the
    distinct bad values."""
    low, present = _normalised(values)
    codes = low.map(SPLIT_VALUES)
    bad = codes.isna().to_numpy() | ~present
    if bad.any():
        import pandas as pd
        pos = np.flatnonzero(bad)
        src = (np.asarray(row_ids)[pos] if row_ids is not None else pos)
        raw_vals = pd.Series(values).reset_index(drop=True).iloc[pos]
        distinct = []
        for v in raw_vals.drop_duplicates().iloc[:8]:
            distinct.append("(missing)" if pd.isna(v) else repr(str(v)[:30]))
        more = raw_vals.nunique(dropna=False) - len(distinct)
        shown = ", ".join(distinct) + (f" and {more} more" if more > 0 else "")
        numbers = any(str(v).strip().lstrip("-").replace(".", "", 1).isdigit() for v in raw_vals.iloc[:1000]
                      if not pd.isna(v))
        raise DataError(f"{len(pos)} rows of the split column hold no split name (bad values: {shown}; "
                        f"first at row_id {int(src[0])})", file=file, column=column,
                        rows=[int(r) + 1 for r in src[:10]],
                        fix=f"write {SPLIT_VALUES_TEXT} in every row of '{column}'"
                            + (" (numbers such as 0/1/2 are not read as splits: write the names)" if numbers else "")
                            + ", or choose another split method")
    return codes.to_numpy(dtype=np.int8)


def looks_like_split(values, min_rows: int = 2) -> bool:
    """True when every present value is a split name (``SPLIT_VALUES``) and train plus at least one
    of valid/test occur: a column that says which split each row belongs to (missing values do not
    count here; preparing with it names them)."""
    low, present = _normalised(values)
    if present.sum() < min_rows:
        return False
    codes = low[present].map(SPLIT_VALUES)
    if codes.isna().any():
        return False
    found = set(codes.astype(int).unique())
    return TRAIN in found and len(found) >= 2


def carve_valid(split: np.ndarray, valid_frac: float, rng) -> int:
    """Move a share ``valid_frac`` of the train rows (seeded) to valid, in place; returns how many."""
    train_rows = np.flatnonzero(split == TRAIN)
    n = len(train_rows)
    k = int(round(valid_frac * n))
    if valid_frac > 0 and n >= 3:
        k = max(1, k)
    k = min(k, max(n - 1, 0))
    if k:
        split[rng.choice(train_rows, size=k, replace=False)] = VALID
    return k


def with_predefined_split(prep: dict | None, raw) -> dict:
    """Preparation options for ``raw``: data read as a predefined split (split files, MovieLens
    ``uN.base``/``uN.test``; ``raw.meta["split_column"]``) uses it unless the options name a split."""
    out = dict(prep or {})
    col = (getattr(raw, "meta", None) or {}).get("split_column")
    if col and "split" not in out:
        out["split"] = "column"
    if col and out.get("split") == "column" and not out.get("split_column"):
        out["split_column"] = col
    return out


# ---- the split step of a preparation ----------------------------------------------------------
def split_rows(p) -> None:
    """The split step of a preparation (a :class:`~mtlrec.prep.state.Preparation` after cleaning):
    ``config.split`` -- random, per-user temporal, item cold-start or predefined -- over the rows in
    play; the training users / items; the valid / test rows whose user (item) has no training row."""
    config, src_name = p.config, p.src_name
    rng = np.random.default_rng(config.seed)
    p.r_u = p.uidx[p.rows_idx]
    p.r_i = p.iidx[p.rows_idx]
    p.cold_valid = p.cold_test = np.zeros(0, np.int64)
    if config.split == "random":
        p.split = random_split(len(p.rows_idx), config.valid_frac, config.test_frac, rng)
    elif config.split == "temporal":
        if p.ts is None:
            raise DataError("the temporal split needs a timestamp column", file=src_name,
                            fix="set the timestamp role of a column, or use the random split")
        p.split = temporal_split(p.r_u, p.ts[p.rows_idx], config.min_user_rows, config.valid_frac, config.test_frac)
    elif config.split == "column":
        p.split = _predefined(p, rng)
    else:
        if not p.spec.item_id:
            raise DataError("the item cold-start split needs an item id column", file=src_name,
                            fix="set the item id role of a column, or use the random split")
        p.split, p.cold_valid, p.cold_test = cold_item_split(p.r_i, config.cold_item_frac, config.valid_frac,
                                                             config.test_frac, rng, file=src_name)
    _check_counts(p)
    p.cold_items = np.union1d(p.cold_valid, p.cold_test).astype(np.int64)
    p.train = p.split == TRAIN
    p.train_users = np.zeros(p.n_users, bool)
    p.train_items = np.zeros(p.n_items, bool)
    if p.n_users:
        p.train_users[p.r_u[p.train]] = True
    if p.n_items:
        p.train_items[p.r_i[p.train]] = True
    if len(p.cold_items) and p.train_items[p.cold_items].any():   # guarded by construction
        raise AssertionError("a held-out item reached the training rows")
    p.report["unseen_in_train"] = unseen_in_train(p.split, p.r_u, p.r_i, p.train_users, p.train_items,
                                                  p.row_id[p.rows_idx])
    if config.split == "column":
        _warn_unseen(p)


def _predefined(p, rng) -> np.ndarray:
    """The split codes of a predefined split for the rows in play; train and test must have rows,
    valid is carved from train (``valid_frac``, seeded) when it has none. Reported."""
    config, given_split = p.config, p.given_split
    split = given_split[p.rows_idx].copy()
    given = {NAMES[k]: int((split == k).sum()) for k in (TRAIN, VALID, TEST)}
    files = p.raw_meta.get("split_files")
    for k in (TRAIN, TEST):
        if given[NAMES[k]] == 0:
            raise DataError(f"the split column has no {NAMES[k]} rows" + (" left after cleaning" if
                            (given_split == k).any() else "") + f" (rows per split: "
                            + ", ".join(f"{n} {c}" for n, c in given.items()) + ")", file=p.src_name,
                            column=p.split_col, fix=f"mark some rows as {NAMES[k]}" + (
                                f", or give a {NAMES[k]} file" if files else ""))
    carved = 0
    if given["valid"] == 0:
        carved = carve_valid(split, config.valid_frac, rng)
        p.report["notes"].append(f"the predefined split has no valid rows: {carved} of the {given['train']} train "
                                 f"rows (valid_frac {config.valid_frac:g}, seed {config.seed}) became valid")
    p.report["predefined_split"] = {"column": p.split_col, "rows": given, "valid_carved": carved,
                                    "files": files}
    return split


def _check_counts(p) -> None:
    """Rows per split (``p.counts``): training rows are needed; valid / test ones when their share is
    above 0 (except for the temporal and predefined splits, which may leave them empty)."""
    config = p.config
    p.counts = counts = {NAMES[k]: int((p.split == k).sum()) for k in (TRAIN, VALID, TEST)}
    if counts["train"] == 0:
        raise DataError("no rows are left for training after the split", file=p.src_name,
                        fix="lower valid_frac/test_frac or use more data")
    for k, frac in ((VALID, config.valid_frac), (TEST, config.test_frac)):
        if frac > 0 and counts[NAMES[k]] == 0 and config.split not in ("temporal", "column"):
            raise DataError(f"the {NAMES[k]} split is empty: too few rows to split", file=p.src_name,
                            fix="add rows or raise the split shares")


def unseen_in_train(split, r_u, r_i, train_users, train_items, row_ids) -> dict:
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


def _warn_unseen(p) -> None:
    """A predefined split whose valid / test rows have users (items) without training rows: a
    warning each (the model knows them only by their features)."""
    spec = p.spec
    for sname, info in p.report["unseen_in_train"].items():
        for who, col in (("user", spec.user_id), ("item", spec.item_id)):
            k = info.get(f"{who}_rows", 0)
            if k:
                n_split = info["rows"]
                share = (f"every {sname} row ({k}) has" if k == n_split else
                         f"{k} of the {n_split} {sname} rows ({k / n_split:.1%}) {'have' if k > 1 else 'has'}")
                w = DataWarning(f"{share} {with_article(who)} that is not in the training rows "
                                f"(first row_ids: {', '.join(map(str, info[f'{who}_row_ids'][:10]))}): the model "
                                f"knows such {who}s only by their features, not by their id",
                                file=p.src_name, column=col,
                                fix=f"expected for {with_article(who)} cold-start split; otherwise give those {who}s "
                                    "some training rows")
                p.report["prep_warnings"].append(str(w))
