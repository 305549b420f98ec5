"""The dashboard in real headless Chromium (Debian's chromium, driven by Playwright).

1. The main journey: open the app, load the sample, configure two tasks, train two epochs, see
   the per-task curves, results and a user's recommendations; no Streamlit exception box on any
   page; a screenshot of each page in test-artifacts/.
2. Two browser contexts (two visitors): a run started in one is absent from the other.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import appdriver as drv

pytestmark = pytest.mark.browser


def _configure_tiny(page, epochs: int = 2) -> None:
    """On Tasks & model: keep click, like and their parent interact (the sample's chain), 2 epochs, large
    batches."""
    drv.go(page, "Tasks & model")
    removes = page.locator('[class*="st-key-task_del_"]')   # one remove button per task
    expect(removes).to_have_count(4)                        # click, like, rating (each given interact), interact
    removes.nth(2).get_by_role("button").first.click()      # drop the third task (rating)
    expect(removes).to_have_count(3)
    drv.wait_idle(page)
    drv.set_training(page, epochs=epochs, batch_size=4096)
    drv.assert_no_exception(page, "on Tasks & model")


def _start_training(page) -> None:
    drv.go(page, "Train")
    page.get_by_role("button", name="Start training").click()
    page.get_by_role("button", name="Cancel").and_(page.locator(":enabled")).wait_for(timeout=60_000)


@pytest.fixture(scope="module")
def session_a(browser):
    """Visitor A: one browser context for the journey; test 2 reuses its trained run."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(60_000)
    info = {"page": ctx.new_page(), "run_name": None}
    yield info
    ctx.close()


def _run_name(page) -> str:
    text = page.locator('[data-testid="stMain"]').inner_text()
    return re.search(r"(\d{8}-\d{6}-[\w-]+) — finished", text).group(1)


def test_main_journey(app_url, session_a, artifacts):
    page = session_a["page"]
    drv.open_app(page, app_url)
    drv.assert_no_exception(page, "on Home")
    drv.shot(page, artifacts / "01-home.png")

    # click 1: sample + ready configuration -> Train page
    page.get_by_role("button", name="Load sample & configure").click()
    drv.wait_title(page, "Train")
    page.get_by_role("button", name="Start training").wait_for()
    side = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "sample" in side.lower() and "60,000 interactions" in side

    drv.go(page, "Data")
    page.get_by_text("No problems found.").wait_for()
    page.locator('[data-testid="stPlotlyChart"]').nth(2).wait_for()
    drv.assert_no_exception(page, "on Data")
    drv.shot(page, artifacts / "02-data.png")

    _configure_tiny(page, epochs=2)
    assert page.locator('[data-testid="stGraphVizChart"]').count() >= 1   # architecture diagram
    drv.shot(page, artifacts / "03-model.png")

    # click 2: train; training goes on while the user looks at another page
    _start_training(page)
    drv.go(page, "Data")
    page.wait_for_timeout(2500)                  # several ticks of the Train page's live panel
    expect(page.locator("h1").first).to_have_text("Data")
    drv.go(page, "Train")
    page.get_by_text(re.compile(r"Finished\. See")).wait_for(timeout=300_000)
    drv.wait_idle(page)
    drv.assert_no_exception(page, "on Train")
    charts = page.locator('[data-testid="stPlotlyChart"]')
    expect(charts).to_have_count(2)                     # the live curves (a column per task), then the dynamics
    chart = charts.first
    # plotly draws its SVG (titles included) after the element appears: wait for it
    for title in ("click: loss", "like: loss", "click: valid auc", "like: valid auc"):
        expect(chart).to_contain_text(title)
    expect(chart).not_to_contain_text("rating: loss")
    expect(page.locator('[data-testid="stMain"]')).to_contain_text("epoch 2/2")
    expect(page.get_by_role("button", name="Start training")).to_be_enabled()
    expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
    session_a["run_name"] = _run_name(page)
    drv.shot(page, artifacts / "04-train.png")

    drv.go(page, "Results")
    page.get_by_text("Test metrics per task").wait_for()
    drv.wait_idle(page)
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 0      # chart sections open on a click
    page.get_by_text("ROC and precision-recall curves").first.click()
    page.locator('[data-testid="stPlotlyChart"]').nth(1).wait_for()          # ROC and PR
    expect(page.locator('[data-testid="stMain"]')).to_contain_text("Precision-recall")
    drv.assert_no_exception(page, "on Results")
    drv.shot(page, artifacts / "05-results.png")

    drv.go(page, "Recommendations")
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text="type to search")
    box.click()
    page.keyboard.type("42")
    page.get_by_role("option", name="42", exact=True).click()
    page.get_by_text("Top 10 for user 42").wait_for()
    page.get_by_text("History of user 42").wait_for()
    assert page.get_by_role("button", name="Explain").count() == 10
    drv.assert_no_exception(page, "on Recommendations")
    drv.shot(page, artifacts / "06-recommendations.png")

    drv.go(page, "Explain", title="Explain")
    drv.assert_no_exception(page, "on Explain")
    drv.shot(page, artifacts / "07-explain.png")


def test_two_sessions_do_not_share_runs(app_url, browser, session_a):
    pa = session_a["page"]
    if session_a["run_name"] is None:           # run alone (or the journey failed early): train in A now
        drv.open_app(pa, app_url)
        pa.get_by_role("button", name="Load sample & configure").click()
        drv.wait_title(pa, "Train")
        _configure_tiny(pa, epochs=1)
        _start_training(pa)
        pa.get_by_text(re.compile(r"Finished\. See")).wait_for(timeout=300_000)
        session_a["run_name"] = _run_name(pa)
    run_name = session_a["run_name"]
    b = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        pb = b.new_page()
        pb.set_default_timeout(60_000)
        drv.open_app(pb, app_url)
        drv.go(pb, "Train")
        pb.get_by_text("Load data first").wait_for()
        drv.go(pb, "Results")
        pb.get_by_text("No finished run in this session yet").wait_for()
        assert run_name not in pb.locator('[data-testid="stApp"]').inner_text()
        assert "Run: none yet" in pb.locator('[data-testid="stSidebar"]').inner_text()
        # B loads the sample too: still none of A's runs
        drv.go(pb, "Home", title="multi-task recommendations")
        pb.get_by_role("button", name="Load sample & configure").click()
        drv.wait_title(pb, "Train")
        pb.get_by_text("No run yet in this session").wait_for()
        assert run_name not in pb.locator('[data-testid="stApp"]').inner_text()
        drv.go(pb, "Recommendations")
        pb.get_by_text("No finished run in this session yet").wait_for()
        drv.assert_no_exception(pb, "in session B")
        # ... while A still has its run
        drv.go(pa, "Train")
        assert run_name in pa.locator('[data-testid="stMain"]').inner_text()
        drv.assert_no_exception(pa, "in session A")
    finally:
        b.close()
