"""Reading interaction data: generic CSV/TSV/Parquet files and known public formats.

Everything goes through one path: a list of ``(file name, bytes)``. ``load_data`` reads
files or folders from disk into that list, ``load_uploaded`` takes the app's uploads
(zip archives are opened in memory). Each file is then identified - by its content first, so
that renamed files work too, then by its name, then (a generic table among several files) by its
id columns - and read:

* MovieLens 100K: ``u.data`` (interactions: 4 tab-separated numbers), ``u.item`` (items: 24
  '|'-separated Latin-1 fields; the 19 genre flags become one pipe-joined ``genres`` column),
  ``u.user`` (users: 5 '|'-separated fields). ``u.genre``, ``u.occupation`` and ``u.info`` are
  skipped with a note. The ready-made splits ``uN.base`` / ``uN.test`` (N = 1..5, a, b): one pair
  without ``u.data`` (the two files, or a folder or zip holding only that pair) is read as a
  *predefined split* (base = train, test = test; see below); beside ``u.data`` they are skipped.
* MovieLens 1M / 10M: ``ratings.dat``, ``movies.dat``, ``users.dat`` ('::'-separated; the
  10M ``tags.dat`` is skipped with a note).
* MovieLens latest / 25M: ``ratings.csv`` (interactions), ``movies.csv`` (items),
  ``tags.csv``: kept whole as ``raw.extra["tags"]`` *and* turned into a per-(user, item)
  0/1 column ``tagged`` on the ratings (1 when that user tagged that movie).
* RecBole atomic files: ``*.inter`` / ``*.user`` / ``*.item`` with ``name:type`` headers.
  ``token_seq`` columns (space separated) are re-joined with ``|`` so that they read as
  multi-label text like MovieLens genres; the original types are in ``raw.meta["recbole_types"]``.
* Census-Income KDD: ``census-income*.gz|.data|.test`` plus ``columns.txt`` (see ``census.py``).
* Generic files, named ``interactions*``/``ratings*``/``events*`` (interactions),
  ``users*``/``user*`` (users), ``items*``/``item*``/``movies*``/``products*`` (items); under
  any other name a table with a user id and an item id column is the interactions, one with
  only a user id (item id) column the users (items). A single generic file is the interactions.

Predefined splits: :func:`load_split_files` reads one file per split (train, test, optional valid;
each identified and read like a single interactions file, the side tables users/items beside the
train file), checks that their columns agree and concatenates them in the order train, valid, test
with a column ``raw.meta["split_column"]`` (normally "split") holding train / valid / test.
``raw.meta["split_files"]`` lists ``{"split", "file", "first_row_id", "rows"}``: row ids (0-based
positions in the concatenation) ``first_row_id`` ... ``first_row_id + rows - 1`` come from ``file``.

``raw.meta["layouts"]`` says how each table was recognised and ``raw.meta["ignored"]`` which
files were skipped and why; :func:`reading_notes` turns both into lines for the app.
``UPLOAD_EXTENSIONS`` lists what the app's uploader accepts.

Sizes are bounded by :class:`Limits` (``Limits.uploads()`` for the app, smaller than
``Limits.local()``): archives and gzip files are inflated in chunks up to the limit, and the memory to
parse a table is estimated from rows x columns (a Parquet file's footer) before pandas runs. A local
uncompressed text file of ``MMAP_MIN_BYTES`` or more is read from a read-only memory map of the file
(:class:`_Mapped`, closed when the load ends) instead of bytes: the readers slice it, never copy it whole.

Every problem becomes a :class:`mtlrec.errors.DataError` naming the file.
"""
from __future__ import annotations

import codecs
import contextlib
import contextvars
import csv
import gzip
import io
import mmap
import re
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from mtlrec.errors import DataError

TABLES = ("interactions", "users", "items")

MB, GB = 1024 ** 2, 1024 ** 3
# Size limits. Local files (load_data: the command line, training from a config) may be larger than
# uploads (load_uploaded: the app, where one server holds the data of every browser tab). Bytes are
# counted uncompressed: zip members and gzip files are inflated in chunks and reading stops at the
# limit; the memory to parse a table is estimated (rows x columns) before pandas builds it.
MAX_FILES = 64                          # files in one upload / folder / archive
MAX_FILE_BYTES = 2 * GB                 # local: one file or archive member, uncompressed
MAX_TOTAL_BYTES = 4 * GB                # local: all files together, uncompressed
MAX_READ_BYTES = 12 * GB                # local: estimated memory to parse all tables
UPLOAD_MAX_BYTES = 300 * MB             # uploads: all files together (so each too), uncompressed
UPLOAD_MAX_READ_BYTES = 1 * GB          # uploads: estimated memory to parse all tables
# what pandas' C parser holds per parsed value at its peak (tokens, then columns), measured on
# numeric and short-string CSVs: 20-31 bytes; the text itself is counted on top
BYTES_PER_VALUE = 24
_CHUNK = 4 * MB                         # inflating archives: bytes per read
# A local uncompressed text file (CSV, TSV, .dat, ...) this large is read as a read-only memory map
# of the file instead of bytes: its pages are file-backed (the kernel drops them under memory
# pressure and reads them again), so the text is never held whole in the process's own memory and
# a file larger than memory streams through the page cache; only the parsed table has to fit. Such a
# file has no byte cap (MAX_FILE_BYTES / MAX_TOTAL_BYTES); the parse estimate (MAX_READ_BYTES) applies.
MMAP_MIN_BYTES = 64 * MB
_SLICE = 16 * MB                        # scanning a memory-mapped file: bytes per slice
EXCEL_EXTS = (".xlsx", ".xlsm", ".xlsb", ".xls", ".xltx", ".ods")
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"   # legacy .xls (and other old Office files)

DATA_EXTS = {".csv", ".tsv", ".txt", ".dat", ".parquet", ".pq", ".inter", ".user", ".item",
             ".gz", ".data", ".test"}
# What the app's uploader accepts (st.file_uploader(type=...)): every extension of the layouts the
# README lists, plus the MovieLens 100K side files (read and ignored with a note) and zip archives.
UPLOAD_EXTENSIONS = ("csv", "tsv", "txt", "parquet", "pq", "zip", "gz",     # generic tables, archives
                     "xlsx", "xls",     # accepted so that the reader explains: save the sheet as CSV
                     "data", "item", "user", "genre", "occupation", "info",  # MovieLens 100K u.*
                     "dat",                                                  # MovieLens 1M / 10M
                     "inter",                                                # RecBole (.user, .item above)
                     "test",                                                 # Census-Income KDD
                     "base")                                                 # MovieLens 100K u1.base
