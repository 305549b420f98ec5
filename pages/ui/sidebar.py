"""The sidebar (dataset, run, device) and the background warm-up that probes the device."""
from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path
from typing import Any

import streamlit as st

from pages.ui.messages import md_text
from pages.ui.state import get_state, job_run_dir, snap_get

_WARM: dict[str, Any] = {}
_WARM_LOCK = threading.Lock()


def _warm_up(delay: float = 2.0) -> None:
    """Import the heavy libraries and probe the device in the background, once per process,
    so that the first page shows at once and later pages switch fast."""
    time.sleep(delay)          # let the first page render first
    try:
        from mtlrec.workflow import describe_device
        _WARM["device"] = describe_device()
    except Exception as e:     # the probe must never break the app
        _WARM["device"] = f"unknown ({e.__class__.__name__})"
    for mod in ("pandas", "plotly.graph_objects", "mtlrec.models", "mtlrec.prep", "mtlrec.jobs",
                "mtlrec.data.validate", "mtlrec.data.summary", "mtlrec.data.readers", "sklearn.metrics"):
        try:
            importlib.import_module(mod)
        except Exception:
            pass
    try:   # the first st.info/st.warning compiles Streamlit's emoji pattern (~0.5 s): do it now
        from streamlit.string_util import extract_leading_emoji
        extract_leading_emoji("warm-up")
    except Exception:
        pass
    _WARM["done"] = True

def start_warm_up() -> None:
    with _WARM_LOCK:
        if "thread" not in _WARM:
            _WARM["thread"] = threading.Thread(target=_warm_up, name="mtlrec-warm-up", daemon=True)
            _WARM["thread"].start()

def device_label(wait: bool = True) -> str | None:
    """The device training will use, in words (GPU name or CPU); None while it is being probed
    and ``wait`` is False."""
    start_warm_up()
    if "device" not in _WARM and wait:
        from mtlrec.workflow import describe_device
        _WARM["device"] = describe_device()
    return _WARM.get("device")

def sidebar():
    """Current dataset, run and device; drawn on every page (by app.py)."""
    state = get_state()
    sb = st.sidebar
    sb.markdown("#### Workspace")
    if state.raw is None:
        sb.caption("Dataset: none loaded yet")
    else:
        n = len(state.raw.interactions)
        prepared = " · prepared" if state.dataset is not None else ""
        sb.markdown(f"**Dataset:** {md_text(state.source or 'uploaded')}  \n{n:,} interactions{prepared}")
    job = state.job_for(state.selected_run) or (state.jobs[-1] if state.jobs else None)
    if job is None:
        sb.caption("Run: none yet")
    else:
        snap = job.snapshot(include_batches=False)
        name = Path(job_run_dir(job) or "run").name
        status = snap_get(snap, "status", "?")
        sb.markdown(f"**Run:** `{name}` — {status}")
    # On a fresh server the probe (importing torch, ~3 s) runs in the warm-up thread: the line says
    # "detecting ..." until the next rerun rather than holding the first page back (issue 15)
    dev = device_label(wait=False)
    sb.markdown(f"**Device:** {dev or 'detecting ...'}")
