"""Fixtures for the browser tests: the app served on 127.0.0.1 (free port) and headless Chromium."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

# Playwright's expect() waits 5 s by default; a loaded 2-core machine can take longer to
# rerun a page after a click. Same patience as the context's default timeout below.
expect.set_options(timeout=60_000)



sys.path.insert(0, str(Path(__file__).resolve().parent))
import appdriver as drv  # noqa: E402


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    if not Path(drv.CHROMIUM).exists():
        pytest.skip(f"browser tests need Chromium at {drv.CHROMIUM} (Debian: apt-get install chromium)")
    runs = tmp_path_factory.mktemp("browser_runs")
    drv.ARTIFACTS.mkdir(exist_ok=True)
    with drv.serve(runs, drv.ARTIFACTS / "streamlit-server.log") as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not Path(drv.CHROMIUM).exists():
        pytest.skip(f"browser tests need Chromium at {drv.CHROMIUM}")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=drv.CHROMIUM, args=drv.CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(60_000)
    yield ctx
    ctx.close()


@pytest.fixture
def artifacts() -> Path:
    drv.ARTIFACTS.mkdir(exist_ok=True)
    return drv.ARTIFACTS
