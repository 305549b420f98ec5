"""A run folder's version: what caches of a run are keyed on, never its name alone.

`run_version(run_dir)` is a short digest of the name, size and modification time (ns) of the files
that make what a page shows of a run: its configuration, model, metrics, history, status and stored
predictions. It changes when the run is replaced (a folder deleted and trained again under the same
name, a zip imported over it), resumed (status.json, checkpoint, then model.pt and metrics.json are
rewritten) or finishes, so a cache keyed on it never serves an older run's tables. A run still
training has a new version at every heartbeat of its status.json: nothing of it is cached as if
finished.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

VERSION_FILES = ("config.json", "model.json", "model.pt", "metrics.json", "history.json", "status.json",
                 "predictions_test.npz", "dataset/dataset.json")


def file_stamp(path: Path) -> str:
    """``name:size:mtime_ns`` of a file, ``name:-`` when it is missing."""
    try:
        s = path.stat()
    except OSError:
        return f"{path.name}:-"
    return f"{path.name}:{s.st_size}:{s.st_mtime_ns}"


def run_version(run_dir) -> str:
    """16 hex digits that change whenever the run folder's configuration, model, metrics, history,
    status, stored predictions or prepared dataset change (see the module's docstring)."""
    d = Path(run_dir)
    h = hashlib.blake2b(digest_size=8)
    h.update(str(d.resolve()).encode())
    for name in VERSION_FILES:
        h.update(file_stamp(d / name).encode())
        h.update(b"\0")
    return h.hexdigest()
