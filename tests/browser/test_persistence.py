"""What a visitor built outlives the tab and the server, in real Chromium:
1. a reload (F5) and a server restart find the uploaded data, the prepared dataset with its derived
   label, the tasks and the settings exactly as they were; two tabs on one workspace are told of
   each other's saves and lose nothing;
2. a run trained before the server started (by another process: the sample data, as the Train
   page trains it) is in the Runs page of a new server process, and Results, Recommendations and
   Explain work on it. (Training in the browser is the main journey's, test_browser_app.py.)"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import appdriver as drv

pytestmark = pytest.mark.browser


@pytest.fixture
def server_factory(tmp_path):
    procs = []
    runs = tmp_path / "runs"

    def start(env: dict | None = None):
        port = drv.free_port()
        proc = drv.start_server(port, runs, tmp_path / f"server{len(procs)}.log", env=env)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        drv.wait_healthy(url, proc)
        drv.SERVED[url] = runs                  # wait_saved finds its workspaces
        return url, proc

    yield start
    for p in procs:
        if p.poll() is None:
            drv.stop_server(p)
    for url in [u for u, r in drv.SERVED.items() if r == runs]:
        drv.SERVED.pop(url, None)


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
    url2, _ = server_factory({"MTLREC_LOCAL_RUNS": "read"})    # a new server over that runs folder, showing
                                                                # its operator's command-line run
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


# ---------------------------------------------------------------------------- prepared dataset (issue 21 §2)
LIKE = '[{"name": "like", "source": "rating", "op": ">=", "threshold": 4}]'
PREPARED = re.compile(r"Prepared: train [\d,]+, valid [\d,]+, test [\d,]+ rows.*")


def _prepared_text(page) -> str:
    drv.go(page, "Data")
    done = page.get_by_text(PREPARED)
    done.wait_for()
    return done.inner_text()


def _tasks_page(page, full: bool = True) -> list[str]:
    """On Tasks & model: the task names, after checking that every task has its label (``full``: and
    that the disabled Add task says why)."""
    drv.go(page, "Tasks & model")
    if full:
        page.get_by_text("Add task is off: every label already has a task").wait_for()
    for bad in ("not in the data", "no label of this type", "needs a binary label"):
        expect(page.get_by_text(bad)).to_have_count(0)
    return [box.input_value() for box in page.get_by_label("Task name", exact=True).all()]


def _same_settings(page) -> None:
    expect(page.get_by_label("Epochs", exact=True)).to_have_value("3")
    expect(page.get_by_label("Batch size", exact=True)).to_have_value("2048")
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("450 interactions · prepared")


def test_reload_and_restart_bring_back_the_prepared_dataset_its_derived_label_and_tasks(
        server_factory, browser, tmp_path, artifacts):
    """MovieLens 100K files uploaded, like = rating >= 4 derived on Data, prepared, a task on every label:
    F5 and a server restart give the same prepared dataset (splits, rows, labels) and the same tasks."""
    from _fixtures_ml100k import write_ml100k_split
    write_ml100k_split(tmp_path / "ml")
    url, proc = server_factory()
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(60_000)
    try:
        page = ctx.new_page()
        uploader = drv.open_uploader(page, url)
        uploader.set_input_files([str(p) for p in sorted((tmp_path / "ml").iterdir())])
        page.locator("h3", has_text="Preview").wait_for()
        drv.wait_idle(page)
        page.get_by_label("derived labels (JSON)", exact=True).fill(LIKE)
        page.get_by_role("button", name="Prepare").click()
        prepared = page.get_by_text(PREPARED)
        prepared.wait_for()
        drv.wait_idle(page)
        before = prepared.inner_text()
        assert "like" in before.split("labels")[-1], before
        drv.go(page, "Tasks & model")
        add = page.get_by_role("button", name="Add task")
        names = page.get_by_label("Task name", exact=True)
        for _ in range(8):                                         # tasks up to one on "like"
            expect(add).to_be_enabled()
            n = names.count()
            add.click()
            expect(names).to_have_count(n + 1)
            drv.wait_idle(page)
            if "like" in [box.input_value() for box in names.all()]:
                break
        tasks = _tasks_page(page, full=False)
        assert "like" in tasks, tasks
        drv.set_number(page, "Epochs", "3")
        drv.set_number(page, "Batch size", "2048")
        doc = drv.wait_saved(page, lambda d: "like" in [t["name"] for t in d["tasks"]]
                             and d["train"].get("epochs") == 3 and d["train"].get("batch_size") == 2048)
        assert [t["name"] for t in doc["tasks"]] == tasks
        wid = re.search(r"[?&]ws=([0-9a-f]{32})", page.url).group(1)

        page.reload()                                              # F5
        drv.wait_title(page, "Tasks & model")
        assert _prepared_text(page) == before
        assert _tasks_page(page) == tasks
        _same_settings(page)
        drv.assert_no_exception(page, "after the reload")

        drv.stop_server(proc)                                      # a server restart
        url2, _ = server_factory()
        page.goto(f"{url2}/data?ws={wid}")                         # the bookmark, on the new server
        drv.wait_title(page, "Data")
        assert _prepared_text(page) == before
        assert _tasks_page(page) == tasks
        _same_settings(page)
        drv.assert_no_exception(page, "after the restart")
        drv.shot(page, artifacts / "restore-prepared-after-restart.png")
    finally:
        ctx.close()


# ---------------------------------------------------------------------------- two tabs (issue 21 §19)
def test_two_tabs_on_one_workspace_are_told_and_lose_nothing(app_url, context, artifacts):
    first = context.new_page()
    drv.open_app(first, app_url)
    first.get_by_role("button", name="Load sample & configure").click()
    drv.wait_title(first, "Train")
    drv.go(first, "Tasks & model")
    second = context.new_page()                                    # the same link in a second tab
    second.goto(first.url)
    drv.wait_title(second, "Tasks & model")
    drv.set_number(second, "Epochs", "14")
    drv.wait_saved(second, lambda d: d["train"].get("epochs") == 14)
    drv.set_number(first, "Epochs", "77")
    banner = first.get_by_text("This workspace was changed in another tab or window")
    banner.wait_for()
    drv.wait_idle(first)
    assert drv.wait_saved(first, lambda d: True)["train"]["epochs"] == 14     # not overwritten
    expect(first.get_by_text("Another tab changed this workspace: choose at the top")).to_be_visible()  # toast
    banner.scroll_into_view_if_needed()
    drv.shot(first, artifacts / "two-tabs-conflict.png")
    first.get_by_role("button", name="Load the newer version").click()
    # the rerun that loads it draws the new Epochs box beside the old one until it ends (and "idle" may be
    # read before that rerun starts): wait for the one box, with the other tab's value
    first.wait_for_function("""() => {
        const boxes = [...document.querySelectorAll('input[aria-label="Epochs"]')];
        return boxes.length === 1 && boxes[0].value === "14"; }""")
    drv.wait_idle(first)
    expect(banner).to_have_count(0)
    expect(first.get_by_label("Epochs", exact=True)).to_have_value("14")
    drv.assert_no_exception(first, "after loading the newer version")
