"""The app's error boundary: an unexpected error in a page is a short message for the visitor and a
record for whoever runs the server.

The visitor sees what failed and a reference, never a traceback. The server log gets one line with
the fixed marker `MARKER`, the page, the reference and the traceback; and the message sits in a
keyed container (HTML class ``st-key-mtlrec_page_error_<reference>``, see `ELEMENT_CLASS`), so that a
browser test finds it (tests/browser/appdriver.py's ``assert_no_exception``) and an AppTest sees
the log record (tests/conftest.py fails any test that caused one without asking for it).

`run_page` is app.py's boundary around every page; `caught` marks a message a page draws itself
for an exception it did not expect (pages/ui/messages.py's ``show_exception``).
"""
from __future__ import annotations

import contextlib
import logging
import sys
import uuid

import streamlit as st

MARKER = "MTLREC-PAGE-ERROR"
LOGGER_NAME = "mtlrec.app"
ELEMENT_CLASS = "st-key-mtlrec_page_error"      # prefix of the container's class (one per message)


class _Stderr(logging.StreamHandler):
    """Writes to the current ``sys.stderr`` (the server's log), whatever it is at the time of the record."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def server_logger(name: str = LOGGER_NAME, level: int | None = None) -> logging.Logger:
    """A logger with a stderr handler of its own: the server log gets its records (and tracebacks)
    whatever logging the host set up. ``level``: the lowest level it passes on (e.g. INFO)."""
    log = logging.getLogger(name)
    if not any(isinstance(h, _Stderr) for h in log.handlers):
        h = _Stderr()
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(h)
    if level is not None:
        log.setLevel(level)
    return log


def _logger() -> logging.Logger:
    """The boundary's logger (`server_logger`)."""
    return server_logger()


def record(e: BaseException, where: str) -> str:
    """Log ``e`` with its traceback under the marker; returns the reference shown to the visitor."""
    ref = uuid.uuid4().hex[:8]
    _logger().error("%s %s failed (reference %s): %s", MARKER, where, ref, e.__class__.__name__,
                    exc_info=(type(e), e, e.__traceback__))
    return ref


@contextlib.contextmanager
def caught(e: BaseException, where: str):
    """Record ``e`` and draw what the ``with`` block draws inside the boundary's marked container."""
    ref = record(e, where)
    with st.container(key=f"{ELEMENT_CLASS.removeprefix('st-key-')}_{ref}"):
        yield ref


def run_page(page) -> None:
    """Run a st.navigation page; an exception becomes a short message (st.stop()/st.rerun() pass)."""
    try:
        page.run()
    except Exception as e:
        with caught(e, f"page {page.title!r}") as ref:
            st.error(f"Something went wrong on this page ({e.__class__.__name__}). Your data and runs are "
                     f"unaffected; try again, or go back a step. Reference for the server log: {ref}.",
                     icon=":material/error:")
