"""UCI Census-Income (KDD) as a two-task table: the benchmark of the MMoE paper.

The data file (``census-income.test.gz`` / ``.data``; comma+space separated, no header)
comes with ``columns.txt`` (the 42 column names, comma separated). The two binary labels:

* ``income_50k``   = 1 where the income column is ``50000+.`` (else ``- 50000.``)
* ``never_married`` = 1 where ``marital_stat`` is ``Never married``

The original income and marital-status columns are dropped from the features (they *are*
the labels), and so is ``instance_weight`` (a survey sampling weight, not a property of
the person). Every other column is a context feature: seven numeric ones, the rest
categorical. The table has no user or item ids: it trains and evaluates, but gives no
recommendation lists. :func:`mtlrec.data.readers.load_census` reads the folder.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtlrec.data.files import decode_check
from mtlrec.data.limits import as_data_error
from mtlrec.data.mapped import open_data
from mtlrec.data.raw import RawData
from mtlrec.data.roles import DataSpec
from mtlrec.errors import DataError

NUMERIC = ["age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends", "num_emp",
           "weeks_worked"]
DROPPED = ["instance_weight"]
LABELS = {"income_50k": "binary", "never_married": "binary"}


@as_data_error
def _columns(name: str, data: bytes) -> list[str]:
    text = data[:].decode("utf-8", errors="replace")   # (a memory-mapped file: its bytes)
    cols = [c.strip() for c in text.replace("\n", ",").split(",") if c.strip()]
    if len(cols) < 3:
        raise DataError("expected the comma-separated column names of the census file", file=name,
                        fix="use the columns.txt that comes with the dataset")
    return cols


def read_census_files(names: dict[str, tuple[str, bytes]]) -> RawData:
    """``names``: lower-case file name -> (name, bytes); needs columns.txt and one census-income* file."""
    data_files = sorted(k for k in names if k.startswith("census-income") and k != "columns.txt")
    key = next((k for k in data_files if ".test" in k), data_files[0])
    return _read_census(names[key][0], names[key][1], names["columns.txt"])


@as_data_error
def _read_census(name: str, data: bytes, columns_file: tuple[str, bytes]) -> RawData:
    cname, cbytes = columns_file
    cols = _columns(cname, cbytes)
    data, encoding = decode_check(name, data)
    try:
        with open_data(data) as fh:     # a memory-mapped file: read from the map itself
            df = pd.read_csv(fh, sep=",", header=None, names=cols, skipinitialspace=True,
                             encoding=encoding, on_bad_lines="error", index_col=False, low_memory=False)
    except pd.errors.ParserError as e:
        raise DataError(f"the rows do not have the {len(cols)} fields named in {cname} ({str(e).strip()[:120]})",
                        file=name, fix="use the data file and the columns.txt that belong together") from None
    if df.iloc[:, -1].isna().all():
        raise DataError(f"the rows have fewer fields than the {len(cols)} names in {cname}", file=name,
                        fix="use the data file and the columns.txt that belong together")
    for c in df.columns:
        if pd.api.types.is_string_dtype(df[c].dtype):
            df[c] = df[c].str.strip()
    income_col = next((c for c in ("income_50k", "income", "label", "class") if c in df.columns), cols[-1])
    if "marital_stat" not in df.columns:
        raise DataError("the census table has no column 'marital_stat'", file=name, column="marital_stat",
                        fix="use the columns.txt of the Census-Income KDD dataset")
    income = df[income_col].astype("str").str.replace(" ", "", regex=False)
    known = income.isin(["50000+.", "-50000.", "50000+", "-50000"])
    if not known.all():
        bad = np.flatnonzero(~known.to_numpy())[:5] + 1
        raise DataError("income values must be '50000+.' or '- 50000.'", file=name, column=income_col,
                        rows=bad.tolist(), fix="use the original census-income file")
    out = df.drop(columns=[c for c in [income_col, "marital_stat", *DROPPED] if c in df.columns])
    out["income_50k"] = income.str.startswith("50000+").astype("int8").to_numpy()
    out["never_married"] = (df["marital_stat"] == "Never married").astype("int8").to_numpy()
    return RawData(interactions=out, sources={"interactions": name, "columns": cname}, format="census",
                   meta={"label_from": {"income_50k": income_col, "never_married": "marital_stat"},
                         "dropped": [income_col, "marital_stat", *DROPPED]})


def census_spec(raw: RawData) -> DataSpec:
    """Roles of the census table: two binary labels, numeric and categorical context features."""
    cols = [c for c in raw.interactions.columns if c not in LABELS]
    return DataSpec(labels=dict(LABELS),
                    numeric={c: "context" for c in cols if c in NUMERIC},
                    categorical={c: "context" for c in cols if c not in NUMERIC})

