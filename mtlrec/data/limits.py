"""How much one read may take (:class:`Limits`) and what the load in progress has taken (:class:`Budget`).

Local files (``load_data``: the command line, training from a config) may be larger than uploads
(``load_uploaded``: the app, where one server holds the data of every browser tab). Bytes are counted
uncompressed: zip members and gzip files are inflated in chunks and reading stops at the limit; the
memory to parse a table is estimated from rows x columns (a Parquet file's footer) before pandas runs.
Each load runs under its own budget (:func:`reading`); the readers find it with :func:`current_budget`.
"""
from __future__ import annotations

import contextlib
import contextvars
import csv
import functools
from dataclasses import dataclass

import pandas as pd

from mtlrec.errors import DataError

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


def size_text(n: float) -> str:
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
            return f"{size_text(self.total_bytes)} uncompressed in all"
        return f"{size_text(self.file_bytes)} per file and {size_text(self.total_bytes)} in all, uncompressed"

    @property
    def fix(self) -> str:
        if self.upload:
            return (f"for data this large use the command line: python -m mtlrec prepare FILES_OR_ZIP --out DIR "
                    f"(local files may hold {size_text(MAX_FILE_BYTES)} each, uncompressed CSV/TSV files more); "
                    f"or upload a sample of the rows")
        return "sample the rows (e.g. a subset of users, or the most recent interactions) or split the file"


class Budget:
    """What one load has taken so far against its :class:`Limits`."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.bytes = 0          # uncompressed bytes of the files read
        self.read = 0           # estimated memory to parse the tables read
        self.maps: list = []    # memory-mapped files (mapped.Mapped) of this load, closed when it ends

    def close(self) -> None:
        """Close the memory maps of this load (their file handles with them)."""
        maps, self.maps = self.maps, []
        for m in maps:
            with contextlib.suppress(BufferError, ValueError, OSError):
                m.mm.close()

    def too_big(self, name: str, shown: str) -> DataError:
        """``shown`` says what is too big and how big, e.g. "member 'x.csv' unpacks to 2.0 GB"."""
        lim = self.limits
        before = f" (after {size_text(self.bytes)} of other files)" if self.bytes else ""
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
            before = f" (with the tables read before it, {size_text(self.read + est)})" if self.read else ""
            raise DataError(f"the table is too large to read: about {rows:,} rows × {columns:,} columns would take "
                            f"about {size_text(est)} of memory{before}, more than the {size_text(lim.read_bytes)} "
                            f"allowed for {lim.where}", file=name, fix=lim.fix)
        self.read += est


_BUDGET: contextvars.ContextVar = contextvars.ContextVar("mtlrec_read_budget", default=None)


@contextlib.contextmanager
def reading(limits: Limits | None):
    """Run a load under ``limits`` (None: inside a load, its budget; else local limits)."""
    if limits is None and _BUDGET.get() is not None:
        yield _BUDGET.get()
        return
    budget = Budget(limits or Limits.local())
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)
        budget.close()


def current_budget() -> Budget:
    """The budget of the load in progress; a lone reader call (read_table) gets local limits."""
    b = _BUDGET.get()
    return b if b is not None else Budget(Limits.local())


def memory_error(name: str) -> DataError:
    lim = current_budget().limits
    return DataError("there is not enough memory to read the table (it is too large)", file=name, fix=lim.fix)


def as_data_error(fn):
    """Turn reader-level exceptions (parser, encoding, csv, Arrow) into a DataError naming the file."""
    @functools.wraps(fn)
    def wrapper(name, *args, **kwargs):
        try:
            return fn(name, *args, **kwargs)
        except DataError:
            raise
        except MemoryError:
            raise memory_error(str(name)) from None
        except (csv.Error, UnicodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError,
                OSError, IndexError, KeyError, OverflowError) as e:
            raise DataError(f"the table cannot be read ({type(e).__name__}: {str(e).strip()[:200]})", file=str(name),
                            fix="export the data as CSV (comma separated, UTF-8) with a header line") from None
    return wrapper


def upload_caption(per_file_mb: float) -> str:
    """The uploader's visible caption (markdown): the limits and what to do with larger data or Excel
    workbooks (``per_file_mb``: Streamlit's server.maxUploadSize, the cap on each file as sent)."""
    lim = Limits.uploads()
    return (f"Up to {per_file_mb:.0f} MB per file and {size_text(lim.total_bytes)} uncompressed in all (zip and gzip "
            f"contents count unpacked); for larger data use the command line: `python -m mtlrec prepare`. "
            f"Excel workbooks: save the sheet as CSV UTF-8 first.")


def upload_refused_text(per_file_mb: float) -> str:
    """What the app says, in words, when the browser refused a chosen file before sending it: over
    Streamlit's server.maxUploadSize (``per_file_mb``, the cap on each file as sent) or of a type the
    uploader does not take. The uploader itself marks such a file with a red icon only."""
    lim = Limits.uploads()
    return (f"A file marked in red above was not uploaded (the reason is beside it): uploads take files of up to "
            f"{per_file_mb:.0f} MB each and {size_text(lim.total_bytes)} uncompressed in all, of the types listed. "
            f"Fix: {lim.fix}; remove the red file with its ×.")

