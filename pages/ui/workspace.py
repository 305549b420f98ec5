"""The visitor's workspace survives a reload: it is saved on disk (``mtlrec.app.workspace``) and named
in the URL (``?ws=<id>``), so F5, a bookmark or a server restart brings the visitor back to the same
dataset, configuration, prepared dataset, runs and selections (the run, the Recommendations user,
the explained pair). A new tab without the id gets a new, isolated workspace.

app.py calls `restore_or_start` before the page and `save_if_changed` after it. The prepared dataset
is kept in the workspace under its key (data, roles, options, text settings) and loaded from there;
it is prepared again only when that copy is missing or no longer matches. Training jobs are also
kept per workspace in this server process, so a reload during training finds the running job
(after a server restart its folder is on Runs, interrupted or finished).

Two tabs on one workspace: every save names the version this tab loaded; when the other tab saved
since, nothing is written, and this tab says so at the top of the page and lets the visitor load
the newer version, keep this tab's (replacing the other) or keep both (this tab becomes a new
workspace). Nothing is lost silently either way.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from pathlib import Path

import streamlit as st

from pages.ui.state import apply_workspace, forget_ended_jobs, get_state, new_state, set_state, with_running_jobs

_JOBS: dict[str, list] = {}          # workspace id -> its TrainingJobs, for this server process
_JOBS_LOCK = threading.Lock()
_LOG = logging.getLogger("mtlrec.app.workspace")


def _doc(state) -> dict:
    from mtlrec.tasks import clean_tasks
    runs = list(state.past_runs) + [str(j.run_dir) for j in state.jobs if getattr(j, "run_dir", None)]
    return {
        "source": state.source,
        "sample": bool(state.source) and str(state.source).startswith("sample"),
        "upload": state.ws_files, "data_uid": state.data_uid,
        "spec": state.spec.to_dict() if state.spec is not None else None,
        "prep": state.prep.to_dict() if state.prep is not None else None,
        "prepared": state.dataset_key if state.dataset is not None else None,
        "tasks": clean_tasks(state.tasks), "model": state.model, "train": state.train, "text": state.text,
        "runs": runs, "opened_runs": list(state.opened_runs), "selected_run": state.selected_run,
        "rec_user": state.rec_user, "explain_pair": state.explain_pair,
        "run_owners": 1,            # saved since runs have owners: nothing left to claim (`_claim_runs`)
    }


def _sig(doc: dict) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def remember_upload(files: list[tuple[str, bytes]]) -> None:
    """Keep the files of a successful upload in the workspace (read again after a restart)."""
    from mtlrec.app import workspace as ws
    state = get_state()
    if state.ws_id:
        try:
            state.ws_files = ws.save_files(state.ws_id, files)
        except OSError as e:            # a full disk must not break the upload itself
            _LOG.warning("could not keep the uploaded files of workspace %s: %s", state.ws_id, e)
            _say_not_kept(e, "the uploaded files")
            state.ws_files = None


def _restore_data(ws_id: str, doc: dict) -> None:
    from mtlrec.app import workspace as ws
    from mtlrec.app.workflow import sample_workspace, uploaded_workspace
    state = get_state()
    if doc.get("sample"):
        apply_workspace(sample_workspace())
    elif doc.get("upload"):
        files = ws.load_files(ws_id, ref=doc["upload"])
        if files:
            apply_workspace(uploaded_workspace(files))
            state.ws_files = doc.get("upload")


def _restore_dataset(ws_id: str, doc: dict, prepare) -> None:
    """The prepared dataset the workspace names: its kept copy when the key still matches (no
    preparation), else prepared again (``prepare``: pages.ui.actions.prepare_dataset)."""
    from mtlrec.app import workspace as ws
    from mtlrec.app.workflow import dataset_key, effective_spec
    state = get_state()
    key = doc.get("prepared")
    if not key or state.raw is None:
        return
    if key == dataset_key(effective_spec(state.spec, state.text), state.prep, state.text, state.data_uid):
        ds = ws.load_dataset(ws_id, key)
        if ds is not None:
            state.dataset, state.dataset_key, state.ws_dataset = ds, key, key
            return
    if prepare is not None:
        box = st.empty()
        with box.container():
            ok = prepare()
        if ok:
            box.empty()


def _restore(ws_id: str, prepare=None) -> None:
    from mtlrec.app import workspace as ws
    from mtlrec.data.roles import DataSpec
    from mtlrec.prep import PrepConfig
    state = get_state()
    doc = ws.load(ws_id)
    state.ws_id = ws_id                 # whose runs these are (`_restore_runs`)
    _restore_data(ws_id, doc)
    if state.raw is not None:
        state.source = doc.get("source") or state.source
        state.data_uid = doc.get("data_uid") or state.data_uid      # the same data: the same dataset key
        if doc.get("spec"):
            state.spec = DataSpec.from_dict(doc["spec"])
        if doc.get("prep"):
            state.prep = PrepConfig.from_dict(doc["prep"])
        for key in ("tasks", "model", "train", "text"):
            if isinstance(doc.get(key), (list, dict)):
                setattr(state, key, doc[key])
    with _JOBS_LOCK:
        state.jobs = list(_JOBS.get(ws_id, []))
    claimed = _claim_runs(ws_id, doc)
    _restore_runs(doc)
    state.rec_user = doc.get("rec_user")
    state.ws_version = int(doc.get("version") or 0)
    _restore_dataset(ws_id, doc, prepare)
    state.ws_sig = None if claimed else _sig(_doc(state))     # restored as saved: nothing to write back


def _claim_runs(ws_id: str, doc: dict) -> bool:
    """A workspace saved before runs had owners claims the runs it trained (its "runs"), once:
    afterwards its document says ``run_owners`` (`mtlrec.runs.access.claim`). Runs it only opened from
    the shared library of those days stay local. True when there was something to claim."""
    from mtlrec.runs.access import claim
    if doc.get("run_owners") or not doc.get("runs"):
        return False
    for r in dict.fromkeys(doc.get("runs") or []):
        if isinstance(r, str):
            claim(r, ws_id)
    return True


def _restore_runs(doc: dict) -> None:
    """The runs, the selected run and the explained pair the document names: only those this
    workspace may see (`AppState.readable`), whatever the document says."""
    state = get_state()
    live = {str(j.run_dir) for j in state.jobs}

    def ok(r) -> bool:
        return isinstance(r, str) and r not in live and state.readable(r)
    state.past_runs = [r for r in dict.fromkeys(doc.get("runs") or []) if ok(r) and Path(r).is_dir()]
    finished = [r for r in (doc.get("runs") or []) + (doc.get("opened_runs") or [])
                if ok(r) and (Path(r) / "model.pt").exists()]
    state.opened_runs = list(dict.fromkeys(finished))
    sel = doc.get("selected_run")
    state.selected_run = sel if isinstance(sel, str) and (sel in live or state.readable(sel)) else None
    pair = doc.get("explain_pair")
    state.explain_pair = {k: str(pair[k]) for k in ("run_dir", "user", "item") if pair.get(k) is not None} \
        if isinstance(pair, dict) and (pair.get("run_dir") is None or state.readable(str(pair["run_dir"]))) else None


def restore_or_start(prepare=None) -> None:
    """Give this browser session its workspace: the one its URL names (restored from disk), or a new one.
    Later runs of the session check that no other tab saved the workspace meanwhile (else a banner
    at the top of the page lets the visitor choose). ``prepare``: prepares the dataset again when
    the workspace's kept copy is missing (pages.ui.actions.prepare_dataset)."""
    from mtlrec.app import workspace as ws
    state = get_state()
    if state.ws_id is None:
        wanted = st.query_params.get("ws")
        if wanted and ws.exists(wanted):
            from mtlrec.app.workspace_clean import touch
            touch(wanted)                                # used now: its idle time starts again
            try:
                _restore(wanted, prepare)
                state.ws_id = wanted
                state.counter += 1                       # widgets show the restored values
            except Exception as e:                       # a damaged workspace: a clean start, said once
                _LOG.warning("workspace %s could not be restored: %r", wanted, e)
                state = new_state(counter=state.counter + 1)
                st.toast("Your saved workspace could not be restored; a new one was started.")
        elif wanted and _say_if_removed(wanted):
            state.ws_id = wanted                         # an empty workspace under its old id: its runs are still its own
        if state.ws_id is None:
            state.ws_id = ws.new_workspace_id()
    elif state.ws_conflict is None:
        version, saved_at = ws.saved_version(state.ws_id)
        if version and version != state.ws_version:
            state.ws_conflict = {"version": version, "saved_at": saved_at, "new": True}
    if state.ws_conflict is not None:
        _conflict_banner(prepare)
    _take_share()
    if st.query_params.get("ws") != state.ws_id:
        st.query_params["ws"] = state.ws_id


