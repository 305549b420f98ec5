"""Messages on screen: errors in what/where/fix form, and user text shown as text.

Uploaded titles, descriptions, ids and column names are data, never markup: `md_text` makes any
string safe to put inside a Streamlit markdown string (no link, image, HTML, colour, icon,
emoji or formula can come out of it) while it reads the same.
"""
from __future__ import annotations

import re
import string

import streamlit as st

_PUNCT = frozenset(string.punctuation)
_WJ = "\u2060"          # WORD JOINER: invisible, breaks the autolink / shortcode patterns


def md_text(value) -> str:
    """``value`` as literal text for st.markdown / st.caption / labels.

    Every ASCII punctuation character is backslash-escaped (CommonMark escapes: no emphasis,
    links, images, HTML, headings, code or ``$`` formulas), and a word joiner follows each ``:``
    and precedes each ``@``, and sits inside ``www.`` -- GFM would otherwise still turn URLs and
    e-mail addresses into links, and Streamlit would read ``:red[...]``, ``:material/x:`` and
    ``:smile:`` shortcodes. Whitespace (newlines included) collapses to single spaces."""
    if value is None:
        return ""
    s = " ".join(str(value).split())
    s = "".join("\\" + ch if ch in _PUNCT else ch for ch in s)
    s = s.replace("\\:", "\\:" + _WJ).replace("\\@", _WJ + "\\@")
    return re.sub(r"(?i)(www)(\\\.)", r"\1" + _WJ + r"\2", s)


def msg_text(value) -> str:
    """A message of the library (an error, a warning, a reason) for st.markdown & co.: `md_text`
    of it with the server's absolute paths rewritten (`mtlrec.app.public.public_message`: names
    relative to the runs / workspace folder, never where the server keeps them)."""
    from mtlrec.app.public import public_message
    return md_text(public_message(value))


def show_data_error(e) -> None:
    """A DataError as an error box: what, where and how to fix (names and values from the data
    shown as text; no server paths)."""
    where = []
    if getattr(e, "file", None):
        where.append(f"file **{msg_text(e.file)}**")
    if getattr(e, "column", None):
        where.append(f"column **{md_text(e.column)}**")
    if getattr(e, "rows", None):
        rows = e.rows[:8]
        where.append("rows " + ", ".join(map(str, rows)) + (" ..." if len(e.rows) > 8 else ""))
    parts = [f"**Problem:** {msg_text(getattr(e, 'what', str(e)))}"]
    if where:
        parts.append("**Where:** " + "; ".join(where))
    if getattr(e, "fix", None):
        parts.append(f"**Fix:** {msg_text(e.fix)}")
    st.error("  \n".join(parts), icon=":material/error:")


def show_exception(e: BaseException, action: str) -> None:
    """A readable message for an error (never a traceback); DataErrors as what / where / fix."""
    from mtlrec.errors import DataError, TrainingError
    if isinstance(e, DataError) and getattr(e, "what", None):
        show_data_error(e)
    elif isinstance(e, (DataError, TrainingError)):
        st.error(msg_text(str(e)))
    else:
        msg = f"{action} failed: {e.__class__.__name__}: {msg_text(e)}"
        if isinstance(e, ValueError):    # the library's word on a bad value (e.g. a preparation option)
            st.error(msg)
            return
        from pages.ui.boundary import caught     # unexpected: a caught crash, recorded (server log,
        with caught(e, action):                  # marked element; pages/ui/boundary.py)
            st.error(msg)
