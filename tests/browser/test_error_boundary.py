"""The app's error boundary, seen from outside, in real Chromium: a page that raises shows the short
message (no traceback), and both detectors the browser tests rely on fire -- `assert_no_exception`
finds the marked message, `assert_clean_log` finds the marker and the traceback in the server log."""
from __future__ import annotations

import pytest

import appdriver as drv

pytestmark = pytest.mark.browser

CRASHING_APP = f'''
import sys
sys.path.insert(0, {str(drv.ROOT)!r})
import streamlit as st
from pages.ui.boundary import run_page

def crashing_page():
    st.title("A page that fails")
    raise RuntimeError("internal detail")

run_page(st.navigation([st.Page(crashing_page, title="Crash")]))
'''


def test_a_caught_page_error_is_seen_by_the_browser_checks(browser, tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "app.py").write_text(CRASHING_APP)
    log = tmp_path / "server.log"
    port = drv.free_port()
    proc = drv.start_server(port, tmp_path / "runs", log, app_dir=tmp_path / "app")
    ctx = browser.new_context()
    try:
        drv.wait_healthy(f"http://127.0.0.1:{port}", proc)
        page = ctx.new_page()
        page.goto(f"http://127.0.0.1:{port}")
        page.get_by_text("Something went wrong on this page (RuntimeError)").wait_for()
        drv.wait_idle(page)
        assert "internal detail" not in page.locator('[data-testid="stMain"]').inner_text()
        assert page.locator(drv.CAUGHT).count() == 1            # the marked container, found by its class
        with pytest.raises(AssertionError, match="caught by the app's boundary"):
            drv.assert_no_exception(page, "on the crashing page")
    finally:
        ctx.close()
        drv.stop_server(proc)
    with pytest.raises(AssertionError, match=drv.MARKER) as err:
        drv.assert_clean_log(log)
    assert "RuntimeError: internal detail" in str(err.value) and drv.TRACEBACK in str(err.value)
