"""Expensive explanations kept on disk in the run folder, so they survive a server restart.

The global SHAP summary of a run takes seconds to minutes; `stored(run_dir, kind, params, compute)`
returns it from ``<run>/cache/<kind>-<digest>.json`` when one was written for the same run version
(`mtlrec.runs.version.run_version`: a replaced, resumed or re-finished run has a new one) and the same
parameters, else computes it and writes it. The file holds strict JSON (numpy values as lists and
numbers, non-finite floats as null); a file that cannot be read is computed again, and one that cannot
be written (read-only folder, full disk) is only not kept. The folder is not part of a run's zip
(`mtlrec.runs.archive`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from mtlrec.diskio import json_ready

CACHE_DIR = "cache"
FORMAT = 1          # bump when what a stored entry holds changes: older files are then ignored


def entry_path(run_dir, kind: str, version: str, params: dict) -> Path:
    """Where the entry of this run version and these parameters lives."""
    key = json.dumps({"format": FORMAT, "version": version, "params": json_ready(params)}, sort_keys=True)
    return Path(run_dir) / CACHE_DIR / f"{kind}-{hashlib.blake2b(key.encode(), digest_size=10).hexdigest()}.json"


def load_entry(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def stored(run_dir, kind: str, params: dict, compute: Callable[[], dict], *, version: str | None = None) -> dict:
    """``compute()``'s value (a dict) for this run version and ``params``, read from the run folder
    when it was kept there, else computed and kept (as plain JSON values: `plain`)."""
    from mtlrec.diskio import write_text
    from mtlrec.runs.version import run_version
    path = entry_path(run_dir, kind, version or run_version(run_dir), params)
    found = load_entry(path)
    if found is not None:
        return found
    value = json_ready(compute())
    try:
        path.parent.mkdir(exist_ok=True)
        write_text(path, json.dumps(value, allow_nan=False))
    except (OSError, ValueError):       # read-only or full: the value is still returned, just not kept
        pass
    return value
