"""Local files read as read-only memory maps (:class:`Mapped`) instead of bytes.

A local uncompressed text file of ``files.MMAP_MIN_BYTES`` or more is mapped: its pages are file-backed,
so the text is never held whole in the process's own memory. The helpers here take either bytes or a
:class:`Mapped` and slice a map, never copy it whole; a map is closed when the load that opened it ends.
"""
from __future__ import annotations

import io
import mmap
import tempfile

from mtlrec.data.limits import MB, current_budget

_SLICE = 16 * MB                        # scanning a memory-mapped file: bytes per slice


class _MapReader(io.RawIOBase):
    """A read-only binary file over a :class:`Mapped` text (from its start): what pandas parses."""

    def __init__(self, mapped: "Mapped"):
        super().__init__()
        self._m, self._pos = mapped, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        chunk = self._m[self._pos: self._pos + len(b)]
        b[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._m)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


class Mapped:
    """A local file's bytes as a read-only memory map, from ``start`` on (e.g. past a BOM).

    What the readers use of ``bytes`` works without a copy of the whole file: a slice gives the
    bytes of that slice only, ``len``, ``count`` / ``find`` / ``startswith`` / ``endswith``
    (``count`` in slices), and :meth:`open` a binary file for pandas. The map is closed when the
    load that opened it ends (``Budget.close``)."""

    def __init__(self, mm: mmap.mmap, start: int = 0):
        self.mm, self.start = mm, start

    def __len__(self) -> int:
        return len(self.mm) - self.start

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, key):
        if isinstance(key, slice):
            a, b, step = key.indices(len(self))
            part = self.mm[self.start + a: self.start + max(a, b)]
            return part if step == 1 else part[::step]
        if key < 0:
            key += len(self)
        if not 0 <= key < len(self):
            raise IndexError("index out of range")
        return self.mm[self.start + key]

    def _span(self, start, end) -> tuple[int, int]:
        a, b, _ = slice(start, end).indices(len(self))
        return self.start + a, self.start + max(a, b)

    def find(self, sub: bytes, start=None, end=None) -> int:
        a, b = self._span(start, end)
        k = self.mm.find(sub, a, b)
        return k - self.start if k >= 0 else -1

    def count(self, sub: bytes, start=None, end=None) -> int:
        a, b = self._span(start, end)
        if len(sub) != 1:            # (only single bytes are counted in slices)
            n, k = 0, self.mm.find(sub, a, b)
            while k >= 0:
                n, k = n + 1, self.mm.find(sub, k + len(sub), b)
            return n
        return sum(self.mm[k: min(b, k + _SLICE)].count(sub) for k in range(a, b, _SLICE))

    def startswith(self, prefix: bytes) -> bool:
        return self[: len(prefix)] == prefix

    def endswith(self, suffix: bytes) -> bool:
        return len(self) >= len(suffix) and self[len(self) - len(suffix):] == suffix

    def after(self, n: int) -> "Mapped":
        """The text without its first ``n`` bytes (the same map, no copy)."""
        return Mapped(self.mm, self.start + n)

    def open(self) -> io.BufferedReader:
        return io.BufferedReader(_MapReader(self), buffer_size=MB)


def slices(data, size: int | None = None):
    """``data`` (bytes or a :class:`Mapped`) in consecutive byte slices (of ``_SLICE`` bytes)."""
    size = size or _SLICE
    for k in range(0, len(data), size):
        yield data[k: k + size]


def open_data(data) -> io.BufferedIOBase:
    """A binary file of ``data`` for pandas: over the map itself for a :class:`Mapped` (no copy)."""
    return data.open() if isinstance(data, Mapped) else io.BytesIO(data)


def bytes_after(data, n: int):
    """``data[n:]`` without copying a memory-mapped file."""
    return data.after(n) if isinstance(data, Mapped) else data[n:]


def is_blank(data) -> bool:
    """Whether ``data`` holds only white space (a memory-mapped file: slice by slice)."""
    if isinstance(data, Mapped):
        return all(not part.strip() for part in slices(data))
    return not data.strip()


def mapped_copy(pieces) -> "Mapped | bytes":
    """``pieces`` (bytes) written to an unnamed temporary file, mapped read-only: the rewritten text
    of a memory-mapped file (UTF-16 as UTF-8, MovieLens '::' as tabs) without holding it in memory."""
    with tempfile.TemporaryFile(prefix="mtlrec-read-") as fh:
        for piece in pieces:
            fh.write(piece)
        fh.flush()
        if fh.tell() == 0:
            return b""
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    mapped = Mapped(mm)
    current_budget().maps.append(mapped)
    return mapped


def replace_bytes(data, old: bytes, new: bytes):
    """``data.replace(old, new)``; a memory-mapped file line-block by line-block into a mapped copy."""
    if not isinstance(data, Mapped):
        return data.replace(old, new)

    def pieces():
        carry = b""
        for part in slices(data):
            part = carry + part
            cut = part.rfind(b"\n") + 1
            carry = part[cut:]
            if cut:
                yield part[:cut].replace(old, new)
        yield carry.replace(old, new)
    return mapped_copy(pieces())

