"""Every download button of the app: it downloads on its first click, whatever was clicked before.

Streamlit serves a download whose data is a callable ("deferred") under an id it makes anew on
every script run and forgets at the end of the next one; a click that lands while another click's
rerun is under way asks for the forgotten id and gets nothing ("Deferred file … not found"). So no
button here gets a callable: its bytes are made before the button is drawn, once per ``stamp`` (what
identifies the file's content, e.g. the run folder's files and times) and kept in this session, and
Streamlit keeps serving the same bytes under the same id across reruns. A download never reruns the
page either (``on_click="ignore"``): nothing on the page changes when a file is saved.

An export too big to make on every visit (``size`` above `EAGER_BYTES`) is made on a first click
of a "prepare" button instead; the download button replaces it.
"""
from __future__ import annotations

from typing import Callable

import streamlit as st

STORE = "downloads_made"          # session_state: {key: (stamp, bytes)}
EAGER_BYTES = 64 * 2**20          # larger exports wait for a click on their "prepare" button


def download(label: str, data: bytes | str | Callable[[], bytes], *, file_name: str, mime: str, key: str,
             stamp=None, size: int = 0, prepare: str | None = None, where=None,
             icon: str | None = ":material/download:", help: str | None = None) -> None:
    """A download button named ``file_name``. ``data``: the bytes, or a function that makes them
    (called once per ``stamp`` in this session); ``size``: the expected size in bytes -- above
    `EAGER_BYTES` a button labelled ``prepare`` makes them first. ``where``: a column or container."""
    where = where or st
    store = st.session_state.setdefault(STORE, {})
    made = store.get(key)
    if callable(data) and (made is None or made[0] != stamp):
        store.pop(key, None)
        if prepare and size > EAGER_BYTES and not where.button(
                prepare, key=f"{key}_prepare", icon=icon, help=f"{help + ' — ' if help else ''}"
                f"about {size / 2**20:.0f} MiB: made on this click, then downloaded with the next"):
            return
        made = store[key] = (stamp, data())
    where.download_button(label, made[1] if callable(data) else data, file_name=file_name, mime=mime, key=key,
                          icon=icon, help=help, on_click="ignore")
