"""Per-column transforms of numeric features: none / clip / winsorise / log1p.

Set in ``PrepConfig.numeric_transforms`` as ``{column: method}`` or ``{column: {"method": m,
"lower": a, "upper": b}}``:

* ``clip``: to ``[lower, upper]`` in the column's units; a bound left out is fitted: the minimum
  (maximum) of the training values, so valid / test / serving values beyond the training range
  are held to it.
* ``winsorise`` (or ``winsorize``): to the ``lower`` / ``upper`` quantiles (default 0.01 / 0.99)
  of the training values.
* ``log1p``: ``log(1 + x)`` for skewed, non-negative values (amounts, counts); a negative value is
  a DataError naming the rows (clip or winsorise such a column instead).

Bounds are fitted on the training rows only (the training users / items for a user / item
feature), then applied to train, valid and test alike (never refitted), before the missing-value
fill and the standardisation (whose statistics are those of the transformed training values).
The fitted transform is kept in the prepared dataset (``meta["report"]["stats"][col]["transform"]``),
so that a run applies the same one when it encodes a raw value for a recommendation or a what-if
(:func:`forward`), and undoes log1p when it shows one (:func:`undo`); ``report["transforms"]`` and
one note per column say what was changed (method, bounds, rows changed per split).

Transforms apply to numeric *features* only: a regression label keeps its own scale (its metrics are
read on it); a label far off its rating scale is reported by validation instead.
"""
from __future__ import annotations

import numpy as np

from mtlrec.errors import DataError
from mtlrec.prep.splits import NAMES

TRANSFORMS = ("none", "clip", "winsorise", "log1p")
ALIASES = {"winsorize": "winsorise", "": "none", None: "none"}
WINSORISE_DEFAULT = (0.01, 0.99)
SKEW_SUGGEST = 3.0          # a non-negative feature this skewed is offered log1p


# ---------------------------------------------------------------------------- options
def _bound(col: str, name: str, v) -> float | None:
    if v is None or v == "":
        return None
    try:
        out = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"numeric_transforms['{col}']: {name} must be a number, not {v!r}") from None
    if not np.isfinite(out):
        raise ValueError(f"numeric_transforms['{col}']: {name} must be a finite number, not {v!r}")
    return out


def normalize(col: str, setting) -> dict | None:
    """One column's transform as given -> ``{"method", "lower", "upper"}`` (None for "none").
    ValueError (what, and the allowed values) for a bad one."""
    if isinstance(setting, str) or setting is None:
        setting = {"method": setting}
    if not isinstance(setting, dict):
        raise ValueError(f"numeric_transforms['{col}'] must be a method name or "
                         f"{{'method': ..., 'lower': ..., 'upper': ...}}, not {setting!r}")
    unknown = sorted(set(setting) - {"method", "lower", "upper"})
    if unknown:
        raise ValueError(f"numeric_transforms['{col}']: unknown key(s) {unknown}; known: method, lower, upper")
    method = setting.get("method")
    method = ALIASES.get(method.strip().lower() if isinstance(method, str) else method, method)
    method = method.strip().lower() if isinstance(method, str) else method
    if method not in TRANSFORMS:
        raise ValueError(f"numeric_transforms['{col}']: method must be one of {TRANSFORMS}, "
                         f"not {setting.get('method')!r}")
    lower, upper = _bound(col, "lower", setting.get("lower")), _bound(col, "upper", setting.get("upper"))
    if method in ("none", "log1p"):
        if lower is not None or upper is not None:
            raise ValueError(f"numeric_transforms['{col}']: {method} takes no bounds (lower/upper are for clip "
                             "and winsorise)")
        return None if method == "none" else {"method": method, "lower": None, "upper": None}
    if method == "winsorise":
        lower = WINSORISE_DEFAULT[0] if lower is None else lower
        upper = WINSORISE_DEFAULT[1] if upper is None else upper
        if not 0.0 <= lower < upper <= 1.0:
            raise ValueError(f"numeric_transforms['{col}']: winsorise takes quantiles 0 <= lower < upper <= 1, "
                             f"not {lower:g} and {upper:g} (e.g. 0.01 and 0.99)")
    elif lower is not None and upper is not None and not lower < upper:
        raise ValueError(f"numeric_transforms['{col}']: clip needs lower < upper, not {lower:g} and {upper:g}")
    return {"method": method, "lower": lower, "upper": upper}


