"""Words for a file the browser refused before uploading it.

Streamlit's uploader refuses a file over ``server.maxUploadSize`` (or of a type it does not take) in
the browser: nothing reaches the server, so no page code can react, and the uploader shows the file
with a red icon only -- its reason ("File must be 200.0MB or smaller.") sits in a tooltip. `refusal_note`
puts the note in the page from the start, and CSS shows it only while the uploader just above holds a
refused file; the same CSS shows the uploader's own reason beside the file (its name and size are
there already).
"""
from __future__ import annotations

import html

import streamlit as st

NOTE_CLASS = "mtlrec-upload-refused"

_CSS = f"""
.{NOTE_CLASS} {{ display: none; }}
.stElementContainer:has([data-testid="stFileChip"][aria-invalid="true"]) ~ .stElementContainer .{NOTE_CLASS} {{
  display: block; padding: 0.75rem 1rem; border-radius: 0.5rem; background: rgba(255, 43, 43, 0.09);
  color: rgb(125, 53, 59); }}
[data-testid="stFileChip"][aria-invalid="true"] [role="alert"] {{
  position: static !important; width: auto !important; height: auto !important; clip: auto !important;
  clip-path: none !important; overflow: visible !important; white-space: normal !important;
  margin: 0 0 0 0.5rem !important; color: rgb(125, 53, 59); font-size: 0.85rem; }}
"""


def refusal_note(text: str) -> None:
    """The note (plain ``text``: what was refused, the limits, the fix), shown by the browser only while
    the uploader drawn just before it holds a refused file. Call it right after ``st.file_uploader``."""
    st.markdown(f"<style>{_CSS}</style><div class=\"{NOTE_CLASS}\" role=\"alert\">{html.escape(text)}</div>",
                unsafe_allow_html=True)
