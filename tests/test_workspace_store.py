"""mtlrec.app.workspace: a visitor's workspace on disk, addressed by an unguessable id."""
from __future__ import annotations

import pytest

from mtlrec.app import workspace as ws
from mtlrec.errors import DataError


def test_round_trip_of_the_document_and_the_uploaded_files(tmp_path):
    wid = ws.new_workspace_id()
    assert ws.valid_id(wid) and not ws.exists(wid, tmp_path)
    ref = ws.save_files(wid, [("u.data", b"1\t2\t3\t4\n"), ("../../evil name.csv", b"a,b\n1,2\n")], tmp_path)
    assert len(ref["names"]) == 2 and all("/" not in n and not n.startswith(".") for n in ref["names"])
    ws.save(wid, {"source": "u.data", "tasks": [{"name": "click"}]}, tmp_path)
    assert ws.exists(wid, tmp_path)
    doc = ws.load(wid, tmp_path)
    assert doc["tasks"] == [{"name": "click"}] and doc["format"] == ws.FORMAT
    files = dict(ws.load_files(wid, tmp_path, ref=ref))
    assert dict(ws.load_files(wid, tmp_path)) == files            # the newest upload
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


def test_two_tabs_uploads_never_mix(tmp_path):
    """Each upload has a folder of its own: a second tab's upload leaves the first tab's files readable."""
    wid = ws.new_workspace_id()
    a = ws.save_files(wid, [("a.csv", b"user,item\n1,2\n")], tmp_path)
    b = ws.save_files(wid, [("b.csv", b"user,item\n3,4\n")], tmp_path)
    assert a["dir"] != b["dir"]
    assert ws.load_files(wid, tmp_path, ref=a) == [("a.csv", b"user,item\n1,2\n")]
    assert ws.load_files(wid, tmp_path, ref=b) == [("b.csv", b"user,item\n3,4\n")]
    assert ws.load_files(wid, tmp_path, ref={"dir": "../" + a["dir"]}) == []


def test_a_save_over_a_newer_version_is_refused_and_names_it(tmp_path):
    """Two tabs load version 1; the first saves (version 2); the second's save is refused, the file
    keeps the first tab's values, until the second chooses to overwrite (expect=None)."""
    wid = ws.new_workspace_id()
    v1 = ws.save(wid, {"train": {"epochs": 10}}, tmp_path, expect=0)
    assert v1 == 1 and ws.saved_version(wid, tmp_path)[0] == 1
    assert ws.save(wid, {"train": {"epochs": 14}}, tmp_path, expect=v1) == 2
    with pytest.raises(ws.WorkspaceConflict) as err:
        ws.save(wid, {"train": {"epochs": 77}}, tmp_path, expect=v1)
    assert err.value.version == 2 and err.value.saved_at is not None
    assert ws.load(wid, tmp_path)["train"]["epochs"] == 14
    assert ws.save(wid, {"train": {"epochs": 77}}, tmp_path, expect=None) == 3
    assert ws.load(wid, tmp_path)["train"]["epochs"] == 77


def test_a_copy_has_the_files_and_the_prepared_dataset_under_a_new_id(tmp_path):
    from mtlrec.app.workflow import sample_workspace
    from mtlrec.prep import prepare
    wid = ws.new_workspace_id()
    ref = ws.save_files(wid, [("x.csv", b"a,b\n1,2\n")], tmp_path)
    w = sample_workspace()
    ds = prepare(w["raw"], w["spec"], w["prep"])
    ws.save_dataset(wid, ds, "00112233aabbccdd", tmp_path)
    assert ws.load_dataset(wid, "0011223344556677", tmp_path) is None       # another key: none kept
    assert ws.load_dataset(wid, "../../x" * 2, tmp_path) is None
    other = ws.copy(wid, tmp_path)
    assert other != wid and ws.valid_id(other)
    assert ws.load_files(other, tmp_path, ref=ref) == [("x.csv", b"a,b\n1,2\n")]
    back = ws.load_dataset(other, "00112233aabbccdd", tmp_path)
    assert [lab.name for lab in back.labels] == [lab.name for lab in ds.labels]
    assert {s: back.n_rows(s) for s in back.splits} == {s: ds.n_rows(s) for s in ds.splits}
    ws.save_dataset(wid, ds, "ffeeddccbbaa9988", tmp_path)                   # a new key replaces the old
    assert ws.load_dataset(wid, "00112233aabbccdd", tmp_path) is None
    assert ws.load_dataset(wid, "ffeeddccbbaa9988", tmp_path) is not None
