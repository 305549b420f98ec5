"""mtlrec.workspace: a visitor's workspace on disk, addressed by an unguessable id."""
from __future__ import annotations

import pytest

from mtlrec import workspace as ws
from mtlrec.errors import DataError


def test_round_trip_of_the_document_and_the_uploaded_files(tmp_path):
    wid = ws.new_workspace_id()
    assert ws.valid_id(wid) and not ws.exists(wid, tmp_path)
    names = ws.save_files(wid, [("u.data", b"1\t2\t3\t4\n"), ("../../evil name.csv", b"a,b\n1,2\n")], tmp_path)
    assert all("/" not in n and not n.startswith(".") for n in names)
    ws.save(wid, {"source": "u.data", "tasks": [{"name": "click"}]}, tmp_path)
    assert ws.exists(wid, tmp_path)
    doc = ws.load(wid, tmp_path)
    assert doc["tasks"] == [{"name": "click"}] and doc["format"] == ws.FORMAT
    files = dict(ws.load_files(wid, tmp_path))
    assert files == {"u.data": b"1\t2\t3\t4\n", "../../evil name.csv": b"a,b\n1,2\n"}
    assert not (tmp_path.parent / "evil name.csv").exists()


@pytest.mark.parametrize("bad", ["", "../x", "/etc", "0" * 31, "g" * 32, "A" * 32, None, 5])
def test_ids_of_any_other_shape_are_refused(tmp_path, bad):
    assert not ws.valid_id(bad) and not ws.exists(bad, tmp_path)
    with pytest.raises(DataError):
        ws.load(bad, tmp_path)


def test_missing_or_damaged_workspaces_say_so(tmp_path):
    wid = ws.new_workspace_id()
    with pytest.raises(DataError, match="does not exist"):
        ws.load(wid, tmp_path)
    (tmp_path / wid).mkdir()
    (tmp_path / wid / "workspace.json").write_text("{ not json")
    with pytest.raises(DataError, match="damaged"):
        ws.load(wid, tmp_path)
