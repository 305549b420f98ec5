"""Reading interaction data: generic CSV/TSV/Parquet files and known public formats.

Everything goes through one path: a list of ``(file name, bytes)``. ``load_data`` reads
files or folders from disk into that list, ``load_uploaded`` takes the app's uploads
(zip archives are opened in memory). The files are then sorted into tables:

* MovieLens 100K: ``u.data`` (interactions), ``u.item`` (items, the 19 genre flags
  become one pipe-joined ``genres`` column), ``u.user`` (users).
* MovieLens 1M / 10M: ``ratings.dat``, ``movies.dat``, ``users.dat`` ('::'-separated).
* MovieLens latest / 25M: ``ratings.csv`` (interactions), ``movies.csv`` (items),
  ``tags.csv``: kept whole as ``raw.extra["tags"]`` *and* turned into a per-(user, item)
  0/1 column ``tagged`` on the ratings (1 when that user tagged that movie).
* RecBole atomic files: ``*.inter`` / ``*.user`` / ``*.item`` with ``name:type`` headers.
  ``token_seq`` columns (space separated) are re-joined with ``|`` so that they read as
  multi-label text like MovieLens genres; the original types are in ``raw.meta["recbole_types"]``.
* Census-Income KDD: ``census-income*.gz|.data|.test`` plus ``columns.txt`` (see ``census.py``).
* Generic files, named ``interactions*``/``ratings*``/``events*`` (interactions),
  ``users*``/``user*`` (users), ``items*``/``item*``/``movies*``/``products*`` (items).
  A single generic file is the interactions table.

Every problem becomes a :class:`mtlrec.errors.DataError` naming the file.
"""
from __future__ import annotations

import csv
import gzip
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from mtlrec.errors import DataError

TABLES = ("interactions", "users", "items")

# uploads / folders: limits against absurd archives
MAX_FILES = 64
MAX_FILE_BYTES = 2 * 1024 ** 3          # one member / file, uncompressed
MAX_TOTAL_BYTES = 4 * 1024 ** 3         # all members together, uncompressed

DATA_EXTS = {".csv", ".tsv", ".txt", ".dat", ".parquet", ".pq", ".inter", ".user", ".item",
             ".gz", ".data", ".test"}
IGNORED_NAMES = {"readme", "readme.txt", "readme.md", "license", "license.txt", "links.csv",
                 "genome-scores.csv", "genome-tags.csv", "u.genre", "u.occupation", "u.info"}

ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western"]
DELIMITERS = [",", "\t", ";", "|"]


@dataclass
class RawData:
    """The user's tables as read, before any cleaning.

    ``sources`` maps a table name ("interactions", "users", "items", "tags") to the file
    name used in messages. ``format`` says which reader made it ("csv", "parquet",
    "ml-100k", "movielens", "recbole", "census", "mixed"). ``extra`` holds further tables
    (MovieLens tags); ``meta`` holds reader notes (e.g. RecBole column types).
    """
    interactions: pd.DataFrame
    users: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    sources: dict[str, str] = field(default_factory=dict)
    format: str = "csv"
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The present tables among interactions/users/items, in that order."""
        out = {"interactions": self.interactions}
        if self.users is not None:
            out["users"] = self.users
        if self.items is not None:
            out["items"] = self.items
        return out

    def source(self, table: str) -> str:
        return self.sources.get(table, table)

    def locate(self, column: str) -> str | None:
        """Which table holds ``column`` (interactions first, then users, then items)."""
        for name, df in self.tables().items():
            if column in df.columns:
                return name
        return None

    def all_columns(self) -> dict[str, list[str]]:
        return {name: [str(c) for c in df.columns] for name, df in self.tables().items()}


def _as_data_error(fn):
    """Turn reader-level exceptions (parser, encoding, csv, Arrow) into a DataError naming the file."""
    import functools

    @functools.wraps(fn)
    def wrapper(name, *args, **kwargs):
        try:
            return fn(name, *args, **kwargs)
        except DataError:
            raise
        except (csv.Error, UnicodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError,
                OSError, IndexError, KeyError, OverflowError) as e:
            raise DataError(f"the table cannot be read ({type(e).__name__}: {str(e).strip()[:200]})", file=str(name),
                            fix="export the data as CSV (comma separated, UTF-8) with a header line") from None
    return wrapper


# =====================================================================================
# public entry points
# =====================================================================================
def load_data(paths, *, sep: str | None = None) -> RawData:
    """Read one file, several files, or a folder (of a known format) into :class:`RawData`.

    ``sep`` forces the delimiter of generic text files (otherwise it is detected).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[tuple[str, bytes]] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise DataError("no such file or folder", file=str(p),
                            fix="check the path (a file, several files, or a folder of data files)")
        if p.is_dir():
            found = _folder_files(p)
            if not found:
                raise DataError("the folder holds no data files (.csv, .tsv, .parquet, .inter, u.data, ...)",
                                file=str(p), fix="point to the folder that holds the data files")
            files.extend(found)
        else:
            files.append(_read_path(p, p.name))
    return load_files(files, sep=sep)


