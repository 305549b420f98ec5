"""Checking raw tables against their column roles before preparation.

``validate(raw, spec)`` raises one :class:`~mtlrec.errors.DataError` for the first
problem that makes the data unusable (what, where: file/column/first rows, how to fix)
and returns a :class:`ValidationReport` with :class:`~mtlrec.errors.DataWarning` s for
data that is suspicious but usable (leakage, missing values, constant columns,
duplicates, ...). All checks are vectorised (a million interactions take a second or two).

Row numbers are 1-based data rows of the named file (the header is not counted).
"""
from __future__ import annotations

import warnings as _warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mtlrec.data.raw import RawData
from mtlrec.data.roles import DataSpec
from mtlrec.errors import DataError, DataWarning

MISSING_OPTIONS = ("drop", "keep", "error")
BINARY_TRUE = {"1", "true", "1.0"}
BINARY_FALSE = {"0", "false", "0.0"}
LEAK_CORR = 0.98        # |Pearson r| of a numeric feature with a numeric label
LEAK_AUC = 0.995        # a numeric feature that separates a binary label (AUC or 1 - AUC)
LEAK_PURITY = 0.995     # a categorical feature whose categories each hold (almost) one label value
HIGH_MISSING = 0.3
SAMPLE_ROWS = 200_000   # rows used by the statistical (warning-only) checks


@dataclass
class ValidationReport:
    """What validation found. ``raw`` is the data to go on with (rows whose items are
    missing from the items table dropped when ``missing_items="drop"``)."""
    warnings: list[DataWarning] = field(default_factory=list)
    rows: int = 0                     # interaction rows after dropping
    users: int | None = None          # distinct users in the interactions (None: no user id)
    items: int | None = None          # distinct items in the interactions (None: no item id)
    dropped_rows: int = 0
    missing_items: int = 0            # interaction rows whose item is not in the items table
    missing_users: int = 0            # interaction rows whose user is not in the users table
    duplicate_interactions: int = 0   # rows repeating an earlier (user, item) pair
    catalog_items: int | None = None  # rows of the items table
    catalog_users: int | None = None  # rows of the users table
    raw: RawData | None = field(default=None, repr=False, compare=False)
    # positions (0-based, in the interactions as given) of the rows ``raw`` keeps (None: all of
    # them) and of the rows dropped, by reason ("unknown_item", "unknown_user")
    kept_rows: np.ndarray | None = field(default=None, repr=False, compare=False)
    dropped_by_reason: dict = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {"warnings": [w.to_dict() for w in self.warnings], "rows": self.rows, "users": self.users,
                "items": self.items, "dropped_rows": self.dropped_rows, "missing_items": self.missing_items,
                "missing_users": self.missing_users, "duplicate_interactions": self.duplicate_interactions,
                "catalog_items": self.catalog_items, "catalog_users": self.catalog_users}


def _rows(mask) -> list[int]:
    """1-based data rows where ``mask`` is True (at most 10)."""
    return (np.flatnonzero(np.asarray(mask))[:10] + 1).tolist()


def _show_values(s: pd.Series, mask, limit: int = 5) -> str:
    idx = np.flatnonzero(np.asarray(mask))[:limit]
    vals = s.iloc[idx]
    return ", ".join(f"{str(v)[:40]!r} (row {i + 1})" for i, v in zip(idx, vals))


def _is_stringy(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s.dtype) or s.dtype == object


def to_numeric(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """-> (float values with NaN for missing/bad, mask of non-missing values that are not numbers)."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64").to_numpy(), np.zeros(len(s), bool)
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.to_numpy(dtype="float64", na_value=np.nan), np.zeros(len(s), bool)
    num = pd.to_numeric(s, errors="coerce")
    vals = num.to_numpy(dtype="float64", na_value=np.nan)
    bad = s.notna().to_numpy() & np.isnan(vals)
    return vals, bad


def binary_values(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """-> (0/1 float values with NaN for missing, mask of values outside {0, 1, true, false})."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64").to_numpy(), np.zeros(len(s), bool)
    if pd.api.types.is_numeric_dtype(s.dtype):
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        bad = ~np.isnan(v) & (v != 0) & (v != 1)
        return np.where(bad, np.nan, v), bad
    low = s.astype("str").str.strip().str.lower()
    present = s.notna().to_numpy()
    t = low.isin(BINARY_TRUE).to_numpy()
    f = low.isin(BINARY_FALSE).to_numpy()
    bad = present & ~t & ~f
    out = np.full(len(s), np.nan)
    out[t] = 1.0
    out[f] = 0.0
    return out, bad


