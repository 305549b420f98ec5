"""The history-explanation journey in real headless Chromium: switch on the user's behaviour history on
Tasks & model, train the sample for one epoch, open a recommendation's Explain, read "Because of the
user's history", and remove one item from the history in the what-if -- rescored, marked "not saved"."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import appdriver as drv
from test_browser_app import _configure_tiny, _start_training

pytestmark = pytest.mark.browser

LONG = 240_000


def test_history_explanation_and_remove_from_history_what_if(app_url, context, artifacts):
    page = context.new_page()
    drv.open_app(page, app_url)
    page.get_by_role("button", name="Load sample & configure").click()
    drv.wait_title(page, "Train")
    _configure_tiny(page, epochs=1)
    page.get_by_text("Use the user's behaviour history").click()
    expect(page.get_by_role("spinbutton", name="History length")).to_be_visible()
    drv.wait_idle(page)
    drv.assert_no_exception(page, "history switched on")
    _start_training(page)
    page.get_by_text(re.compile(r"Finished\. See")).wait_for(timeout=300_000)

    drv.go(page, "Recommendations")
    page.get_by_text(re.compile(r"Top 10 for user")).wait_for()
    expect(page.get_by_text(re.compile(r"^because user \S+ rated ")).first).to_be_visible()   # the cards' reason
    page.get_by_role("button", name="Explain").first.click()
    drv.wait_title(page, "Explain a recommendation", LONG)
    page.get_by_role("heading", name="Because of the user's history").wait_for(timeout=LONG)
    drv.wait_idle(page, LONG)
    drv.assert_no_exception(page, "on Explain")
    main = page.locator('[data-testid="stMain"]')
    assert re.search(r"(Recommended mainly because|Nothing in) user \S+", main.inner_text())
    expect(page.get_by_text("not attributions", exact=False).first).to_be_visible()

    form = page.locator('[data-testid="stForm"]').filter(has_text="Remove from history")
    form.get_by_role("button", name="Score without it").click()
    drv.wait_idle(page, LONG)
    page.locator('[data-testid="stAlert"]').filter(has_text="Hypothetical — not saved") \
        .filter(has_text="history without").wait_for(timeout=LONG)
    drv.assert_no_exception(page, "after removing a history item")
    line = page.get_by_text(re.compile(r"Item .+: fused score [0-9.]+ → [0-9.]+ \([+-]")).first.inner_text()
    assert "rank" in line
    drv.shot(page, artifacts / "history-whatif.png")
