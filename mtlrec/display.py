"""How numbers and words are shown to people: one rule for every table of the app and the report.

* `display_number(v)`: a float rounded for reading -- 4 decimals, but never fewer than 3
  significant digits (0.000123 stays 0.000123, not 0.0001); ints, text, None, NaN unchanged.
  No 16-digit float noise (0.7812345678901234) ever reaches a table.
* `format_number(v)`: the same rule as text ("0.7812", "1.23e+06" above 1e6, "n/a" for NaN/inf).
* `display_table(data)`: a DataFrame, a list of row dicts or a dict of columns with every float
  cell passed through `display_number` (a copy; the input is not changed).
* `with_article(word)`: "a user", "an item".
"""
from __future__ import annotations

import math
from typing import Any

DECIMALS = 4
MIN_SIGNIFICANT = 3
YOO = ("us", "uni", "uti", "ure", "uri")      # u read "you": a user, a unit, a utility


def _is_float(v: Any) -> bool:
    import numpy as np
    return isinstance(v, (float, np.floating))


def _digits(x: float, decimals: int) -> int:
    """Decimals that show ``x`` by the rule: ``decimals``, more for small numbers (3 significant digits)."""
    return decimals if x == 0.0 else max(decimals, MIN_SIGNIFICANT - 1 - math.floor(math.log10(abs(x))))


def display_number(v: Any, decimals: int = DECIMALS) -> Any:
    """``v`` rounded for a table (see the module doc); anything but a finite float is returned as is."""
    if not _is_float(v) or not math.isfinite(float(v)):
        return v
    x = float(v)
    return round(x, _digits(x, decimals))


def format_number(v: Any, decimals: int = DECIMALS) -> str:
    """A number as text by the rule of `display_number`; None -> "—", NaN/inf -> "n/a", 1.23e+06 from 1e6."""
    import numpy as np
    if v is None:
        return "—"
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        return str(v)
    if not _is_float(v):
        return str(int(v))
    x = float(v)
    if not math.isfinite(x):
        return "n/a"
    if abs(x) >= 1e6:
        return f"{x:.{MIN_SIGNIFICANT - 1}e}"
    return f"{x:.{_digits(x, decimals)}f}"


def display_table(data):
    """``data`` (a pandas DataFrame, a list of row dicts or a dict of columns) with every float cell
    rounded by `display_number`; other cells and the shape unchanged."""
    import pandas as pd
    if isinstance(data, pd.DataFrame):
        out = data.copy()
        for c in out.columns:
            col = out[c]
            if pd.api.types.is_float_dtype(col) or col.dtype == object:
                out[c] = col.map(display_number)
        return out
    if isinstance(data, dict):
        return {k: [display_number(v) for v in col] if isinstance(col, (list, tuple)) else display_number(col)
                for k, col in data.items()}
    if isinstance(data, (list, tuple)):
        return [{k: display_number(v) for k, v in r.items()} if isinstance(r, dict) else display_number(r)
                for r in data]
    return data


def with_article(word: str) -> str:
    """``word`` after "a" or "an" by how it starts ("an item", "an unseen item", but "a user", "a unit")."""
    w = str(word)
    low = w.lower()
    vowel = low[:1] in ("a", "e", "i", "o") or (low[:1] == "u" and not low.startswith(YOO))
    return f"{'an' if vowel else 'a'} {w}"
