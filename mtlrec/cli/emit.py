"""Output of the explanation commands: strict JSON (numpy values as plain numbers and lists, NaN and
infinities as null -- never an invalid ``NaN`` token), errors as a message on stderr and, with
``--json``, as ``{"error": ...}`` on stdout, and offline figure files (`mtlrec.report.figures_page`)."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np


def json_ready(obj):
    """``obj`` with numpy arrays/scalars as lists/numbers, tuples as lists, non-finite floats as None."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist())
    if isinstance(obj, np.generic):
        return json_ready(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)


def dumps(obj) -> str:
    """One strict JSON document (`json_ready`)."""
    return json.dumps(json_ready(obj), allow_nan=False)


def fail(command: str, message, as_json: bool, code: int = 2) -> int:
    """Say what failed (stderr; with ``as_json`` also ``{"error": ...}`` on stdout) and return ``code``."""
    print(f"mtlrec {command}: {message}", file=sys.stderr)
    if as_json:
        print(dumps({"error": str(message)}))
    return code


def write_figures(path: str, title: str, figures: list, notes: list[str] = ()) -> int:
    """Write the figures to ``path`` as one self-contained HTML page; its size in bytes."""
    from mtlrec.report import figures_page
    p = Path(path)
    p.write_text(figures_page(title, figures, list(notes)), encoding="utf-8")
    return p.stat().st_size
