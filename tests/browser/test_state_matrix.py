"""Every page in every state a visitor meets, in real Chromium, with the worker process as `make run`
serves it: no Streamlit exception box, no message of the app's error boundary, no request leaving the
machine, and, at the end, no traceback and no caught page error in either server's log.

The states, in the order a visitor meets them: a fresh server; the sample loaded; a run starting
(its worker process not up yet); running; finished; after a reload (F5); cancelled; failed; after a
server restart (the same workspace); the visitor's own run opened from Runs; and another visitor, to
whom Runs lists none of these runs (they are the first visitor's). The worker's test
hook ``MTLREC_TEST_HOLD_DIR`` (mtlrec/training/worker.py) holds a run in the starting and in the
running state for as long as the pages are visited, and makes one run fail, so nothing here depends
on timing. One server serves everything before the restart, one after it.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

import appdriver as drv

pytestmark = pytest.mark.browser

RUN_NAME = re.compile(r"\d{8}-\d{6}-[\w-]+")      # a run folder's name


class Visitor:
    """One browser page, what it saw go wrong, and the requests it sent off this machine."""

    def __init__(self, page):
        self.page = page
        self.failures: list[str] = []
        self.external: list[str] = []
        page.on("request", self._request)

    def _request(self, request) -> None:
        host = re.match(r"[a-z]+://([^/:]*)", request.url)
        if host and host.group(1) not in ("127.0.0.1", "localhost") and not request.url.startswith("data:"):
            self.external.append(request.url)

    def check(self, where: str) -> None:
        try:
            drv.assert_no_exception(self.page, where)
        except AssertionError as e:
            self.failures.append(str(e))

    def visit_all(self, state: str) -> None:
        """Each of the 9 pages from the sidebar, checked once its script run is over."""
        for name, title in drv.NAV.items():
            drv.go(self.page, name, title, timeout=120_000, exact=True)
            self.check(f"on {name} ({state})")

    def sidebar(self) -> str:
        return self.page.locator('[data-testid="stSidebar"]').inner_text()

    def main(self) -> str:
        return self.page.locator('[data-testid="stMain"]').inner_text()


def _train_line(v: Visitor, status: str, timeout: float = 240_000) -> str:
    """On Train: wait for the live panel to show the shown run in ``status``; its run name. (No click
    meanwhile: a page switch right after a click can drop the click's rerun.)"""
    pattern = re.compile(rf"{RUN_NAME.pattern} — {status}")
    v.page.locator('[data-testid="stProgress"]').filter(has_text=pattern).first.wait_for(timeout=timeout)
    drv.wait_idle(v.page)
    return pattern.search(v.main()).group(0).split(" — ")[0]


def _start(v: Visitor) -> None:
    drv.go(v.page, "Train", exact=True)
    v.page.get_by_role("button", name="Start training").click()
    v.page.get_by_role("button", name="Cancel").and_(v.page.locator(":enabled")).wait_for(timeout=120_000)
    drv.wait_idle(v.page)


def _configure_tiny(v: Visitor) -> None:
    drv.go(v.page, "Tasks & model", exact=True)
    drv.set_training(v.page, epochs=1, batch_size=4096)


def _reached(hold: Path, point: str) -> None:
    """Wait until the worker has arrived at the hold point (it touches ``<point>.reached``)."""
    flag, deadline = hold / f"{point}.reached", time.time() + 180
    while not flag.exists():
        assert time.time() < deadline, f"the worker never reached the hold point {point!r}"
        time.sleep(0.05)


def _fresh_then_sample(v: Visitor, url: str) -> None:
    """A fresh server (the device named once the first page is drawn), then the sample loaded."""
    drv.open_app(v.page, url)
    drv.wait_idle(v.page)
    device = [line for line in v.sidebar().splitlines() if line.startswith("Device:")]
    if len(device) != 1 or "detecting" in device[0]:
        v.failures.append(f"the device on a cold load, once the first page is drawn: {device}")
    v.visit_all("fresh server")
    drv.go(v.page, "Home", drv.NAV["Home"], exact=True)
    v.page.get_by_role("button", name="Load sample & configure").click()
    drv.wait_title(v.page, "Train", exact=True)
    _configure_tiny(v)
    v.visit_all("sample loaded")


def _three_runs(v: Visitor, hold: Path) -> tuple[str, str, str]:
    """Starting, running, finished, after F5; a cancelled run; a failed run. Their names."""
    _start(v)                                   # the worker is held before its first message
    v.check("on Train, a run starting")
    _reached(hold, "start")
    v.visit_all("a run starting, worker not up")
    (hold / "start").touch()                    # up, and held after its first batch
    _reached(hold, "batch")
    drv.go(v.page, "Train", exact=True)
    v.page.get_by_text(re.compile(r"epoch 1/1 · batch 1/\d+")).first.wait_for(timeout=120_000)
    v.visit_all("running")
    (hold / "batch").touch()
    drv.go(v.page, "Train", exact=True)
    finished = _train_line(v, "finished")
    v.visit_all("finished")
    v.page.reload()                             # F5: the workspace id is in the URL
    drv.wait_title(v.page, "Lab", exact=True)
    v.visit_all("after a reload")

    for gate in ("batch", "batch.reached"):     # held after its first batch, then Cancel
        (hold / gate).unlink()
    _start(v)
    _reached(hold, "batch")
    v.page.get_by_text(re.compile(r"epoch 1/1 · batch 1/\d+")).first.wait_for(timeout=120_000)
    v.page.get_by_role("button", name="Cancel").click()
    cancelled = _train_line(v, "cancelled")
    v.visit_all("cancelled")

    (hold / "start").unlink()                   # held at its start until Start has redrawn, then
    (hold / "batch").write_text("crash")        # the worker dies after its first batch
    _start(v)
    (hold / "start").touch()
    failed = _train_line(v, "failed")
    v.visit_all("failed")
    assert len({finished, cancelled, failed}) == 3
    return finished, cancelled, failed


def _after_restart(v: Visitor, url2: str, runs: dict[str, str]) -> None:
    """The same workspace on a new server: every page; Train lists its runs, the sidebar names one."""
    v.page.goto(re.sub(r"^http://[^/]+", url2, v.page.url))
    drv.wait_title(v.page, "Lab", exact=True)
    v.visit_all("after a server restart")
    drv.go(v.page, "Train", exact=True)
    grid = v.page.locator('[data-testid="stDataFrame"] [role="gridcell"]')
    expect(grid.filter(has_text=next(iter(runs)))).to_have_count(1)
    cells = grid.all_text_contents()
    shown = {c: cells[i + 1] for i, c in enumerate(cells[:-1]) if RUN_NAME.fullmatch(c)}
    assert shown == runs, cells
    named = re.search(rf"Run:\s*({RUN_NAME.pattern})\s*—\s*(\w+)", v.sidebar())
    assert named and shown.get(named.group(1)) == named.group(2), v.sidebar()


def _opened_from_runs(v: Visitor, run: str) -> None:
    """The visitor opens their ``run`` from Runs: the sidebar names it; every page."""
    drv.go(v.page, "Runs", exact=True)
    picker = v.page.locator('[data-testid="stMultiSelect"]').filter(has_text="Select runs")
    picker.locator("input").click()
    v.page.get_by_role("option").filter(has_text=run).first.click()
    v.page.keyboard.press("Escape")
    drv.wait_idle(v.page)
    v.page.get_by_role("button", name="Open as the current run").click()
    drv.wait_title(v.page, "Results", exact=True)
    assert re.search(rf"Run:\s*{run}\s*—\s*finished", v.sidebar()), v.sidebar()
    v.visit_all("a run opened from Runs")


def _another_visitor(o: Visitor, url2: str, runs: list[str]) -> None:
    """Another visitor (a new workspace): Runs lists none of the first visitor's runs, Results has no run."""
    drv.open_app(o.page, url2)
    drv.go(o.page, "Runs", exact=True)
    o.page.get_by_text("No runs yet in this workspace").wait_for()
    drv.go(o.page, "Results", exact=True)
    o.page.get_by_text("No finished run in this session yet").wait_for()
    o.check("on Results (another visitor)")
    shown = o.main() + o.sidebar()
    assert not [r for r in runs if r in shown], shown


def _serve(runs: Path, log: Path, env: dict, procs: list) -> str:
    port = drv.free_port()
    procs.append(drv.start_server(port, runs, log, env=env))
    url = f"http://127.0.0.1:{port}"
    drv.wait_healthy(url, procs[-1])
    return url


def test_every_page_in_every_state(browser, tmp_path):
    hold, runs = tmp_path / "hold", tmp_path / "runs"
    hold.mkdir()
    env = {"MTLREC_TEST_HOLD_DIR": str(hold)}
    logs = [tmp_path / "server-1.log", tmp_path / "server-2.log"]
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(60_000)
    procs, visitors = [], []
    try:
        url = _serve(runs, logs[0], env, procs)
        visitors.append(v := Visitor(ctx.new_page()))
        _fresh_then_sample(v, url)
        finished, cancelled, failed = _three_runs(v, hold)
        drv.stop_server(procs.pop())
        url2 = _serve(runs, logs[1], env, procs)
        _after_restart(v, url2, {finished: "finished", cancelled: "cancelled", failed: "failed"})
        _opened_from_runs(v, finished)
        visitors.append(other := Visitor(ctx.new_page()))
        _another_visitor(other, url2, [finished, cancelled, failed])
    except Exception as e:          # a state not reached: say so, with what went wrong before it
        for i, x in enumerate(visitors):
            drv.shot(x.page, drv.ARTIFACTS / f"state-matrix-stopped-{i}.png")
        seen = [f for x in visitors for f in x.failures]
        raise AssertionError(f"{e}\n\nseen before: {len(seen)} problem(s)\n" + "\n\n".join(seen[:3])) from e
    finally:
        ctx.close()
        for p in procs:
            drv.stop_server(p)
    failures = [f for x in visitors for f in x.failures]
    assert not failures, f"{len(failures)} problem(s); the first:\n" + "\n\n".join(failures[:3])
    external = sorted({u for x in visitors for u in x.external})
    assert not external, f"requests that left the machine: {external}"
    for log in logs:
        drv.assert_clean_log(log)