# files of known datasets that are not tables to read: name -> why (shown as a note)
IGNORED_WHY = {
    "u.genre": "the MovieLens 100K list of genre names (u.item already holds each movie's genres)",
    "u.occupation": "the MovieLens 100K list of occupations (u.user already holds each user's)",
    "u.info": "the MovieLens 100K counts of users, items and ratings",
    "links.csv": "MovieLens links to IMDb and TMDb ids",
    "genome-scores.csv": "the MovieLens tag genome (not used)",
    "genome-tags.csv": "the MovieLens tag genome (not used)",
    "readme": "documentation", "readme.txt": "documentation", "readme.md": "documentation",
    "license": "documentation", "license.txt": "documentation",
}
IGNORED_NAMES = set(IGNORED_WHY)
_ML100K_SPLIT = re.compile(r"^u([1-5]|a|b)\.(base|test)$")   # u1.base ... ub.test: ready-made splits


def ml100k_split_part(name: str) -> tuple[str, str] | None:
    """("1", "base") for ``u1.base``: a MovieLens 100K ready-made split file (None: another file)."""
    m = _ML100K_SPLIT.match(Path(str(name)).name.lower())
    return (m.group(1), m.group(2)) if m else None


def ignored_why(name: str) -> str | None:
    """Why a file of a known dataset is skipped (None: it is read)."""
    low = Path(str(name)).name.lower()
    if low in IGNORED_WHY:
        return IGNORED_WHY[low]
    if _ML100K_SPLIT.match(low):
        return "a ready-made MovieLens 100K split (u.data holds all the ratings)"
    return None


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


class _MapReader(io.RawIOBase):
    """A read-only binary file over a :class:`_Mapped` text (from its start): what pandas parses."""

    def __init__(self, mapped: "_Mapped"):
        super().__init__()
        self._m, self._pos = mapped, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        chunk = self._m[self._pos: self._pos + len(b)]
        b[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._m)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


class _Mapped:
    """A local file's bytes as a read-only memory map, from ``start`` on (e.g. past a BOM).

    What the readers use of ``bytes`` works without a copy of the whole file: a slice gives the
    bytes of that slice only, ``len``, ``count`` / ``find`` / ``startswith`` / ``endswith``
    (``count`` in slices), and :meth:`open` a binary file for pandas. The map is closed when the
    load that opened it ends (``_Budget.close``)."""

    def __init__(self, mm: mmap.mmap, start: int = 0):
        self.mm, self.start = mm, start

    def __len__(self) -> int:
        return len(self.mm) - self.start

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, key):
        if isinstance(key, slice):
            a, b, step = key.indices(len(self))
            part = self.mm[self.start + a: self.start + max(a, b)]
            return part if step == 1 else part[::step]
        if key < 0:
            key += len(self)
        if not 0 <= key < len(self):
            raise IndexError("index out of range")
        return self.mm[self.start + key]

    def _span(self, start, end) -> tuple[int, int]:
        a, b, _ = slice(start, end).indices(len(self))
        return self.start + a, self.start + max(a, b)

    def find(self, sub: bytes, start=None, end=None) -> int:
        a, b = self._span(start, end)
        k = self.mm.find(sub, a, b)
        return k - self.start if k >= 0 else -1

    def count(self, sub: bytes, start=None, end=None) -> int:
        a, b = self._span(start, end)
        if len(sub) != 1:            # (only single bytes are counted in slices)
            n, k = 0, self.mm.find(sub, a, b)
            while k >= 0:
                n, k = n + 1, self.mm.find(sub, k + len(sub), b)
            return n
        return sum(self.mm[k: min(b, k + _SLICE)].count(sub) for k in range(a, b, _SLICE))

    def startswith(self, prefix: bytes) -> bool:
        return self[: len(prefix)] == prefix

    def endswith(self, suffix: bytes) -> bool:
        return len(self) >= len(suffix) and self[len(self) - len(suffix):] == suffix

    def after(self, n: int) -> "_Mapped":
        """The text without its first ``n`` bytes (the same map, no copy)."""
        return _Mapped(self.mm, self.start + n)

    def open(self) -> io.BufferedReader:
        return io.BufferedReader(_MapReader(self), buffer_size=MB)


def _slices(data, size: int | None = None):
    """``data`` (bytes or a :class:`_Mapped`) in consecutive byte slices (of ``_SLICE`` bytes)."""
    size = size or _SLICE
    for k in range(0, len(data), size):
        yield data[k: k + size]


def _open(data) -> io.BufferedIOBase:
    """A binary file of ``data`` for pandas: over the map itself for a :class:`_Mapped` (no copy)."""
    return data.open() if isinstance(data, _Mapped) else io.BytesIO(data)


def _after(data, n: int):
    """``data[n:]`` without copying a memory-mapped file."""
    return data.after(n) if isinstance(data, _Mapped) else data[n:]


def _is_blank(data) -> bool:
    """Whether ``data`` holds only white space (a memory-mapped file: slice by slice)."""
    if isinstance(data, _Mapped):
        return all(not part.strip() for part in _slices(data))
    return not data.strip()


def _mapped_copy(pieces) -> "_Mapped | bytes":
    """``pieces`` (bytes) written to an unnamed temporary file, mapped read-only: the rewritten text
    of a memory-mapped file (UTF-16 as UTF-8, MovieLens '::' as tabs) without holding it in memory."""
    with tempfile.TemporaryFile(prefix="mtlrec-read-") as fh:
        for piece in pieces:
            fh.write(piece)
        fh.flush()
        if fh.tell() == 0:
            return b""
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    mapped = _Mapped(mm)
    _budget().maps.append(mapped)
    return mapped


def _replace(data, old: bytes, new: bytes):
    """``data.replace(old, new)``; a memory-mapped file line-block by line-block into a mapped copy."""
    if not isinstance(data, _Mapped):
        return data.replace(old, new)

    def pieces():
        carry = b""
        for part in _slices(data):
            part = carry + part
            cut = part.rfind(b"\n") + 1
            carry = part[cut:]
            if cut:
                yield part[:cut].replace(old, new)
        yield carry.replace(old, new)
    return _mapped_copy(pieces())


def _memory_error(name: str) -> DataError:
    lim = _budget().limits
    return DataError("there is not enough memory to read the table (it is too large)", file=name, fix=lim.fix)


def _as_data_error(fn):
    """Turn reader-level exceptions (parser, encoding, csv, Arrow) into a DataError naming the file."""
    import functools

    @functools.wraps(fn)
    def wrapper(name, *args, **kwargs):
        try:
            return fn(name, *args, **kwargs)
        except DataError:
            raise
        except MemoryError:
            raise _memory_error(str(name)) from None
        except (csv.Error, UnicodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError,
                OSError, IndexError, KeyError, OverflowError) as e:
            raise DataError(f"the table cannot be read ({type(e).__name__}: {str(e).strip()[:200]})", file=str(name),
                            fix="export the data as CSV (comma separated, UTF-8) with a header line") from None
    return wrapper


# =====================================================================================
# size limits
# =====================================================================================
def _size(n: float) -> str:
    return f"{n / GB:.1f} GB" if n >= GB else f"{n / MB:.0f} MB" if n >= MB else f"{n / 1024:.0f} KB"


