"""The sidebar (dataset, run, device) and the background warm-up that probes the device."""
from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path
from typing import Any

import streamlit as st

from pages.ui.messages import md_text
from pages.ui.state import get_state, snap_get

_WARM: dict[str, Any] = {}
_WARM_LOCK = threading.Lock()


def _warm_up(delay: float = 2.0) -> None:
    """Import the heavy libraries and probe the device in the background, once per process,
    so that the first page shows at once and later pages switch fast."""
    time.sleep(delay)          # let the first page render first
    _probe_device()
    for mod in ("pandas", "plotly.graph_objects", "mtlrec.models", "mtlrec.prep", "mtlrec.training.jobs",
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


def _probe_device() -> str:
    if "device" not in _WARM:
        try:
            from mtlrec.app.workflow import describe_device
            _WARM["device"] = describe_device()
        except Exception as e:     # the probe must never break the app
            _WARM["device"] = f"unknown ({e.__class__.__name__})"
    return _WARM["device"]


def start_warm_up() -> None:
    with _WARM_LOCK:
        if "thread" not in _WARM:
            _WARM["thread"] = threading.Thread(target=_warm_up, name="mtlrec-warm-up", daemon=True)
            _WARM["thread"].start()


def device_label(wait: bool = True) -> str | None:
    """The device training will use, in words (GPU name or CPU); None while it is being probed
    and ``wait`` is False."""
    start_warm_up()
    return _probe_device() if wait else _WARM.get("device")


def _run_status(state, run_dir: str) -> str:
    """A job's status in this server process; else (trained before a restart, opened from Runs) its folder's."""
    job = state.job_for(run_dir)
    if job is not None:
        return snap_get(job.snapshot(include_batches=False), "status", "?")
    from mtlrec.runs.load import run_status
    return run_status(run_dir)["status"]


def sidebar():
    """Current dataset, run and device; drawn on every page (by app.py). Returns the function that
    completes it after the page ran (the device line, on a cold load)."""
    state = get_state()
    sb = st.sidebar
    sb.markdown("#### Workspace")
    if state.raw is None:
        sb.caption("Dataset: none loaded yet")
    else:
        n = len(state.raw.interactions)
        prepared = " · prepared" if state.dataset is not None else ""
        sb.markdown(f"**Dataset:** {md_text(state.source or 'uploaded')}  \n{n:,} interactions{prepared}")
    run = state.current_run()
    if run is None:
        sb.caption("Run: none yet")
    else:
        status = _run_status(state, run)
        sb.markdown(f"**Run:** `{Path(run).name}` — {status}")
        if status in ("finished", "cancelled"):     # a run to explain: SHAP's import starts off the script thread
            from pages.ui.actions import warm_explain
            warm_explain()
    # On a fresh server the probe (importing torch, ~3 s) would hold the first page back: the line is
    # left empty and filled by the returned function once the page is drawn (issue 15; app.py calls it)
    dev = device_label(wait=False)
    slot = sb.empty()
    if dev:
        slot.markdown(f"**Device:** {dev}")
        return lambda: None
    return lambda: slot.markdown(f"**Device:** {device_label(wait=True)}")
