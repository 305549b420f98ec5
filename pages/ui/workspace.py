"""The visitor's workspace survives a reload: it is saved on disk (``mtlrec.workspace``) and named
in the URL (``?ws=<id>``), so F5, a bookmark or a server restart brings the visitor back to the same
dataset, configuration and runs. A new tab without the id gets a new, isolated workspace.

app.py calls `restore_or_start` before the page and `save_if_changed` after it. Training jobs are
also kept per workspace in this server process, so a reload during training finds the running job
(after a server restart its folder is on Runs, interrupted or finished).
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

import streamlit as st

from pages.ui.state import apply_workspace, get_state

_JOBS: dict[str, list] = {}          # workspace id -> its TrainingJobs, for this server process
_JOBS_LOCK = threading.Lock()
_LOG = logging.getLogger("mtlrec.workspace")


def _doc(state) -> dict:
    runs = list(state.past_runs) + [str(j.run_dir) for j in state.jobs if getattr(j, "run_dir", None)]
    return {
        "source": state.source,
        "sample": bool(state.source) and str(state.source).startswith("sample"),
        "upload": state.ws_files,
        "spec": state.spec.to_dict() if state.spec is not None else None,
        "prep": state.prep.to_dict() if state.prep is not None else None,
        "tasks": state.tasks, "model": state.model, "train": state.train, "text": state.text,
        "runs": runs, "opened_runs": list(state.opened_runs), "selected_run": state.selected_run,
        "rec_user": state.rec_user,
    }


def remember_upload(files: list[tuple[str, bytes]]) -> None:
    """Keep the files of a successful upload in the workspace (read again after a restart)."""
    from mtlrec import workspace as ws
    state = get_state()
    if state.ws_id:
        try:
            state.ws_files = ws.save_files(state.ws_id, files)
        except OSError as e:            # a full disk must not break the upload itself
            _LOG.warning("could not keep the uploaded files of workspace %s: %s", state.ws_id, e)
            state.ws_files = None


def _restore(ws_id: str) -> None:
    from mtlrec import workspace as ws
    from mtlrec.data.roles import DataSpec
    from mtlrec.prep import PrepConfig
    from mtlrec.workflow import sample_workspace, uploaded_workspace
    state = get_state()
    doc = ws.load(ws_id)
    if doc.get("sample"):
        apply_workspace(sample_workspace())
    elif doc.get("upload"):
        files = ws.load_files(ws_id)
        if files:
            apply_workspace(uploaded_workspace(files))
            state.ws_files = doc.get("upload")
    if state.raw is not None:
        state.source = doc.get("source") or state.source
        if doc.get("spec"):
            state.spec = DataSpec.from_dict(doc["spec"])
        if doc.get("prep"):
            state.prep = PrepConfig.from_dict(doc["prep"])
        for key in ("tasks", "model", "train", "text"):
            if isinstance(doc.get(key), (list, dict)):
                setattr(state, key, doc[key])
    with _JOBS_LOCK:
        state.jobs = list(_JOBS.get(ws_id, []))
    live = {str(j.run_dir) for j in state.jobs}
    state.past_runs = [r for r in dict.fromkeys(doc.get("runs") or []) if r not in live and Path(r).is_dir()]
    finished = [r for r in (doc.get("runs") or []) + (doc.get("opened_runs") or [])
                if r not in live and (Path(r) / "model.pt").exists()]
    state.opened_runs = list(dict.fromkeys(finished))
    state.selected_run = doc.get("selected_run")
    state.rec_user = doc.get("rec_user")


def restore_or_start() -> None:
    """Give this browser session its workspace: the one its URL names (restored from disk), or a new one."""
    from mtlrec import workspace as ws
    state = get_state()
    if state.ws_id is None:
        wanted = st.query_params.get("ws")
        if wanted and ws.exists(wanted):
            try:
                _restore(wanted)
                state.ws_id = wanted
                state.counter += 1                       # widgets show the restored values
            except Exception as e:                       # a damaged workspace: a clean start, said once
                _LOG.warning("workspace %s could not be restored: %r", wanted, e)
                st.toast("Your saved workspace could not be restored; a new one was started.")
        if state.ws_id is None:
            state.ws_id = ws.new_workspace_id()
    if st.query_params.get("ws") != state.ws_id:
        st.query_params["ws"] = state.ws_id


def register_job(job) -> None:
    """A job started in this workspace (kept for reloads in this server process)."""
    state = get_state()
    if state.ws_id:
        with _JOBS_LOCK:
            _JOBS.setdefault(state.ws_id, []).append(job)


def save_if_changed() -> None:
    """Write the workspace when anything in it changed since the last save (cheap otherwise)."""
    from mtlrec import workspace as ws
    state = get_state()
    if not state.ws_id or state.raw is None and not state.jobs and not state.opened_runs:
        return
    doc = _doc(state)
    sig = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
    if sig == state.ws_sig:
        return
    try:
        ws.save(state.ws_id, doc)
        state.ws_sig = sig
    except (OSError, TypeError, ValueError) as e:       # never break the page for a save
        _LOG.warning("workspace %s not saved: %r", state.ws_id, e)