def _say_if_removed(ws_id: str) -> bool:
    """The link names a workspace that a sweep removed (`mtlrec.app.workspace_clean`): say so, in words, and
    return True (the visitor starts again under the same id, so the runs trained in it stay theirs)."""
    from mtlrec.app.workspace_clean import removed_note
    note = removed_note(ws_id)
    if note is None:
        return False
    if note.get("reason") == "expired":
        why = f"it had not been used for {float(note.get('idle_days') or 0):.0f} days, and workspaces are kept " \
              "for a limited time after their last use"
    else:
        why = "the server's workspaces had reached their disk limit, and it was among the longest unused"
    st.info(f"**The workspace of this link was removed**: {why}. This is a new, empty workspace: upload your "
            "data (or pick the sample) to start again. The runs you trained in it are kept: see **Runs**.",
            icon=":material/history_toggle_off:")
    return True


def _ended(job) -> bool:
    return job.done and job.join(0)


def forget_finished_jobs(live_ws_ids: set) -> int:
    """Drop the ended jobs of workspaces that no live session has open (called by the session
    sweeper, pages/ui/sessions.py): a later reload finds their runs in the workspace's run folders,
    as after a server restart. Running jobs stay. Returns how many were dropped."""
    with _JOBS_LOCK:
        return forget_ended_jobs(_JOBS, live_ws_ids, _ended)


