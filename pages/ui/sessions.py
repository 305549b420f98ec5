"""Browser sessions end, and what they held goes with them; idle workspaces expire (issue 27).

Streamlit keeps a disconnected session for ``server.disconnectedSessionTTL`` seconds (120 by
default), so that a tab that reconnects resumes it. Then it drops the session from its storage
*without shutting it down*: the session's uploaded files stay in the server's memory for good, its
session state (our `AppState`: the tables read from the upload) until the storage is next written,
and the runtime's loop keeps the last session it served until another one comes. Nothing tells the
app that a session ended. So:

* app.py calls `track` on every run: this session and (weakly) its `AppState`;
* a daemon thread (`start_sweeper`; it never calls ``st.*``) checks every ``MTLREC_SESSION_SWEEP_S``
  seconds (default 30) which tracked sessions are connected. One found disconnected for longer than
  the TTL has ended (Streamlit would no longer resume it): its uploaded files, media files and
  dataframe sources are released (the thread-safe calls of Streamlit's own shutdown) and its session
  state is emptied, widgets' metadata included (their closures hold the page's tables);
* then what only ended sessions used goes: `owned_cache` entries whose data id no live session has,
  and the finished training and Lab jobs of workspaces that no live session has open (a reload reads
  them from the workspace and the run folders, as after a restart). Running jobs stay: they belong
  to the workspace, and a reload finds them;
* then `mtlrec.memory.release_memory` (garbage collection and ``malloc_trim``: glibc keeps freed
  heap pages otherwise; `mtlrec.memory.tune_malloc` ran when the thread started), and one log line
  ``MTLREC-SESSIONS-SWEPT ended=N live=M ...``;
* when it starts (the server's first page) and every `DISK_EVERY_S` the same thread expires idle workspaces
  (`mtlrec.app.workspace_clean.sweep`). Workspaces open in a live session or with a running job are
  touched first (their idle time starts when the last session ends) and never removed.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass

from pages.ui.boundary import server_logger

SWEEP_ENV = "MTLREC_SESSION_SWEEP_S"
DEFAULT_SWEEP_S = 30.0
DISK_EVERY_S = 600.0            # workspace expiry: at start, then this often
OWNED_MAX = 8                   # entries of `owned_cache` (all owners together)
MARKER = "MTLREC-SESSIONS-SWEPT"
_LOG = server_logger("mtlrec.sessions", logging.INFO)


@dataclass
class _Seen:
    app_session: object = None          # weakref to Streamlit's AppSession (None: not available)
    state: object = None                # weakref to the session's AppState
    inactive_since: float | None = None  # monotonic time the sweeper first found it disconnected


_SEEN: dict[str, _Seen] = {}
_OWNED: OrderedDict = OrderedDict()     # (owner, key) -> (value, when it was built: monotonic s)
_LOCK = threading.Lock()
_SWEEPER: dict = {}


def _weak(obj):
    try:
        return weakref.ref(obj)
    except TypeError:
        return None


def track() -> None:
    """Called by app.py on every run: this browser session is alive (and starts the sweeper)."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    from pages.ui.state import get_state
    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():     # AppTest: no server, nothing to sweep
        return
    sid = ctx.session_id
    with _LOCK:
        rec = _SEEN.get(sid)
        if rec is None:
            rec = _SEEN[sid] = _Seen(app_session=_weak(Runtime.instance().get_app_session(sid)))
        rec.state, rec.inactive_since = _weak(get_state()), None
    start_sweeper()


def owned_cache(owner: str, key: str, build):
    """``build()``'s value, kept for the data (or workspace) ``owner`` while a live session has it:
    a shared cache whose entries go when the last session using their owner ends (at most
    `OWNED_MAX` entries, the least recently used go first)."""
    k = (str(owner), str(key))
    with _LOCK:
        if k in _OWNED:
            _OWNED.move_to_end(k)
            return _OWNED[k][0]
    value = build()
    with _LOCK:
        _OWNED[k] = (value, time.monotonic())
        while len(_OWNED) > OWNED_MAX:
            _OWNED.popitem(last=False)
    return value


# ---------------------------------------------------------------------------- the sweeper thread
def sweep_interval() -> float:
    try:
        return max(0.1, float(os.environ.get(SWEEP_ENV) or DEFAULT_SWEEP_S))
    except ValueError:
        return DEFAULT_SWEEP_S


def start_sweeper() -> None:
    """Start the sweeping thread once per server process (and tune its allocator, `tune_malloc`)."""
    from mtlrec.memory import tune_malloc
    with _LOCK:
        if "thread" in _SWEEPER:
            return
        _SWEEPER["thread"] = threading.Thread(target=_loop, name="mtlrec-session-sweeper", daemon=True)
    tune_malloc()
    _SWEEPER["thread"].start()


