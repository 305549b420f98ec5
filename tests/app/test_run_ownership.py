"""AppTest: a visitor sees only the runs of their workspace (issue 27, item 1). Another workspace's run
is not listed on Runs, and naming it anyway -- in the session's selections, in the workspace document a
reload restores, in an Explain request -- shows nothing of it on Results, Recommendations or Explain;
the owner manages it and shares it by a link that the owner can take back."""
from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from mtlrec.runs import access
from test_page_states import sidebar_text
from test_pages import APP, no_exception, state_of, texts

OTHER = "a" * 32            # the workspace id of another visitor
NO_RUN = "No finished run in this session yet"


@pytest.fixture(scope="module")
def runs(runs_dir):
    """Another workspace's finished run and a local run (no owner) in the module's runs root."""
    from _fixtures_train import make_dataset, tiny_run_folder
    theirs = tiny_run_folder(runs_dir / "20260101-000000-theirs", make_dataset(n_rows=600))
    local = runs_dir / "20260101-000001-local"
    shutil.copytree(theirs, local)
    access.record_owner(theirs, OTHER)
    return {"theirs": str(theirs), "local": str(local)}


def _visit(at: AppTest, page: str) -> str:
    at.switch_page(page).run()
    no_exception(at, page)
    return texts(at)


def _sees_none(at: AppTest, runs: dict, where: str) -> None:
    """Runs lists nothing; Results, Recommendations and Explain have no run; nothing names the runs."""
    shown = _visit(at, "pages/runs.py")
    assert "No runs yet in this workspace" in shown and not at.multiselect, where
    for page in ("pages/results.py", "pages/recommend.py", "pages/explain.py"):
        shown = _visit(at, page)
        assert "No finished run" in shown, (where, page)
        assert not at.selectbox, (where, page)          # no run, user or item to pick
    shown += sidebar_text(at)
    assert "Run: none yet" in sidebar_text(at), where
    assert not any(name.rsplit("/", 1)[-1] in shown for name in runs.values()), where


def test_another_workspaces_run_cannot_be_listed_or_read_by_naming_it(runs):
    at = AppTest.from_file(APP, default_timeout=120).run()
    _sees_none(at, runs, "a new visitor")
    s = state_of(at)            # the visitor names the runs where the pages look for them
    s.opened_runs = list(runs.values())
    s.selected_run = runs["theirs"]
    s.explain_pair = {"run_dir": runs["theirs"], "user": "u1", "item": "i1"}
    at.session_state["explain_request"] = {"run_dir": runs["theirs"], "user": "u1", "item": "i1"}
    _sees_none(at, runs, "runs named in the session")


def test_a_restored_workspace_shows_only_what_it_may_see(runs):
    """A workspace document naming another's run (as one saved before runs had owners might) restores
    without it; a document from before owners claims the local runs it trained, not another's."""
    from mtlrec.app import workspace as ws
    mine = ws.new_workspace_id()
    ws.save(mine, {"runs": [runs["theirs"]], "opened_runs": list(runs.values()), "selected_run": runs["theirs"],
                   "explain_pair": {"run_dir": runs["theirs"], "user": "u1"}, "run_owners": 1})
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["ws"] = mine
    at.run()
    no_exception(at, "restored")
    s = state_of(at)
    assert (s.past_runs, s.opened_runs, s.selected_run, s.explain_pair) == ([], [], None, None)
    _sees_none(at, runs, "a restored workspace")

    old = ws.new_workspace_id()       # saved before runs had owners: it trained both, it says
    ws.save(old, {"runs": [runs["theirs"], runs["local"]]})
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["ws"] = old
    at.run()
    no_exception(at, "an old workspace restored")
    assert state_of(at).opened_runs == [runs["local"]]
    assert access.level(runs["local"], old) == "yours" and access.level(runs["theirs"], old) is None


def test_the_owner_shares_a_run_by_a_link_and_takes_it_back(runs):
    from pathlib import Path
    owner = AppTest.from_file(APP, default_timeout=120).run()
    mine = str(shutil.copytree(runs["local"], Path(runs["local"]).parent / "20260101-000002-mine"))
    access.record_owner(mine, state_of(owner).ws_id)
    _visit(owner, "pages/runs.py")
    assert owner.multiselect(key="runs_selected").options == ["20260101-000002-mine"]
    owner.multiselect(key="runs_selected").set_value(["20260101-000002-mine"]).run()
    owner.button(key="runs_share").click().run()
    no_exception(owner, "share")
    token = access.share_token(mine)
    assert token and any(f"?share={token}" in c.value for c in owner.code)

    viewer = AppTest.from_file(APP, default_timeout=120)
    viewer.query_params["share"] = token
    viewer.run()
    no_exception(viewer, "the share link opened")
    assert state_of(viewer).current_run() == mine
    _visit(viewer, "pages/results.py")
    assert "Test metrics per task" in [h.value for h in viewer.subheader]
    _visit(viewer, "pages/runs.py")
    viewer.multiselect(key="runs_selected").set_value(["20260101-000002-mine"]).run()
    assert "Shared with you, read-only" in texts(viewer)
    keys = {b.key for b in viewer.button}
    assert "runs_open" in keys and not keys & {"runs_delete", "runs_share", "runs_resume"}

    owner.button(key="runs_unshare").click().run()
    no_exception(owner, "stop sharing")
    assert access.share_token(mine) is None
    _sees_none(viewer, runs, "after the owner stopped sharing")



def test_keep_both_gives_the_new_workspace_the_runs_of_the_original(runs):
    """Two tabs on one workspace, and one keeps both: its new workspace still has the runs."""
    from pathlib import Path
    a = AppTest.from_file(APP, default_timeout=120).run()
    a.button(key="home_load_sample").click().run()
    wid = state_of(a).ws_id
    mine = str(shutil.copytree(runs["local"], Path(runs["local"]).parent / "20260101-000003-forked"))
    access.record_owner(mine, wid)
    state_of(a).opened_runs.append(mine)
    a.switch_page("pages/model.py").run()                      # saved with its run
    b = AppTest.from_file(APP, default_timeout=120)
    b.query_params["ws"] = wid
    b.run()
    b.switch_page("pages/model.py").run()
    next(n for n in b.number_input if n.label == "Epochs").set_value(14).run()
    next(n for n in a.number_input if n.label == "Epochs").set_value(77).run()     # a conflict: a chooses
    a.button(key="ws_conflict_fork").click().run()
    no_exception(a, "keep both")
    new = state_of(a).ws_id
    assert new != wid and access.level(mine, new) == "yours" and access.level(mine, wid) == "yours"
    assert state_of(a).finished_run_dirs() == [mine]
