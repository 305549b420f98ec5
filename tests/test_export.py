"""CSV exports cannot carry spreadsheet formulas (CSV injection)."""
from __future__ import annotations

import csv
import io

import pandas as pd

from mtlrec.export import csv_bytes, neutralise_cell


def test_formula_cells_are_neutralised_and_numbers_are_not():
    df = pd.DataFrame({
        "title": ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "Normal title", "a=b"],
        "score": [-0.5, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        "=col": ["x"] * 7,
    })
    rows = list(csv.reader(io.StringIO(csv_bytes(df).decode("utf-8-sig"))))
    assert rows[0] == ["title", "score", "'=col"]
    titles = [r[0] for r in rows[1:]]
    assert titles[:5] == ["'=HYPERLINK(\"http://x\")", "'+1+1", "'-2+3", "'@SUM(A1)", "'\t=1"]
    assert titles[5:] == ["Normal title", "a=b"]                 # harmless text is untouched
    assert [r[1] for r in rows[1:]][0] == "-0.5"                  # a negative number stays a number
    assert all(not r[0].startswith(("=", "+", "-", "@")) for r in rows[1:])


def test_non_text_values_pass_through():
    assert neutralise_cell(-3) == -3 and neutralise_cell(None) is None and neutralise_cell("ok") == "ok"