def load_uploaded(files: list[tuple[str, bytes]], *, sep: str | None = None) -> RawData:
    """Same as :func:`load_data` for uploaded ``(name, bytes)`` files; ``.zip`` archives are
    opened in memory (members with absurd counts or sizes are rejected)."""
    flat: list[tuple[str, bytes]] = []
    for name, data in files:
        name = Path(str(name)).name
        if name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04" and not name.lower().endswith((".xlsx", ".parquet")):
            flat.extend(_unzip(name, data))
        else:
            flat.append((name, data))
    if not flat:
        raise DataError("no files were uploaded", fix="upload an interactions file (CSV, TSV or Parquet)")
    return load_files(flat, sep=sep)


def load_files(files: list[tuple[str, bytes]], *, sep: str | None = None) -> RawData:
    """Sort ``(name, bytes)`` files into tables and read them."""
    files = [(n, b) for n, b in files if Path(n).name.lower() not in IGNORED_NAMES]
    if not files:
        raise DataError("no data files were given", fix="give an interactions file (CSV, TSV or Parquet)")
    if len(files) > MAX_FILES:
        raise DataError(f"{len(files)} files is too many (at most {MAX_FILES})",
                        fix="give the interactions file and at most a users and an items file")
    names = {Path(n).name.lower(): (n, b) for n, b in files}
    if "u.data" in names:
        return _read_ml100k(names)
    if any(n.endswith(".inter") for n in names):
        return _read_recbole(files)
    if "columns.txt" in names and any(n.startswith("census-income") for n in names):
        from mtlrec.data.census import read_census_files
        return read_census_files(names)
    if "ratings.dat" in names and names["ratings.dat"][1][:4096].count(b"::") >= 3:
        return _read_ml1m(names)
    census = [n for n in names if n.startswith("census-income")]
    if census and "columns.txt" not in names:
        raise DataError("the Census-Income file has no header; its column names come from columns.txt",
                        file=names[census[0]][0], fix="give the folder that holds both files, or add columns.txt")
    if "ratings.csv" in names and ("movies.csv" in names or "tags.csv" in names):
        return _read_movielens(names)
    return _read_generic(files, sep=sep)


# =====================================================================================
# files and archives
# =====================================================================================
def _read_path(p: Path, display: str) -> tuple[str, bytes]:
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataError(f"the file is {size / 1024 ** 3:.1f} GB, more than the {MAX_FILE_BYTES / 1024 ** 3:.0f} GB limit",
                        file=display, fix="sample the interactions down or split the file")
    try:
        return display, p.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read the file ({e.strerror or e})", file=display,
                        fix="check that the file exists and is readable") from None