@dataclass(frozen=True)
class Limits:
    """How much one read may take: uncompressed bytes of one file and of all files, and the
    estimated memory to parse all tables. :meth:`local` for files on disk, :meth:`uploads` for the
    app's uploads (smaller; never larger than the local ones)."""
    file_bytes: int
    total_bytes: int
    read_bytes: int
    upload: bool = False

    @classmethod
    def local(cls) -> "Limits":
        return cls(MAX_FILE_BYTES, MAX_TOTAL_BYTES, MAX_READ_BYTES)

    @classmethod
    def uploads(cls) -> "Limits":
        return cls(min(MAX_FILE_BYTES, UPLOAD_MAX_BYTES), min(MAX_TOTAL_BYTES, UPLOAD_MAX_BYTES),
                   min(MAX_READ_BYTES, UPLOAD_MAX_READ_BYTES), upload=True)

    @property
    def where(self) -> str:
        return "uploads" if self.upload else "local files"

    def bytes_text(self) -> str:
        if self.file_bytes >= self.total_bytes:
            return f"{_size(self.total_bytes)} uncompressed in all"
        return f"{_size(self.file_bytes)} per file and {_size(self.total_bytes)} in all, uncompressed"

    @property
    def fix(self) -> str:
        if self.upload:
            return (f"for data this large use the command line: python -m mtlrec prepare FILES_OR_ZIP --out DIR "
                    f"(local files may hold {_size(MAX_FILE_BYTES)} each, uncompressed CSV/TSV files more); "
                    f"or upload a sample of the rows")
        return "sample the rows (e.g. a subset of users, or the most recent interactions) or split the file"


