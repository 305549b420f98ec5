"""The what-if journey in real headless Chromium: train the sample for one epoch, open a user's
Recommendations, click a row's own "Explain" button (not the sidebar), change the user's features in
the Explain page's "What if…" form -- the hypothetical list re-ranks, marked "not saved"."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import appdriver as drv
from test_browser_app import _configure_tiny, _start_training

pytestmark = pytest.mark.browser

LONG = 240_000


def _what_if(page, age: str, occupation: str) -> tuple[str, str]:
    """Fill the what-if form, submit it; (the rank line, the top list's text)."""
    section = page.locator('[data-testid="stForm"]')
    box = section.get_by_label("age", exact=True)
    box.fill(age)
    sel = section.locator('[data-testid="stSelectbox"]').filter(has_text="occupation")
    sel.click()
    page.keyboard.type(occupation)                     # the list is virtual: search, then pick
    expect(page.get_by_role("option", name=occupation, exact=True)).to_be_visible()
    page.keyboard.press("Enter")                       # the filtered list's first (only) match
    expect(sel.get_by_role("combobox")).to_have_value(occupation)
    section.get_by_role("button", name="Score the hypothetical user").click()
    drv.wait_idle(page, LONG)
    # this what-if's own result: the banner names the values just given (a second what-if finds the first
    # one's banner already on the page, and reading the tables then raced the rerun)
    page.locator('[data-testid="stAlert"]').filter(has_text="Hypothetical — not saved") \
        .filter(has_text=f"age = {age}").filter(has_text=f"occupation = {occupation}").wait_for(timeout=LONG)
    drv.wait_idle(page, LONG)
    drv.assert_no_exception(page, "after the what-if")
    rank = page.get_by_text(re.compile(r"Item .+: rank .+ → ")).first.inner_text()
    tables = page.locator('[data-testid="stTable"]')
    expect(tables).to_have_count(2)
    return rank, tables.nth(1).inner_text()


def test_recommendations_explain_what_if_reranks(app_url, context, artifacts):
    page = context.new_page()
    drv.open_app(page, app_url)
    page.get_by_role("button", name="Load sample & configure").click()
    drv.wait_title(page, "Train")
    _configure_tiny(page, epochs=1)
    _start_training(page)
    page.get_by_text(re.compile(r"Finished\. See")).wait_for(timeout=300_000)

    drv.go(page, "Recommendations")
    page.get_by_text(re.compile(r"Top 10 for user")).wait_for()
    expect(page.get_by_role("button", name="Explain")).to_have_count(10)
    page.get_by_role("button", name="Explain").first.click()          # the row's own button
    drv.wait_title(page, "Explain a recommendation", LONG)
    page.get_by_role("heading", name="What if…").wait_for(timeout=LONG)
    drv.wait_idle(page, LONG)                          # the whole page drawn: no rerun under the form
    drv.assert_no_exception(page, "on Explain")

    rank_a, top_a = _what_if(page, "18", "writer")
    assert re.search(r"rank #\d+ → #\d+", rank_a), rank_a
    drv.shot(page, artifacts / "whatif-1.png")
    rank_b, top_b = _what_if(page, "80", "executive")
    drv.shot(page, artifacts / "whatif-2.png")
    assert (rank_a, top_a) != (rank_b, top_b), "the what-if list did not change with the user's features"
    assert "not saved" in page.locator('[data-testid="stMain"]').inner_text()
