"""Per-session state of the dashboard: one `AppState` per browser session.

Everything a browser session owns (its dataset, configuration, training jobs and the
selected run) lives in one `AppState` object inside ``st.session_state``, so two tabs
never see each other's data or runs. Pages call `get_state()`; they never keep
module-level globals. Training jobs are `mtlrec.training.jobs.TrainingJob` objects: their worker
threads never call ``st.*``; pages read ``job.snapshot()``.

Cross-page requests:
* ``st.session_state["explain_request"] = {"run_dir", "user", "item"}`` then
  ``st.switch_page("pages/explain.py")`` opens the explanation of one recommendation (Explain copies
  it into ``AppState.explain_pair``, which the workspace keeps: a reload explains the same pair).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

ROOT = Path(__file__).resolve().parents[2]
STATE_KEY = "mtlrec_state"
APP_RAN_KEY = "mtlrec_app_ran"
TERMINAL = ("finished", "cancelled", "failed")
EXPLAIN_PAGE = "pages/explain.py"


@dataclass


class AppState:
    # ---- data --------------------------------------------------------------------
    raw: Any = None                 # mtlrec.data.raw.RawData
    source: str | None = None       # "sample" or the uploaded file names, for display
    spec: Any = None                # mtlrec.data.roles.DataSpec (column roles)
    report: Any = None              # ValidationReport of the last validation
    data_error: str | None = None   # message of the last DataError (shown on the Data page)
    prep: Any = None                # mtlrec.prep.PrepConfig
    dataset: Any = None             # mtlrec.dataset.PreparedDataset (after "Prepare")
    dataset_key: str | None = None  # identifies the prepared dataset (spec+prep hash)
    # ---- configuration -----------------------------------------------------------
    tasks: list[dict] = field(default_factory=list)   # [{name, type, label, weight, metric}]
    model: dict = field(default_factory=dict)         # {arch, ...hparams}
    train: dict = field(default_factory=dict)         # {epochs, batch_size, lr, weighting, ...}
    text: dict = field(default_factory=dict)          # {enabled, columns, model}
    # ---- runs --------------------------------------------------------------------
    jobs: list = field(default_factory=list)          # mtlrec.training.jobs.TrainingJob, newest last
    past_runs: list = field(default_factory=list)     # run folders this workspace trained in an earlier
                                                      # server process (no job here any more), oldest first
    selected_run: str | None = None                   # run_dir of the run shown on Train/Results/Recommend
    rec_user: str | None = None                       # the user picked on Recommendations
    explain_pair: dict | None = None                  # {run_dir, user, item} explained on Explain
    opened_runs: list = field(default_factory=list)   # run folders opened from the Runs page, newest last
    ws_id: str | None = None                          # the workspace (?ws= in the URL; pages/ui/workspace.py)
    ws_files: list | None = None                      # stored names of the uploaded files of the workspace
    ws_sig: str | None = None                         # digest of the last saved workspace
    ws_version: int = 0                               # version of workspace.json this tab loaded / saved
    ws_conflict: dict | None = None                   # {version, saved_at}: another tab saved a newer one
    ws_dataset: str | None = None                     # key of the prepared dataset kept in the workspace
    counter: int = 0                                   # bumps widget keys when a workspace is loaded
    suggested_spec: Any = None                         # the roles suggested when the data was loaded
    upload_sig: tuple | None = None                    # (name, size) of the files last uploaded
    data_uid: str = ""                                 # unique id of the loaded data (cache keys)

    @property
    def has_data(self) -> bool:
        return self.raw is not None

    @property
    def has_dataset(self) -> bool:
        return self.dataset is not None

    def run_dirs(self) -> list[str]:
        """Run folders of this session's jobs that have one, newest first."""
        out = []
        for job in reversed(self.jobs):
            rd = job_run_dir(job)
            if rd:
                out.append(rd)
        return out

    def finished_run_dirs(self) -> list[str]:
        """Run folders with a model to show, newest first: this session's finished runs and cancelled
        runs whose best model so far was kept, then the runs opened from the Runs page."""
        out = []
        for job in reversed(self.jobs):
            snap = job.snapshot(include_batches=False)
            rd = snap_get(snap, "run_dir")
            if rd and snap_get(snap, "status") in ("finished", "cancelled") \
                    and (Path(rd) / "model.pt").exists():
                out.append(str(rd))
        for rd in reversed(self.opened_runs):
            if rd not in out and (Path(rd) / "model.pt").exists() and self.readable(rd):
                out.append(rd)
        return out

    def run_level(self, run_dir) -> str | None:
        """What this workspace may do with a run folder (`mtlrec.runs.access.level`: "yours", "shared",
        "local" or None); a run this session's own job trains or trained is "yours"."""
        from mtlrec.runs.access import level
        lvl = level(run_dir, self.ws_id)
        return lvl if lvl is not None or self.job_for(str(run_dir)) is None else "yours"

    def readable(self, run_dir) -> bool:
        return self.run_level(run_dir) is not None

    def check_run(self, run_dir, *, manage: bool = False) -> str:
        """`mtlrec.runs.access.check_access` for this workspace (RunAccessError when not allowed)."""
        from mtlrec.runs.access import check_access
        if self.job_for(str(run_dir)) is not None:
            return "yours"
        return check_access(run_dir, self.ws_id, manage=manage)

    def forget_run(self, run_dir: str) -> None:
        """A run folder was deleted: drop it from the opened runs, the selection and the explained pair."""
        self.opened_runs = [r for r in self.opened_runs if r != str(run_dir)]
        self.past_runs = [r for r in self.past_runs if r != str(run_dir)]
        if self.selected_run == str(run_dir):
            self.selected_run = None
        if (self.explain_pair or {}).get("run_dir") == str(run_dir):
            self.explain_pair = None

    def current_run(self) -> str | None:
        """The run the sidebar names: the selected one, else the newest this workspace trained or opened."""
        if self.selected_run and self.readable(self.selected_run):
            return self.selected_run
        newest = self.run_dirs() or [r for r in list(reversed(self.past_runs)) + list(reversed(self.opened_runs))
                                     if self.readable(r)]
        return newest[0] if newest else None

    def job_for(self, run_dir: str | None):
        for job in self.jobs:
            if run_dir and job_run_dir(job) == str(run_dir):
                return job
        return None

