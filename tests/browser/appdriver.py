"""Driving the served app in headless Debian Chromium (shared by tests/browser and bench/browser_timing.py).

Server: ``start_server(port, runs_dir, log)`` runs ``python -m streamlit run app.py`` on 127.0.0.1.
Pages: helpers that wait on Streamlit's data-testid attributes and fail on any exception box.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("MTLREC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVED: dict[str, Path] = {}          # URL of a server started by `serve` -> its runs folder


def workspaces_dir(runs_dir: Path) -> Path:
    """Where a test server started on ``runs_dir`` keeps its visitors' workspaces (beside the runs)."""
    return Path(runs_dir).parent / (Path(runs_dir).name + "_workspaces")


def start_server(port: int, runs_dir: Path, log_path: Path, app_dir: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ, MTLREC_RUNS_DIR=str(runs_dir), MTLREC_WORKSPACES=str(workspaces_dir(runs_dir)),
               MTLREC_TRAIN_ISOLATION="process",           # as served by `make run`
               CUDA_VISIBLE_DEVICES=os.environ.get("CUDA_VISIBLE_DEVICES", ""),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    log = open(log_path, "w")
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        cwd=app_dir or ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("streamlit did not become healthy in time")


@contextlib.contextmanager
def serve(runs_dir: Path, log_path: Path):
    """The app served on a free 127.0.0.1 port for the ``with`` block; yields its URL."""
    port = free_port()
    proc = start_server(port, runs_dir, log_path)
    url = f"http://127.0.0.1:{port}"
    SERVED[url] = Path(runs_dir)
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        stop_server(proc)
        SERVED.pop(url, None)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()



# ---------------------------------------------------------------------------- page helpers
EXCEPTION = '[data-testid="stException"]'
NAV = {"Home": "Home", "Data": "Data", "Tasks & model": "Tasks & model", "Train": "Train",
       "Results": "Results", "Recommendations": "Recommendations", "Explain": "Explain"}


def assert_no_exception(page, where: str = "") -> None:
    boxes = page.locator(EXCEPTION)
    if boxes.count():
        raise AssertionError(f"Streamlit exception {where}: {boxes.first.inner_text()[:2000]}")


def wait_saved(page, check, timeout: float = 60.0) -> dict:
    """Wait until the workspace named in the page's URL (``?ws=``) is saved on disk with ``check(doc)``
    true. A widget change reaches the server as a rerun request that the page's script-state attribute
    may not show yet, so waiting for "notRunning" alone can return before the change is saved."""
    import json
    import re
    m = re.search(r"[?&]ws=([0-9a-f]{32})", page.url)
    assert m, f"no workspace id in {page.url}"
    origin = re.match(r"https?://[^/]+", page.url).group(0)
    path = workspaces_dir(SERVED[origin]) / m.group(1) / "workspace.json"
    deadline, doc = time.time() + timeout, None
    while time.time() < deadline:
        try:
            doc = json.loads(path.read_text())
            if check(doc):
                return doc
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"workspace {path} not saved as expected in {timeout:.0f} s; last: {doc}")


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until the script run is over (stApp's data-test-script-state is notRunning)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)


def open_first_run(page, timeout: float = 240_000) -> None:
    """On Runs: select the first listed run and open it as the current run (lands on Results)."""
    go(page, "Runs")
    picker = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Select runs")
    picker.locator("input").click()
    page.get_by_role("option").first.click()
    page.keyboard.press("Escape")
    wait_idle(page)
    page.get_by_role("button", name="Open as the current run").click()
    wait_title(page, "Results", timeout)


def open_app(page, url: str, timeout: float = 60_000) -> None:
    page.goto(url, timeout=timeout)
    page.get_by_role("button", name="Load sample & configure").wait_for(timeout=timeout)


def go(page, name: str, title: str | None = None, timeout: float = 60_000) -> None:
    """Click a page in the sidebar navigation and wait for its title."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=name).first.click()
    wait_title(page, title or name, timeout)


def wait_title(page, title: str, timeout: float = 60_000) -> None:
    page.locator("h1", has_text=title).first.wait_for(timeout=timeout)
    wait_idle(page, timeout)


def shot(page, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))


UPLOAD_INPUT = '[data-testid="stFileUploaderDropzoneInput"]'


def open_uploader(page, url: str):
    """Open the app, go to Data, choose "Upload files"; returns the uploader's file input."""
    open_app(page, url)
    go(page, "Data")
    page.get_by_text("Upload files", exact=True).click()
    uploader = page.locator(UPLOAD_INPUT)
    uploader.wait_for(state="attached")
    wait_idle(page)
    return uploader
