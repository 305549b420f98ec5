"""Generic text and Parquet tables: the delimiter sniffed, the header checked, the text parsed (in blocks
when long), white space stripped (:func:`read_table`)."""
from __future__ import annotations

import csv
import io
import re

import numpy as np
import pandas as pd

from mtlrec.data.files import decode_check
from mtlrec.data.limits import as_data_error, current_budget, memory_error
from mtlrec.data.mapped import open_data
from mtlrec.errors import DataError

DELIMITERS = [",", "\t", ";", "|"]


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


def looks_numeric(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


@as_data_error
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
        check_header(name, named)
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
            raise memory_error(name) from None
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
    df = strip_strings(df)
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
        with open_data(data) as fh:
            return pd.read_csv(fh, **kw)
    parts: list[dict] = []
    columns = None
    with open_data(data) as fh, pd.read_csv(fh, chunksize=block_rows, **kw) as reader:
        for chunk in reader:
            if columns is None:
                columns = list(chunk.columns)
            # keep the columns' arrays only (each block's frame is freed before the next is parsed)
            parts.append({k: _own_buffers(chunk.iloc[:, k].array) for k in range(chunk.shape[1])})
            del chunk
    if columns is None or len(parts) < 2:
        with open_data(data) as fh:
            return pd.read_csv(fh, **kw)
    if any(str(p[k].dtype) != str(parts[0][k].dtype) for p in parts[1:] for k in parts[0]):
        del parts
        with open_data(data) as fh:
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


def check_header(name: str, cols: list[str]) -> None:
    cols = [c.strip() for c in cols]
    blank = [i + 1 for i, c in enumerate(cols) if not c]
    if blank:
        raise DataError(f"column {', '.join(map(str, blank))} of the header has no name", file=name,
                        fix="give every column a name in the first line")
    if all(looks_numeric(c) for c in cols):
        raise DataError("the first line holds numbers, not column names: the header line is missing",
                        file=name, fix="add a first line with the column names, e.g. user_id,item_id,rating")
    seen: dict[str, int] = {}
    for c in cols:
        seen[c] = seen.get(c, 0) + 1
    dups = [c for c, n in seen.items() if n > 1]
    if dups:
        raise DataError(f"the column name is used {seen[dups[0]]} times in the header", file=name,
                        column=dups[0], fix="give every column a different name")


@as_data_error
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
    current_budget().take_read(name, int(md.num_rows), int(md.num_columns), int(unpacked))
    try:
        df = pd.read_parquet(io.BytesIO(data))
    except MemoryError:
        raise memory_error(name) from None
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


def strip_strings(df: pd.DataFrame) -> pd.DataFrame:
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