def ensure_app_navigation() -> None:
    """Route every URL through app.py's own navigation.

    Streamlit starts a server whose app folder has a ``pages/`` directory in its old
    multipage mode (every ``pages/*.py`` a page, automatic navigation) until some script run
    calls ``st.navigation``. A first visit to a deep link (``/train``) on a fresh server would
    therefore run pages/train.py on its own under the automatic navigation. Called first by
    every page: a page that finds the server still in that mode was started without app.py,
    so it switches the server to ``st.navigation`` and reruns; the visitor gets app.py with
    its navigation and the page the URL names. (When app.py runs the page, its own
    ``st.navigation`` call has already left that mode, and nothing happens.)"""
    from streamlit.runtime.pages_manager import PagesManager
    if PagesManager.uses_pages_directory and not st.session_state.get(APP_RAN_KEY):
        PagesManager.uses_pages_directory = False
        st.rerun()


def mark_app_ran() -> None:
    """Called by app.py on every run: this session has app.py's navigation. (Streamlit's
    AppTest puts every test run back into the old mode and runs a switched-to page on its own;
    there a rerun would only drop the widget event that started the run.)"""
    st.session_state[APP_RAN_KEY] = True


def get_state() -> AppState:
    """The AppState of this browser session (created on first use)."""
    s = st.session_state.get(STATE_KEY)
    if s is None:
        s = AppState()
        st.session_state[STATE_KEY] = s
    return s

def new_state(**fields) -> AppState:
    """A fresh AppState for this browser session (replacing its old one), with ``fields`` set."""
    s = AppState(**fields)
    st.session_state[STATE_KEY] = s
    return s


def set_state(s: AppState) -> None:
    """Make ``s`` this browser session's AppState again (e.g. after a failed reload)."""
    st.session_state[STATE_KEY] = s


def snap_get(snap, key, default=None):
    """Read a field of a job snapshot, whether it is a dict or an object."""
    if snap is None:
        return default
    if isinstance(snap, dict):
        return snap.get(key, default)
    return getattr(snap, key, default)

def job_run_dir(job) -> str | None:
    rd = getattr(job, "run_dir", None)
    if rd is None:
        rd = snap_get(job.snapshot(), "run_dir")
    return str(rd) if rd else None

def _jobs_of(entry) -> list:
    return list(entry.values()) if isinstance(entry, dict) else list(entry)


def forget_ended_jobs(registry: dict, live_ws_ids: set, ended) -> int:
    """Drop from ``registry`` (workspace id -> a list or a dict of jobs; the caller holds its lock) the
    jobs for which ``ended(job)`` of the workspaces not in ``live_ws_ids``; returns how many went."""
    dropped = 0
    for ws_id in [w for w in registry if w not in live_ws_ids]:
        jobs = registry[ws_id]
        kept = {k: j for k, j in jobs.items() if not ended(j)} if isinstance(jobs, dict) \
            else [j for j in jobs if not ended(j)]
        dropped += len(jobs) - len(kept)
        if kept:
            registry[ws_id] = kept
        else:
            del registry[ws_id]
    return dropped


def with_running_jobs(registry: dict, ended) -> set:
    """Ids of the workspaces of ``registry`` (as in `forget_ended_jobs`) with a job that has not ended."""
    return {w for w, jobs in registry.items() if any(not ended(j) for j in _jobs_of(jobs))}