def normalize_all(settings) -> dict:
    """``PrepConfig.numeric_transforms`` -> {column: normalised setting} ("none" left out)."""
    if not settings:
        return {}
    if not isinstance(settings, dict):
        raise ValueError("numeric_transforms must be a mapping column -> method, e.g. "
                         "{'capital_gains': 'log1p', 'age': {'method': 'clip', 'lower': 0, 'upper': 100}}")
    out = {}
    for col, setting in settings.items():
        norm = normalize(str(col), setting)
        if norm is not None:
            out[str(col)] = norm
    return out


# ---------------------------------------------------------------------------- fit / apply
def fit(values: np.ndarray, setting: dict) -> dict:
    """The fitted transform of a column from its training values (float, NaN = missing)."""
    present = values[np.isfinite(values)]
    method = setting["method"]
    if method == "log1p":
        return {"method": "log1p"}
    if method == "winsorise":
        q = [setting["lower"], setting["upper"]]
        lo, hi = np.quantile(present, q) if len(present) else (None, None)
        return {"method": method, "lower": _num(lo), "upper": _num(hi), "quantiles": q}
    lo = setting["lower"] if setting["lower"] is not None else (_num(present.min()) if len(present) else None)
    hi = setting["upper"] if setting["upper"] is not None else (_num(present.max()) if len(present) else None)
    return {"method": method, "lower": lo, "upper": hi,
            "fitted": [side for side in ("lower", "upper") if setting[side] is None]}


def _num(v) -> float | None:
    return None if v is None else float(v)


def apply(values: np.ndarray, state: dict | None) -> np.ndarray:
    """The transformed values (NaN stays NaN); ``state`` None: unchanged."""
    if not state:
        return values
    if state["method"] == "log1p":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log1p(values)
    return np.clip(values, state.get("lower"), state.get("upper"))


def forward(value: float, state: dict | None, column: str = "") -> float:
    """A raw value as the model's input expects it before standardisation (serving, what-if)."""
    if state and state["method"] == "log1p" and value < 0:
        raise DataError(f"{column or 'this feature'} is transformed with log1p in this run, which needs values "
                        f">= 0, not {value:g}", column=column or None, fix="give a value of 0 or more")
    return float(apply(np.asarray([value], dtype=np.float64), state)[0])


def undo(values, state: dict | None):
    """Transformed values back on the column's scale to show them (log1p undone; a clipped value stays
    the bound it was clipped to: that is what the model saw)."""
    if state and state.get("method") == "log1p":
        return np.expm1(values)
    return values


# ---------------------------------------------------------------------------- columns, suggestions
def transformable_columns(spec) -> list[str]:
    """The numeric features a transform can be set for (ids, timestamp and labels are none)."""
    skip = {spec.user_id, spec.item_id, spec.timestamp} - {None}
    return [c for c in spec.numeric if c not in skip and c not in spec.labels]


def for_columns(settings: dict, spec) -> dict:
    """``settings`` without the columns that are no numeric feature of ``spec`` any more (roles changed)."""
    keep = set(transformable_columns(spec))
    return {c: t for c, t in (settings or {}).items() if c in keep}