class _Budget:
    """What one load has taken so far against its :class:`Limits`."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.bytes = 0          # uncompressed bytes of the files read
        self.read = 0           # estimated memory to parse the tables read
        self.maps: list[_Mapped] = []   # memory-mapped files of this load, closed when it ends

    def close(self) -> None:
        """Close the memory maps of this load (their file handles with them)."""
        maps, self.maps = self.maps, []
        for m in maps:
            with contextlib.suppress(BufferError, ValueError, OSError):
                m.mm.close()

    def too_big(self, name: str, shown: str) -> DataError:
        """``shown`` says what is too big and how big, e.g. "member 'x.csv' unpacks to 2.0 GB"."""
        lim = self.limits
        before = f" (after {_size(self.bytes)} of other files)" if self.bytes else ""
        return DataError(f"{shown}{before}: over the size limit for {lim.where} ({lim.bytes_text()})",
                         file=name, fix=lim.fix)

    def room(self) -> int:
        """The most bytes the next file may have."""
        return max(0, min(self.limits.file_bytes, self.limits.total_bytes - self.bytes))

    def take_bytes(self, name: str, n: int, shown: str) -> None:
        if n > self.room():
            raise self.too_big(name, shown)
        self.bytes += n

    def take_read(self, name: str, rows: int, columns: int, extra: int) -> None:
        """Account for parsing a table of ``rows`` x ``columns`` (+ ``extra`` bytes of text/data)."""
        est = extra + rows * columns * BYTES_PER_VALUE
        lim = self.limits
        if self.read + est > lim.read_bytes:
            before = f" (with the tables read before it, {_size(self.read + est)})" if self.read else ""
            raise DataError(f"the table is too large to read: about {rows:,} rows × {columns:,} columns would take "
                            f"about {_size(est)} of memory{before}, more than the {_size(lim.read_bytes)} "
                            f"allowed for {lim.where}", file=name, fix=lim.fix)
        self.read += est


_BUDGET: contextvars.ContextVar = contextvars.ContextVar("mtlrec_read_budget", default=None)


@contextlib.contextmanager
def _reading(limits: Limits | None):
    """Run a load under ``limits`` (None: inside a load, its budget; else local limits)."""
    if limits is None and _BUDGET.get() is not None:
        yield _BUDGET.get()
        return
    budget = _Budget(limits or Limits.local())
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)
        budget.close()


def _budget() -> _Budget:
    """The budget of the load in progress; a lone reader call (read_table) gets local limits."""
    b = _BUDGET.get()
    return b if b is not None else _Budget(Limits.local())


def _inflate(read, name: str, shown: str, budget: _Budget) -> bytes:
    """Read a decompressing stream in chunks; stop (DataError) as soon as it passes the budget."""
    room = budget.room()
    buf = io.BytesIO()
    while True:
        chunk = read(_CHUNK)
        if not chunk:
            break
        if buf.tell() + len(chunk) > room:
            raise budget.too_big(name, f"{shown} more than {_size(room)}")
        buf.write(chunk)
    budget.take_bytes(name, buf.tell(), f"{shown} {_size(buf.tell())}")
    return buf.getvalue()


def _take_file(budget: _Budget, name: str, data: bytes) -> None:
    """Charge a file's bytes; a gzip file only has to fit one file's limit (it is charged unpacked);
    a memory-mapped file is not held in memory and is not charged (its parse estimate is)."""
    if isinstance(data, _Mapped):
        return
    if data[:2] == b"\x1f\x8b":
        if len(data) > budget.limits.file_bytes:
            raise budget.too_big(name, f"the file is {_size(len(data))}")
    else:
        budget.take_bytes(name, len(data), f"the file is {_size(len(data))}")


def _check_parse_size(name: str, data: bytes) -> None:
    """Estimate rows x columns of a text table before pandas parses it; DataError past the budget."""
    rows = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    end = data.find(b"\n", 0, MB)
    first = data[: end if end >= 0 else MB]
    columns = 1 + max(first.count(d) for d in (b",", b"\t", b";", b"|"))
    # the text itself is counted unless it is memory-mapped (file-backed pages, not the process's memory)
    _budget().take_read(name, rows, columns, 0 if isinstance(data, _Mapped) else len(data))


def _excel_error(name: str) -> DataError:
    return DataError("Excel workbooks are not read", file=name,
                     fix="save the sheet as CSV (File → Save as → CSV UTF-8)")


def _tables_only(files):
    """(the files that may hold a table, {name: why} of those skipped: readmes, licences, checksums);
    an Excel workbook is an error that says to save the sheet as CSV."""
    kept, ignored = [], {}
    for n, b in files:
        why = ignored_why(n)
        if why:
            ignored[Path(str(n)).name] = why
        elif _is_excel(n, b):
            raise _excel_error(Path(str(n)).name)
        else:
            kept.append((n, b))
    return kept, ignored


def _is_excel(name: str, data: bytes) -> bool:
    return Path(str(name)).suffix.lower() in EXCEL_EXTS or data[:8] == _OLE2


def upload_caption(per_file_mb: float) -> str:
    """The uploader's visible caption (markdown): the limits and what to do with larger data or Excel
    workbooks (``per_file_mb``: Streamlit's server.maxUploadSize, the cap on each file as sent)."""
    lim = Limits.uploads()
    return (f"Up to {per_file_mb:.0f} MB per file and {_size(lim.total_bytes)} uncompressed in all (zip and gzip "
            f"contents count unpacked); for larger data use the command line: `python -m mtlrec prepare`. "
            f"Excel workbooks: save the sheet as CSV UTF-8 first.")


def upload_refused_text(per_file_mb: float) -> str:
    """What the app says, in words, when the browser refused a chosen file before sending it: over
    Streamlit's server.maxUploadSize (``per_file_mb``, the cap on each file as sent) or of a type the
    uploader does not take. The uploader itself marks such a file with a red icon only."""
    lim = Limits.uploads()
    return (f"A file marked in red above was not uploaded (the reason is beside it): uploads take files of up to "
            f"{per_file_mb:.0f} MB each and {_size(lim.total_bytes)} uncompressed in all, of the types listed. "
            f"Fix: {lim.fix}; remove the red file with its ×.")


# =====================================================================================
# public entry points
# =====================================================================================
def load_data(paths, *, sep: str | None = None, limits: Limits | None = None) -> RawData:
    """Read one file, several files, a folder (of a known format) or a zip into :class:`RawData`.

    ``sep`` forces the delimiter of generic text files (otherwise it is detected). ``limits``:
    the sizes allowed (default :meth:`Limits.local`, larger than the app's uploads).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    with _reading(limits or Limits.local()):
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
            elif p.suffix.lower() == ".zip":
                files.extend(_unzip(p.name, _read_path(p, p.name, charge=False)))
            else:
                files.append(_read_path(p, p.name))
        return load_files(files, sep=sep)


def load_uploaded(files: list[tuple[str, bytes]], *, sep: str | None = None,
                  limits: Limits | None = None) -> RawData:
    """Same as :func:`load_data` for uploaded ``(name, bytes)`` files; ``.zip`` archives are
    opened in memory, their members inflated in chunks up to the limits. ``limits``: default
    :meth:`Limits.uploads` (smaller than for local files)."""
    with _reading(limits or Limits.uploads()) as budget:
        flat: list[tuple[str, bytes]] = []
        for name, data in files:
            name = Path(str(name)).name
            low = name.lower()
            if _is_excel(name, data):
                raise _excel_error(name)
            if low.endswith(".zip") or data[:4] == b"PK\x03\x04" and not low.endswith((".parquet", ".pq")):
                flat.extend(_unzip(name, data))
            else:
                _take_file(budget, name, data)
                flat.append((name, data))
        if not flat:
            raise DataError("no files were uploaded", fix="upload an interactions file (CSV, TSV or Parquet)")
        return load_files(flat, sep=sep)


def load_files(files: list[tuple[str, bytes]], *, sep: str | None = None, limits: Limits | None = None) -> RawData:
    """Sort ``(name, bytes)`` files into tables and read them.

    Each file is identified by its content first (the headerless MovieLens layouts, RecBole
    headers), then by its name, then, for a generic table among several files, by its columns.
    ``raw.meta["layouts"]`` says how each table was recognised and ``raw.meta["ignored"]`` which
    files were skipped and why (see :func:`reading_notes`). ``limits``: inside :func:`load_data` /
    :func:`load_uploaded` theirs, else :meth:`Limits.local`.
    """
    with _reading(limits):
        return _load_files(files, sep=sep)


def _load_files(files: list[tuple[str, bytes]], *, sep: str | None) -> RawData:
    split_parts: dict[str, dict[str, tuple[str, bytes]]] = {}     # "1" -> {"base": file, "test": file}
    for n, b in files:
        part = ml100k_split_part(n)
        if part:
            split_parts.setdefault(part[0], {})[part[1]] = (n, b)
    with_udata = any(Path(str(n)).name.lower() == "u.data" for n, _ in files)
    if split_parts and not with_udata:
        return _ml100k_split(split_parts, [(n, b) for n, b in files if not ml100k_split_part(n)], sep=sep)
    files, ignored = _tables_only(files)
    if not files:
        skipped = " (" + "; ".join(f"{k}: {v}" for k, v in ignored.items()) + ")" if ignored else ""
        raise DataError("no data table among the files" + skipped,
                        file=", ".join(ignored) or None,
                        fix="give an interactions file (CSV, TSV, Parquet, MovieLens u.data / ratings.dat, "
                            "RecBole .inter), or a zip of the dataset folder")
    if len(files) > MAX_FILES:
        raise DataError(f"{len(files)} files is too many (at most {MAX_FILES})",
                        fix="give the interactions file and at most a users and an items file")
    names = {Path(n).name.lower(): (n, b) for n, b in files}
    if "columns.txt" in names and any(n.startswith("census-income") for n in names):
        from mtlrec.data.census import read_census_files
        raw = read_census_files(names)
    else:
        census = [n for n in names if n.startswith("census-income")]
        if census and "columns.txt" not in names:
            raise DataError("the Census-Income file has no header; its column names come from columns.txt",
                            file=names[census[0]][0], fix="give the folder that holds both files, or add columns.txt")
        raw = _read_identified(files, sep=sep)
    for table, df in raw.tables().items():
        if len(df) == 0:        # the same words as validate(): the app and the command line agree
            raise DataError("the file has a header but no data rows", file=raw.source(table),
                            fix="export the table again with its data rows")
    ignored.update(raw.meta.pop("ignored", {}))
    if ignored:
        raw.meta["ignored"] = ignored
    return raw


def reading_notes(raw: RawData) -> list[str]:
    """One line per file: which table it became and how it was recognised, then the skipped files."""
    layouts = raw.meta.get("layouts", {})
    lines = []
    for table, name in raw.sources.items():
        how = layouts.get(table)
        lines.append(f"{name} → {table}" + (f" ({how})" if how else ""))
    parts = raw.meta.get("split_files")
    if parts:
        lines.append("a predefined split: " + ", ".join(f"{p['file']} = {p['split']}" for p in parts)
                     + ("" if any(p["split"] == "valid" for p in parts) else " (valid is carved from train)")
                     + f"; column '{raw.meta.get('split_column')}' says which")
    for name, why in raw.meta.get("ignored", {}).items():
        lines.append(f"{name} ignored: {why}")
    return lines


# =====================================================================================
# files and archives
# =====================================================================================
def _read_path(p: Path, display: str, *, charge: bool = True) -> tuple[str, bytes] | bytes:
    """``(display, bytes)`` of a file on disk within the budget (``charge=False``: only the bytes, e.g. a
    zip whose members are charged when inflated, still at most one file's limit)."""
    size = p.stat().st_size
    budget = _budget()
    if charge and size >= max(1, MMAP_MIN_BYTES) and not budget.limits.upload and _mappable(p):
        return display, _map_file(p, display, budget)
    if size > budget.limits.file_bytes:          # before reading a byte
        raise budget.too_big(display, f"the file is {_size(size)}")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read the file ({e.strerror or e})", file=display,
                        fix="check that the file exists and is readable") from None
    if not charge:
        return data
    _take_file(budget, display, data)
    return display, data


def _mappable(p: Path) -> bool:
    """Whether a local file is read as a memory map: an uncompressed text file (not zip, gzip,
    Parquet or Excel, by its name and by its first bytes)."""
    if p.suffix.lower() in (".zip", ".gz", ".parquet", ".pq") + EXCEL_EXTS:
        return False
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return False        # _read_path says why
    return not (head[:2] == b"\x1f\x8b" or head[:4] in (b"PK\x03\x04", b"PAR1") or head == _OLE2)


def _map_file(p: Path, display: str, budget: _Budget) -> _Mapped:
    """A read-only memory map of a local file, closed when the load ends."""
    try:
        with open(p, "rb") as fh:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the file ({getattr(e, 'strerror', None) or e})", file=display,
                        fix="check that the file exists and is readable") from None
    with contextlib.suppress(AttributeError, OSError):
        mm.madvise(mmap.MADV_SEQUENTIAL)       # read ahead, and drop pages behind sooner
    mapped = _Mapped(mm)
    budget.maps.append(mapped)
    return mapped


