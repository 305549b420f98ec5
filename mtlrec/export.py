"""Files for people to open elsewhere: CSV exports that a spreadsheet cannot turn into formulas.

A cell whose text starts with ``=``, ``+``, ``-``, ``@`` (or a tab / carriage return, which some
spreadsheets skip before looking for those) is read as a formula by Excel, LibreOffice and Google
Sheets ("CSV injection", OWASP). Uploaded titles, descriptions and ids end up in our exports, so
every *text* cell that starts with one of them gets a leading apostrophe, the neutralising prefix
the OWASP guidance recommends; numbers (a negative score is a number, not a formula) are written
as they are.
"""
from __future__ import annotations

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value):
    """``value`` with a leading apostrophe if it is text that a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_frame(df):
    """A copy of ``df`` whose text cells (and column names) cannot start a spreadsheet formula."""
    import pandas as pd
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype) \
                or isinstance(s.dtype, pd.CategoricalDtype):
            out[col] = s.astype(object).map(neutralise_cell)
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    return out


def csv_bytes(df) -> bytes:
    """UTF-8 CSV (with a BOM, so spreadsheets pick the encoding) of ``df``, formula-safe."""
    return safe_frame(df).to_csv(index=False).encode("utf-8-sig")
