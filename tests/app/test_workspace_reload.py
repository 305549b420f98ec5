"""AppTest: the workspace survives a reload. A session gets a workspace id in the URL; a new session
opened with that id (a reload, a bookmark, another server process) finds the same dataset,
configuration and runs; a session without the id gets a new, empty workspace."""
from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

from mtlrec.app import workspace_clean
from mtlrec.app.workspace import workspaces_root
from test_pages import APP, no_exception, state_of


def _ws(at: AppTest) -> str:
    """The session's workspace id (the URL's ?ws=; AppTest does not show URL changes made after a
    switch_page, the browser test checks the URL itself)."""
    return state_of(at).ws_id


def test_reload_with_the_workspace_id_restores_data_and_configuration():
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.button(key="home_load_sample").click().run()
    no_exception(at, "sample")
    wid = _ws(at)
    assert len(wid) == 32 and at.query_params.get("ws") in (None, wid, [wid])
    st_ = state_of(at)
    st_.train["epochs"] = 7
    st_.tasks = [t for t in st_.tasks if t["name"] != "rating"]
    at.switch_page("pages/model.py").run()                      # any run saves the change
    no_exception(at, "model page")

    again = AppTest.from_file(APP, default_timeout=120)
    again.query_params["ws"] = wid
    again.run()
    no_exception(again, "reloaded")
    st2 = state_of(again)
    assert st2.ws_id == wid and st2.raw is not None and len(st2.raw.interactions) == 60_000
    assert st2.train["epochs"] == 7
    assert [t["name"] for t in st2.tasks] == [t["name"] for t in st_.tasks]
    again.switch_page("pages/model.py").run()
    assert any(n.label == "Epochs" and n.value == 7 for n in again.number_input)

    fresh = AppTest.from_file(APP, default_timeout=120).run()
    assert state_of(fresh).raw is None and _ws(fresh) != wid


def test_an_unknown_or_hostile_id_starts_a_new_workspace():
    for bad in ("0" * 32, "../../etc"):
        at = AppTest.from_file(APP, default_timeout=120)
        at.query_params["ws"] = bad
        at.run()
        no_exception(at, "bad id")
        assert state_of(at).raw is None and _ws(at) != bad


def test_a_link_to_an_expired_workspace_says_so_and_starts_a_fresh_one():
    """A workspace removed by the idle sweep (mtlrec.app.workspace_clean): its link opens a new, empty
    workspace under the same id (so the runs trained in it stay the visitor's: runs are owned by the id)
    with a message in words (no error box); an id that never existed gets no such message."""
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.button(key="home_load_sample").click().run()
    at.switch_page("pages/model.py").run()                      # any run saves the workspace
    wid = _ws(at)
    others = {p.name for p in workspaces_root().iterdir()} - {wid}      # other tests' workspaces stay
    res = workspace_clean.sweep(days=14, cap_gb=0, keep=others, now=time.time() + 15 * 86400)
    assert wid in [r["id"] for r in res["removed"]]

    again = AppTest.from_file(APP, default_timeout=120)
    again.query_params["ws"] = wid
    again.run()
    no_exception(again, "expired link")
    assert not again.error and state_of(again).raw is None and _ws(again) == wid
    said = " ".join(i.value for i in again.info)
    assert "The workspace of this link was removed" in said and "not been used for 15 days" in said
    assert "runs you trained in it are kept" in said

    other = AppTest.from_file(APP, default_timeout=120)
    other.query_params["ws"] = "0" * 32
    other.run()
    assert "was removed" not in " ".join(i.value for i in other.info)
