"""RecBole atomic files: ``*.inter`` / ``*.user`` / ``*.item`` with ``name:type`` headers. ``token_seq``
columns (space separated) are re-joined with ``|`` so that they read as multi-label text like MovieLens
genres; the original types are kept (``raw.meta["recbole_types"]``)."""
from __future__ import annotations

import csv
import re

import pandas as pd

from mtlrec.data.files import decode_check
from mtlrec.data.limits import as_data_error
from mtlrec.data.mapped import open_data
from mtlrec.data.tables import check_header, strip_strings
from mtlrec.errors import DataError

RECBOLE_TYPES = ("token", "float", "token_seq", "float_seq")
_TEXTY = re.compile(r"(title|name|desc|text|overview|summary|plot|review|comment|abstract|content)")


@as_data_error
def read_recbole_file(name: str, data: bytes) -> tuple[pd.DataFrame, dict[str, str]]:
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
    check_header(name, cols)
    dtypes = {c: ("float64" if t == "float" else "str") for c, t in types.items()}
    try:
        with open_data(data) as fh:
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
    return strip_strings(df), types

