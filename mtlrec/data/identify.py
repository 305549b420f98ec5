"""Which table each file is: by its content first (the header-less MovieLens layouts, RecBole headers),
so that renamed files work too, then by its name, then (a generic table among several files) by its id
columns; :func:`read_identified` then reads each with its format's reader."""
from __future__ import annotations

import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mtlrec.data.files import utf16_codec
from mtlrec.data.formats.movielens import LAYOUT_READERS, LAYOUTS, add_tagged
from mtlrec.data.formats.recbole import read_recbole_file
from mtlrec.data.names import id_columns
from mtlrec.data.raw import RawData
from mtlrec.data.tables import looks_numeric, read_table
from mtlrec.errors import DataError

_INTER_PAT = re.compile(r"(interaction|rating|event|click|log|inter\b|feedback|train|purchase|view)")
_USER_PAT = re.compile(r"^(users?|customers?|members?|visitors?)([\W_]|$)")
_ITEM_PAT = re.compile(r"^(items?|movies?|products?|catalog(ue)?|articles?|songs?|books?)([\W_]|$)")
_FAMILY = {"ml100k": "ml-100k", "ml1m": "ml-1m", "recbole": "recbole"}
_INT_RE = re.compile(r"^\s*-?\d+\s*$")


def classify_name(name: str) -> str | None:
    """The table a generic file's name says (interactions / users / items), or None."""
    stem = Path(name).name.lower()
    for ext in (".gz", ".csv", ".tsv", ".txt", ".dat", ".parquet", ".pq"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    if _INTER_PAT.search(stem):
        return "interactions"
    if _USER_PAT.search(stem):
        return "users"
    if _ITEM_PAT.search(stem):
        return "items"
    return None


def classify_columns(columns) -> str | None:
    """The table that a generic table's columns say: a user id and an item id column ->
    interactions; only a user id -> users; only an item id -> items; else None."""
    users, items = id_columns(columns)
    if users and items:
        return "interactions"
    return "users" if users else "items" if items else None


def _head_lines(data: bytes, limit: int = 20) -> list[str]:
    """The first complete non-empty lines of a text file (decompressed; [] for binary files)."""
    size = 65536
    head = data[:size]
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as g:
                head = g.read(size)
        except (OSError, EOFError):
            return []
    if head[:4] in (b"PAR1", b"PK\x03\x04"):
        return []
    if b"\x00" in head:
        enc16 = utf16_codec(head)
        if enc16 is None:
            return []
        text = head[:len(head) // 2 * 2].decode(enc16, errors="replace").lstrip("\ufeff")
        lines = text.splitlines()
        if len(head) >= size - 3 and len(lines) > 1:
            lines = lines[:-1]
        return [ln for ln in lines if ln.strip()][:limit]
    if head[:3] == b"\xef\xbb\xbf":
        head = head[3:]
    lines = head.decode("latin-1").splitlines()
    if len(head) >= size - 3 and len(lines) > 1:
        lines = lines[:-1]       # the last line may be cut
    return [ln for ln in lines if ln.strip()][:limit]


def _is_num(s: str) -> bool:
    return looks_numeric(s.strip())


def sniff_layout(lines: list[str]) -> str | None:
    """A known header-less layout (or a RecBole header) from the first lines of a file.

    * ``ml100k-data``: 4 tab-separated numbers (user, item, rating, timestamp);
    * ``ml100k-item``: 24 '|'-separated fields, an integer id and 19 genre flags 0/1;
    * ``ml100k-user``: 5 '|'-separated fields: id, age, M/F, occupation, zip;
    * ``ml1m-ratings`` / ``ml1m-movies`` / ``ml1m-users`` / ``ml10m-tags``: '::'-separated;
    * ``recbole``: a header of ``name:type`` fields.
    """
    if not lines:
        return None
    fields = lines[0].split("\t")
    if all(re.fullmatch(r"[^:\t]+:(token|float|token_seq|float_seq)", f.strip()) for f in fields):
        return "recbole"
    if all("::" in ln for ln in lines):
        rows = [ln.split("::") for ln in lines]
        n = len(rows[0])
        if any(len(r) != n for r in rows):
            return None

        def ints(k):
            return all(_INT_RE.match(r[k]) for r in rows)
        if n == 4 and ints(0) and ints(1) and ints(3):
            return "ml1m-ratings" if all(_is_num(r[2]) for r in rows) else "ml10m-tags"
        if n == 3 and ints(0):
            return "ml1m-movies"
        if n == 5 and ints(0) and all(r[1].strip() in ("M", "F") for r in rows):
            return "ml1m-users"
        return None
    tab = [ln.split("\t") for ln in lines]
    if all(len(r) == 4 and _INT_RE.match(r[0]) and _INT_RE.match(r[1]) and _is_num(r[2]) and _INT_RE.match(r[3])
           for r in tab):
        return "ml100k-data"
    pipe = [ln.rstrip("\r").split("|") for ln in lines]
    if all(len(r) == 24 and _INT_RE.match(r[0]) and all(f.strip() in ("0", "1") for f in r[5:]) for r in pipe):
        return "ml100k-item"
    if all(len(r) == 5 and _INT_RE.match(r[0]) and _INT_RE.match(r[1]) and r[2].strip() in ("M", "F")
           for r in pipe):
        return "ml100k-user"
    return None


@dataclass
class Found:
    """One file and what it was identified as."""
    name: str
    data: bytes
    layout: str                     # a key of LAYOUTS, "recbole" or "table" (a generic table)
    table: str | None = None        # interactions / users / items / tags; None = not identified yet
    how: str = ""                   # how it was recognised (for messages)
    frame: pd.DataFrame | None = None

    @property
    def parquet(self) -> bool:
        return self.name.lower().endswith((".parquet", ".pq")) or self.data[:4] == b"PAR1"

    @property
    def family(self) -> str:
        if self.layout == "table":
            return "parquet" if self.parquet else "csv"
        return _FAMILY[self.layout.split("-")[0]]


def identify_file(name: str, data: bytes) -> Found | str:
    """What one file is, from its content, then its name; a str says why the file is skipped."""
    base = Path(name).name
    low, ext = base.lower(), Path(base.lower()).suffix
    lines = [] if low.endswith((".parquet", ".pq")) else _head_lines(data)
    layout = sniff_layout(lines)
    by_content = layout is not None
    if layout == "ml10m-tags":
        return "MovieLens 10M tags (user::movie::tag::time), not read"
    if layout is None:
        layout = {"u.data": "ml100k-data", "u.item": "ml100k-item", "u.user": "ml100k-user"}.get(low)
    if layout is None and low in ("ratings.dat", "movies.dat", "users.dat") and b"::" in data[:4096]:
        layout = "ml1m-" + low[:-len("s.dat")] + "s"
    if layout is None and ext in (".inter", ".user", ".item"):
        layout = "recbole"
    if layout == "recbole":
        table = {".inter": "interactions", ".user": "users", ".item": "items"}.get(ext)
        if table is None and lines:
            table = classify_columns(f.split(":", 1)[0] for f in lines[0].split("\t"))
        return Found(base, data, "recbole", table, "RecBole atomic file")
    if layout is not None:
        table, how = LAYOUTS[layout]
        return Found(base, data, layout, table, how if by_content else how + ", by its name")
    stem = low[:-3] if low.endswith(".gz") else low
    if Path(stem).stem == "tags":
        return Found(base, data, "table", "tags", "MovieLens tags: a 'tagged' signal on the ratings")
    table = classify_name(base)
    return Found(base, data, "table", table, "recognised by its name" if table else "")


def _listing(found: list[Found]) -> str:
    known = [f"{f.name} → {f.table}" for f in found if f.table]
    return ", ".join(known) if known else "none"


def _missing_fix(found: list[Found]) -> str:
    fams = {f.family for f in found}
    if "ml-100k" in fams:
        hint = "add u.data (the MovieLens 100K ratings)"
    elif "ml-1m" in fams:
        hint = "add ratings.dat (the MovieLens ratings)"
    elif "recbole" in fams:
        hint = "add the RecBole .inter file"
    else:
        hint = "add the interactions file (one row per user-item event; name it e.g. interactions.csv)"
    return hint + ", or upload a zip of the whole dataset folder"


def read_identified(files: list[tuple[str, bytes]], *, sep: str | None) -> RawData:
    """Identify each file, give each table one file, read them with their format's reader."""
    found, ignored = _identify_all(files)
    _classify_generic(found, sep=sep)
    roles = _assign_tables(found)
    tables, types = _read_tables(roles, sep=sep)
    return _assemble(roles, tables, types, ignored)


def _identify_all(files: list[tuple[str, bytes]]) -> tuple[list[Found], dict[str, str]]:
    """(the files identified, {name: why} of those skipped); a DataError when none is left."""
    found: list[Found] = []
    ignored: dict[str, str] = {}
    for n, b in files:
        f = identify_file(n, b)
        if isinstance(f, str):
            ignored[Path(n).name] = f
        else:
            found.append(f)
    if not found:
        raise DataError("no data table among the files (" + "; ".join(f"{k}: {v}" for k, v in ignored.items()) + ")",
                        file=", ".join(ignored), fix="give an interactions file, or a zip of the dataset folder")
    return found, ignored


def _classify_generic(found: list[Found], *, sep: str | None) -> None:
    """A single generic file is the interactions; a generic table whose name says nothing is told by its
    columns (it is read now, and only once: the frame is kept)."""
    if len(found) == 1 and found[0].layout == "table":
        found[0].table, found[0].how = "interactions", "the only table"
    for f in found:
        if f.table is None:
            f.frame = read_table(f.name, f.data, sep=sep)
            f.table = classify_columns(f.frame.columns)
            if f.table:
                users, items = id_columns(f.frame.columns)
                f.how = "recognised by its id column" + ("s " if len(users + items) > 1 else " ") + \
                    ", ".join(users[:1] + items[:1])


def _assign_tables(found: list[Found]) -> dict[str, Found]:
    """table -> its one file (interactions, users, items, tags, in that order); a DataError for two files of
    one table, a file that is still unknown, or no interactions."""
    roles: dict[str, Found] = {}
    for f in found:
        if f.table is None:
            continue
        if f.table in roles:
            other = roles[f.table]
            fix = ("give one .inter file (RecBole's benchmark splits are not read)" if f.layout == "recbole"
                   else f"give only one {f.table} file, or rename the other after its table "
                        "(interactions.csv, users.csv or items.csv)")
            raise DataError(f"two files look like the {f.table} table ('{other.name}' and '{f.name}'; "
                            f"{other.name}: {other.how}; {f.name}: {f.how})", file=f.name, fix=fix)
        roles[f.table] = f
    unknown = [f for f in found if f.table is None]
    if len(unknown) == 1 and "interactions" not in roles:
        f = unknown[0]
        f.table, f.how = "interactions", "the only file that is not users or items"
        roles["interactions"], unknown = f, []
    if unknown:
        raise _unknown_error(unknown, roles, found)
    if "interactions" not in roles:
        raise DataError(f"no interactions table among the files. Tables found: {_listing(found)}; "
                        "missing: interactions (one row per user-item event)",
                        file=", ".join(f.name for f in found), fix=_missing_fix(found))
    return {t: roles[t] for t in ("interactions", "users", "items", "tags") if t in roles}


def _unknown_error(unknown: list[Found], roles: dict[str, Found], found: list[Found]) -> DataError:
    """What to say about a file whose name and columns show no user or item id."""
    f = unknown[0]
    cols = [str(c) for c in f.frame.columns] if f.frame is not None else []
    shown = f" ({', '.join(cols[:8])}{', ...' if len(cols) > 8 else ''})" if cols else ""
    missing = ("missing: interactions" if "interactions" not in roles else
               f"the interactions are in {roles['interactions'].name}, so this would be a users or items table")
    return DataError(f"cannot tell which table this file is: neither its name nor its columns{shown} "
                     f"show a user id or an item id. Tables found: {_listing(found)}; "
                     f"not identified: {', '.join(g.name for g in unknown)}; {missing}", file=f.name,
                     fix="rename the file after its table (interactions.csv, users.csv or items.csv), "
                         "name its id columns user_id / item_id, or upload a zip of the dataset folder")


def _read_tables(roles: dict[str, Found], *, sep: str | None) -> tuple[dict[str, pd.DataFrame], dict]:
    """(table -> frame, table -> RecBole column types): each file read by its layout's reader."""
    tables: dict[str, pd.DataFrame] = {}
    types: dict[str, dict[str, str]] = {}
    for table, f in roles.items():
        if f.layout == "recbole":
            tables[table], types[table] = read_recbole_file(f.name, f.data)
        elif f.layout == "table":
            tables[table] = f.frame if f.frame is not None else read_table(f.name, f.data, sep=sep)
        else:
            tables[table] = LAYOUT_READERS[f.layout](f.name, f.data)
    return tables, types


def _assemble(roles: dict[str, Found], tables: dict[str, pd.DataFrame], types: dict,
              ignored: dict[str, str]) -> RawData:
    """The RawData of the tables read: sources, notes, MovieLens tags as a 'tagged' column, the format."""
    sources = {t: f.name for t, f in roles.items() if t != "tags"}
    meta: dict = {"layouts": {t: f.how for t, f in roles.items()}}
    if types:
        meta["recbole_types"] = types
    if ignored:
        meta["ignored"] = ignored
    inter = tables["interactions"]
    extra: dict[str, pd.DataFrame] = {}
    if "tags" in tables:
        inter = add_tagged(inter, tables["tags"], meta)
        extra["tags"] = tables["tags"]
        sources["tags"] = roles["tags"].name
    fams = {f.family for f in roles.values()}
    low = {t: f.name.lower() for t, f in roles.items()}
    if low["interactions"] == "ratings.csv" and (low.get("items") == "movies.csv" or "tags" in low):
        fmt = "movielens"
    else:
        fmt = fams.pop() if len(fams) == 1 else "mixed"
    return RawData(interactions=inter, users=tables.get("users"), items=tables.get("items"),
                   sources=sources, format=fmt, extra=extra, meta=meta)

