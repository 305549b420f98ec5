"""Home in real Chromium: the pipeline diagram is drawn (a visible SVG with every box's text), the page
table names every page of the navigation, and nothing is fetched from another host (the favicon is
the app's own file, not a font CDN's)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import appdriver as drv

pytestmark = pytest.mark.browser


def test_home_draws_the_pipeline_lists_every_page_and_stays_on_this_machine(app_url, context):
    from mtlrec.figures.charts import FLOW_STEPS
    page = context.new_page()
    external = []
    page.on("request", lambda r: external.append(r.url)
            if re.match(r"https?://", r.url) and not r.url.startswith(app_url) else None)
    drv.open_app(page, app_url)
    drv.wait_idle(page)
    drv.assert_no_exception(page, "on Home")

    diagram = page.get_by_role("img", name="The mtlrec pipeline")
    diagram.wait_for()
    box = diagram.bounding_box()
    assert box and box["width"] > 400 and box["height"] > 60, box
    drawn = diagram.text_content()
    for _key, title, _sub, _fill, _line in FLOW_STEPS:
        assert title in drawn, (title, drawn)

    nav = [a.strip() for a in page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()]
    listed = page.locator('[data-testid="stMain"] table tbody tr td:first-child').all_inner_texts()
    assert len(nav) == 9 and [n.splitlines()[-1] for n in nav][1:] == listed, (nav, listed)

    icon = page.locator('link[rel~="icon"]').first
    expect(icon).not_to_have_attribute("href", "./favicon.png")      # Streamlit's own, before the app's
    href = icon.get_attribute("href")
    assert href.startswith(app_url), href
    assert not external, external
