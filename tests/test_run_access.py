"""Run ownership (issue 27, item 1): a run belongs to the workspace that trained or imported it; another
workspace can neither list, open nor change it, whatever name it guesses; local runs (no owner) only
under MTLREC_LOCAL_RUNS; sharing is an explicit, revocable link (`mtlrec.runs.access`)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtlrec.runs import access
from mtlrec.runs.access import RunAccessError

A, B, C = "a" * 32, "b" * 32, "c" * 32          # three workspace ids


def _folder(root: Path, name: str, owner: str | None = None) -> Path:
    """A run folder as the listing sees it (config.json, status.json); owned by ``owner`` when given."""
    d = root / name
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"name": name}))
    (d / "status.json").write_text(json.dumps({"status": "finished"}))
    if owner:
        access.record_owner(d, owner)
    return d


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.delenv("MTLREC_LOCAL_RUNS", raising=False)
    r = tmp_path / "runs"
    _folder(r, "20260101-000000-a-run", A)
    _folder(r, "20260101-000001-b-run", B)
    _folder(r, "20260101-000002-cli-run")
    return r


def test_a_workspace_sees_only_its_own_runs(root):
    assert [r["run"] for r in access.visible_run_rows(root, A)] == ["20260101-000000-a-run"]
    assert [r["run"] for r in access.visible_run_rows(root, B)] == ["20260101-000001-b-run"]
    assert access.visible_run_rows(root, C) == []
    assert access.visible_run_rows(root, None) == []
    row = access.visible_run_rows(root, A)[0]
    assert (row["access"], row["manage"]) == ("yours", True)


def test_guessing_a_name_tells_nothing_and_opens_nothing(root):
    """Another's run and a folder that does not exist get the same refusal, for reading and for changes."""
    other, missing = root / "20260101-000000-a-run", root / "20260101-000099-nothing"
    msgs = []
    for d in (other, missing, root / ".." / "runs" / other.name):
        for manage in (False, True):
            with pytest.raises(RunAccessError) as e:
                access.check_access(d, B, manage=manage)
            msgs.append(e.value.what.replace(d.name, "NAME"))
    assert len(set(msgs)) == 1 and "is not one of your runs" in msgs[0]
    assert access.check_access(other, A, manage=True) == "yours"


def test_the_run_folder_never_holds_the_workspace_id(root):
    text = (root / "20260101-000000-a-run" / access.ACCESS_FILE).read_text()
    assert A not in text and access.owner_key(A) in text


def test_local_runs_are_shown_only_when_the_operator_says_so(root, monkeypatch):
    cli = root / "20260101-000002-cli-run"
    assert access.level(cli, A) is None                         # default: nobody sees them
    monkeypatch.setenv("MTLREC_LOCAL_RUNS", "read")
    assert access.level(cli, A) == "local" and access.level(cli, None) == "local"
    with pytest.raises(RunAccessError, match="read-only"):
        access.check_access(cli, A, manage=True)
    assert sorted(r["access"] for r in access.visible_run_rows(root, A)) == ["local", "yours"]
    monkeypatch.setenv("MTLREC_LOCAL_RUNS", "manage")
    assert access.check_access(cli, A, manage=True) == "local"
    assert access.level(root / "20260101-000001-b-run", A) is None  # another's run stays theirs
    assert access.level(root / "no-such-folder", A) is None
    monkeypatch.setenv("MTLREC_LOCAL_RUNS", "yes please")           # not a mode: off
    assert access.level(cli, A) is None


def test_a_damaged_access_file_opens_to_nobody(root, monkeypatch):
    d = root / "20260101-000000-a-run"
    (d / access.ACCESS_FILE).write_text("{ not json")
    monkeypatch.setenv("MTLREC_LOCAL_RUNS", "manage")
    assert access.level(d, A) is None and access.level(d, B) is None


def test_a_share_link_gives_read_only_access_until_it_is_revoked(root):
    d = root / "20260101-000000-a-run"
    with pytest.raises(RunAccessError):
        access.create_share(d, B)                                  # only the owner shares
    token = access.create_share(d, A)
    assert access.create_share(d, A) == token and access.valid_token(token)
    assert access.accept_share("x" * 32, B, root) is None         # a guessed token opens nothing
    assert access.accept_share("../" + token, B, root) is None
    assert access.accept_share(token, B, root) == d
    assert access.level(d, B) == "shared" and access.level(d, C) is None
    with pytest.raises(RunAccessError, match="shared with you read-only"):
        access.check_access(d, B, manage=True)
    with pytest.raises(RunAccessError):
        access.revoke_share(d, B)
    access.accept_share(token, A, root)                            # the owner opening the link stays the owner
    assert access.level(d, A) == "yours"
    access.revoke_share(d, A)
    assert access.level(d, B) is None and access.share_token(d) is None
    assert access.accept_share(token, C, root) is None


def test_an_import_belongs_to_the_importer_and_an_export_carries_no_owner(tmp_path, monkeypatch):
    """The zip of an owned run has no access file; imported in the app it is the importer's; imported
    from the command line (no owner) it is a local run."""
    import io
    import zipfile

    from _fixtures_train import make_dataset, tiny_run_folder
    from mtlrec.runs.archive import export_zip, import_zip
    monkeypatch.delenv("MTLREC_LOCAL_RUNS", raising=False)
    src = tiny_run_folder(tmp_path / "src", make_dataset(n_rows=600))
    access.record_owner(src, A)
    data = export_zip(src)
    assert access.ACCESS_FILE not in zipfile.ZipFile(io.BytesIO(data)).namelist()
    mine = import_zip(data, tmp_path / "runs", owner=B)
    assert access.level(mine, B) == "yours" and access.level(mine, A) is None
    local = import_zip(data, tmp_path / "runs")
    assert access.level(local, A) is None and access.level(local, B) is None


def test_a_workspace_from_before_owners_claims_what_it_trained_and_nothing_owned(root):
    cli, b_run = root / "20260101-000002-cli-run", root / "20260101-000001-b-run"
    assert access.claim(cli, A) and access.level(cli, A) == "yours"
    assert access.claim(cli, C) and access.level(cli, C) == "yours"   # a copy of that old workspace too
    assert not access.claim(b_run, A) and access.level(b_run, A) is None
    assert not access.claim(root / "no-such-run", A)


def test_a_workspace_copy_keeps_the_runs_of_the_original(root):
    d = root / "20260101-000000-a-run"
    access.copy_access(d, A, C)
    assert access.level(d, C) == "yours"
    access.copy_access(root / "20260101-000001-b-run", A, C)        # A had nothing there: C gets nothing
    assert access.level(root / "20260101-000001-b-run", C) is None
