"""Files into ``(name, bytes)``: from disk (memory-mapped when large), folders, zip and gzip archives,
all within the load's budget; which files are data and which are skipped; and :func:`decode_check`,
which turns a file's bytes into checked text (gzip, BOM, UTF-16, the encoding) before a table is parsed.
"""
from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import mmap
import re
import zipfile
import zlib
from pathlib import Path

from mtlrec.data.limits import MAX_FILES, MB, Budget, current_budget, size_text
from mtlrec.data.mapped import Mapped, bytes_after, is_blank, mapped_copy, slices
from mtlrec.errors import DataError

_CHUNK = 4 * MB                         # inflating archives: bytes per read
# A local uncompressed text file (CSV, TSV, .dat, ...) this large is read as a read-only memory map
# of the file instead of bytes: its pages are file-backed (the kernel drops them under memory
# pressure and reads them again), so the text is never held whole in the process's own memory and
# a file larger than memory streams through the page cache; only the parsed table has to fit. Such a
# file has no byte cap (MAX_FILE_BYTES / MAX_TOTAL_BYTES); the parse estimate (MAX_READ_BYTES) applies.
MMAP_MIN_BYTES = 64 * MB
EXCEL_EXTS = (".xlsx", ".xlsm", ".xlsb", ".xls", ".xltx", ".ods")
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"   # legacy .xls (and other old Office files)

DATA_EXTS = {".csv", ".tsv", ".txt", ".dat", ".parquet", ".pq", ".inter", ".user", ".item",
             ".gz", ".data", ".test"}
# What the app's uploader accepts (st.file_uploader(type=...)): every extension of the layouts the
# docs/data-formats.md lists, plus the MovieLens 100K side files (read and ignored with a note) and zip archives.
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


def _inflate(read, name: str, shown: str, budget: Budget) -> bytes:
    """Read a decompressing stream in chunks; stop (DataError) as soon as it passes the budget."""
    room = budget.room()
    buf = io.BytesIO()
    while True:
        chunk = read(_CHUNK)
        if not chunk:
            break
        if buf.tell() + len(chunk) > room:
            raise budget.too_big(name, f"{shown} more than {size_text(room)}")
        buf.write(chunk)
    budget.take_bytes(name, buf.tell(), f"{shown} {size_text(buf.tell())}")
    return buf.getvalue()


def take_file(budget: Budget, name: str, data: bytes) -> None:
    """Charge a file's bytes; a gzip file only has to fit one file's limit (it is charged unpacked);
    a memory-mapped file is not held in memory and is not charged (its parse estimate is)."""
    if isinstance(data, Mapped):
        return
    if data[:2] == b"\x1f\x8b":
        if len(data) > budget.limits.file_bytes:
            raise budget.too_big(name, f"the file is {size_text(len(data))}")
    else:
        budget.take_bytes(name, len(data), f"the file is {size_text(len(data))}")


def excel_error(name: str) -> DataError:
    return DataError("Excel workbooks are not read", file=name,
                     fix="save the sheet as CSV (File → Save as → CSV UTF-8)")


def tables_only(files):
    """(the files that may hold a table, {name: why} of those skipped: readmes, licences, checksums);
    an Excel workbook is an error that says to save the sheet as CSV."""
    kept, ignored = [], {}
    for n, b in files:
        why = ignored_why(n)
        if why:
            ignored[Path(str(n)).name] = why
        elif is_excel(n, b):
            raise excel_error(Path(str(n)).name)
        else:
            kept.append((n, b))
    return kept, ignored


def is_excel(name: str, data: bytes) -> bool:
    return Path(str(name)).suffix.lower() in EXCEL_EXTS or data[:8] == _OLE2


def read_path(p: Path, display: str, *, charge: bool = True) -> tuple[str, bytes] | bytes:
    """``(display, bytes)`` of a file on disk within the budget (``charge=False``: only the bytes, e.g. a
    zip whose members are charged when inflated, still at most one file's limit)."""
    size = p.stat().st_size
    budget = current_budget()
    if charge and size >= max(1, MMAP_MIN_BYTES) and not budget.limits.upload and _mappable(p):
        return display, _map_file(p, display, budget)
    if size > budget.limits.file_bytes:          # before reading a byte
        raise budget.too_big(display, f"the file is {size_text(size)}")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read the file ({e.strerror or e})", file=display,
                        fix="check that the file exists and is readable") from None
    if not charge:
        return data
    take_file(budget, display, data)
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
        return False        # read_path says why
    return not (head[:2] == b"\x1f\x8b" or head[:4] in (b"PK\x03\x04", b"PAR1") or head == _OLE2)