def _folder_files(folder: Path) -> list[tuple[str, bytes]]:
    def candidates(d: Path) -> list[Path]:
        out = []
        for f in sorted(d.iterdir()):
            if not f.is_file() or f.name.startswith("."):
                continue
            low = f.name.lower()
            if ignored_why(low) and not ml100k_split_part(low):
                continue
            if f.suffix.lower() in DATA_EXTS or low in {"u.data", "u.item", "u.user"} or low == "columns.txt" \
                    or ml100k_split_part(low):
                out.append(f)
        return out

    found = candidates(folder)
    if not found:  # e.g. an unpacked archive with one sub-folder
        subs = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
        if len(subs) == 1:
            found = candidates(subs[0])
    # the MovieLens 100K ready-made splits (u1.base, ua.test) beside u.data: skipped unread
    if any(f.name.lower() == "u.data" for f in found):
        found = [f for f in found if not ml100k_split_part(f.name)]
    if len(found) > MAX_FILES:
        raise DataError(f"the folder holds {len(found)} data files (at most {MAX_FILES})", file=str(folder),
                        fix="point to a folder with the interactions file and at most a users and an items file")
    return [_read_path(f, f.name) for f in found]


def _unzip(name: str, data: bytes) -> list[tuple[str, bytes]]:
    """The data members of a zip archive, inflated in chunks within the budget (never past it)."""
    budget = _budget()
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
        raise DataError("the archive is not a readable zip file", file=name,
                        fix="re-create the zip archive, or upload the CSV files themselves") from None
    infos = zf.infolist()
    if any(i.filename == "xl/workbook.xml" for i in infos):
        raise _excel_error(name)
    members = [i for i in infos if not i.is_dir() and "__MACOSX" not in i.filename
               and not Path(i.filename).name.startswith(".")]
    if len(members) > MAX_FILES:
        raise DataError(f"the archive holds {len(members)} files (at most {MAX_FILES})", file=name,
                        fix="zip only the interactions file and at most a users and an items file")
    wanted, excel = [], []
    for i in members:
        low = Path(i.filename).name.lower()
        if ignored_why(low) and not ml100k_split_part(low):
            continue
        if Path(low).suffix in DATA_EXTS or low in {"u.data", "u.item", "u.user", "columns.txt"} \
                or ml100k_split_part(low):
            wanted.append(i)
        elif Path(low).suffix in EXCEL_EXTS:
            excel.append(i)
    if not wanted and excel:
        raise _excel_error(f"{name}: {excel[0].filename}")
    # the sizes the archive claims (zipfile never returns more than a member's claimed size)
    claimed, room = 0, budget.room()
    for i in wanted:
        claimed += i.file_size
        if claimed > room:
            raise budget.too_big(name, f"member '{i.filename}' unpacks to {_size(i.file_size)}"
                                       + (f" ({_size(claimed)} with the members before it)" if claimed > i.file_size else ""))
        if i.compress_size and i.file_size / max(i.compress_size, 1) > 1000 and i.file_size > 50 * MB:
            raise DataError(f"member '{i.filename}' has an absurd compression ratio (a zip bomb?)", file=name,
                            fix="upload the data files themselves")
    out = []
    for i in wanted:
        shown = f"member '{i.filename}' unpacks to"
        try:
            with zf.open(i) as fh:
                out.append((Path(i.filename).name, _inflate(fh.read, name, shown, budget)))
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as e:
            raise DataError(f"member '{i.filename}' cannot be unpacked ({type(e).__name__}: {str(e)[:120]})",
                            file=name, fix="re-create the zip archive (deflate, no password), or upload the "
                                           "files themselves") from None
    if not out:
        raise DataError("the archive holds no data files (.csv, .tsv, .parquet, .inter, u.data, ...)", file=name,
                        fix="zip the interactions file (and optionally users and items files)")
    return out


# =====================================================================================
# generic text tables
# =====================================================================================
_CTRL = bytes(range(0, 9)) + bytes([11, 12]) + bytes(range(14, 32)) + bytes([127])


def _utf16(head: bytes) -> str | None:
    """The UTF-16 codec of a text head: by its BOM, or without one by its NUL bytes (text in Latin
    letters has a NUL in every other byte: the odd bytes in UTF-16-LE, the even ones in -BE)."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    n = len(head) // 2
    if n < 2:
        return None
    even, odd = head[0:2 * n:2].count(0), head[1:2 * n:2].count(0)
    if odd > 0.3 * n and even <= 0.02 * n:
        return "utf-16-le"
    if even > 0.3 * n and odd <= 0.02 * n:
        return "utf-16-be"
    return None


def _decodes(data: bytes, encoding: str) -> bool:
    """Whether ``data`` decodes as ``encoding`` (in slices: no full-size copy as text)."""
    dec = codecs.getincrementaldecoder(encoding)()
    try:
        if isinstance(data, _Mapped):       # slices of the map (no view into it stays open)
            for part in _slices(data):
                dec.decode(part, final=False)
        else:
            with memoryview(data) as view:
                for k in range(0, len(data), 8 * MB):
                    dec.decode(view[k:k + 8 * MB], final=False)
        dec.decode(b"", final=True)
        return True
    except UnicodeDecodeError:
        return False


def _gunzip(name: str, data: bytes) -> bytes:
    """A gzip file inflated in chunks within the budget (it stops at the limit, never past it)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as g:
            return _inflate(g.read, name, "the gzip file unpacks to", _budget())
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as e:
        raise DataError(f"the gzip file is damaged ({e})", file=name, fix="re-create the file") from None


def _utf16_to_utf8(data, enc16: str):
    """UTF-16 text as UTF-8 (a memory-mapped file: decoded in slices into a mapped copy)."""
    if not isinstance(data, _Mapped):
        return data.decode(enc16).encode("utf-8")

    def pieces():
        dec = codecs.getincrementaldecoder(enc16)()
        for part in _slices(data):
            yield dec.decode(part, final=False).encode("utf-8")
        yield dec.decode(b"", final=True).encode("utf-8")
    return _mapped_copy(pieces())