def running_workspaces() -> set:
    """Ids of the workspaces with a training job that has not ended."""
    with _JOBS_LOCK:
        return with_running_jobs(_JOBS, _ended)


def _take_share() -> None:
    """``?share=<token>`` (a share link, `mtlrec.runs.access.create_share`): the run it shares joins this
    workspace read-only and becomes the current run; a link that opens nothing says so. The token
    leaves the URL either way."""
    from mtlrec.runs.access import accept_share

    from pages.ui.state import open_library_run
    token = st.query_params.get("share")
    if token is None:
        return
    del st.query_params["share"]
    run = accept_share(token, get_state().ws_id)
    if run is None:
        st.toast("This share link opens no run: it is mistyped, or its owner stopped sharing the run.",
                 icon=":material/link_off:")
        return
    open_library_run(str(run))
    st.toast(f"Run {run.name} was shared with you (read-only): see it on Results, Recommendations, Explain "
             "and Runs.", icon=":material/share:")


def register_job(job) -> None:
    """A job started in this workspace (kept for reloads in this server process)."""
    state = get_state()
    if state.ws_id:
        with _JOBS_LOCK:
            _JOBS.setdefault(state.ws_id, []).append(job)


def save_if_changed() -> None:
    """Write the workspace when anything in it changed since the last save (cheap otherwise), unless
    another tab saved it since this one loaded it: then nothing is written and the page says so."""
    from mtlrec.app import workspace as ws
    state = get_state()
    if not state.ws_id or state.ws_conflict is not None \
            or state.raw is None and not state.jobs and not state.opened_runs:
        return
    doc = _doc(state)
    sig = _sig(doc)
    if sig != state.ws_sig:
        try:
            state.ws_version = ws.save(state.ws_id, doc, expect=state.ws_version)
            state.ws_sig = sig
        except ws.WorkspaceConflict as e:
            state.ws_conflict = {"version": e.version, "saved_at": e.saved_at, "new": True}
            st.rerun()                                  # the banner at the top of the page, now
        except (OSError, TypeError, ValueError) as e:   # never break the page for a save
            _LOG.warning("workspace %s not saved: %r", state.ws_id, e)
            _say_not_kept(e, "this workspace")
    _keep_dataset(state)


