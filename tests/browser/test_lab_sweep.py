"""The Lab page in the browser: a one-seed prepared sweep runs to the end and draws metric vs p."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

import appdriver as drv

pytestmark = pytest.mark.browser


def test_lab_sweep_in_the_browser(app_url, context, artifacts):
    page = context.new_page()
    page.goto(app_url)
    drv.wait_idle(page)
    drv.go(page, "Lab")
    drv.assert_no_exception(page, "on the Lab page")
    seeds = page.get_by_label("Sweep seeds")
    seeds.fill("1")
    seeds.press("Enter")
    drv.wait_idle(page)
    page.get_by_role("button", name="Prepared sweep").click()
    # the verdict appears once all 9 runs (3 p x 3 architectures) have finished
    expect(page.get_by_text("The paper's ordering")).to_be_visible(timeout=90_000)
    drv.wait_idle(page)
    drv.assert_no_exception(page, "after the sweep")
    expect(page.get_by_text("Sweep — finished")).to_be_visible()
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 1
    expect(page.get_by_role("button", name="Prepared sweep")).to_be_enabled()
    drv.shot(page, artifacts / "lab_sweep.png")
