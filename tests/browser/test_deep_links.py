"""A deep link on a fresh server opens the page it names under the app's own navigation.

Streamlit starts a server whose folder has ``pages/`` in its old multipage mode until a script
calls st.navigation: a first visit to ``/train`` used to run pages/train.py alone, under an
automatic navigation listing internal modules (``app``, ``state``)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

import appdriver as drv

pytestmark = pytest.mark.browser

TITLES = ["Home", "Data", "Tasks & model", "Train", "Results", "Recommendations", "Explain", "Runs", "Lab"]


@pytest.fixture
def fresh_server(tmp_path):
    with drv.serve(tmp_path / "runs", tmp_path / "server.log") as url:
        yield url


@pytest.mark.parametrize("path, title", [("train", "Train"), ("results", "Results")])
def test_deep_link_on_a_fresh_server_gets_the_app_navigation(fresh_server, context, path, title):
    page = context.new_page()
    page.goto(f"{fresh_server}/{path}")
    drv.wait_title(page, title)
    nav = page.locator('[data-testid="stSidebarNav"] a')
    expect(nav).to_have_count(len(TITLES))
    assert [t.strip().split("\n")[-1] for t in nav.all_inner_texts()] == TITLES   # (icon name, then title)
    assert "state" not in page.locator('[data-testid="stSidebarNav"]').inner_text()
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("Workspace")   # app.py's sidebar ran
    drv.assert_no_exception(page, f"on /{path}")