def _keep_dataset(state) -> None:
    """Keep the prepared dataset in the workspace (once per key), so that a reload loads it."""
    from mtlrec.app import workspace as ws
    if state.dataset is None or not state.dataset_key or state.ws_dataset == state.dataset_key:
        return
    state.ws_dataset = state.dataset_key                # tried once per key, even when the disk is full
    try:
        ws.save_dataset(state.ws_id, state.dataset, state.dataset_key)
    except (OSError, ValueError) as e:                  # a reload then prepares again
        _LOG.warning("prepared dataset of workspace %s not kept: %r", state.ws_id, e)
        _say_not_kept(e, "the prepared dataset")


def _say_not_kept(e: BaseException, what: str) -> None:
    """A full disk, said to the visitor (other failures to save stay in the server log)."""
    from mtlrec.diskio import is_disk_full
    from pages.ui.messages import msg_text
    if is_disk_full(e):
        st.warning(f"{what[0].upper()}{what[1:]} could not be saved for a reload: {msg_text(e)}. "
                   "Everything stays usable in this tab.", icon=":material/save:")


# ---------------------------------------------------------------------------- two tabs, one workspace
def _conflict_banner(prepare) -> None:
    state = get_state()
    at = state.ws_conflict.get("saved_at")
    when = time.strftime("%H:%M:%S", time.localtime(float(at))) if at else "a moment ago"
    box = st.container(border=True, key="ws_conflict")
    box.warning(f"**This workspace was changed in another tab or window** (saved at {when}). This tab still "
                "shows its own version, and its changes are not saved until you choose, so that neither "
                "version is lost.", icon=":material/sync_problem:")
    if state.ws_conflict.pop("new", False):       # seen wherever the page is scrolled to
        st.toast("Another tab changed this workspace: choose at the top of the page.",
                 icon=":material/sync_problem:")
    c = box.columns(3)
    if c[0].button("Load the newer version", key="ws_conflict_load", type="primary",
                   help="show the version the other tab saved (this tab's unsaved changes are dropped)"):
        _load_newer(prepare)
    if c[1].button("Keep this tab's version", key="ws_conflict_keep",
                   help="save this tab's version over the other one (the other tab is told in turn)"):
        _keep_mine()
    if c[2].button("Keep both: this tab as a new workspace", key="ws_conflict_fork",
                   help="this tab continues in a copy with its own link; the other tab keeps the original"):
        _fork()


def _load_newer(prepare) -> None:
    old = get_state()
    new_state(ws_id=old.ws_id, counter=old.counter + 1)
    try:
        _restore(old.ws_id, prepare)
    except Exception as e:          # the newer version is damaged: keep this tab's, unsaved, and say so
        _LOG.warning("workspace %s could not be loaded: %r", old.ws_id, e)
        set_state(old)
        st.toast("The newer version could not be loaded; this tab keeps its own.")
        return
    st.rerun()


def _keep_mine() -> None:
    from mtlrec.app import workspace as ws
    state = get_state()
    doc = _doc(state)
    state.ws_version = ws.save(state.ws_id, doc, expect=None)
    state.ws_sig, state.ws_conflict = _sig(doc), None
    st.rerun()


def _fork() -> None:
    from mtlrec.app import workspace as ws
    state = get_state()
    old_id, state.ws_id = state.ws_id, ws.copy(state.ws_id)
    with _JOBS_LOCK:
        _JOBS[state.ws_id] = list(_JOBS.get(old_id, []))
    from mtlrec.runs.access import copy_access
    for rd in dict.fromkeys(state.past_runs + state.opened_runs + state.run_dirs()):
        copy_access(rd, old_id, state.ws_id)        # the copy keeps the runs (owned or shared)
    state.ws_dataset = None                     # the copy may hold the other tab's prepared dataset
    doc = _doc(state)
    state.ws_version = ws.save(state.ws_id, doc, expect=0)
    state.ws_sig, state.ws_conflict = _sig(doc), None
    st.query_params["ws"] = state.ws_id
    st.toast("This tab now has a workspace of its own (a new link); the other tab keeps the original.")
    st.rerun()
