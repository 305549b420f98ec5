"""A failure pytest cannot format must not stop the suite.

pytest formats a failure from its traceback and reads each entry's line number; CPython gives
``tb_lineno = None`` for a frame stopped at an instruction without a line (an exception raised
asynchronously, e.g. by a signal handler such as pytest-timeout's, or a hand-built traceback).
pytest then dies with ``INTERNALERROR ... TypeError: unsupported operand type(s) for -: 'NoneType'``
and every later test is lost. This hook gives such entries their function's first line before
pytest builds the report, so the failure is reported like any other. tests/conftest.py imports it.
"""
from __future__ import annotations

import types

import pytest


def _fixed_traceback(tb):
    """The traceback chain with every entry that has no line number (tb_lineno None: the frame
    stopped at an instruction without a line, e.g. an exception raised asynchronously) replaced
    by one pointing at its function's first line, so that pytest can format it."""
    entries = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    if all(e.tb_lineno is not None for e in entries):
        return None
    new = None
    for e in reversed(entries):
        lineno = e.tb_lineno if e.tb_lineno is not None else e.tb_frame.f_code.co_firstlineno
        new = types.TracebackType(new, e.tb_frame, 0, lineno)
    return new


def _sanitise(exc, seen=None):
    seen = seen if seen is not None else set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        fixed = _fixed_traceback(exc.__traceback__)
        if fixed is not None:
            exc.__traceback__ = fixed
        for inner in getattr(exc, "exceptions", ()) or ():
            _sanitise(inner, seen)
        exc = exc.__cause__ or exc.__context__


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    if call.excinfo is not None:
        _sanitise(call.excinfo.value)
        if call.excinfo.value.__traceback__ is not call.excinfo.tb:
            call.excinfo = pytest.ExceptionInfo.from_exception(call.excinfo.value)
    return (yield)
