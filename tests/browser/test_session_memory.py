"""Closed browser sessions give their memory back (issue 27), in real Chromium against a server in
worker-process mode as `make run` serves it.

Sessions that each upload a 300,000-row table (generated here, ~10 MB of CSV) and wait for the Data
page's statistics are closed one after the other. Streamlit keeps a closed tab's session for
``server.disconnectedSessionTTL`` seconds (1 s for this server) in case it reconnects; the app's
session sweeper (pages/ui/sessions.py, every 0.3 s here) then frees what the session held and logs
``MTLREC-SESSIONS-SWEPT ended=N live=M``. The test waits for that line (no sleeping), then reads the
server's resident set (VmRSS, /proc/<pid>/status).

The bound: after the sessions have ended, the server may stay above its level before them (taken
after one warm-up session of the same kind had ended, so that modules imported and caches filled by
a first upload are in both figures) by less than half of what one session's upload added while it
was open, per session. Every session that stays in memory keeps about that much (its table, its
upload's bytes, its figures), so the three sessions below would add about three times it. What the C
allocator keeps after large uploads is a high-water mark, not per session: 7-23 MB measured after 1, 3
and 6 sessions alike (one session's upload: 27-45 MB), which made a bound of half of one session
(the bound before) fail about one run in two.
"""
from __future__ import annotations

import re
import time

import pytest

import appdriver as drv

pytestmark = pytest.mark.browser

ROWS = 300_000
SESSIONS = 3
SWEPT = re.compile(r"MTLREC-SESSIONS-SWEPT ended=(\d+) live=(\d+)")


def _table(folder):
    from mtlrec.data.sample import synthetic_interactions
    inter, _, _ = synthetic_interactions(ROWS, n_users=15_000, n_items=6_000, seed=1)
    path = folder / "interactions.csv"
    inter.to_csv(path, index=False)
    return path


def _upload_and_close(browser, url: str, csv, pid: int) -> float:
    """One session: upload the table, wait for its statistics; returns the server's RSS before closing it."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(120_000)
    try:
        page = ctx.new_page()
        drv.open_uploader(page, url).set_input_files(str(csv))
        page.locator("h3", has_text="Preview — interactions.csv").wait_for()
        page.locator('[data-testid="stMetricValue"]', has_text=f"{ROWS:,}").first.wait_for()
        drv.wait_idle(page)
        drv.assert_no_exception(page, "after the upload")
        return drv.rss_mb(pid)
    finally:
        ctx.close()


def _wait_swept(log, ended: int, timeout: float = 30.0) -> bool:
    """Wait until the sweeper has logged ``ended`` ended sessions in all and none live; False if it never does."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        lines = SWEPT.findall(log.read_text(errors="replace"))
        if lines and sum(int(e) for e, _ in lines) >= ended and lines[-1][1] == "0":
            return True
        time.sleep(0.1)
    return False


def test_closed_sessions_that_uploaded_a_large_table_give_their_memory_back(browser, tmp_path):
    csv = _table(tmp_path)
    log = tmp_path / "server.log"
    env = {"STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": "1", "MTLREC_SESSION_SWEEP_S": "0.3"}
    port = drv.free_port()
    url = f"http://127.0.0.1:{port}"
    server = drv.start_server(port, tmp_path / "runs", log, env=env)
    try:
        drv.wait_healthy(url, server)
        _upload_and_close(browser, url, csv, server.pid)           # warm-up: imports, first-use caches
        warm_swept = _wait_swept(log, 1)
        before = drv.rss_mb(server.pid)
        open_rss = [_upload_and_close(browser, url, csv, server.pid) for _ in range(SESSIONS)]
        swept = _wait_swept(log, 1 + SESSIONS)
        after = drv.rss_mb(server.pid)
    finally:
        drv.stop_server(server)
    one_session = open_rss[0] - before
    figures = (f"RSS before {before:.0f} MB, with each session open {[round(v) for v in open_rss]}, "
               f"after they ended {after:.0f} MB; one session's upload: {one_session:.0f} MB")
    assert one_session > 20, f"the upload did not take memory enough to measure: {figures}"
    assert after - before < 0.5 * one_session * SESSIONS, f"closed sessions kept their memory: {figures}"
    assert warm_swept and swept, f"the sweeper never said the closed sessions had ended ({figures})"
    drv.assert_clean_log(log)
