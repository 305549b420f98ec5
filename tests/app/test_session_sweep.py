"""pages/ui/sessions.py without a browser: the sweep ends a session only once Streamlit can no longer
resume it, frees what it held, and keeps what live sessions and running jobs need. Streamlit's runtime
is replaced by a stand-in with the same thread-safe calls, and the clock by a fake one."""
from __future__ import annotations

import types

import pytest
from streamlit.runtime.state.session_state import SessionState

from pages.ui import lab, sessions, state, workspace

TTL = 120.0           # server.disconnectedSessionTTL's default


class _Runtime:
    """The calls of streamlit.runtime.Runtime the sweeper makes, recorded."""

    def __init__(self):
        self.active, self.app_sessions, self.freed = set(), {}, []
        self.uploaded_file_mgr = types.SimpleNamespace(remove_session_files=lambda s: self.freed.append(("files", s)))
        self.media_file_mgr = types.SimpleNamespace(clear_session_refs=lambda s: self.freed.append(("media", s)),
                                                    remove_orphaned_files=lambda: None)
        self.dataframe_source_mgr = types.SimpleNamespace(clear_all_for_session=lambda s: None)

    def is_active_session(self, sid):
        return sid in self.active

    def get_app_session(self, sid):
        return self.app_sessions.get(sid)


class _AppSession:
    def __init__(self):
        self.session_state = SessionState()


class _Job:
    def __init__(self, done: bool):
        self.done, self.status = done, "finished" if done else "running"

    def join(self, timeout=None):
        return self.done


@pytest.fixture
def world(monkeypatch):
    """A stand-in runtime, a fake clock and empty registries; ``world.open(sid, ws_id, data_uid)``
    runs app.py's `track` for a connected session holding ``data_uid``."""
    rt, clock = _Runtime(), {"now": 1000.0}
    runtime_cls = types.SimpleNamespace(exists=lambda: True, instance=lambda: rt)
    monkeypatch.setattr("streamlit.runtime.Runtime", runtime_cls)
    monkeypatch.setattr(sessions, "time", types.SimpleNamespace(monotonic=lambda: clock["now"]))
    monkeypatch.setattr(sessions, "start_sweeper", lambda: None)
    monkeypatch.setattr(sessions, "_SEEN", {})
    monkeypatch.setattr(sessions, "_OWNED", type(sessions._OWNED)())
    monkeypatch.setattr(workspace, "_JOBS", {})
    monkeypatch.setattr(lab, "_LIVE", {})
    keep_alive = []

    def open_(sid, ws_id, data_uid):
        app_session = _AppSession()
        app_state = state.AppState(ws_id=ws_id, data_uid=data_uid, raw="a large table")
        app_session.session_state[state.STATE_KEY] = app_state
        app_session.session_state._new_widget_state.widget_metadata["w"] = "a page's closure"
        rt.app_sessions[sid], keep_alive[:] = app_session, keep_alive + [app_session, app_state]
        rt.active.add(sid)
        ctx = types.SimpleNamespace(session_id=sid)
        monkeypatch.setattr("streamlit.runtime.scriptrunner.get_script_run_ctx", lambda: ctx)
        monkeypatch.setattr("pages.ui.state.get_state", lambda: app_state)
        sessions.track()
        return app_session

    return types.SimpleNamespace(rt=rt, clock=clock, open=open_)


def test_a_closed_session_is_freed_once_it_can_no_longer_resume_and_live_ones_keep_theirs(world):
    a = world.open("A", "a" * 32, "data-a")
    world.open("B", "b" * 32, "data-b")
    built = []
    for owner in ("data-a", "data-b"):
        sessions.owned_cache(owner, "stats", lambda o=owner: built.append(o) or f"figures of {o}")
    workspace._JOBS.update({"a" * 32: [_Job(True), _Job(False)], "b" * 32: [_Job(True)]})
    lab._LIVE.update({"a" * 32: {"archs": _Job(True)}})
    world.rt.active.discard("A")                          # tab A closed
    world.clock["now"] += 1
    assert sessions.sweep_sessions() == {"a" * 32, "b" * 32}       # A may still reconnect
    world.clock["now"] += TTL - 1
    sessions.sweep_sessions()
    assert world.rt.freed == [] and a.session_state[state.STATE_KEY].raw == "a large table"
    world.clock["now"] += 2 + sessions.sweep_interval()    # past the TTL: Streamlit would not resume it
    kept = sessions.sweep_sessions()
    assert world.rt.freed == [("files", "A"), ("media", "A")]
    assert state.STATE_KEY not in a.session_state and a.session_state._new_widget_state.widget_metadata == {}
    assert kept == {"b" * 32, "a" * 32}                   # A's workspace stays: its running job
    assert [j.done for j in workspace._JOBS["a" * 32]] == [False] and len(workspace._JOBS["b" * 32]) == 1
    assert "a" * 32 not in lab._LIVE                      # its Lab result is stored in the workspace
    assert sessions.owned_cache("data-b", "stats", lambda: "built again") == "figures of data-b"
    assert sessions.owned_cache("data-a", "stats", lambda: "built again") == "built again"
    assert built == ["data-a", "data-b"]


def test_a_tab_that_reconnects_in_time_is_not_freed(world):
    world.open("A", "a" * 32, "data-a")
    world.rt.active.discard("A")
    sessions.sweep_sessions()
    world.clock["now"] += TTL - 5
    world.rt.active.add("A")                              # the tab came back (a network blip)
    sessions.sweep_sessions()
    world.rt.active.discard("A")
    world.clock["now"] += TTL - 5
    sessions.sweep_sessions()
    assert world.rt.freed == []