def decode_check(name: str, data: bytes) -> tuple[bytes, str]:
    """Reject empty and non-text files; return (bytes without BOM / decompressed, encoding).

    Also estimates the memory to parse the table (rows x columns) against the budget of the load."""
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(name, data)
    if not data[:65536].strip() and _is_blank(data):
        raise DataError("the file is empty", file=name,
                        fix="export the table again with a header line and at least one data row")
    head = data[:65536]
    if head[:4] == b"PAR1":
        raise DataError("this is a Parquet file with a text-file name", file=name,
                        fix="rename it to end in .parquet")
    if head[:8] == _OLE2:
        raise _excel_error(name)
    if head[:4] == b"PK\x03\x04":
        raise DataError("this is a zip archive or an Excel workbook, not a table", file=name,
                        fix="save the sheet as CSV (File > Save as > CSV), or upload the .zip in the app")
    if b"\x00" in head:
        enc16 = _utf16(head)
        if enc16 is None:
            raise DataError("this is not a text table (it holds binary bytes)", file=name,
                            fix="export the data as CSV (comma separated) in UTF-8")
        try:
            data = _utf16_to_utf8(data, enc16)
            head = data[:65536]
        except UnicodeError:
            raise DataError("this is not a text table (it holds binary bytes)", file=name,
                            fix="export the data as CSV (comma separated) in UTF-8") from None
    if data[:3] == b"\xef\xbb\xbf":
        data = _after(data, 3)
        head = data[:65536]
    ctrl = sum(head.count(bytes([c])) for c in _CTRL)
    if ctrl > 0.01 * len(head):
        raise DataError("this is not a text table (it holds control or binary bytes)", file=name,
                        fix="export the data as CSV (comma separated) in UTF-8")
    if _decodes(data, "utf-8"):
        encoding = "utf-8"
    else:
        # Windows-1252 (Latin-1 plus curly quotes, dashes, euro sign) when it decodes, else Latin-1,
        # which decodes anything: there garbled bytes show up as C1 control characters (0x80-0x9f)
        if _decodes(data, "cp1252"):
            encoding, c1 = "cp1252", 0
        else:
            encoding = "latin-1"
            c1 = sum(1 for b in head if 0x80 <= b <= 0x9f)
        high = sum(1 for b in head if b >= 0x80)
        if c1 > 0.01 * len(head) or high > 0.3 * len(head):
            raise DataError("this is not a text table (its bytes are neither UTF-8 nor Latin-1 text)", file=name,
                            fix="export the data as CSV in UTF-8")
    _check_parse_size(name, data)
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
        df = _parse_csv(data, sep=sep, encoding=encoding, header=0 if header else None,
                        names=names, skipinitialspace=True, low_memory=False, on_bad_lines="error",
                        engine="c", decimal=decimal)
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", file=name,
                        fix="export the table again with a header line and at least one data row") from None
    except pd.errors.ParserError as e:
        msg = str(e)
        if "out of memory" in msg.lower():
            raise _memory_error(name) from None
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


# Large text tables are parsed in blocks of this many lines (the same C parser, the same options):
# the parser's tokens for the whole file (~24 bytes a value, see BYTES_PER_VALUE) were the peak of
# reading; per block they are bounded. Measured on 10M rows x 8 columns (bench/scale.py, 2 cores):
# whole file 6.5 s / 2.3 GB peak, in blocks 6.7 s / 1.4 GB (pyarrow.csv 10 s / 1.9 GB, streamed 14 s
# / 1.2 GB; pandas' pyarrow engine 9 s / 2.1 GB).
READ_BLOCK_ROWS = 1_000_000


def _parse_csv(data: bytes, *, block_rows: int | None = None, **kw) -> pd.DataFrame:
    """``pd.read_csv(io.BytesIO(data), **kw)`` (a memory-mapped file: read from the map itself),
    parsed in blocks of ``block_rows`` lines when the file is longer. Each block infers its column types on its own: when every block agrees on each
    column's dtype the blocks are concatenated (the whole-file read would infer the same), else the
    file is parsed whole, as before (e.g. a column of numbers that turns to text far down)."""
    block_rows = int(block_rows or READ_BLOCK_ROWS)
    if data.count(b"\n", 0, None) <= block_rows + 1:
        with _open(data) as fh:
            return pd.read_csv(fh, **kw)
    parts: list[dict] = []
    columns = None
    with _open(data) as fh, pd.read_csv(fh, chunksize=block_rows, **kw) as reader:
        for chunk in reader:
            if columns is None:
                columns = list(chunk.columns)
            # keep the columns' arrays only (each block's frame is freed before the next is parsed)
            parts.append({k: _own_buffers(chunk.iloc[:, k].array) for k in range(chunk.shape[1])})
            del chunk
    if columns is None or len(parts) < 2:
        with _open(data) as fh:
            return pd.read_csv(fh, **kw)
    if any(str(p[k].dtype) != str(parts[0][k].dtype) for p in parts[1:] for k in parts[0]):
        del parts
        with _open(data) as fh:
            return pd.read_csv(fh, **kw)
    arrays = {}
    for k in range(len(columns)):      # column by column, freeing the blocks' pieces as it goes
        pieces = [p.pop(k) for p in parts]
        arrays[k] = pd.concat([pd.Series(a, copy=False) for a in pieces], ignore_index=True).array
        del pieces
    df = pd.DataFrame(arrays, copy=False)
    df.columns = pd.Index(columns) if not isinstance(columns, pd.Index) else columns
    return df


def _own_buffers(arr):
    """A block's Arrow-backed column (pandas' text columns) copied into buffers of its own: as
    parsed, each block's text column keeps the parser's buffers of the whole block alive (at 10M
    rows x 8 columns ~410 MB for a 134 MB text column, held as long as the table)."""
    to_arrow = getattr(arr, "__arrow_array__", None)
    if to_arrow is None:
        return arr
    try:
        import pyarrow as pa
        chunks = to_arrow()
        if not isinstance(chunks, pa.ChunkedArray):
            return arr
        return pd.array(pa.concat_arrays([c for c in chunks.chunks] + [pa.array([], type=chunks.type)]),
                        dtype=arr.dtype)
    except Exception:       # any other kind of array: as it is
        return arr


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
        import pyarrow.parquet as pq
        md = pq.ParquetFile(io.BytesIO(data)).metadata
        unpacked = sum(md.row_group(k).total_byte_size for k in range(md.num_row_groups))
    except Exception as e:  # pyarrow raises several types for damaged files
        raise DataError(f"this is not a readable Parquet file ({type(e).__name__}: {str(e)[:120]})", file=name,
                        fix="write the table again with pandas.DataFrame.to_parquet or export it as CSV") from None
    # rows x columns from the footer, before a single value is decoded
    _budget().take_read(name, int(md.num_rows), int(md.num_columns), int(unpacked))
    try:
        df = pd.read_parquet(io.BytesIO(data))
    except MemoryError:
        raise _memory_error(name) from None
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


