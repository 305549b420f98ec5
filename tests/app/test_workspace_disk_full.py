"""AppTest: a workspace that cannot be saved because the disk is full says so on the page (issue 27
item 4): the visitor learns that a reload would lose the change -- with the folder named as the app
names it, never a server path -- and the page keeps working; once there is space the next run saves."""
from __future__ import annotations

import os

from streamlit.testing.v1 import AppTest

from test_disk_full import FullDisk
from test_pages import APP, no_exception, state_of


def test_a_full_disk_when_the_workspace_is_saved_is_said_on_the_page(monkeypatch):
    from mtlrec.app import workspace as ws
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.button(key="home_load_sample").click().run()
    no_exception(at, "sample")
    wid = state_of(at).ws_id
    saved = ws.saved_version(wid)[0]
    disk = FullDisk(monkeypatch)
    disk.fill_at("workspace.json")
    state_of(at).train["epochs"] = 9
    at.switch_page("pages/model.py").run()                      # the run saves the change: no room
    no_exception(at, "full disk")
    said = [w.value for w in at.warning if "could not be saved" in w.value]
    assert len(said) == 1, [w.value for w in at.warning]
    text = said[0].replace("\\", "").replace("\u2060", "")
    assert text.startswith("This workspace could not be saved for a reload: the disk is full at workspace: "
                           "workspace.json could not be written"), text
    assert os.environ["MTLREC_WORKSPACES"] not in text and "Everything stays usable in this tab" in text
    assert ws.saved_version(wid)[0] == saved and ws.load(wid)["train"].get("epochs") != 9
    disk.free()                                                 # space is back: the next run saves it
    at.switch_page("pages/model.py").run()
    assert not [w for w in at.warning if "could not be saved" in w.value]
    assert ws.load(wid)["train"]["epochs"] == 9
