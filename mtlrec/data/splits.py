"""Predefined splits: one file per split (train, test, optional valid), each identified and read like a
single interactions file (the side tables users / items beside the train file), their columns checked and
concatenated in the order train, valid, test with a column ``raw.meta["split_column"]`` (normally
"split") holding train / valid / test. ``raw.meta["split_files"]`` lists ``{"split", "file",
"first_row_id", "rows"}``: row ids (0-based positions in the concatenation) ``first_row_id`` ...
``first_row_id + rows - 1`` come from ``file``. MovieLens 100K's ready-made ``uN.base`` / ``uN.test``
pairs are read the same way (:func:`read_ml100k_split`)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from mtlrec.data.files import folder_files, ignored_why, ml100k_split_part, read_path, tables_only
from mtlrec.data.identify import Found, identify_file, read_identified
from mtlrec.data.limits import Limits, reading
from mtlrec.data.raw import RawData
from mtlrec.errors import DataError

SPLIT_COLUMN = "split"
SPLIT_KEYS = {"train": "train", "training": "train", "valid": "valid", "validation": "valid", "val": "valid",
              "dev": "valid", "test": "test"}


def split_keys(splits: dict) -> dict:
    """``{"train": x, "test": y[, "valid": z]}`` from a mapping whose keys may also say training,
    validation, val or dev; a DataError names a bad or missing key."""
    if not isinstance(splits, dict):
        raise DataError('the split files must be a mapping like {"train": PATH, "test": PATH}',
                        file="config", fix='write data.splits as {"train": "train.csv", "test": "test.csv"}')
    out: dict = {}
    for k, v in splits.items():
        key = SPLIT_KEYS.get(str(k).strip().lower())
        if key is None:
            raise DataError(f"unknown split '{k}' among the split files (known: train, valid, test)", file="config",
                            fix="name the files train, test and optionally valid")
        if key in out:
            raise DataError(f"two files for the {key} split", file="config", fix=f"give one {key} file")
        out[key] = v
    for need in ("train", "test"):
        if need not in out:
            raise DataError(f"the split files lack a {need} file (given: {', '.join(out) or 'none'})", file="config",
                            fix="give a train and a test file (valid is optional: it is carved from train)")
    return {k: out[k] for k in ("train", "valid", "test") if k in out}


def load_split_files(splits: dict, side_paths=(), *, sep: str | None = None, limits: Limits | None = None) -> RawData:
    """One file per split (``{"train": PATH, "test": PATH, "valid": PATH}``; valid optional) plus
    optional side tables (users / items files, or a folder of them) -> RawData with the rows of all
    split files and a split column (see the module docstring)."""
    parts = split_keys(splits)
    with reading(limits or Limits.local()):
        files: dict[str, tuple[str, bytes]] = {}
        for key, p in parts.items():
            p = Path(p)
            if not p.is_file():
                raise DataError(f"the {key} file was not found" + (" (it is a folder)" if p.is_dir() else ""),
                                file=str(p), fix="give the path of one file per split")
            files[key] = read_path(p, p.name)
        names = {n for n, _ in files.values()}
        side: list[tuple[str, bytes]] = []
        ignored: dict[str, str] = {}
        for p in side_paths or ():
            p = Path(p)
            if not p.exists():
                raise DataError("no such file or folder", file=str(p), fix="check the path of the users / items file")
            if not p.is_dir():
                side.append(read_path(p, p.name))
                continue
            for n, b in folder_files(p):     # a folder: its users / items tables (not its interactions)
                if n in names or ml100k_split_part(n):
                    continue
                f = identify_file(n, b)
                if isinstance(f, Found) and f.table == "interactions":
                    ignored[n] = "interactions beside the split files (the split files hold the interactions)"
                else:
                    side.append((n, b))
        side = [(n, b) for n, b in side if not ignored_why(n)]
        raw = _combine_splits(files, side, sep=sep)
        if ignored:
            raw.meta.setdefault("ignored", {}).update(ignored)
        return raw


def read_ml100k_split(split_parts: dict, others: list[tuple[str, bytes]], *, sep: str | None) -> RawData:
    """MovieLens 100K ``uN.base`` + ``uN.test`` (without u.data): a predefined split."""
    names = sorted(Path(n).name for parts in split_parts.values() for n, _ in parts.values())
    complete = sorted(k for k, v in split_parts.items() if {"base", "test"} <= set(v))
    if len(split_parts) > 1:
        first = (complete or sorted(split_parts))[0]
        raise DataError(f"the files hold {len(split_parts)} ready-made MovieLens 100K splits ({', '.join(names)}); "
                        "one split is read at a time", file=", ".join(names),
                        fix=f"give the two files of one split, e.g. u{first}.base and u{first}.test (with u.item "
                            "and u.user), or u.data for all ratings")
    key = next(iter(split_parts))
    if not complete:
        have = next(iter(split_parts[key]))
        lack = "test" if have == "base" else "base"
        raise DataError(f"u{key}.{have} is one half of a ready-made MovieLens 100K split: u{key}.{lack} is missing",
                        file=f"u{key}.{have}", fix=f"add u{key}.{lack} (u{key}.base = train, u{key}.test = test), "
                                                    "or give u.data for all ratings")
    side, ignored = tables_only(others)
    raw = _combine_splits({"train": split_parts[key]["base"], "test": split_parts[key]["test"]}, side, sep=sep)
    if ignored:
        raw.meta.setdefault("ignored", {}).update(ignored)
    return raw


def _comparable(frames: list[pd.DataFrame], col: str) -> None:
    """One dtype for ``col`` in every frame: ids read as numbers in one file and as text in another
    become text everywhere (integral floats without their '.0'), so that they still match."""
    if len({str(f[col].dtype) for f in frames}) < 2:
        return
    if all(pd.api.types.is_numeric_dtype(f[col].dtype) and not pd.api.types.is_bool_dtype(f[col].dtype)
           for f in frames):
        return
    for f in frames:
        s = f[col]
        if pd.api.types.is_float_dtype(s.dtype) and (s.dropna() % 1 == 0).all():
            s = s.astype("Int64")
        f[col] = s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v))


def _combine_splits(files: dict[str, tuple[str, bytes]], side: list[tuple[str, bytes]], *,
                    sep: str | None) -> RawData:
    """Read each split file (the side tables with train), check the columns, concatenate."""
    raws: dict[str, RawData] = {}
    for key, (name, data) in files.items():
        raw = read_identified([(name, data)] + (side if key == "train" else []), sep=sep)
        if raw.sources.get("interactions") != Path(name).name:
            raise DataError(f"the {key} file was not read as the interactions (they were read from "
                            f"'{raw.sources.get('interactions')}')", file=name,
                            fix="give the interactions of each split as the split files, the users / items "
                                "tables beside them")
        for table, df in raw.tables().items():
            if len(df) == 0:
                raise DataError("the file has a header but no data rows", file=raw.source(table),
                                fix="export the table again with its data rows")
        raws[key] = raw
    train = raws["train"]
    cols = [str(c) for c in train.interactions.columns]
    frames = []
    for key, raw in raws.items():
        df = raw.interactions
        if key != "train":
            have = [str(c) for c in df.columns]
            missing = [c for c in cols if c not in have]
            extra = [c for c in have if c not in cols]
            if missing or extra:
                diff = "; ".join(x for x in (f"missing {', '.join(missing)}" if missing else "",
                                             f"extra {', '.join(extra)}" if extra else "") if x)
                raise DataError(f"the columns of the {key} file differ from those of the train file "
                                f"({Path(files['train'][0]).name}): {diff}", file=Path(files[key][0]).name,
                                fix="give every split file the same columns (names and header)")
            df = df[cols]
        frames.append(df.reset_index(drop=True).copy())
    for c in cols:
        _comparable(frames, c)
    taken = {c.lower() for c in cols}
    split_col, k = SPLIT_COLUMN, 1
    while split_col.lower() in taken:
        split_col, k = f"{SPLIT_COLUMN}_{k}", k + 1
    parts, first = [], 0
    for key, df in zip(raws, frames):
        df[split_col] = key
        parts.append({"split": key, "file": Path(files[key][0]).name, "first_row_id": first, "rows": int(len(df))})
        first += len(df)
    inter = pd.concat(frames, ignore_index=True)
    sources = dict(train.sources)
    sources["interactions"] = " + ".join(p["file"] for p in parts)
    meta = dict(train.meta)
    layouts = dict(meta.get("layouts", {}))
    how = {raws[p["split"]].meta.get("layouts", {}).get("interactions", "") for p in parts}
    layouts["interactions"] = "; ".join(sorted(h for h in how if h)) + "; a predefined split"
    meta["layouts"] = layouts
    ignored = {}
    for raw in raws.values():
        ignored.update(raw.meta.get("ignored", {}))
    if ignored:
        meta["ignored"] = ignored
    meta["split_column"] = split_col
    meta["split_files"] = parts
    return RawData(interactions=inter, users=train.users, items=train.items, sources=sources, format=train.format,
                   extra=train.extra, meta=meta)