# every character that str.strip() (Python) or pyarrow's utf8_trim_whitespace may take for white
# space, written literally (the same class for both regex engines, RE2 and re)
_SPACE_CLASS = "[" + "".join(chr(c) for c in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85,
                                                0xA0, 0x1680, 0x180E, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000)) \
    + chr(0x2000) + "-" + chr(0x200B) + "]"
_EDGE_SPACE = f"^{_SPACE_CLASS}|{_SPACE_CLASS}$"


def _needs_strip(s: pd.Series) -> bool:
    """Whether a text column has a value with white space at either end or an empty value: only
    then does stripping change it (a yes/no per value, instead of a stripped copy of the column
    and its comparison: the peak of reading a large table with a text column)."""
    try:
        return bool(s.str.contains(_EDGE_SPACE, regex=True, na=False).any() or (s == "").any())
    except Exception:       # an engine that rejects the pattern: strip, as always
        return True


def _strip_strings(df: pd.DataFrame) -> pd.DataFrame:
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_string_dtype(s.dtype) and not _needs_strip(s):
            continue
        if pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
            stripped = s.str.strip() if pd.api.types.is_string_dtype(s.dtype) else s
            if pd.api.types.is_string_dtype(s.dtype):
                stripped = stripped.mask(stripped == "")
            df[c] = stripped
    return df


# =====================================================================================
# identifying files: by content, by name, by columns
# =====================================================================================
_INTER_PAT = re.compile(r"(interaction|rating|event|click|log|inter\b|feedback|train|purchase|view)")
_USER_PAT = re.compile(r"^(users?|customers?|members?|visitors?)([\W_]|$)")
_ITEM_PAT = re.compile(r"^(items?|movies?|products?|catalog(ue)?|articles?|songs?|books?)([\W_]|$)")
# id columns beyond suggest.USER_NAMES / ITEM_NAMES (names lower-case without _ - . and spaces)
_USER_ID_COL = re.compile(r"(user|customer|visitor|member|reader|reviewer|client|buyer|viewer|listener|player|"
                          r"account|person|subscriber|student|learner)(id|idx|key|no|number|code)")
_ITEM_ID_COL = re.compile(r"(item|movie|film|product|article|song|book|video|track|show|course|recipe|news|post|"
                          r"game|app|business|restaurant|hotel|place|poi|anime|artist|album|offer|ad|job|"
                          r"doc|document|question|listing|sku)(id|idx|key|no|number|code)")

# layout -> (table, how it is described in messages)
LAYOUTS = {
    "ml100k-data": ("interactions", "MovieLens 100K ratings: u.data layout"),
    "ml100k-item": ("items", "MovieLens 100K movies: u.item layout"),
    "ml100k-user": ("users", "MovieLens 100K users: u.user layout"),
    "ml1m-ratings": ("interactions", "MovieLens 1M/10M ratings: '::'-separated ratings.dat layout"),
    "ml1m-movies": ("items", "MovieLens 1M/10M movies: '::'-separated movies.dat layout"),
    "ml1m-users": ("users", "MovieLens 1M users: '::'-separated users.dat layout"),
}
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


def id_columns(columns) -> tuple[list[str], list[str]]:
    """The columns whose names look like user ids and like item ids."""
    from mtlrec.data.suggest import ITEM_NAMES, USER_NAMES   # suggest imports this module
    users, items = [], []
    for c in columns:
        n = re.sub(r"[\s_\-.]", "", str(c).lower())
        if n in USER_NAMES or _USER_ID_COL.fullmatch(n):
            users.append(str(c))
        elif n in ITEM_NAMES or _ITEM_ID_COL.fullmatch(n):
            items.append(str(c))
    return users, items


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
        enc16 = _utf16(head)
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
    return _looks_numeric(s.strip())


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
class _Found:
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


def _identify(name: str, data: bytes) -> _Found | str:
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
        return _Found(base, data, "recbole", table, "RecBole atomic file")
    if layout is not None:
        table, how = LAYOUTS[layout]
        return _Found(base, data, layout, table, how if by_content else how + ", by its name")
    stem = low[:-3] if low.endswith(".gz") else low
    if Path(stem).stem == "tags":
        return _Found(base, data, "table", "tags", "MovieLens tags: a 'tagged' signal on the ratings")
    table = classify_name(base)
    return _Found(base, data, "table", table, "recognised by its name" if table else "")


def _listing(found: list[_Found]) -> str:
    known = [f"{f.name} → {f.table}" for f in found if f.table]
    return ", ".join(known) if known else "none"


def _missing_fix(found: list[_Found]) -> str:
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


def _read_identified(files: list[tuple[str, bytes]], *, sep: str | None) -> RawData:
    found: list[_Found] = []
    ignored: dict[str, str] = {}
    for n, b in files:
        f = _identify(n, b)
        if isinstance(f, str):
            ignored[Path(n).name] = f
        else:
            found.append(f)
    if not found:
        raise DataError("no data table among the files (" + "; ".join(f"{k}: {v}" for k, v in ignored.items()) + ")",
                        file=", ".join(ignored), fix="give an interactions file, or a zip of the dataset folder")
    if len(found) == 1 and found[0].layout == "table":      # a single generic file: the interactions
        found[0].table, found[0].how = "interactions", "the only table"
    # a generic table whose name says nothing: by its columns (it is read now, and only once)
    for f in found:
        if f.table is None:
            f.frame = read_table(f.name, f.data, sep=sep)
            f.table = classify_columns(f.frame.columns)
            if f.table:
                users, items = id_columns(f.frame.columns)
                f.how = "recognised by its id column" + ("s " if len(users + items) > 1 else " ") + \
                    ", ".join(users[:1] + items[:1])
    roles: dict[str, _Found] = {}
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
        f = unknown[0]
        cols = [str(c) for c in f.frame.columns] if f.frame is not None else []
        shown = f" ({', '.join(cols[:8])}{', ...' if len(cols) > 8 else ''})" if cols else ""
        missing = ("missing: interactions" if "interactions" not in roles else
                   f"the interactions are in {roles['interactions'].name}, so this would be a users or items table")
        raise DataError(f"cannot tell which table this file is: neither its name nor its columns{shown} "
                        f"show a user id or an item id. Tables found: {_listing(found)}; "
                        f"not identified: {', '.join(g.name for g in unknown)}; {missing}", file=f.name,
                        fix="rename the file after its table (interactions.csv, users.csv or items.csv), "
                            "name its id columns user_id / item_id, or upload a zip of the dataset folder")
    if "interactions" not in roles:
        raise DataError(f"no interactions table among the files. Tables found: {_listing(found)}; "
                        "missing: interactions (one row per user-item event)",
                        file=", ".join(f.name for f in found), fix=_missing_fix(found))

    roles = {t: roles[t] for t in ("interactions", "users", "items", "tags") if t in roles}
    tables: dict[str, pd.DataFrame] = {}
    types: dict[str, dict[str, str]] = {}
    for table, f in roles.items():
        if f.layout == "recbole":
            tables[table], types[table] = _read_recbole_file(f.name, f.data)
        elif f.layout == "table":
            tables[table] = f.frame if f.frame is not None else read_table(f.name, f.data, sep=sep)
        else:
            tables[table] = _LAYOUT_READERS[f.layout](f.name, f.data)
    sources = {t: f.name for t, f in roles.items() if t != "tags"}
    meta: dict = {"layouts": {t: f.how for t, f in roles.items()}}
    if types:
        meta["recbole_types"] = types
    if ignored:
        meta["ignored"] = ignored
    inter = tables["interactions"]
    extra: dict[str, pd.DataFrame] = {}
    if "tags" in tables:
        inter = _add_tagged(inter, tables["tags"], meta)
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


