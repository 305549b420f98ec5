"""Driving the served app in headless Debian Chromium (shared by tests/browser and bench/browser_timing.py).

Server: ``start_server(port, runs_dir, log)`` runs ``python -m streamlit run app.py`` on 127.0.0.1;
``assert_clean_log(log)`` fails on a traceback or a caught page error in its log.
Pages: helpers that wait on Streamlit's data-testid attributes and fail on any exception box, the
app's own error boundary included (pages/ui/boundary.py).
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
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from pages.ui.boundary import ELEMENT_CLASS, MARKER  # noqa: E402  (the app's boundary: what it leaves)

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


def start_server(port: int, runs_dir: Path, log_path: Path, app_dir: Path | None = None,
                 env: dict | None = None) -> subprocess.Popen:
    """``env``: more environment variables for the server (e.g. a worker test hook)."""
    env = dict(os.environ, **(env or {}), MTLREC_RUNS_DIR=str(runs_dir), MTLREC_WORKSPACES=str(workspaces_dir(runs_dir)),
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
def serve(runs_dir: Path, log_path: Path, env: dict | None = None):
    """The app served on a free 127.0.0.1 port for the ``with`` block; yields its URL."""
    port = free_port()
    proc = start_server(port, runs_dir, log_path, env=env)
    url = f"http://127.0.0.1:{port}"
    SERVED[url] = Path(runs_dir)
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        stop_server(proc)
        SERVED.pop(url, None)


def rss_mb(pid: int) -> float:
    """The resident set of a process (VmRSS of /proc/<pid>/status), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for process {pid}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


TRACEBACK = "Traceback (most recent call last)"


def assert_clean_log(log_path: Path) -> None:
    """The server log has no traceback and no error caught by the app's boundary (its MARKER line)."""
    text = Path(log_path).read_text(errors="replace")
    for bad in (MARKER, TRACEBACK):
        at = text.find(bad)
        if at >= 0:
            raise AssertionError(f"{bad!r} in the server log {log_path}:\n{text[max(0, at - 300):at + 3000]}")


# ---------------------------------------------------------------------------- page helpers
EXCEPTION = '[data-testid="stException"]'
CAUGHT = f'[class*="{ELEMENT_CLASS}"]'      # a message of the app's error boundary
CAUGHT_TEXT = "Something went wrong on this page"      # its words (also where no marked element exists)
NAV = {"Home": "mtlrec — multi-task recommendations you can see and explain", "Data": "Data",
       "Tasks & model": "Tasks & model", "Train": "Train", "Results": "Results", "Recommendations": "Recommendations", "Explain": "Explain a recommendation",
       "Runs": "Runs", "Lab": "Lab"}          # sidebar name -> the page's title


def assert_no_exception(page, where: str = "") -> None:
    """No Streamlit exception box and no message of the app's error boundary on the page."""
    for selector, what in ((EXCEPTION, "Streamlit exception"), (CAUGHT, "error caught by the app's boundary")):
        boxes = page.locator(selector)
        if boxes.count():
            raise AssertionError(f"{what} {where}: {boxes.first.inner_text()[:2000]}")
    words = page.get_by_text(CAUGHT_TEXT)
    if words.count():
        raise AssertionError(f"error caught by the app's boundary {where}: {words.first.inner_text()[:2000]}")


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


IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
STALE = '[data-testid="stElementContainer"][data-stale="true"]'


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until the script run is over (stApp's data-test-script-state is notRunning) and no element of
    an earlier run is left on the page (a widget still drawn from the previous run, marked data-stale, is
    replaced when the run ends: typing into it would be lost)."""
    page.wait_for_function(
        f"""() => document.querySelector('{IDLE}') !== null
                  && document.querySelector('{STALE}') === null""", timeout=timeout)


def set_number(page, label: str, value: str) -> None:
    """Type ``value`` into the number input ``label`` and press Enter (the app takes it on its next run)."""
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_idle(page)


def set_training(page, epochs: int, batch_size: int, lr: str | None = None) -> None:
    """On Tasks & model: set the training settings, then wait until the server has taken them (the
    "At most N epochs ..." line under them echoes its values): a page switch sent before the server
    had the last edit could otherwise start from the old values."""
    import re
    from playwright.sync_api import expect
    for label, value in (("Learning rate", lr), ("Epochs", str(epochs)), ("Batch size", str(batch_size))):
        if value is not None:
            set_number(page, label, value)
    rate = rf", at learning rate {re.escape(str(float(lr)))}" if lr is not None else ""
    expect(page.locator('[data-testid="stMain"]')).to_contain_text(re.compile(
        rf"At most {epochs:,} epochs( of [\d,]+ rows: [\d,]+ steps each)?, in batches of {batch_size:,} rows{rate}"))


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


def go(page, name: str, title: str | None = None, timeout: float = 60_000, exact: bool = False) -> None:
    """Click a page in the sidebar navigation and wait for its title (``exact``: the whole title)."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=name).first.click()
    wait_title(page, title or name, timeout, exact=exact)


def wait_title(page, title: str, timeout: float = 60_000, exact: bool = False) -> None:
    """Wait for a page title containing ``title`` (``exact``: equal to it), then for the run's end."""
    import re
    has = re.compile(rf"^\s*{re.escape(title)}\s*$") if exact else title
    page.locator("h1", has_text=has).first.wait_for(timeout=timeout)
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