def _map_file(p: Path, display: str, budget: Budget) -> Mapped:
    """A read-only memory map of a local file, closed when the load ends."""
    try:
        with open(p, "rb") as fh:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the file ({getattr(e, 'strerror', None) or e})", file=display,
                        fix="check that the file exists and is readable") from None
    with contextlib.suppress(AttributeError, OSError):
        mm.madvise(mmap.MADV_SEQUENTIAL)       # read ahead, and drop pages behind sooner
    mapped = Mapped(mm)
    budget.maps.append(mapped)
    return mapped


def folder_files(folder: Path) -> list[tuple[str, bytes]]:
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
    return [read_path(f, f.name) for f in found]


def unzip(name: str, data: bytes) -> list[tuple[str, bytes]]:
    """The data members of a zip archive, inflated in chunks within the budget (never past it)."""
    budget = current_budget()
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
        raise DataError("the archive is not a readable zip file", file=name,
                        fix="re-create the zip archive, or upload the CSV files themselves") from None
    infos = zf.infolist()
    if any(i.filename == "xl/workbook.xml" for i in infos):
        raise excel_error(name)
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
        raise excel_error(f"{name}: {excel[0].filename}")
    # the sizes the archive claims (zipfile never returns more than a member's claimed size)
    claimed, room = 0, budget.room()
    for i in wanted:
        claimed += i.file_size
        if claimed > room:
            raise budget.too_big(name, f"member '{i.filename}' unpacks to {size_text(i.file_size)}"
                                       + (f" ({size_text(claimed)} with the members before it)" if claimed > i.file_size else ""))
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
# decoding: bytes to checked text
# =====================================================================================
_CTRL = bytes(range(0, 9)) + bytes([11, 12]) + bytes(range(14, 32)) + bytes([127])


def utf16_codec(head: bytes) -> str | None:
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
        if isinstance(data, Mapped):       # slices of the map (no view into it stays open)
            for part in slices(data):
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
            return _inflate(g.read, name, "the gzip file unpacks to", current_budget())
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as e:
        raise DataError(f"the gzip file is damaged ({e})", file=name, fix="re-create the file") from None


def _utf16_to_utf8(data, enc16: str):
    """UTF-16 text as UTF-8 (a memory-mapped file: decoded in slices into a mapped copy)."""
    if not isinstance(data, Mapped):
        return data.decode(enc16).encode("utf-8")

    def pieces():
        dec = codecs.getincrementaldecoder(enc16)()
        for part in slices(data):
            yield dec.decode(part, final=False).encode("utf-8")
        yield dec.decode(b"", final=True).encode("utf-8")
    return mapped_copy(pieces())


def decode_check(name: str, data: bytes) -> tuple[bytes, str]:
    """Reject empty and non-text files; return (bytes without BOM / decompressed, encoding).

    Also estimates the memory to parse the table (rows x columns) against the budget of the load."""
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(name, data)
    if not data[:65536].strip() and is_blank(data):
        raise DataError("the file is empty", file=name,
                        fix="export the table again with a header line and at least one data row")
    head = data[:65536]
    if head[:4] == b"PAR1":
        raise DataError("this is a Parquet file with a text-file name", file=name,
                        fix="rename it to end in .parquet")
    if head[:8] == _OLE2:
        raise excel_error(name)
    if head[:4] == b"PK\x03\x04":
        raise DataError("this is a zip archive or an Excel workbook, not a table", file=name,
                        fix="save the sheet as CSV (File > Save as > CSV), or upload the .zip in the app")
    if b"\x00" in head:
        enc16 = utf16_codec(head)
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
        data = bytes_after(data, 3)
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


def _check_parse_size(name: str, data: bytes) -> None:
    """Estimate rows x columns of a text table before pandas parses it; DataError past the budget."""
    rows = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    end = data.find(b"\n", 0, MB)
    first = data[: end if end >= 0 else MB]
    columns = 1 + max(first.count(d) for d in (b",", b"\t", b";", b"|"))
    # the text itself is counted unless it is memory-mapped (file-backed pages, not the process's memory)
    current_budget().take_read(name, rows, columns, 0 if isinstance(data, Mapped) else len(data))