def apply_workspace(ws: dict) -> None:
    """Put a workspace (from mtlrec.app.workflow.sample_workspace / uploaded_workspace) into the state."""
    state = get_state()
    state.raw, state.spec, state.prep = ws["raw"], ws["spec"], ws["prep"]
    state.ws_files = None           # the sample, or an upload whose files remember_upload keeps
    state.suggested_spec = ws["spec"]
    state.tasks, state.model, state.train, state.text = ws["tasks"], ws["model"], ws["train"], ws["text"]
    state.source = ws["source"]
    state.dataset = state.dataset_key = state.report = state.data_error = None
    state.counter += 1          # fresh widget keys: editors show the new workspace
    state.data_uid = uuid.uuid4().hex   # identifies this loaded data in caches shared by sessions

def explain_page_exists() -> bool:
    return (ROOT / EXPLAIN_PAGE).is_file()

def request_explanation(run_dir: str, user, item) -> None:
    """Open the Explain page on one (user, item) recommendation of one run (the workspace keeps the pair)."""
    pair = {"run_dir": str(run_dir), "user": str(user), "item": str(item)}
    get_state().explain_pair = dict(pair)
    st.session_state["explain_request"] = pair
    if explain_page_exists():
        st.switch_page(EXPLAIN_PAGE)

def open_library_run(run_dir: str) -> None:
    """Make a run folder from the library the current run (Results, Recommendations, Explain);
    RunAccessError when it is not one this workspace may see."""
    state = get_state()
    state.check_run(run_dir)
    rd = str(run_dir)
    state.opened_runs = [r for r in state.opened_runs if r != rd] + [rd]
    state.selected_run = rd


def need_data(what: str = "this page") -> bool:
    """Show a hint and return False when no dataset is loaded."""
    if get_state().raw is None:
        st.info(f"Load data first: use **Load sample & configure** on Home or upload files on Data, then come back to {what}.")
        return False
    return True

def keep(key: str, target, field: str, cast=None):
    """``on_change`` for a keyed widget whose value the page also assigns inline (``target[field] = widget(...)``).

    The visitor's edit is committed when the next script run starts, before any page is drawn, so it
    survives a run that draws another page: typing a value and clicking the sidebar at once used to
    lose it (the new page never reached the inline assignment, and the widget's value was dropped).
    ``target``: the dict, or a function returning it (looked up when the change arrives). A value
    ``cast`` refuses is left for the page to report."""
    def _commit() -> None:
        if key not in st.session_state:
            return
        try:
            value = cast(st.session_state[key]) if cast else st.session_state[key]
        except (TypeError, ValueError):
            return
        (target() if callable(target) else target)[field] = value
    return _commit


def synced_selectbox(label: str, options: list, *, key: str, attr: str, container=None, **kw):
    """A selectbox that mirrors ``AppState.<attr>``: the state is the one source of truth.

    A keyed widget keeps its own value across reruns and would write a stale choice back over
    a newer one set elsewhere (a run started, a user picked on another page); its value is also
    forgotten when the visitor leaves the page. So the widget is set from the state before it
    is drawn, and only the visitor's own change (``on_change``) writes the state."""
    state = get_state()
    if not options:
        return None
    if getattr(state, attr) not in options:
        setattr(state, attr, options[0])
    st.session_state[key] = getattr(state, attr)

    def _changed() -> None:
        setattr(state, attr, st.session_state[key])

    (container or st).selectbox(label, options, key=key, on_change=_changed, **kw)
    return getattr(state, attr)

def need_run(what: str = "this page") -> str | None:
    """The selected finished run (picker shown when there are several), or None with a hint.

    The newest run is selected when it starts (Train); otherwise the visitor's choice is kept
    across reruns and page switches. A selected run that has not finished yet is shown on
    Train; here the newest finished run stands in without overwriting the selection."""
    state = get_state()
    runs = state.finished_run_dirs()
    if not runs:
        st.info(f"No finished run in this session yet: train a model on **Train**, or open a saved one on "
                f"**Runs**, then come back to {what}.")
        return None
    pending = None                         # a selected run still training: followed, not replaced
    job = state.job_for(state.selected_run) if state.selected_run not in runs else None
    if job is not None and snap_get(job.snapshot(include_batches=False), "status") not in TERMINAL:
        pending, state.selected_run = state.selected_run, runs[0]
    chosen = synced_selectbox("Run", runs, key="run_picker", attr="selected_run",
                              format_func=lambda p: Path(p).name)
    if pending is not None:
        st.caption(f"Run `{Path(pending).name}` is still training; showing the newest finished run "
                   "until it ends.")
        state.selected_run = pending
    return chosen


def lazy_section(label: str, key: str, draw, *, icon: str | None = None) -> None:
    """An expander whose content runs only while it is open (a stateful expander: opening it reruns
    the page). For chart-heavy sections: every Plotly chart costs the browser 0.3-0.6 s to draw on a
    2-core machine, so a page that draws them all on open takes seconds (issue 15). The open state
    is kept per session under ``key``."""
    box = st.expander(label, key=key, on_change="rerun", icon=icon)
    if box.open:
        with box:
            draw()
