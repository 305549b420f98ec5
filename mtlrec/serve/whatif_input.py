"""What a what-if is given, checked before it reaches the model (`mtlrec.serve.whatif`).

* `parse_edits`: the ``--features`` JSON text -> ``{feature: value}``: one object of scalars, of
  bounded size; nesting, NaN / Infinity tokens, numbers of hundreds of digits and anything but an
  object are refused with what / where / fix (never a RecursionError or a conversion error).
* `as_number`: a raw value of a numeric feature as a finite float (a yes/no value, text that is no
  number, a number too large for a float or a non-finite one are refused).
* `scale_problem` / `range_warning`: a value against the values the model was trained on. One far
  outside them (more than `ABSURD_WIDTHS` widths of the training range beyond it, on the model's
  standardised scale) is refused -- the model's scores for it would be meaningless (e.g. ``age =
  1e308`` overflows float32 to inf and NaN); one outside the training range but near it is scored
  with a warning that the model extrapolates.
"""
from __future__ import annotations

import json
import math

import numpy as np

from mtlrec.errors import DataError

MAX_EDITS_CHARS = 64 * 1024     # --features text: more than any list of feature values needs
MAX_DEPTH = 20                  # nesting of [ and { in --features (one flat object is 1)
MAX_DIGITS = 100                # digits of one integer in --features (a float has ~17 significant ones)
ABSURD_WIDTHS = 10.0            # refused beyond this many training-range widths outside the range
_EXAMPLE = '\'{"age": 24, "occupation": "student"}\''


def shown(value, limit: int = 24) -> str:
    """``value`` as text of at most ``limit`` characters (a 400-digit number is not repeated whole)."""
    s = str(value)
    return s if len(s) <= limit else f"{s[:limit - 9]}... ({len(s)} characters)"


def parse_edits(text, flag: str = "--features") -> dict:
    """``text`` (JSON) as ``{feature: value}``; a `DataError` naming ``flag`` for anything else."""
    if text is None:
        return {}
    text = str(text)
    if len(text) > MAX_EDITS_CHARS:
        raise DataError(f"{flag} is {len(text):,} characters long (at most {MAX_EDITS_CHARS:,})",
                        fix=f"give only the features to change, e.g. {_EXAMPLE}")
    if _depth(text) > MAX_DEPTH:
        raise DataError(f"{flag} is nested too deeply (more than {MAX_DEPTH} levels)",
                        fix=f"give one flat object of feature: value, e.g. {_EXAMPLE}")
    try:
        doc = json.loads(text, parse_int=lambda s: _json_int(s, flag), parse_constant=lambda s: _json_constant(s, flag))
    except DataError:
        raise
    except RecursionError:
        raise DataError(f"{flag} is nested too deeply", fix=f"give one flat object of feature: value, e.g. {_EXAMPLE}") \
            from None
    except json.JSONDecodeError as e:
        raise DataError(f"{flag} is not valid JSON ({e.msg} at character {e.pos})",
                        fix=f"write an object such as {_EXAMPLE}") from None
    except ValueError as e:          # e.g. Python's limit on the digits of an integer
        raise DataError(f"{flag} holds a value that cannot be read ({shown(e, 80)})",
                        fix=f"give numbers as plain decimals, e.g. {_EXAMPLE}") from None
    if not isinstance(doc, dict):
        raise DataError(f"{flag} must be a JSON object of feature: value, not {_json_kind(doc)}",
                        fix=f"write e.g. {_EXAMPLE}")
    for name, value in doc.items():
        if isinstance(value, (dict, list)):
            raise DataError(f"the value of '{shown(name)}' in {flag} is {_json_kind(value)}; a feature takes one "
                            "number or one category name", column=shown(name), fix=f"write e.g. {_EXAMPLE}")
    return doc


def _depth(text: str) -> int:
    """The deepest nesting of ``[`` / ``{`` in ``text``, brackets inside JSON strings not counted."""
    depth = deepest = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _json_int(s: str, flag: str) -> int:
    digits = len(s.lstrip("-"))
    if digits > MAX_DIGITS:
        raise DataError(f"{flag} holds a number of {digits} digits, far too large for any feature",
                        fix=f"give numbers on the feature's own scale, e.g. {_EXAMPLE}")
    return int(s)


def _json_constant(s: str, flag: str):
    raise DataError(f"{flag} holds {s}, which is not a number", fix="give a finite number, e.g. 24")


def _json_kind(v) -> str:
    return {dict: "an object", list: "a list", str: "a text", bool: "true/false", type(None): "null"}.get(
        type(v), "a number")


def as_number(value, name: str, example: str) -> float:
    """``value`` of the numeric feature ``name`` as a finite float; a `DataError` (with ``example``, a
    valid value, in the fix) for a yes/no value, text that is no number, a number too large for a
    float, NaN or an infinity."""
    fix = f"give {name} as a number on its original scale, e.g. {example}"
    if isinstance(value, (bool, np.bool_)):
        raise DataError(f"{name} is a number, not a yes/no value ({str(value).lower()})", column=name, fix=fix)
    try:
        v = float(value)
    except OverflowError:
        raise DataError(f"the number given for {name} ({shown(value)}) is too large", column=name, fix=fix) from None
    except (TypeError, ValueError):
        raise DataError(f"'{shown(value)}' is not a number for the numeric feature '{name}'", column=name,
                        fix=fix) from None
    if not math.isfinite(v):
        raise DataError(f"{name} must be a finite number, not {shown(value)}", column=name, fix=fix)
    return v


def scale_problem(name: str, value, z: float, z_range, raw) -> DataError | None:
    """A `DataError` when the standardised value ``z`` lies far outside ``z_range`` (the lowest and
    highest standardised value in training; ``raw(z)``: back on the feature's scale), else None."""
    if z_range is None:
        return None if math.isfinite(z) else DataError(f"{name} = {shown(value)} cannot be scored", column=name)
    lo, hi = z_range
    pad = ABSURD_WIDTHS * max(hi - lo, 1.0)
    if math.isfinite(z) and lo - pad <= z <= hi + pad:
        return None
    return DataError(f"{name} = {shown(value)} is far outside the values the model was trained on "
                     f"({_g(raw(lo))} to {_g(raw(hi))}): its scores would be meaningless", column=name,
                     fix=f"give {name} within (or near) {_g(raw(lo))} to {_g(raw(hi))}; values from "
                         f"{_g(raw(lo - pad))} to {_g(raw(hi + pad))} are scored, with a warning outside the "
                         "training range")


def range_warning(name: str, v: float, raw_range) -> str | None:
    """The warning for a value ``v`` outside the training range ``raw_range`` (lowest, highest), or None."""
    if raw_range is None:
        return None
    lo, hi = raw_range
    tol = 1e-6 * max(1.0, abs(lo), abs(hi))          # the range comes back from float32: no false alarm
    if lo - tol <= v <= hi + tol:
        return None
    return (f"{name} = {_g(v)} is outside the range seen in training ({_g(lo)} to {_g(hi)}): the model never saw "
            f"such a value, so its scores for it are an extrapolation. Fix: give {name} between {_g(lo)} and "
            f"{_g(hi)} for scores the model has learned")


def _g(x: float) -> str:
    return f"{float(x):.6g}"