def _loop() -> None:
    next_disk = 0.0
    while True:
        try:
            live = sweep_sessions()
            if time.monotonic() >= next_disk:
                next_disk = time.monotonic() + DISK_EVERY_S
                sweep_workspaces(live)
        except Exception as e:  # noqa: BLE001 - the sweeper must outlive any one failure
            _LOG.warning("session sweep failed: %r", e)
        time.sleep(sweep_interval())


def _ended(rt, ttl: float, now: float) -> list[tuple[str, _Seen]]:
    """Tracked sessions disconnected for longer than the TTL (Streamlit no longer resumes them)."""
    out = []
    with _LOCK:
        for sid, rec in list(_SEEN.items()):
            if rt.is_active_session(sid):
                rec.inactive_since = None
            elif rec.inactive_since is None:
                rec.inactive_since = now
            elif now - rec.inactive_since > ttl:
                out.append((sid, _SEEN.pop(sid)))
    return out


def _release(rt, sid: str, rec: _Seen) -> None:
    """What Streamlit's shutdown of the session would release (thread-safe calls), and its state."""
    rt.uploaded_file_mgr.remove_session_files(sid)
    rt.media_file_mgr.clear_session_refs(sid)
    rt.media_file_mgr.remove_orphaned_files()
    rt.dataframe_source_mgr.clear_all_for_session(sid)
    session = rec.app_session() if rec.app_session is not None else None
    if session is not None and not rt.is_active_session(sid):
        _clear_state(session.session_state)


def _clear_state(ss) -> None:
    """Empty an ended session's state. ``SessionState.clear`` leaves the widgets' metadata, whose
    (de)serialisers are closures over the page's globals (the page's tables): those go too."""
    ss.clear()
    widgets = getattr(ss, "_new_widget_state", None)         # streamlit 1.67's WStates
    for name in ("states", "widget_metadata"):
        d = getattr(widgets, name, None)
        if isinstance(d, dict):
            d.clear()


def _live() -> tuple[set, set]:
    """(workspace ids, data ids) of the tracked sessions that have not ended."""
    ws_ids, data_ids = set(), set()
    with _LOCK:
        states = [rec.state() for rec in _SEEN.values() if rec.state is not None]
    for st_ in states:
        if st_ is not None:
            ws_ids.add(st_.ws_id)
            data_ids.add(st_.data_uid)
    return ws_ids - {None}, data_ids


def _drop_unowned(data_ids: set, older_than: float) -> int:
    with _LOCK:
        stale = [k for k, (_, at) in _OWNED.items() if k[0] not in data_ids and at < older_than]
        for k in stale:
            del _OWNED[k]
    return len(stale)


def sweep_sessions() -> set:
    """One sweep (see the module's doc); returns the workspace ids kept (live or with a running job)."""
    from streamlit import config
    from streamlit.runtime import Runtime

    from mtlrec.memory import release_memory
    from pages.ui import lab, workspace
    if not Runtime.exists():
        return set()
    rt, now = Runtime.instance(), time.monotonic()
    ended = _ended(rt, float(config.get_option("server.disconnectedSessionTTL")), now)
    for sid, rec in ended:
        _release(rt, sid, rec)
    ws_ids, data_ids = _live()
    dropped = _drop_unowned(data_ids, now - sweep_interval())
    jobs = workspace.forget_finished_jobs(ws_ids) + lab.forget_finished_jobs(ws_ids)
    if ended or dropped or jobs:
        release_memory()
        _LOG.info("%s ended=%d live=%d dropped_cache=%d dropped_jobs=%d", MARKER, len(ended), len(_SEEN),
                  dropped, jobs)
    return ws_ids | workspace.running_workspaces() | lab.running_workspaces()


def sweep_workspaces(keep: set) -> dict | None:
    """Expire idle workspaces (`mtlrec.app.workspace_clean.sweep`), touching the kept ones first."""
    from mtlrec.app import workspace_clean
    for ws_id in keep:
        workspace_clean.touch(ws_id)
    try:
        res = workspace_clean.sweep(keep=keep)
    except Exception as e:  # noqa: BLE001 - e.g. a bad MTLREC_WORKSPACE_TTL_DAYS: said in the log, the app goes on
        _LOG.warning("workspaces not swept: %s", e)
        return None
    if res["removed"] or res["over_cap"]:
        _LOG.info("workspaces swept: %d removed (%.1f MB), %d kept (%.1f MB)%s", len(res["removed"]),
                  res["mb_before"] - res["mb_after"], res["kept"], res["mb_after"],
                  "; still over the cap" if res["over_cap"] else "")
    return res
