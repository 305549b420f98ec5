"""Writing files so that a full disk is said in words and leaves nothing half-written.

Every file the library writes (run folders, prepared datasets, workspaces and their uploads, the
text-embedding cache, the command line's outputs) goes through `write_atomic`: the content goes to
a temporary file beside the target (``.<name>.<pid>.<thread>.tmp``), which is renamed over the
target only when complete -- a reader sees the old file or the whole new one -- and is removed
whatever stops the write. A write that fails because the disk (or the user's quota) is full
(``ENOSPC`` / ``EDQUOT``) raises `mtlrec.errors.DiskFullError`: "the disk is full at <folder>: ...
Fix: free space ...". Writers of several files (a dataset folder, an unpacked zip) run under
`on_full_disk` to say the same of their folder.

The folder is named as the writer knows it (an absolute path on a server); the app shows messages
through `mtlrec.app.public.public_message`, which names it relative to the runs or workspaces root.
"""
from __future__ import annotations

import contextlib
import errno
import os
import threading
from pathlib import Path
from typing import Callable

from mtlrec.errors import DiskFullError

DISK_FULL_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)


def is_disk_full(e: BaseException) -> bool:
    """True for an OSError saying that the disk or the quota is full (a `DiskFullError` included)."""
    return isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS


@contextlib.contextmanager
def on_full_disk(folder, file: str | None = None, *, outer: bool = False):
    """Run the block; a full-disk OSError in it becomes a `DiskFullError` naming ``folder`` (one
    raised inside keeps the folder it names, unless ``outer``: a writer that fills a temporary
    folder names the folder it is for)."""
    try:
        yield
    except OSError as e:
        if not is_disk_full(e) or (isinstance(e, DiskFullError) and not outer):
            raise
        raise DiskFullError(str(folder), file if file or not isinstance(e, DiskFullError) else e.file) from e


def temp_name(path: Path) -> Path:
    """The temporary file `write_atomic` writes ``path`` through (hidden, unique per process and thread)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def write_atomic(path, fill: Callable, *, text: bool = False) -> Path:
    """Write ``path``: ``fill(fh)`` writes the content into a temporary file beside it (binary, or
    UTF-8 text with ``text``), which then replaces ``path``. Any failure removes the temporary file
    and leaves ``path`` as it was; a full disk raises `DiskFullError` naming the folder."""
    path = Path(path)
    tmp = temp_name(path)
    with on_full_disk(path.parent, path.name):
        try:
            with (open(tmp, "w", encoding="utf-8") if text else open(tmp, "wb")) as fh:
                fill(fh)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return path


def write_bytes(path, data: bytes) -> Path:
    """``data`` as the file ``path`` (`write_atomic`)."""
    return write_atomic(path, lambda fh: fh.write(data))


def write_text(path, text: str) -> Path:
    """``text`` as the UTF-8 file ``path`` (`write_atomic`)."""
    return write_atomic(path, lambda fh: fh.write(text), text=True)


def rewrite_in_place(path, text: str) -> None:
    """Overwrite the existing file ``path`` with ``text`` in its own blocks (no new file): the last
    resort of a small file (status.json) on a full disk, where a temporary copy finds no space."""
    with open(path, "r+", encoding="utf-8") as fh:
        fh.write(text)
        fh.truncate()


def json_ready(obj):
    """``obj`` as JSON-ready values: numpy arrays / scalars as lists / numbers, tuples as lists,
    non-finite floats as None, dict keys as strings, anything else as its text."""
    import math

    import numpy as np
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
