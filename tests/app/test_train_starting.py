"""Train page while the run's worker process starts (issue 25): "Starting the training process … N s",
never a "0 %" that does not move. The worker's test hook holds it before its first message, so the
page is looked at in that state for as long as the test needs."""
from __future__ import annotations

import re
import time

from streamlit.testing.v1 import AppTest
from test_pages import APP, no_exception
from test_train_processes import _start_page

from pages.ui.state import TERMINAL


def _progress_text(at: AppTest) -> str:
    return at.get("progress")[0].proto.text


def test_the_page_says_the_training_process_is_starting_with_its_seconds(monkeypatch, runs_dir, tmp_path):
    hold = tmp_path / "hold"
    hold.mkdir()
    monkeypatch.setenv("MTLREC_TRAIN_ISOLATION", "process")
    monkeypatch.setenv("MTLREC_SPARE_WORKER", "0")          # a fresh worker: the slow start this is about
    monkeypatch.setenv("MTLREC_TEST_HOLD_DIR", str(hold))
    at = AppTest.from_file(APP, default_timeout=120).run()
    st_ = _start_page(at)
    at.button(key="train_start").click().run()
    no_exception(at, "starting a run")
    job = st_.jobs[-1]
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not (hold / "start.reached").exists() and not job.done:
            time.sleep(0.1)
        assert (hold / "start.reached").exists(), job.snapshot()["error"]
        at.run()
        no_exception(at, "while the worker starts")
        text = _progress_text(at)
        assert re.search(r"Starting the training process … \d+ s$", text), text
        assert "%" not in text
        (hold / "start").touch()                 # the worker is up: the page shows its progress
        (hold / "batch").touch()
        while time.time() < deadline and job.snapshot(include_batches=False)["status"] not in TERMINAL:
            time.sleep(0.2)
        at.run()
        snap = job.snapshot()
        assert snap["status"] == "finished", snap["error"]
        text = _progress_text(at)
        assert "Starting" not in text and "100%" in text, text
    finally:
        job.cancel()
        job.join(60)