def _add_tagged(inter: pd.DataFrame, tags: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """MovieLens tags: a per-(user, movie) 0/1 column ``tagged`` on the ratings."""
    key = [c for c in ("userId", "movieId") if c in tags.columns and c in inter.columns]
    if len(key) != 2:
        return inter
    pairs = tags[key].drop_duplicates().assign(tagged=np.int8(1))
    merged = inter[key].merge(pairs, on=key, how="left")
    inter = inter.copy()
    inter["tagged"] = merged["tagged"].fillna(0).astype("int8").to_numpy()
    meta["tagged_pairs"] = int(len(pairs))
    meta["tagged_pairs_without_rating"] = int(len(pairs) - int(inter["tagged"].sum()))
    return inter


# =====================================================================================
# predefined splits: one file per split
# =====================================================================================
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
    with _reading(limits or Limits.local()):
        files: dict[str, tuple[str, bytes]] = {}
        for key, p in parts.items():
            p = Path(p)
            if not p.is_file():
                raise DataError(f"the {key} file was not found" + (" (it is a folder)" if p.is_dir() else ""),
                                file=str(p), fix="give the path of one file per split")
            files[key] = _read_path(p, p.name)
        names = {n for n, _ in files.values()}
        side: list[tuple[str, bytes]] = []
        ignored: dict[str, str] = {}
        for p in side_paths or ():
            p = Path(p)
            if not p.exists():
                raise DataError("no such file or folder", file=str(p), fix="check the path of the users / items file")
            if not p.is_dir():
                side.append(_read_path(p, p.name))
                continue
            for n, b in _folder_files(p):     # a folder: its users / items tables (not its interactions)
                if n in names or ml100k_split_part(n):
                    continue
                f = _identify(n, b)
                if isinstance(f, _Found) and f.table == "interactions":
                    ignored[n] = "interactions beside the split files (the split files hold the interactions)"
                else:
                    side.append((n, b))
        side = [(n, b) for n, b in side if not ignored_why(n)]
        raw = _combine_splits(files, side, sep=sep)
        if ignored:
            raw.meta.setdefault("ignored", {}).update(ignored)
        return raw


def _ml100k_split(split_parts: dict, others: list[tuple[str, bytes]], *, sep: str | None) -> RawData:
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
    side, ignored = _tables_only(others)
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
        raw = _read_identified([(name, data)] + (side if key == "train" else []), sep=sep)
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


# =====================================================================================
# MovieLens
# =====================================================================================
@_as_data_error
def _read_headerless(name: str, data: bytes, sep: str, names: list[str], *, encoding: str | None = None) -> pd.DataFrame:
    data, enc = decode_check(name, data)
    try:
        with _open(data) as fh:
            df = pd.read_csv(fh, sep=sep, header=None, names=names, encoding=encoding or enc,
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


def _read_ml100k_data(n: str, b: bytes) -> pd.DataFrame:
    inter = _read_headerless(n, b, "\t", ["user_id", "item_id", "rating", "timestamp"])
    if inter["rating"].isna().all() or inter.shape[1] != 4:
        raise DataError("u.data must have 4 tab-separated fields: user id, item id, rating, timestamp", file=n,
                        fix="use the original u.data of MovieLens 100K")
    return inter


def _read_ml100k_item(n: str, b: bytes) -> pd.DataFrame:
    cols = ["item_id", "title", "release_date", "video_release_date", "imdb_url"] + [f"g{i}" for i in range(19)]
    raw_items = _read_headerless(n, b, "|", cols, encoding="latin-1")
    flags = raw_items[[f"g{i}" for i in range(19)]].fillna(0).to_numpy(dtype=np.int8) == 1
    genre_names = np.array(ML100K_GENRES, dtype=object)
    genres = ["|".join(genre_names[row]) for row in flags]  # 1,682 items: a short loop
    items = raw_items[["item_id", "title", "release_date", "video_release_date", "imdb_url"]].copy()
    items["genres"] = pd.Series(genres, index=items.index, dtype="str").mask(lambda s: s == "")
    return items.dropna(axis=1, how="all")


def _read_ml100k_user(n: str, b: bytes) -> pd.DataFrame:
    return _read_headerless(n, b, "|", ["user_id", "age", "gender", "occupation", "zip_code"])


def _ml1m_reader(cols: list[str]):
    """MovieLens 1M/10M: '::'-separated, Latin-1 (movie titles)."""
    def read(n: str, b: bytes) -> pd.DataFrame:
        return _read_headerless(n, _replace(b, b"::", b"\t"), "\t", cols, encoding="latin-1")
    return read


_LAYOUT_READERS = {
    "ml100k-data": _read_ml100k_data, "ml100k-item": _read_ml100k_item, "ml100k-user": _read_ml100k_user,
    "ml1m-ratings": _ml1m_reader(["user_id", "item_id", "rating", "timestamp"]),
    "ml1m-movies": _ml1m_reader(["item_id", "title", "genres"]),
    "ml1m-users": _ml1m_reader(["user_id", "gender", "age", "occupation", "zip_code"]),
}


# =====================================================================================
# RecBole atomic files
# =====================================================================================
RECBOLE_TYPES = ("token", "float", "token_seq", "float_seq")
_TEXTY = re.compile(r"(title|name|desc|text|overview|summary|plot|review|comment|abstract|content)")


@_as_data_error
def _read_recbole_file(name: str, data: bytes) -> tuple[pd.DataFrame, dict[str, str]]:
    data, encoding = decode_check(name, data)
    end = data.find(b"\n")
    first = data[: end if end >= 0 else len(data)].decode(encoding).rstrip("\r")
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
        with _open(data) as fh:
            df = pd.read_csv(fh, sep="\t", header=0, names=cols, dtype=dtypes, encoding=encoding,
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


def describe_sources(raw: RawData) -> str:
    return ", ".join(f"{t}: {n}" for t, n in raw.sources.items())


def iter_tables(raw: RawData) -> Iterable[tuple[str, pd.DataFrame]]:
    return raw.tables().items()
