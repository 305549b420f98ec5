"""What a visitor built outlives the tab and the server, in real Chromium:
1. a reload (F5) mid-configuration finds the dataset and the configuration still there;
2. a run trained before the server started (by another process: the sample data, as the Train
   page trains it) is in the Runs page of a new server process, and Results, Recommendations and
   Explain work on it. (Training in the browser is the main journey's, test_browser_app.py.)"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import appdriver as drv

pytestmark = pytest.mark.browser


def _set_number(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    drv.wait_idle(page)


def test_reload_keeps_dataset_and_configuration(app_url, context):
    page = context.new_page()
    drv.open_app(page, app_url)
    page.get_by_role("button", name="Load sample & configure").click()
    drv.wait_title(page, "Train")
    drv.go(page, "Tasks & model")
    _set_number(page, "Epochs", "3")
    _set_number(page, "Batch size", "2048")
    assert re.search(r"[?&]ws=[0-9a-f]{32}", page.url), page.url
    drv.wait_saved(page, lambda doc: doc["train"].get("epochs") == 3 and doc["train"].get("batch_size") == 2048)
    page.reload()
    drv.wait_title(page, "Tasks & model")
    expect(page.get_by_label("Epochs", exact=True)).to_have_value("3")
    expect(page.get_by_label("Batch size", exact=True)).to_have_value("2048")
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("60,000 interactions")
    drv.assert_no_exception(page, "after the reload")


@pytest.fixture
def server_factory(tmp_path):
    procs = []
    runs = tmp_path / "runs"

    def start():
        port = drv.free_port()
        proc = drv.start_server(port, runs, tmp_path / f"server{len(procs)}.log")
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        drv.wait_healthy(url, proc)
        return url, proc

    yield start
    for p in procs:
        if p.poll() is None:
            drv.stop_server(p)


def test_a_run_survives_a_server_restart(server_factory, browser, artifacts, tmp_path):
    import json
    import subprocess
    import sys
    cfg = json.loads((drv.ROOT / "sample_data" / "config_mmoe.json").read_text())
    cfg["data"]["paths"] = [str(drv.ROOT / "sample_data" / p) for p in cfg["data"]["paths"]]
    cfg["train"] = {"epochs": 1, "batch_size": 4096, "device": "cpu", "ranking_k": 0}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    r = subprocess.run([sys.executable, "-m", "mtlrec", "train", "--config", str(tmp_path / "config.json"),
                        "--out", str(tmp_path / "runs" / "sample-mmoe"), "--quiet"], cwd=drv.ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    url2, _ = server_factory()                 # a new server process over that runs folder
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(60_000)
    try:
        page = ctx.new_page()
        drv.open_app(page, url2)               # a new visitor: nothing trained in this session
        drv.go(page, "Runs")
        drv.wait_idle(page)
        picker = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Select runs")
        picker.locator("input").click()
        page.get_by_role("option").filter(has_text="mmoe").first.click()
        page.keyboard.press("Escape")
        drv.wait_idle(page)
        page.get_by_role("button", name="Open as the current run").click()
        drv.wait_title(page, "Results")
        page.get_by_text("Test metrics per task").wait_for()
        drv.assert_no_exception(page, "on Results of a run from before the restart")
        drv.go(page, "Recommendations")
        page.get_by_text(re.compile(r"Top 10 for user")).wait_for()
        drv.wait_idle(page)
        drv.assert_no_exception(page, "on Recommendations")
        page.get_by_role("button", name="Explain").first.click()
        drv.wait_title(page, "Explain a recommendation")
        page.get_by_text("Why user").first.wait_for()
        drv.assert_no_exception(page, "on Explain")
        drv.go(page, "Runs")
        drv.shot(page, artifacts / "runs-after-restart.png")
    finally:
        ctx.close()
