"""The Lab page in the browser: the prepared sweep runs at the benchmark's size (bench/lab.py: n = 3000,
3 seeds, 12 epochs), its chart says so, its verdict agrees with what it draws, and F5 brings it back."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

import appdriver as drv

pytestmark = pytest.mark.browser

VERDICT = "The paper's ordering holds on this sweep"


def test_lab_sweep_in_the_browser(app_url, context, artifacts):
    page = context.new_page()
    page.goto(app_url)
    drv.wait_idle(page)
    drv.go(page, "Lab")
    drv.assert_no_exception(page, "on the Lab page")
    page.get_by_role("button", name="Prepared sweep").click()
    # the verdict appears once all 27 runs (3 p x 3 seeds x 3 architectures) have finished
    expect(page.get_by_text(VERDICT)).to_be_visible(timeout=300_000)
    drv.wait_idle(page)
    drv.assert_no_exception(page, "after the sweep")
    expect(page.get_by_text("Sweep — finished")).to_be_visible()
    size = "3,000 rows per p and seed (2,100 to train on), 3 seeds, 12 epochs per run"
    expect(page.locator('[data-testid="stPlotlyChart"]').filter(has_text=size)).to_have_count(1)
    expect(page.get_by_role("button", name="Prepared sweep")).to_be_enabled()
    drv.shot(page, artifacts / "lab_sweep.png")
    page.reload()                                    # F5: the sweep is still there, not run again
    drv.wait_title(page, "Lab")
    expect(page.get_by_text(VERDICT)).to_be_visible()
    expect(page.get_by_text("Sweep — finished")).to_be_visible()
    expect(page.get_by_text("Something went wrong")).to_have_count(0)
    drv.assert_no_exception(page, "after the reload")