def _folder_files(folder: Path) -> list[tuple[str, bytes]]:
    def candidates(d: Path) -> list[Path]:
        out = []
        for f in sorted(d.iterdir()):
            if not f.is_file() or f.name.startswith("."):
                continue
            low = f.name.lower()
            if low in IGNORED_NAMES:
                continue
            if f.suffix.lower() in DATA_EXTS or low in {"u.data", "u.item", "u.user"} or low == "columns.txt":
                out.append(f)
        return out

    found = candidates(folder)
    if not found:  # e.g. an unpacked archive with one sub-folder
        subs = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
        if len(subs) == 1:
            found = candidates(subs[0])
    # u.data & co: skip the pre-made ML-100K splits (u1.base, ua.test) - they are not in DATA_EXTS anyway
    if len(found) > MAX_FILES:
        raise DataError(f"the folder holds {len(found)} data files (at most {MAX_FILES})", file=str(folder),
                        fix="point to a folder with the interactions file and at most a users and an items file")
    return [_read_path(f, f.name) for f in found]


def _unzip(name: str, data: bytes) -> list[tuple[str, bytes]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError("the archive is not a readable zip file", file=name,
                        fix="re-create the zip archive, or upload the CSV files themselves") from None
    members = [i for i in zf.infolist() if not i.is_dir() and "__MACOSX" not in i.filename
               and not Path(i.filename).name.startswith(".")]
    if len(members) > MAX_FILES:
        raise DataError(f"the archive holds {len(members)} files (at most {MAX_FILES})", file=name,
                        fix="zip only the interactions file and at most a users and an items file")
    total = 0
    for i in members:
        total += i.file_size
        if i.file_size > MAX_FILE_BYTES or total > MAX_TOTAL_BYTES:
            raise DataError(f"member '{i.filename}' unpacks to more than the size limit "
                            f"({MAX_FILE_BYTES / 1024 ** 3:.0f} GB per file, {MAX_TOTAL_BYTES / 1024 ** 3:.0f} GB in all)",
                            file=name, fix="upload a smaller sample of the data")
        if i.compress_size and i.file_size / max(i.compress_size, 1) > 1000 and i.file_size > 50 * 1024 ** 2:
            raise DataError(f"member '{i.filename}' has an absurd compression ratio (a zip bomb?)", file=name,
                            fix="upload the data files themselves")
    out = []
    for i in members:
        base = Path(i.filename).name
        low = base.lower()
        if low in IGNORED_NAMES:
            continue
        if Path(low).suffix in DATA_EXTS or low in {"u.data", "u.item", "u.user", "columns.txt"}:
            out.append((base, zf.read(i)))
    if not out:
        raise DataError("the archive holds no data files (.csv, .tsv, .parquet, .inter, u.data, ...)", file=name,
                        fix="zip the interactions file (and optionally users and items files)")
    return out


# =====================================================================================
# generic text tables
# =====================================================================================
_CTRL = bytes(range(0, 9)) + bytes([11, 12]) + bytes(range(14, 32)) + bytes([127])


def decode_check(name: str, data: bytes) -> tuple[bytes, str]:
    """Reject empty and non-text files; return (bytes without BOM / decompressed, encoding)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zipfile.BadZipFile) as e:
            raise DataError(f"the gzip file is damaged ({e})", file=name, fix="re-create the file") from None
    if not data[:65536].strip() and not data.strip():
        raise DataError("the file is empty", file=name,
                        fix="export the table again with a header line and at least one data row")
    head = data[:65536]
    if head[:4] == b"PAR1":
        raise DataError("this is a Parquet file with a text-file name", file=name,
                        fix="rename it to end in .parquet")
    if head[:4] == b"PK\x03\x04":
        raise DataError("this is a zip archive or an Excel workbook, not a table", file=name,
                        fix="save the sheet as CSV (File > Save as > CSV), or upload the .zip in the app")
    if b"\x00" in head:
        enc16 = None
        if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
            enc16 = "utf-16"
        if enc16 is None:
            raise DataError("this is not a text table (it holds binary bytes)", file=name,
                            fix="export the data as CSV (comma separated) in UTF-8")
        try:
            data = data.decode(enc16).encode("utf-8")
            head = data[:65536]
        except UnicodeDecodeError:
            raise DataError("this is not a text table (it holds binary bytes)", file=name,
                            fix="export the data as CSV (comma separated) in UTF-8") from None
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    ctrl = sum(head.count(bytes([c])) for c in _CTRL)
    if ctrl > 0.01 * len(head):
        raise DataError("this is not a text table (it holds control or binary bytes)", file=name,
                        fix="export the data as CSV (comma separated) in UTF-8")
    try:
        data.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        # Windows-1252 (Latin-1 plus curly quotes, dashes, euro sign) when it decodes, else Latin-1,
        # which decodes anything: there garbled bytes show up as C1 control characters (0x80-0x9f)
        try:
            data.decode("cp1252")
            encoding, c1 = "cp1252", 0
        except UnicodeDecodeError:
            encoding = "latin-1"
            c1 = sum(1 for b in head if 0x80 <= b <= 0x9f)
        high = sum(1 for b in head if b >= 0x80)
        if c1 > 0.01 * len(head) or high > 0.3 * len(head):
            raise DataError("this is not a text table (its bytes are neither UTF-8 nor Latin-1 text)", file=name,
                            fix="export the data as CSV in UTF-8")
    return data, encoding


def _header_fields(first_line: str, sep: str) -> list[str]:
    return next(csv.reader([first_line], delimiter=sep, skipinitialspace=True), [])


def sniff_delimiter(text_head: str) -> str | None:
    """The delimiter among , TAB ; | that splits the first lines into the same number (>1) of fields."""
    lines = [ln for ln in text_head.splitlines()[:50] if ln.strip()]
    if len(lines) > 1 and not text_head.endswith("\n"):
        lines = lines[:-1]  # the last line may be cut
    best, best_score = None, (0, 0)
    for d in DELIMITERS:
        counts = [len(r) for r in csv.reader(lines, delimiter=d)]
        if not counts:
            continue
        n = max(set(counts), key=counts.count)
        if n < 2:
            continue
        agree = counts.count(n) / len(counts)
        score = (agree >= 0.9, n if agree >= 0.9 else agree)
        if score > best_score:
            best, best_score = d, score
    return best


def _looks_numeric(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


@_as_data_error
def read_table(name: str, data: bytes, *, sep: str | None = None, header: bool = True,
               names: list[str] | None = None, min_columns: int = 2) -> pd.DataFrame:
    """Read one CSV/TSV/Parquet file with the checks every table needs."""
    low = name.lower()
    if low.endswith((".parquet", ".pq")) or data[:4] == b"PAR1":
        return _read_parquet(name, data, min_columns=min_columns)
    data, encoding = decode_check(name, data)
    head_text = data[:65536].decode(encoding, errors="replace")
    first_line = head_text.splitlines()[0] if head_text.splitlines() else ""
    given_sep = sep
    if sep is None:
        if low.endswith(".tsv"):
            sep = "\t"
        else:
            sep = sniff_delimiter(head_text)
            if sep is None:
                sep = "\t" if "\t" in first_line else ","
    if header:
        cols = _header_fields(first_line, sep)
        if len(cols) < min_columns:
            raise DataError(f"everything is in one column ('{first_line[:60]}'): the delimiter was not "
                            + (f"recognised (the given delimiter is {given_sep!r})" if given_sep else
                             "recognised (tried comma, tab, semicolon and pipe)"),
                            file=name, column=cols[0][:60] if cols else None,
                            fix="save the file as comma-separated CSV (or tab-separated TSV) with a header line")
        # a pandas export with its index: a first column without a name
        drop_index = len(cols) > 2 and not cols[0].strip() and all(c.strip() for c in cols[1:])
        # a delimiter at the end of every line: trailing empty names (their columns must be empty too)
        trailing = len(cols) - len("\t".join(c.strip() for c in cols).rstrip("\t").split("\t"))
        named = cols[1 if drop_index else 0: len(cols) - trailing]
        _check_header(name, named)
    else:
        drop_index, trailing = False, 0
    # European exports: ';' between fields and ',' as the decimal mark ("3,5")
    decimal = "," if sep == ";" and re.search(r"(^|;)-?\d+,\d+(;|$)", head_text, re.M) else "."
    try:
        df = pd.read_csv(io.BytesIO(data), sep=sep, encoding=encoding, header=0 if header else None,
                         names=names, skipinitialspace=True, low_memory=False, on_bad_lines="error",
                         engine="c", decimal=decimal)
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", file=name,
                        fix="export the table again with a header line and at least one data row") from None
    except pd.errors.ParserError as e:
        msg = str(e)
        m = re.search(r"line (\d+), saw (\d+)", msg)
        rows = [int(m.group(1)) - (1 if header else 0)] if m else None
        exp = re.search(r"Expected (\d+) fields", msg)
        what = (f"a row has {m.group(2)} fields where {exp.group(1)} were expected" if m and exp
                else f"the table cannot be parsed ({msg.strip()})")
        raise DataError(what, file=name, rows=rows,
                        fix="quote text that contains the delimiter, or remove the stray delimiters") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise DataError(f"the table cannot be read ({e})", file=name,
                        fix="export the data as CSV (comma separated) in UTF-8") from None
    if trailing:
        extra = df.iloc[:, df.shape[1] - trailing:]
        if extra.notna().any().any():
            pos = df.shape[1] - trailing + int(np.argmax(extra.notna().any().to_numpy())) + 1
            raise DataError(f"column {pos} of the header has no name", file=name,
                            rows=(np.flatnonzero(extra.notna().any(axis=1).to_numpy())[:10] + 1).tolist(),
                            fix="give every column a name in the first line")
        df = df.iloc[:, : df.shape[1] - trailing]
    if drop_index:
        df = df.iloc[:, 1:]
    if header:
        df.columns = [str(c).strip() for c in df.columns]
    if df.shape[1] < min_columns:
        raise DataError("everything is in one column: the delimiter was not recognised", file=name,
                        column=str(df.columns[0]) if df.shape[1] else None,
                        fix="save the file as comma-separated CSV (or tab-separated TSV)")
    df = _strip_strings(df)
    return df


def _check_header(name: str, cols: list[str]) -> None:
    cols = [c.strip() for c in cols]
    blank = [i + 1 for i, c in enumerate(cols) if not c]
    if blank:
        raise DataError(f"column {', '.join(map(str, blank))} of the header has no name", file=name,
                        fix="give every column a name in the first line")
    if all(_looks_numeric(c) for c in cols):
        raise DataError("the first line holds numbers, not column names: the header line is missing",
                        file=name, fix="add a first line with the column names, e.g. user_id,item_id,rating")
    seen: dict[str, int] = {}
    for c in cols:
        seen[c] = seen.get(c, 0) + 1
    dups = [c for c, n in seen.items() if n > 1]
    if dups:
        raise DataError(f"the column name is used {seen[dups[0]]} times in the header", file=name,
                        column=dups[0], fix="give every column a different name")


@_as_data_error
def _read_parquet(name: str, data: bytes, *, min_columns: int = 1) -> pd.DataFrame:
    if not data:
        raise DataError("the file is empty", file=name, fix="export the table again")
    try:
        df = pd.read_parquet(io.BytesIO(data))
    except Exception as e:  # pyarrow raises several types for damaged files
        raise DataError(f"this is not a readable Parquet file ({type(e).__name__}: {str(e)[:120]})", file=name,
                        fix="write the table again with pandas.DataFrame.to_parquet or export it as CSV") from None
    cols = [str(c) for c in df.columns]
    if len(set(cols)) != len(cols):
        dup = next(c for c in cols if cols.count(c) > 1)
        raise DataError("the column name is used twice", file=name, column=dup, fix="give every column a different name")
    if any(not c.strip() for c in cols):
        raise DataError("a column has no name", file=name, fix="give every column a name")
    df.columns = cols
    if not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index(drop=True)
    if df.shape[1] < min_columns:
        raise DataError(f"the table has only {df.shape[1]} column(s)", file=name,
                        fix="an interactions table needs at least a user id and an item id or a label")
    return df


def _strip_strings(df: pd.DataFrame) -> pd.DataFrame:
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
            stripped = s.str.strip() if pd.api.types.is_string_dtype(s.dtype) else s
            if pd.api.types.is_string_dtype(s.dtype):
                stripped = stripped.mask(stripped == "")
            df[c] = stripped
    return df


# =====================================================================================
# sorting generic files into tables
# =====================================================================================
_INTER_PAT = re.compile(r"(interaction|rating|event|click|log|inter\b|feedback|train|purchase|view)")
_USER_PAT = re.compile(r"^(users?|customers?|members?|visitors?)([\W_]|$)")
_ITEM_PAT = re.compile(r"^(items?|movies?|products?|catalog(ue)?|articles?|songs?|books?)([\W_]|$)")


def classify_name(name: str) -> str | None:
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


def _read_generic(files: list[tuple[str, bytes]], *, sep: str | None) -> RawData:
    if len(files) == 1:
        name, data = files[0]
        df = read_table(name, data, sep=sep)
        fmt = "parquet" if name.lower().endswith((".parquet", ".pq")) else "csv"
        return RawData(interactions=df, sources={"interactions": name}, format=fmt)
    roles: dict[str, tuple[str, bytes]] = {}
    unknown = []
    for name, data in files:
        r = classify_name(name)
        if r is None:
            unknown.append((name, data))
            continue
        if r in roles:
            raise DataError(f"two files look like the {r} table ('{roles[r][0]}' and '{name}')", file=name,
                            fix=f"give only one {r} file")
        roles[r] = (name, data)
    if unknown:
        if "interactions" not in roles and len(unknown) == 1:
            roles["interactions"] = unknown[0]
        else:
            raise DataError("cannot tell which table this file is", file=unknown[0][0],
                            fix="name the files interactions.csv, users.csv and items.csv (or ratings/users/items)")
    if "interactions" not in roles:
        raise DataError("no interactions file among " + ", ".join(n for n, _ in files),
                        fix="add the interactions file (name it interactions.csv or ratings.csv)")
    tables = {t: read_table(n, b, sep=sep) for t, (n, b) in roles.items()}
    fmts = {"parquet" if n.lower().endswith((".parquet", ".pq")) else "csv" for n, _ in roles.values()}
    return RawData(interactions=tables["interactions"], users=tables.get("users"), items=tables.get("items"),
                   sources={t: n for t, (n, _) in roles.items()}, format=fmts.pop() if len(fmts) == 1 else "mixed")


# =====================================================================================
# MovieLens
# =====================================================================================
@_as_data_error
def _read_headerless(name: str, data: bytes, sep: str, names: list[str], *, encoding: str | None = None) -> pd.DataFrame:
    data, enc = decode_check(name, data)
    try:
        df = pd.read_csv(io.BytesIO(data), sep=sep, header=None, names=names, encoding=encoding or enc,
                         engine="c" if len(sep) == 1 else "python", on_bad_lines="error",
                         quoting=csv.QUOTE_NONE, index_col=False)
    except pd.errors.ParserError as e:
        m = re.search(r"line (\d+)", str(e))
        raise DataError(f"the file does not have the expected {len(names)} '{sep}'-separated fields "
                        f"({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})", file=name,
                        rows=[int(m.group(1))] if m else None,
                        fix="use the original file of the dataset") from None
    if df.empty:
        raise DataError("the file has no data rows", file=name, fix="use the original file of the dataset")
    return _strip_strings(df)


def _read_ml100k(names: dict[str, tuple[str, bytes]]) -> RawData:
    n, b = names["u.data"]
    inter = _read_headerless(n, b, "\t", ["user_id", "item_id", "rating", "timestamp"])
    if inter["rating"].isna().all() or inter.shape[1] != 4:
        raise DataError("u.data must have 4 tab-separated fields: user id, item id, rating, timestamp", file=n,
                        fix="use the original u.data of MovieLens 100K")
    sources = {"interactions": n}
    items = users = None
    if "u.item" in names:
        n2, b2 = names["u.item"]
        cols = ["item_id", "title", "release_date", "video_release_date", "imdb_url"] + [f"g{i}" for i in range(19)]
        raw_items = _read_headerless(n2, b2, "|", cols, encoding="latin-1")
        flags = raw_items[[f"g{i}" for i in range(19)]].fillna(0).to_numpy(dtype=np.int8) == 1
        genre_names = np.array(ML100K_GENRES, dtype=object)
        genres = ["|".join(genre_names[row]) for row in flags]  # 1,682 items: a short loop
        items = raw_items[["item_id", "title", "release_date", "video_release_date", "imdb_url"]].copy()
        items["genres"] = pd.Series(genres, index=items.index, dtype="str").mask(lambda s: s == "")
        items = items.dropna(axis=1, how="all")
        sources["items"] = n2
    if "u.user" in names:
        n3, b3 = names["u.user"]
        users = _read_headerless(n3, b3, "|", ["user_id", "age", "gender", "occupation", "zip_code"])
        sources["users"] = n3
    return RawData(interactions=inter, users=users, items=items, sources=sources, format="ml-100k")


def _read_ml1m(names: dict[str, tuple[str, bytes]]) -> RawData:
    """MovieLens 1M/10M: '::'-separated ratings.dat, movies.dat (latin-1), users.dat (1M only)."""
    def read(key, cols):
        n, b = names[key]
        return n, _read_headerless(n, b.replace(b"::", b"\t"), "\t", cols, encoding="latin-1")
    n, inter = read("ratings.dat", ["user_id", "item_id", "rating", "timestamp"])
    sources, items, users = {"interactions": n}, None, None
    if "movies.dat" in names:
        sources["items"], items = read("movies.dat", ["item_id", "title", "genres"])
    if "users.dat" in names:
        sources["users"], users = read("users.dat", ["user_id", "gender", "age", "occupation", "zip_code"])
    return RawData(interactions=inter, users=users, items=items, sources=sources, format="ml-1m")


def _read_movielens(names: dict[str, tuple[str, bytes]]) -> RawData:
    n, b = names["ratings.csv"]
    inter = read_table(n, b)
    sources = {"interactions": n}
    items = None
    extra: dict[str, pd.DataFrame] = {}
    meta: dict = {}
    if "movies.csv" in names:
        n2, b2 = names["movies.csv"]
        items = read_table(n2, b2)
        sources["items"] = n2
    users = None
    if "users.csv" in names:  # not part of MovieLens, but a users table may be added
        sources["users"] = names["users.csv"][0]
        users = read_table(*names["users.csv"])
    if "tags.csv" in names:
        n3, b3 = names["tags.csv"]
        tags = read_table(n3, b3)
        sources["tags"] = n3
        extra["tags"] = tags
        key = [c for c in ("userId", "movieId") if c in tags.columns and c in inter.columns]
        if len(key) == 2:
            pairs = tags[key].drop_duplicates()
            pairs = pairs.assign(tagged=np.int8(1))
            merged = inter[key].merge(pairs, on=key, how="left")
            inter = inter.copy()
            inter["tagged"] = merged["tagged"].fillna(0).astype("int8").to_numpy()
            meta["tagged_pairs"] = int(len(pairs))
            meta["tagged_pairs_without_rating"] = int(len(pairs) - int(inter["tagged"].sum()))
    return RawData(interactions=inter, users=users, items=items, sources=sources, format="movielens",
                   extra=extra, meta=meta)


# =====================================================================================
# RecBole atomic files
# =====================================================================================
RECBOLE_TYPES = ("token", "float", "token_seq", "float_seq")
_TEXTY = re.compile(r"(title|name|desc|text|overview|summary|plot|review|comment|abstract|content)")


@_as_data_error
def _read_recbole_file(name: str, data: bytes) -> tuple[pd.DataFrame, dict[str, str]]:
    data, encoding = decode_check(name, data)
    first = data.split(b"\n", 1)[0].decode(encoding).rstrip("\r")
    fields = first.split("\t")
    cols, types = [], {}
    for f in fields:
        if ":" not in f:
            raise DataError(f"the RecBole header field '{f}' has no ':type' (expected name:token, name:float, ...)",
                            file=name, column=f, fix="write the header as name:type fields, e.g. user_id:token")
        col, typ = f.rsplit(":", 1)
        col, typ = col.strip(), typ.strip()
        if typ not in RECBOLE_TYPES:
            raise DataError(f"unknown RecBole type '{typ}' (known: {', '.join(RECBOLE_TYPES)})", file=name,
                            column=col, fix="use token, float, token_seq or float_seq")
        cols.append(col)
        types[col] = typ
    _check_header(name, cols)
    dtypes = {c: ("float64" if t == "float" else "str") for c, t in types.items()}
    try:
        df = pd.read_csv(io.BytesIO(data), sep="\t", header=0, names=cols, dtype=dtypes, encoding=encoding,
                         quoting=csv.QUOTE_NONE, on_bad_lines="error", keep_default_na=False,
                         na_values={c: [""] for c in cols})
    except (pd.errors.ParserError, ValueError) as e:
        m = re.search(r"line (\d+)", str(e))
        raise DataError(f"the RecBole file cannot be parsed ({str(e).strip()[:160]})", file=name,
                        rows=[int(m.group(1)) - 1] if m else None,
                        fix="every row needs one tab-separated value per header field; float columns need numbers") from None
    for c, t in types.items():
        # token lists (genres, tags) become '|'-joined multi-label text; titles and other prose keep their spaces
        if t == "token_seq" and not _TEXTY.search(c.lower()):
            df[c] = df[c].str.split().str.join("|")
    return _strip_strings(df), types


def _read_recbole(files: list[tuple[str, bytes]]) -> RawData:
    by_ext: dict[str, tuple[str, bytes]] = {}
    for n, b in files:
        ext = Path(n).suffix.lower()
        if ext in (".inter", ".user", ".item"):
            if ext in by_ext:
                raise DataError(f"two RecBole {ext} files ('{by_ext[ext][0]}' and '{n}')", file=n,
                                fix=f"give one {ext} file (RecBole's benchmark splits are not read)")
            by_ext[ext] = (n, b)
    tables, sources, types = {}, {}, {}
    for ext, table in ((".inter", "interactions"), (".user", "users"), (".item", "items")):
        if ext in by_ext:
            n, b = by_ext[ext]
            tables[table], types[table] = _read_recbole_file(n, b)
            sources[table] = n
    return RawData(interactions=tables["interactions"], users=tables.get("users"), items=tables.get("items"),
                   sources=sources, format="recbole", meta={"recbole_types": types})


def describe_sources(raw: RawData) -> str:
    return ", ".join(f"{t}: {n}" for t, n in raw.sources.items())


def iter_tables(raw: RawData) -> Iterable[tuple[str, pd.DataFrame]]:
    return raw.tables().items()
