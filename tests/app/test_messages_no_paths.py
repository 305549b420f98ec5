"""App messages never show the server's absolute paths (issue 21, item 20): a damaged run opened
from Runs, its downloads, a failed run on Train -- the errors name files relative to the runs
folder (``runs/<run>/model.pt``), never where the server keeps them."""
from __future__ import annotations

import json
import re

from streamlit.testing.v1 import AppTest

from test_pages import APP, no_exception, plain

ABSOLUTE = re.compile(r"(?<![\w:/.~\\-])/(?:tmp|work|home|srv|root|var|opt|usr|etc|mnt)/")


def _shown(at: AppTest) -> list[str]:
    """Every text the visitor reads: markdown, captions, boxes, and the cells of tables."""
    parts = [e.value for kind in ("markdown", "caption", "title", "error", "warning", "info", "success")
             for e in getattr(at, kind)]
    for d in at.dataframe:
        parts += [str(v) for v in d.value.astype(str).to_numpy().ravel()]
    return [plain(p) for p in parts]


def _assert_no_server_paths(at: AppTest, root, where: str) -> None:
    for text in _shown(at):
        assert str(root) not in text and not ABSOLUTE.search(text), f"{where}: a server path is shown: {text!r}"


def _damaged_run(root, name: str) -> None:
    """A finished run whose model.pt is not a weights file and whose metrics.json is gone."""
    d = root / name
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"name": name, "tasks": [{"name": "click", "type": "binary",
                                                                        "label": "click"}]}))
    (d / "model.json").write_text(json.dumps({"arch": "mmoe", "hparams": {}, "tasks": []}))
    (d / "status.json").write_text(json.dumps({"status": "finished", "error": None}))
    (d / "model.pt").write_bytes(b"not a weights file")


def test_a_damaged_run_opened_from_runs_names_its_files_without_server_paths(runs_dir, local_runs):
    _damaged_run(runs_dir, "20260103-000000-damaged")
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/runs.py").run()
    no_exception(at, "runs page")
    _assert_no_server_paths(at, runs_dir, "runs page")
    label = next(o for o in at.multiselect(key="runs_selected").options if "damaged" in o)
    at.multiselect(key="runs_selected").set_value([label]).run()
    no_exception(at, "damaged run selected")
    assert at.error                                   # its downloads cannot be prepared: said
    _assert_no_server_paths(at, runs_dir, "damaged run selected")
    shown = "\n".join(_shown(at))
    assert "metrics.json" in shown                    # the file is still named
    if not at.button(key="runs_open").disabled:
        at.button(key="runs_open").click().run()
        no_exception(at, "open")
        _assert_no_server_paths(at, runs_dir, "the damaged run opened")


def test_a_failed_run_on_train_says_where_without_server_paths(runs_dir, tmp_path):
    from _fixtures_train import TASKS
    from mtlrec.config import RunConfig
    from mtlrec.training.jobs import TrainingJob
    from pages.ui.state import AppState
    run_dir = runs_dir / "20260103-000001-failed"
    job = TrainingJob(RunConfig.from_dict({"tasks": TASKS[:2], "train": {"epochs": 2, "device": "cpu"}}), run_dir)
    job._status, job._error = "failed", (f"the training process ended unexpectedly (exit code -9); the best model "
                                         f"so far is in {run_dir.resolve()} and it can be resumed; see "
                                         f"{tmp_path / 'elsewhere' / 'log.txt'}")
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["mtlrec_state"] = AppState(jobs=[job])
    at.switch_page("pages/train.py").run()
    no_exception(at, "train page")
    shown = "\n".join(_shown(at))
    assert "ended unexpectedly" in shown and f"{runs_dir.name}/{run_dir.name}" in shown    # relative to the runs folder
    _assert_no_server_paths(at, runs_dir, "train page")
    _assert_no_server_paths(at, tmp_path, "train page")