def _same_ids(a: pd.Series, b: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Make two id columns comparable (ints read in one file, strings in another)."""
    if a.dtype == b.dtype or (pd.api.types.is_numeric_dtype(a.dtype) and pd.api.types.is_numeric_dtype(b.dtype)):
        return a, b

    def as_str(s):
        if pd.api.types.is_float_dtype(s.dtype) and (s.dropna() % 1 == 0).all():
            s = s.astype("Int64")
        return s.astype("str")
    return as_str(a), as_str(b)


def validate(raw: RawData, spec: DataSpec, *, missing_items: str = "drop", missing_users: str = "keep",
             missing_numeric: str = "impute", min_rows: int = 20, min_users: int = 2) -> ValidationReport:
    """Check ``raw`` against ``spec``; raise :class:`DataError` or return a :class:`ValidationReport`.

    missing_items / missing_users: what to do with interactions whose item (user) is not in
    the items (users) table: "drop" them, "keep" them (unknown bucket), or raise ("error").
    missing_numeric: "impute" (warn; preparation fills the training median) or "error".
    min_rows / min_users: the least data that can still be split into train/validation/test.
    """
    _check_options(missing_items, missing_users, missing_numeric)
    report = ValidationReport()
    warn = report.warnings.append
    src = raw.source

    for table, df in raw.tables().items():
        if len(df) == 0:
            raise DataError("the file has a header but no data rows", file=src(table),
                            fix="export the table again with its data rows")

    _check_columns(raw, spec)
    _check_ids(raw, spec, report)
    if not spec.labels:
        warn(DataWarning("no label column: the data is read as implicit feedback (every row a positive); "
                         "preparation samples negatives to learn a click-like label", file=src("interactions"),
                         fix="mark a column such as click or rating as a label if there is one"))
    _check_values(raw, spec, missing_numeric, warn)

    clean = _drop_unknown_keys(raw, spec, report, missing_items, missing_users, warn)
    _count(report, clean, raw, spec)
    _check_enough(report, spec, min_rows, min_users, src)
    if spec.user_id and spec.item_id:
        _check_duplicates(clean.interactions, spec, report, src, warn)
    _leakage(clean, spec, warn)
    return report


def _check_options(missing_items: str, missing_users: str, missing_numeric: str) -> None:
    """ValueError for an option of :func:`validate` that it does not know (a caller's mistake)."""
    for name, val in (("missing_items", missing_items), ("missing_users", missing_users)):
        if val not in MISSING_OPTIONS:
            raise ValueError(f"{name} must be one of {MISSING_OPTIONS}, not {val!r}")
    if missing_numeric not in ("impute", "error"):
        raise ValueError("missing_numeric must be 'impute' or 'error'")


def _check_values(raw: RawData, spec: DataSpec, missing_numeric: str, warn) -> None:
    """The values of each column by its role: labels, numeric features, the other features, the timestamp."""
    src = raw.source
    for col, task in spec.labels.items():
        table = raw.locate(col)
        _check_label(raw.tables()[table][col], col, task, src(table), spec.multilabel_sep, warn)
    from mtlrec.prep.encoders import years_if_dates
    for col in spec.numeric:
        table = raw.locate(col)        # a date column as a numeric feature is its year
        _check_numeric(years_if_dates(raw.tables()[table][col]), col, src(table), missing_numeric, warn)
    for kind in ("categorical", "text", "multivalued"):
        for col in getattr(spec, kind):
            _check_feature(raw, col, kind, warn)
    if spec.timestamp:
        _check_timestamp(raw.interactions[spec.timestamp], spec.timestamp, src("interactions"))


def _check_feature(raw: RawData, col: str, kind: str, warn) -> None:
    """A categorical, text or multi-valued feature: an error when empty, a warning when mostly missing
    or constant."""
    table = raw.locate(col)
    src = raw.source
    s = raw.tables()[table][col]
    share = float(s.isna().mean())
    if share == 1.0:
        raise DataError("the column is empty", file=src(table), column=col,
                        fix=f"fill it in or set its role to ignore")
    if share > HIGH_MISSING:
        warn(DataWarning(f"{share:.0%} of the values are missing (they become " + {
                         "categorical": "the 'unknown' category)", "text": "the 'unknown' text)",
                         "multivalued": "an empty list)"}[kind],
                         file=src(table), column=col, fix="check the export, or set its role to ignore"))
    elif s.nunique(dropna=True) <= 1 and share == 0:
        warn(DataWarning("the column has a single value: it carries no information", file=src(table),
                         column=col, fix="set its role to ignore"))


def _drop_unknown_keys(raw: RawData, spec: DataSpec, report: ValidationReport, missing_items: str,
                       missing_users: str, warn) -> RawData:
    """Interactions whose item (user) is not in the items (users) table, handled as asked; the RawData
    without the dropped rows (``raw`` itself when none is dropped)."""
    inter, src = raw.interactions, raw.source
    keep = np.ones(len(inter), bool)
    if spec.item_id and raw.items is not None:
        miss = _missing_keys(inter[spec.item_id], raw.items[spec.item_id])
        report.missing_items = int(miss.sum())
        k = _handle_missing(miss, "item", missing_items, spec.item_id, src, warn, len(inter))
        if not k.all():
            report.dropped_by_reason["unknown_item"] = np.flatnonzero(~k)
        keep &= k
    if spec.user_id and raw.users is not None:
        miss = _missing_keys(inter[spec.user_id], raw.users[spec.user_id])
        report.missing_users = int(miss.sum())
        k = _handle_missing(miss, "user", missing_users, spec.user_id, src, warn, len(inter))
        if not k.all():
            report.dropped_by_reason["unknown_user"] = np.flatnonzero(~k & keep)
        keep &= k
    if keep.all():
        return raw
    report.kept_rows = np.flatnonzero(keep)
    report.dropped_rows = int((~keep).sum())
    return RawData(interactions=inter.loc[keep].reset_index(drop=True), users=raw.users, items=raw.items,
                   sources=dict(raw.sources), format=raw.format, extra=raw.extra,
                   meta={**raw.meta, "dropped_rows": report.dropped_rows})


def _count(report: ValidationReport, clean: RawData, raw: RawData, spec: DataSpec) -> None:
    """Rows, users and items of the interactions kept, and the sizes of the users / items tables."""
    inter = clean.interactions
    report.raw = clean
    report.rows = int(len(inter))
    report.users = int(inter[spec.user_id].nunique()) if spec.user_id else None
    report.items = int(inter[spec.item_id].nunique()) if spec.item_id else None
    report.catalog_items = int(len(raw.items)) if raw.items is not None else None
    report.catalog_users = int(len(raw.users)) if raw.users is not None else None


def _check_enough(report: ValidationReport, spec: DataSpec, min_rows: int, min_users: int, src) -> None:
    """Enough rows and users left to split the data into training, validation and test rows."""
    if report.rows < min_rows:
        raise DataError(f"only {report.rows} interaction rows" + (" are left after dropping unknown items"
                        if report.dropped_rows else "") + f"; at least {min_rows} are needed to split the data "
                        "into training, validation and test rows", file=src("interactions"),
                        fix="add more rows")
    if spec.user_id and report.users < min_users:
        raise DataError(f"only {report.users} distinct user(s); at least {min_users} are needed to split the data",
                        file=src("interactions"), column=spec.user_id,
                        fix="add interactions of more users, or check that the user id column is the right one")


def _check_duplicates(inter, spec: DataSpec, report: ValidationReport, src, warn) -> None:
    """Count the rows that repeat an earlier (user, item) pair, with a warning."""
    dup = _duplicated_pairs(inter[spec.user_id], inter[spec.item_id])
    report.duplicate_interactions = int(dup.sum())
    if report.duplicate_interactions:
        warn(DataWarning(f"{report.duplicate_interactions} rows repeat an earlier (user, item) pair",
                         file=src("interactions"), rows=_rows(dup),
                         fix="preparation keeps the last row of each pair or aggregates them (a setting)"))


# ---------------------------------------------------------------------------------------
def _available(raw: RawData) -> str:
    return "; ".join(f"{raw.source(t)}: {', '.join(cols)}" for t, cols in raw.all_columns().items())


def _check_columns(raw: RawData, spec: DataSpec) -> None:
    inter_cols = set(map(str, raw.interactions.columns))
    for col in spec.columns():
        if raw.locate(col) is None:
            raise DataError(f"the column named in the roles does not exist. Available columns: {_available(raw)}",
                            file=raw.source("interactions"), column=col,
                            fix="pick one of the available columns, or correct the column name in the file")
    for role, col in (("user id", spec.user_id), ("item id", spec.item_id), ("timestamp", spec.timestamp)):
        if col and col not in inter_cols:
            raise DataError(f"the {role} column must be in the interactions table "
                            f"(it has: {', '.join(sorted(inter_cols))})", file=raw.source("interactions"),
                            column=col, fix=f"add the {role} to every interaction row")
    if not spec.labels and not (spec.user_id and spec.item_id):
        raise DataError("no column has a label role and there are no user and item ids: there is nothing to learn",
                        file=raw.source("interactions"),
                        fix="mark at least one column (e.g. click, rating) as a binary, regression or multi-label label")


def _check_ids(raw: RawData, spec: DataSpec, report: ValidationReport) -> None:
    inter = raw.interactions
    for role, col, table in (("user", spec.user_id, "users"), ("item", spec.item_id, "items")):
        if not col:
            continue
        s = inter[col]
        miss = s.isna().to_numpy()
        if miss.any():
            raise DataError(f"{int(miss.sum())} interaction rows have no {role} id", file=raw.source("interactions"),
                            column=col, rows=_rows(miss),
                            fix=f"fill in the {role} id of every row, or remove those rows")
        other = getattr(raw, table)
        if other is None:
            continue
        if col not in other.columns:
            raise DataError(f"the {table} table has no column '{col}' to join it to the interactions "
                            f"(it has: {', '.join(map(str, other.columns))})", file=raw.source(table),
                            column=col, fix=f"name the {role} id column '{col}' in both files")
        o = other[col]
        miss = o.isna().to_numpy()
        if miss.any():
            raise DataError(f"{int(miss.sum())} rows have no {role} id", file=raw.source(table), column=col,
                            rows=_rows(miss), fix=f"fill in the {role} id of every row, or remove those rows")
        dup = o.duplicated(keep="first").to_numpy()
        if dup.any():
            raise DataError(f"{int(dup.sum())} {role} ids appear more than once "
                            f"(first: {_show_values(o, dup, 3)})", file=raw.source(table), column=col,
                            rows=_rows(dup), fix=f"keep one row per {role}")


FLOAT32_MAX = float(np.finfo(np.float32).max)
OUTLIER_IQRS = 1000.0       # a value this many interquartile ranges from the median is "extreme"


def robust_center_scale(present: np.ndarray) -> dict:
    """Centre and scale of a column for the outlier rule: the median and the interquartile range.

    A zero-inflated column (capital gains: 96 % zeros) has an IQR and a MAD of 0, and a fallback
    scale of one unit would call nearly every non-zero value an outlier. When one value holds at
    least half of the rows (the IQR is 0), that value is ``common`` and never an outlier; centre and
    scale come from the other values (the non-zero part). Returns ``{"center", "scale", "q1", "q3",
    "common", "common_share"}`` (``common`` None for an ordinary column)."""
    q1, med, q3 = np.percentile(present, [25, 50, 75])
    if q3 > q1:
        return {"center": float(med), "scale": float(q3 - q1), "q1": float(q1), "q3": float(q3),
                "common": None, "common_share": 0.0}
    rest = present[present != med]
    out = {"center": float(med), "scale": max(abs(float(med)), 1.0), "q1": float(q1), "q3": float(q3),
           "common": float(med), "common_share": 1.0 - len(rest) / len(present)}
    if len(rest) >= 4:
        r1, rmed, r3 = np.percentile(rest, [25, 50, 75])
        scale = float(r3 - r1) or float(np.median(np.abs(rest - rmed))) or max(abs(float(rmed)), 1.0)
        out.update(center=float(rmed), scale=scale, q1=float(r1), q3=float(r3))
    return out


def _check_extremes(vals: np.ndarray, file: str, col: str, warn, what: str) -> None:
    """Values the model cannot hold (beyond float32: they become inf) are an error; values far
    outside the rest of the column (robust scale, see :func:`robust_center_scale`) are a warning,
    since one of them dominates the standardisation and the loss."""
    finite = np.isfinite(vals)
    huge = finite & (np.abs(np.where(finite, vals, 0.0)) > FLOAT32_MAX)
    if huge.any():
        raise DataError(f"{int(huge.sum())} {what} are too large for the model (beyond ±{FLOAT32_MAX:.1e}; first: "
                        f"{vals[huge][0]:.3g}): they would become infinite in training", file=file, column=col,
                        rows=_rows(huge), fix="correct or remove those rows (a unit or parsing error?)")
    present = vals[finite]
    if len(present) < 4:
        return
    rs = robust_center_scale(present)
    v = np.where(finite, vals, rs["center"])
    far = finite & (np.abs(v - rs["center"]) > OUTLIER_IQRS * rs["scale"])
    if rs["common"] is not None:
        far &= v != rs["common"]
    if far.any():
        bulk = (f"the middle half of the column lies in [{rs['q1']:.3g}, {rs['q3']:.3g}]" if rs["common"] is None
                else f"{rs['common_share']:.0%} of the column is {rs['common']:g}; the middle half of the other "
                     f"values lies in [{rs['q1']:.3g}, {rs['q3']:.3g}]")
        n = int(far.sum())
        said = f"{n} {what} are extreme outliers" if n != 1 else f"1 {what.removesuffix('s')} is an extreme outlier"
        warn(DataWarning(f"{said} (first: {vals[far][0]:.3g}; {bulk}): "
                         "one such value dominates the standardisation and the loss", file=file, column=col,
                         rows=_rows(far),
                         fix="correct or remove those rows, or clip / winsorise the column in the preparation "
                             "options (numeric_transforms)"))


SCALE_LEVELS = {1.0: 11, 0.5: 21}   # step of a rating scale -> most levels (0-10; 0-10 in half steps)
SCALE_TAIL = 0.005                  # the scale is read between the 0.5 % and 99.5 % quantiles
SCALE_END_SHARE = 0.005             # each end level of a scale holds at least this share of the rows


def rating_scale(vals: np.ndarray) -> dict | None:
    """The rating scale a regression label uses, or None: ``{"low", "high", "step"}``.

    A scale: the values between the 0.5 % and 99.5 % quantiles lie on a grid of whole (at most 11
    levels) or half steps (at most 21), 3 levels or more, every level used, each end level held by at
    least 0.5 % of the rows (MovieLens: 1-5, or 0.5-5 in half steps). A continuous label, or a count
    whose tail thins out, has none."""
    present = vals[np.isfinite(vals)]
    if len(present) < 20:
        return None
    if len(present) > SAMPLE_ROWS:
        present = np.random.default_rng(0).choice(present, SAMPLE_ROWS, replace=False)
    low, high = np.quantile(present, [SCALE_TAIL, 1 - SCALE_TAIL], method="inverted_cdf")
    if min((present == low).mean(), (present == high).mean()) < SCALE_END_SHARE:
        return None
    levels = np.unique(present[(present >= low) & (present <= high)])
    for step, most in SCALE_LEVELS.items():
        n_levels = int(round((high - low) / step)) + 1
        on_grid = np.allclose(np.round((levels - low) / step) * step + low, levels, atol=1e-6)
        if on_grid and 3 <= n_levels <= most and len(levels) == n_levels:
            return {"low": float(low), "high": float(high), "step": step}
    return None


def _check_label_scale(vals: np.ndarray, file: str, col: str, warn) -> None:
    """A rating far off its scale (50 on a 1-5 scale: a typing error; more than one step beyond its
    ends) is a warning naming the rows: next to 1-5 it is no extreme outlier, yet it pulls the
    regression target and its loss."""
    scale = rating_scale(vals)
    if scale is None:
        return
    low, high, step = scale["low"], scale["high"], scale["step"]
    finite = np.isfinite(vals)
    v = np.where(finite, vals, low)
    off = finite & ((v < low - step) | (v > high + step))
    if not off.any():
        return
    n = int(off.sum())
    shown = ", ".join(f"{x:g}" for x in np.unique(vals[off])[:5])
    warn(DataWarning(f"{n} label value{'s lie' if n > 1 else ' lies'} far outside the rating scale {low:g}-{high:g} "
                     f"(in steps of {step:g}) of the other rows: {shown}", file=file, column=col, rows=_rows(off),
                     fix="correct them (a typing error, e.g. 50 for 5?) or remove those rows; a code for 'no "
                         "rating' should be an empty cell"))


def trainable_label_limit(n_rows: int) -> float:
    """The largest regression label magnitude training can work with on ``n_rows`` rows: the model
    computes in 32-bit floats, and the squared errors of a batch or a split (its loss, its RMSE)
    must add up below their largest value (±3.4e38) -- with room for a prediction on the other
    side of the mean: sqrt(FLOAT32_MAX / n) / 4 (1.9e16 on 60,000 rows)."""
    return float(np.sqrt(FLOAT32_MAX / max(int(n_rows), 1)) / 4)


def _check_trainable_label(vals: np.ndarray, file: str, col: str) -> None:
    """Regression label values too large to train on (e.g. 1e30 ratings) are an error here, naming
    the rows -- not a "target_std must be a finite number" and an overflow warning in training."""
    finite = np.isfinite(vals)
    limit = trainable_label_limit(int(finite.sum()))
    huge = finite & (np.abs(np.where(finite, vals, 0.0)) > limit)
    if huge.any():
        raise DataError(f"{int(huge.sum())} label values are too large to train on (largest: "
                        f"{np.abs(vals[huge]).max():.3g}; with {int(finite.sum()):,} rows the model, which computes in "
                        f"32-bit floats, can learn values up to about ±{limit:.1e}: the squared errors of larger ones "
                        "add up to infinity)", file=file, column=col, rows=_rows(huge),
                        fix="correct or remove those rows (a unit or parsing error?), or rescale the column "
                            "(e.g. in thousands, or its logarithm)")


def _check_label(s: pd.Series, col: str, task: str, file: str, sep: str, warn) -> None:
    missing = s.isna().to_numpy()
    if missing.all():
        raise DataError("the label column is empty", file=file, column=col, fix="fill it in, or use another label")
    if task == "binary":
        vals, bad = binary_values(s)
        if bad.any():
            raise DataError(f"a binary label must be 0/1 or true/false; {int(bad.sum())} values are not "
                            f"(first: {_show_values(s, bad)})", file=file, column=col, rows=_rows(bad),
                            fix="recode the column to 0/1, or make it a regression label")
        present = vals[~np.isnan(vals)]
        if present.min() == present.max():
            raise DataError(f"the label has a single class (every row is {int(present[0])}): "
                            "a model cannot learn from it", file=file, column=col,
                            fix="use a label with both classes, or derive one (e.g. like = rating >= 4)")
    elif task == "regression":
        vals, bad = to_numeric(s)
        if bad.any():
            raise DataError(f"a regression label must be numbers; {int(bad.sum())} values are not "
                            f"(first: {_show_values(s, bad)})", file=file, column=col, rows=_rows(bad),
                            fix="remove the text from the column (e.g. '4 stars' -> 4), or make it categorical")
        inf = np.isinf(vals)
        if inf.any():
            raise DataError(f"{int(inf.sum())} label values are infinite", file=file, column=col, rows=_rows(inf),
                            fix="replace them by real numbers or remove those rows")
        _check_extremes(vals, file, col, warn, "label values")
        _check_label_scale(vals, file, col, warn)
        _check_trainable_label(vals, file, col)
        present = vals[~np.isnan(vals)]
        if present.min() == present.max():
            raise DataError(f"the label has a single value ({present[0]:g} in every row): "
                            "a model cannot learn from it", file=file, column=col, fix="use another label")
    else:  # multilabel
        strs = s.dropna().astype("str")
        if len(strs) > SAMPLE_ROWS:
            strs = strs.sample(SAMPLE_ROWS, random_state=0)
        classes = strs.str.split(sep, regex=False).explode().str.strip()
        classes = classes[classes != ""]
        n = classes.nunique()
        if n < 2:
            raise DataError(f"the multi-label column has {'a single class' if n == 1 else 'no classes'} "
                            f"with separator {sep!r}: a model cannot learn from it", file=file, column=col,
                            fix=f"separate the labels with {sep!r} (e.g. 'Action{sep}Comedy'), or set the separator")
    share = float(missing.mean())
    if share > 0:
        warn(DataWarning(f"{int(missing.sum())} rows ({share:.1%}) have no value for this label; they do not "
                         "count in its loss", file=file, column=col, rows=_rows(missing),
                         fix="fill them in if the value is known"))


def _check_numeric(s: pd.Series, col: str, file: str, missing_numeric: str, warn) -> None:
    vals, bad = to_numeric(s)
    if bad.any():
        raise DataError(f"a numeric feature must be numbers; {int(bad.sum())} values are not "
                        f"(first: {_show_values(s, bad)})", file=file, column=col, rows=_rows(bad),
                        fix="remove the text from the column, or make it a categorical feature")
    inf = np.isinf(vals)
    if inf.any():
        raise DataError(f"{int(inf.sum())} values are infinite (inf)", file=file, column=col, rows=_rows(inf),
                        fix="replace them by real numbers, or leave the cells empty to fill them with the median")
    _check_extremes(vals, file, col, warn, "values")
    nan = np.isnan(vals)
    if nan.all():
        raise DataError("the numeric feature has no values (all NaN or empty)", file=file, column=col,
                        fix="fill it in, or set its role to ignore")
    if nan.any():
        if missing_numeric == "error":
            raise DataError(f"{int(nan.sum())} values are missing (NaN or empty)", file=file, column=col,
                            rows=_rows(nan), fix="fill them in, or allow filling with the training median")
        share = float(nan.mean())
        warn(DataWarning(f"{int(nan.sum())} values ({share:.1%}) are missing (NaN); preparation fills them with "
                         "the training median", file=file, column=col, rows=_rows(nan),
                         fix="fill them in" + (", or set the role to ignore" if share > HIGH_MISSING else "")))
    present = vals[~nan]
    if present.min() == present.max():
        warn(DataWarning(f"the column has a single value ({present[0]:g}): it carries no information",
                         file=file, column=col, fix="set its role to ignore"))


def _check_timestamp(s: pd.Series, col: str, file: str) -> None:
    miss = s.isna().to_numpy()
    if miss.any():
        raise DataError(f"{int(miss.sum())} rows have no timestamp", file=file, column=col, rows=_rows(miss),
                        fix="fill in the time of every interaction, or set the role of this column to ignore")
    if pd.api.types.is_datetime64_any_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return
    if pd.api.types.is_numeric_dtype(s.dtype):
        vals = s.to_numpy(dtype="float64")
        bad = ~np.isfinite(vals)
        if bad.any():
            raise DataError("timestamps must be finite numbers (Unix time) or dates", file=file, column=col,
                            rows=_rows(bad), fix="replace the infinite values")
        return
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        parsed = pd.to_datetime(s, errors="coerce")
        bad = parsed.isna().to_numpy().copy()
        if bad.any() and bad.mean() > 0.0:
            # the inferred format may not fit every row: try row-wise format inference on the bad ones only
            idx = np.flatnonzero(bad)
            if len(idx) <= 10_000:
                again = pd.to_datetime(s.iloc[idx], errors="coerce", format="mixed")
                bad[idx[again.notna().to_numpy()]] = False
    if bad.any():
        raise DataError(f"{int(bad.sum())} timestamps cannot be read as dates (first: {_show_values(s, bad)})",
                        file=file, column=col, rows=_rows(bad),
                        fix="write dates in one format such as 2024-01-31 12:00:00, or as Unix seconds")


def _duplicated_pairs(u: pd.Series, i: pd.Series) -> np.ndarray:
    """Rows repeating an earlier (user, item) pair; one int64 key when both ids are small integers."""
    if pd.api.types.is_integer_dtype(u.dtype) and pd.api.types.is_integer_dtype(i.dtype):
        a, b = u.to_numpy(dtype=np.int64), i.to_numpy(dtype=np.int64)
        if len(a) and a.min() >= 0 and b.min() >= 0 and (int(a.max()) + 1) * (int(b.max()) + 1) < 2 ** 62:
            return pd.Series(a * (int(b.max()) + 1) + b).duplicated(keep="first").to_numpy()
    return pd.DataFrame({"u": u.to_numpy(), "i": i.to_numpy()}).duplicated(keep="first").to_numpy()


def _missing_keys(keys: pd.Series, table_keys: pd.Series) -> np.ndarray:
    a, b = _same_ids(keys, table_keys)
    return ~a.isin(b).to_numpy()


def _handle_missing(miss: np.ndarray, role: str, option: str, col: str, src, warn, n: int) -> np.ndarray:
    table = role + "s"
    k = int(miss.sum())
    if k == 0:
        return np.ones(n, bool)
    if k == n:
        raise DataError(f"none of the {role} ids of the interactions is in the {table} table "
                        f"({src(table)})", file=src("interactions"), column=col, rows=_rows(miss),
                        fix=f"check that both files use the same {role} ids (and the same id column)")
    what = f"{k} interaction rows ({k / n:.1%}) have {'an' if role[0] in 'aeiou' else 'a'} {role} that is not in the {table} table ({src(table)})"
    if option == "error":
        raise DataError(what, file=src("interactions"), column=col, rows=_rows(miss),
                        fix=f"add those {table} to {src(table)}, or drop or keep these rows (option missing_{table})")
    if option == "drop":
        warn(DataWarning(what + "; they were dropped", file=src("interactions"), column=col, rows=_rows(miss),
                         fix=f"add those {table} to {src(table)} to keep them"))
        return ~miss
    warn(DataWarning(what + f"; they are kept with unknown {role} features", file=src("interactions"), column=col,
                     rows=_rows(miss), fix=f"add those {table} to {src(table)}"))
    return np.ones(n, bool)


# ---------------------------------------------------------------------------------------
def _feature_on_interactions(raw: RawData, spec: DataSpec, col: str, idx: np.ndarray) -> pd.Series | None:
    """Feature values aligned with the sampled interaction rows ``idx`` (joined through the ids)."""
    table = raw.locate(col)
    inter = raw.interactions
    if table == "interactions":
        return inter[col].iloc[idx].reset_index(drop=True)
    key = spec.user_id if table == "users" else spec.item_id
    if not key:
        return None
    other = getattr(raw, table)
    left, right = _same_ids(inter[key].iloc[idx], other[key])
    mapping = pd.Series(other[col].to_numpy(), index=right.to_numpy())
    if not mapping.index.is_unique:
        return None
    return pd.Series(mapping.reindex(left.to_numpy()).to_numpy())


def _auc(score: np.ndarray, y: np.ndarray) -> float:
    ranks = pd.Series(score).rank(method="average").to_numpy()
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return 0.5
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _leakage(raw: RawData, spec: DataSpec, warn) -> None:
    """Warn about features that (nearly) equal a label: the model would learn the answer."""
    inter = raw.interactions
    n = len(inter)
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(n, SAMPLE_ROWS, replace=False)) if n > SAMPLE_ROWS else np.arange(n)
    labels = {}
    for col, task in spec.labels.items():
        if task == "multilabel" or raw.locate(col) != "interactions":
            continue
        s = inter[col].iloc[idx]
        vals = binary_values(s)[0] if task == "binary" else to_numeric(s)[0]
        labels[col] = (task, vals)
    if not labels:
        return
    feats = [(c, "numeric") for c in spec.numeric] + [(c, "categorical") for c in spec.categorical]
    for col, kind in feats:
        f = _feature_on_interactions(raw, spec, col, idx)
        if f is None:
            continue
        if kind == "numeric":
            x = to_numeric(f)[0]
        else:
            codes = pd.factorize(f)[0]
        for lab, (task, y) in labels.items():
            ok = ~np.isnan(y)
            if kind == "numeric":
                ok = ok & ~np.isnan(x)
                if ok.sum() < 10 or np.nanstd(x[ok]) == 0 or np.nanstd(y[ok]) == 0:
                    continue
                r = float(np.corrcoef(x[ok], y[ok])[0, 1])
                strength = abs(r)
                hit = strength > LEAK_CORR
                detail = f"correlation {r:+.3f}"
                if not hit and task == "binary":
                    auc = _auc(x[ok], y[ok])
                    strength = max(auc, 1 - auc)
                    hit = strength >= LEAK_AUC
                    detail = f"it separates the classes with AUC {strength:.3f}"
            else:
                ok = ok & (codes >= 0)
                if ok.sum() < 10 or task != "binary":
                    continue
                c, yy = codes[ok], y[ok].astype(np.int64)
                ncat = int(c.max()) + 1
                if ncat > max(20, ok.sum() // 50):
                    continue  # near-unique categories say nothing
                counts = np.bincount(c * 2 + yy, minlength=2 * ncat).reshape(ncat, 2)
                purity = float(counts.max(axis=1).sum() / counts.sum())
                base = float(max(yy.mean(), 1 - yy.mean()))
                hit = purity >= LEAK_PURITY and base < LEAK_PURITY
                detail = f"its categories predict the label for {purity:.1%} of the rows"
            if hit:
                warn(DataWarning(f"possible leakage: the feature (nearly) equals the label '{lab}' ({detail})",
                                 file=raw.source(raw.locate(col)), column=col,
                                 fix=f"set the role of '{col}' to ignore unless it is known before '{lab}' is"))
