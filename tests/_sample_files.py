"""Comparing sample-data files: a digest per file and, on a mismatch, the first differing row.

Never compare the 2 MB files with ``assert a == b``: pytest would try to format a diff of them.
"""
from __future__ import annotations

import hashlib
from itertools import zip_longest
from pathlib import Path

REGENERATE = "regenerate with `python -m mtlrec sample --out sample_data`"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _short(line: bytes | None, width: int = 160) -> str:
    if line is None:
        return "<end of file>"
    text = line.decode("utf-8", errors="replace")
    return text if len(text) <= width else text[:width] + f"... ({len(text)} chars)"


def mismatch(name: str, expected: bytes, actual: bytes, expected_label: str = "expected",
             actual_label: str = "actual") -> str | None:
    """None when the two files are identical, else one readable paragraph about the difference."""
    if digest(expected) == digest(actual):
        return None
    exp_lines, act_lines = expected.split(b"\n"), actual.split(b"\n")
    differing = sum(a != b for a, b in zip_longest(exp_lines, act_lines))
    for lineno, (a, b) in enumerate(zip_longest(exp_lines, act_lines), start=1):
        if a != b:
            break
    w = max(len(expected_label), len(actual_label)) + 1
    return (f"{name}: sha256 {digest(expected)[:16]} ({expected_label}) != {digest(actual)[:16]} "
            f"({actual_label}); {differing} of {max(len(exp_lines), len(act_lines))} lines differ, "
            f"the first is line {lineno}:\n"
            f"    {expected_label + ':':<{w}} {_short(a)}\n"
            f"    {actual_label + ':':<{w}} {_short(b)}")


def compare_dirs(names, expected_dir: Path, actual_dir: Path, expected_label: str,
                 actual_label: str) -> list[str]:
    """The mismatches between files of the same names in two folders (empty when all match)."""
    problems = []
    for name in names:
        e, a = Path(expected_dir) / name, Path(actual_dir) / name
        if not a.exists() or not e.exists():
            problems.append(f"{name}: missing in {e.parent if not e.exists() else a.parent}")
            continue
        m = mismatch(name, e.read_bytes(), a.read_bytes(), expected_label, actual_label)
        if m:
            problems.append(m)
    return problems
