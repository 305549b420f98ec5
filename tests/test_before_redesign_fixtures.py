"""A run folder, a run zip and a workspace written before the redesign (issue 23) open with today's code
and give the same recommendations (tests/fixtures/before_redesign/README.md says how they were made).

Through the command line (`python -m mtlrec ...`), whose interface the redesign keeps: scores are compared
to 1e-4 and the top 10 as a set up to ties closer than that (BLAS may differ in the last bits)."""
from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from mtlrec.__main__ import main

FIX = Path(__file__).parent / "fixtures" / "before_redesign"
EXPECTED = json.loads((FIX / "expected_recommendations.json").read_text())
WS_ID = "0123456789abcdef0123456789abcdef"


def _cli(*argv: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(list(argv)) in (0, None)
    return out.getvalue()


def _same_recommendations(run_dir: Path) -> None:
    for user, want in EXPECTED.items():
        got = json.loads(_cli("recommend", "--run", str(run_dir), "--user", user, "-k", "10", "--json"))
        got_items = {r["item"]: r for r in got["items"]}
        want_items = {r["item"]: r for r in want["items"]}
        tenth = min(r["score"] for r in want["items"])
        for item, r in got_items.items():          # a newcomer in the top 10 only through a tie
            if item not in want_items:
                assert abs(r["score"] - tenth) < 1e-4, (user, item, r["score"], tenth)
        for item in set(got_items) & set(want_items):
            assert got_items[item]["score"] == pytest.approx(want_items[item]["score"], abs=1e-4)
            for task in ("click", "like", "rating"):
                assert got_items[item]["tasks"][task] == pytest.approx(want_items[item]["tasks"][task], abs=1e-4)
            assert got_items[item]["title"] == want_items[item]["title"]
        assert len(set(got_items) & set(want_items)) >= 8, user


def test_a_run_folder_written_before_the_redesign_gives_the_same_recommendations(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIX / "run", run)
    _same_recommendations(run)


def test_a_run_zip_written_before_the_redesign_imports_and_gives_the_same_recommendations(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    _cli("runs", "import", str(FIX / "run.zip"), "--root", str(root))
    (imported,) = [p for p in root.iterdir() if p.is_dir()]
    _same_recommendations(imported)


def test_a_workspace_written_before_the_redesign_restores_its_tasks_and_settings(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    root = tmp_path / "workspaces"
    shutil.copytree(FIX / "workspaces", root)
    monkeypatch.setenv("MTLREC_WORKSPACES", str(root))
    saved = json.loads((root / WS_ID / "workspace.json").read_text())
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.query_params["ws"] = WS_ID
    at.run()
    at.switch_page("pages/model.py").run()
    assert not at.exception
    assert not [e.value for e in at.error if "went wrong" in str(e.value)]
    state = at.session_state["mtlrec_state"]
    assert state.ws_id == WS_ID
    assert [(t["name"], t.get("given")) for t in state.tasks] == [(t["name"], t.get("given")) for t in saved["tasks"]]
    assert (state.train["epochs"], state.train["batch_size"]) == (7, 2048)
    assert state.model.get("arch") == "esmm"
    assert {n.label: n.value for n in at.number_input if n.label in ("Epochs", "Batch size")} == \
        {"Epochs": 7, "Batch size": 2048}