def suggestions(raw, spec, sample: int = 200_000) -> dict[str, str]:
    """{numeric feature: why log1p suits it} for the strongly right-skewed, non-negative ones
    (from up to ``sample`` values of each)."""
    from mtlrec.prep.encoders import to_float
    out = {}
    for col in transformable_columns(spec):
        table = raw.locate(col)
        if table is None:
            continue
        s = raw.tables()[table][col]
        vals = to_float(s if len(s) <= sample else s.sample(sample, random_state=0))
        why = suggest(vals)
        if why:
            out[col] = why
    return out


def suggest(values: np.ndarray) -> str | None:
    """Why log1p suits a column (non-negative and strongly right-skewed, e.g. zero-inflated amounts),
    or None."""
    v = values[np.isfinite(values)]
    if len(v) < 20 or v.min() < 0 or v.std() == 0:
        return None
    skew = float(np.mean((v - v.mean()) ** 3) / v.std() ** 3)
    if skew < SKEW_SUGGEST:
        return None
    zeros = float((v == 0).mean())
    return (f"log1p suggested: {zeros:.0%} zeros, " if zeros >= 0.5 else "log1p suggested: ") + \
        f"a long right tail (skewness {skew:.0f}, up to {_amount(v.max())})"


def _amount(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


# ---------------------------------------------------------------------------- in preparation
class NumericTransforms:
    """The transforms of one preparation: checked against the column roles, fitted and applied column
    by column (:meth:`apply`), and reported (:meth:`fitted`, :meth:`write_report`).

    ``split``: the split code of each kept row; ``row_users`` / ``row_items``: the user / item table
    position of each kept row; ``row_ids``: each input row's 0-based position in the interactions and
    ``kept`` the input rows kept (for messages); ``tables``: the raw tables (`mtlrec.prep.state.Tables`).
    :meth:`write_report` lets go of these arrays (preparation frees them as it goes)."""

    def __init__(self, settings: dict, spec, *, split, row_users, row_items, row_ids, kept, tables, file: str):
        self.settings, self.split, self.file, self.tables = settings, split, file, tables
        self.row_users, self.row_items, self.row_ids, self.kept = row_users, row_items, row_ids, kept
        self.done: dict[str, dict] = {}
        allowed = transformable_columns(spec)
        for col in settings:
            if col in spec.labels:
                raise DataError(f"numeric transforms apply to numeric features; '{col}' is a label (a label keeps "
                                "its scale, on which its metrics are read)", file=file, column=col,
                                fix=f"remove '{col}' from the numeric transforms; a label value off its scale is "
                                    "reported by validation")
            if col not in allowed:
                known = ", ".join(allowed) or "none"
                raise DataError(f"a numeric transform is set for '{col}', which is not a numeric feature "
                                f"(numeric features: {known})", file=file, column=col,
                                fix="give that column the role numeric, or remove its transform")

    def apply(self, col: str, owner: str, values, fit_vals):
        """(values, fit_vals) of a numeric feature as float arrays, transformed when one is set."""
        from mtlrec.prep.encoders import to_float
        setting = self.settings.get(col)
        if setting is None:
            return values, fit_vals
        vals, train = to_float(values), to_float(fit_vals)
        if setting["method"] == "log1p":
            self._check_log1p(col, owner, vals)
        state = fit(train, setting)
        out = apply(vals, state)
        changed = np.isfinite(vals) & (out != vals)
        self.done[col] = {"state": state, "owner": owner, **self._changed(owner, changed)}
        return out, apply(train, state)

    def _changed(self, owner: str, changed: np.ndarray) -> dict:
        if owner == "context":
            per_row = changed
        else:
            idx = self.row_users if owner == "user" else self.row_items
            per_row = changed[idx]
        counts = np.bincount(self.split[per_row], minlength=3)
        out = {"rows_changed": {name: int(counts[k]) for k, name in enumerate(NAMES)}}
        if owner != "context":
            out[f"{owner}s_changed"] = int(changed.sum())
        return out

    def _check_log1p(self, col: str, owner: str, vals: np.ndarray) -> None:
        neg = np.isfinite(vals) & (vals < 0)
        if not neg.any():
            return
        table = self.tables.location(col)
        file = self.tables.raw.source(table) if table else self.file
        rows = None
        if owner == "context" and table == "interactions" and not (self.tables.raw.meta or {}).get("split_files"):
            rows = (np.sort(self.row_ids[self.kept[neg]])[:10] + 1).tolist()
        elif owner != "context" and table in ("users", "items"):
            src = self.tables.u_src if owner == "user" else self.tables.i_src
            rows = (np.sort(src[neg & (src >= 0)])[:10] + 1).tolist() or None
        raise DataError(f"log1p needs values >= 0, and {int(neg.sum())} values of this column are negative "
                        f"(first: {vals[neg][0]:g})", file=file, column=col, rows=rows,
                        fix="clip or winsorise this column instead, or correct the negative values")

    def fitted(self, col: str) -> dict:
        """{"transform": fitted state} for the column's statistics (empty when none is set)."""
        return {"transform": self.done[col]["state"]} if col in self.done else {}

    def write_report(self, report: dict) -> None:
        """``report["transforms"]`` (column -> method, bounds, rows changed per split) and a note per column."""
        out = {}
        for col, d in self.done.items():
            st = d["state"]
            out[col] = {"method": st["method"], "lower": st.get("lower"), "upper": st.get("upper"),
                        "owner": d["owner"], "rows_changed": d["rows_changed"]}
            for k in ("quantiles", "fitted", "users_changed", "items_changed"):
                if k in st or k in d:
                    out[col][k] = st.get(k, d.get(k))
            report.setdefault("notes", []).append(describe(col, out[col]))
        report["transforms"] = out
        self.split = self.row_users = self.row_items = self.row_ids = self.kept = self.tables = None


def describe(col: str, t: dict) -> str:
    """One line saying what a transform changed, e.g. "stock_dividends: winsorised to [0, 5,000] (the 0.01 /
    0.99 quantiles of the training values); values changed in 674 train, 72 valid, 72 test rows"."""
    rc = t.get("rows_changed") or {}
    where = ", ".join(f"{rc.get(s, 0):,} {s}" for s in NAMES)
    key = f"{t.get('owner')}s_changed"
    who = f" ({t[key]:,} {t['owner']}s changed)" if key in t else ""
    fmt = _fmt_bound
    if t["method"] == "log1p":
        what = f"{col}: log1p applied (log(1 + x))"
    elif t["method"] == "winsorise":
        q = t.get("quantiles") or [None, None]
        what = (f"{col}: winsorised to [{fmt(t['lower'])}, {fmt(t['upper'])}] (the {q[0]:.3g} / {q[1]:.3g} "
                f"quantiles of the training values)")
    else:
        fitted = t.get("fitted") or []
        side = {"lower": "the training minimum", "upper": "the training maximum"}
        how = ("given bounds" if not fitted else "the training range" if len(fitted) == 2
               else f"{fitted[0]}: {side[fitted[0]]}, the other given")
        what = f"{col}: clipped to [{fmt(t['lower'])}, {fmt(t['upper'])}] ({how})"
    return f"{what}; values changed in {where} rows{who}"


def _fmt_bound(v, none: str = "none") -> str:
    return none if v is None else f"{v:,.6g}"


def report_rows(report: dict | None) -> list[dict]:
    """``report["transforms"]`` as table rows: column, method, bounds, rows changed per split."""
    rows = []
    for col, t in ((report or {}).get("transforms") or {}).items():
        rc = t.get("rows_changed") or {}
        lo, hi = t.get("lower"), t.get("upper")
        bounds = "" if t["method"] == "log1p" else f"[{_fmt_bound(lo, '-inf')}, {_fmt_bound(hi, 'inf')}]"
        rows.append({"column": col, "method": t["method"], "bounds": bounds,
                     **{f"{s} rows changed": int(rc.get(s, 0)) for s in NAMES}})
    return rows
