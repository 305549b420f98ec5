"""Give freed memory back to the operating system (a long-lived server: the app's, issue 27).

CPython frees an object at once, but the C allocator under it (glibc's malloc) keeps freed heap
pages for reuse, so a server that read a 1M-row table for a visitor and dropped it again stays
about as large as at its peak. Two calls, both no-ops where the C library is not glibc:

* `tune_malloc` (once, at start): every allocation of 256 KB or more -- a column of a large table --
  gets a memory map of its own, given back the moment it is freed. glibc starts so, but raises the
  threshold to the size of each large block freed (up to 32 MB), after which such columns come from
  the heap and stay.
* `release_memory` (after dropping a lot): collect reference cycles, then ``malloc_trim(0)``: glibc
  returns the free pages of every arena.

Measured with bench/session_memory.py (5 sessions with a 1M-row upload each, closed and freed; two
runs each): the server ended 89-148 MB above its start with `release_memory` alone and 31-35 MB with
both (what is left: modules and caches a first upload fills), and peaked at 600-720 MB instead of
810-850 MB meanwhile.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading

M_MMAP_THRESHOLD = -3          # mallopt's parameter number (glibc's malloc.h)
MMAP_THRESHOLD = 256 * 1024
_LIBC: list = []
_LOCK = threading.Lock()


def _glibc():
    """The C library when it has glibc's malloc_trim and mallopt, else None."""
    with _LOCK:
        if not _LIBC:
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
                libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            except (OSError, AttributeError):
                libc = None
            _LIBC.append(libc)
        return _LIBC[0]


def tune_malloc() -> bool:
    """Large allocations get memory maps of their own (see the module's doc); True when glibc took it.
    ``MALLOC_MMAP_THRESHOLD_`` in the environment (glibc's own setting) wins."""
    libc = _glibc()
    if libc is None or os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def release_memory() -> bool:
    """Collect garbage, then return free heap pages to the OS; True when ``malloc_trim`` ran."""
    gc.collect()
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
