"""`mtlrec.app.public`: messages name files relative to the runs / workspace folder, never by the
server's absolute paths (issue 21, item 20); other text is left as it is."""
from __future__ import annotations

import pytest

from mtlrec.app.public import public_message, public_path


@pytest.fixture
def roots(tmp_path, monkeypatch):
    runs, ws = tmp_path / "my runs", tmp_path / "spaces"
    monkeypatch.setenv("MTLREC_RUNS_DIR", str(runs))
    monkeypatch.setenv("MTLREC_WORKSPACES", str(ws))
    monkeypatch.chdir(tmp_path)
    return runs, ws, tmp_path


def test_paths_become_names_relative_to_the_runs_and_workspace_folders(roots):
    runs, ws, cwd = roots
    secret = "0123456789abcdef" * 2
    assert public_message(f"{runs}/20240101-mmoe/metrics.json is missing.") == "my runs/20240101-mmoe/metrics.json is missing."
    assert public_message(f"see {ws}/{secret}/data/u.csv, then") == "see workspace/data/u.csv, then"   # no workspace id
    assert public_message(f"{cwd}/sample_data/users.csv: bad") == "sample_data/users.csv: bad"
    assert public_message("No such file or directory: '/etc/mtlrec/x.json'") == "No such file or directory: 'x.json'"
    assert public_message("(/opt/data/f.csv)") == "(f.csv)"
    assert public_path(runs / "a" / "model.pt") == "my runs/a/model.pt" and public_path("runs/a") == "runs/a"


def test_other_text_is_left_as_it_is(roots):
    for text in ("ratio 3/4 and 2024/01/02", "https://example.com/a/b", "./rel/x and runs/x/y",
                 "range ±3.4e+38", "AC/DC, and/or", "", "a / b"):
        assert public_message(text) == text
    assert public_message(None) == ""
