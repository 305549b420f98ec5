"""Dashboard timings measured in real headless Chromium, printed as JSON.

    .venv/bin/python bench/browser_timing.py [--epochs 4] [--no-screenshots]

* ``first_page_s``: from launching ``streamlit run app.py`` to the Home page being interactive
  (its "Load sample & configure" button enabled) in the browser (aim <= 3 s).
* ``page_switch_s``: sidebar click -> the new page's title shown and the script run over, per page,
  with the sample loaded (aim <= 0.5 s).
* ``curve_refresh_s``: while a model trains, the interval between two redraws of the live curves
  panel (its "updated ..." stamp), observed in the page with a MutationObserver (aim <= 1 s).
* Screenshots of every page (1280x800 viewport) go to bench/screenshots/ for the README.

The browser is started before the server, so ``first_page_s`` does not include Chromium's own start.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
import appdriver as drv  # noqa: E402

SHOTS = ROOT / "bench" / "screenshots"
TITLES = {"Home": "multi-task recommendations"}


def _stats(xs: list[float]) -> dict:
    if not xs:
        return {"n": 0}
    xs = sorted(xs)
    return {"n": len(xs), "median": round(statistics.median(xs), 3), "p90": round(xs[int(0.9 * (len(xs) - 1))], 3),
            "max": round(xs[-1], 3), "min": round(xs[0], 3)}


def trivial_baseline(rounds: int) -> dict:
    """First page and page switch of a two-page app with one title each, served and measured the
    same way: what this machine and Streamlit cost before any mtlrec code runs."""
    from playwright.sync_api import sync_playwright
    d = Path(tempfile.mkdtemp(prefix="mtlrec-bench-trivial-"))
    (d / "pages").mkdir()
    (d / "app.py").write_text('import streamlit as st\n'
                              'pg = st.navigation([st.Page("pages/a.py", title="Alpha", default=True), '
                              'st.Page("pages/b.py", title="Beta")])\npg.run()\n')
    (d / "pages" / "a.py").write_text('import streamlit as st\nst.title("Alpha")\nst.button("Go")\n')
    (d / "pages" / "b.py").write_text('import streamlit as st\nst.title("Beta")\n')
    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=drv.CHROMIUM, args=drv.CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        port = drv.free_port()
        url = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        proc = drv.start_server(port, d, d / "server.log", app_dir=d)
        try:
            drv.wait_healthy(url, proc)
            page.goto(url)
            page.get_by_role("button", name="Go").and_(page.locator(":enabled")).wait_for(timeout=120_000)
            out["first_page_s"] = round(time.perf_counter() - t0, 3)
            drv.wait_idle(page)
            xs = []
            for _ in range(rounds):
                for name in ("Beta", "Alpha"):
                    t = time.perf_counter()
                    drv.go(page, name)
                    xs.append(time.perf_counter() - t)
            out["page_switch_s"] = _stats(xs)
        finally:
            drv.stop_server(proc)
            browser.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4, help="epochs of the run whose curves are watched")
    ap.add_argument("--switch-rounds", type=int, default=3)
    ap.add_argument("--no-screenshots", action="store_true")
    ap.add_argument("--no-baseline", dest="baseline", action="store_false",
                    help="skip the same measurements on a trivial two-page Streamlit app (machine reference)")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    out: dict = {"aims": {"first_page_s": 3.0, "page_switch_s": 0.5, "curve_refresh_s": 1.0}}
    runs = Path(tempfile.mkdtemp(prefix="mtlrec-bench-runs-"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=drv.CHROMIUM, args=drv.CHROMIUM_ARGS)
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        ctx.set_default_timeout(120_000)
        page = ctx.new_page()
        port = drv.free_port()
        url = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        proc = drv.start_server(port, runs, runs / "server.log")
        try:
            drv.wait_healthy(url, proc)
            t_healthy = time.perf_counter() - t0
            page.goto(url)
            page.get_by_role("button", name="Load sample & configure").and_(page.locator(":enabled")).wait_for()
            out["first_page_s"] = round(time.perf_counter() - t0, 3)
            out["server_healthy_s"] = round(t_healthy, 3)
            drv.wait_idle(page)
            if not args.no_screenshots:
                page.wait_for_timeout(800)   # the flow diagram renders asynchronously
                drv.shot(page, SHOTS / "home.png")

            page.get_by_role("button", name="Load sample & configure").click()
            drv.wait_title(page, "Train")
            order = ["Data", "Tasks & model", "Train", "Results", "Recommendations", "Home"]
            # the first visit of a page imports its modules: measured apart from the warm switches
            first_visit, switches = {}, {n: [] for n in order}
            for r in range(args.switch_rounds + 1):
                for name in order:
                    t = time.perf_counter()
                    drv.go(page, name, TITLES.get(name))
                    dt = time.perf_counter() - t
                    drv.assert_no_exception(page, f"on {name}")
                    if r == 0:
                        first_visit[name] = round(dt, 3)
                    else:
                        switches[name].append(dt)
            out["page_switch_first_visit_s"] = first_visit
            out["page_switch_s"] = {n: _stats(v) for n, v in switches.items()}
            out["page_switch_all_s"] = _stats([x for v in switches.values() for x in v])

            if not args.no_screenshots:
                drv.go(page, "Data")
                page.locator('[data-testid="stPlotlyChart"]').nth(2).wait_for()
                page.get_by_role("heading", name="Statistics").scroll_into_view_if_needed()
                page.mouse.wheel(0, 150)
                page.wait_for_timeout(700)
                drv.shot(page, SHOTS / "data.png")
                drv.go(page, "Tasks & model")
                page.wait_for_timeout(800)
                drv.shot(page, SHOTS / "model.png")

            # a run with a few epochs: watch the live panel's redraws
            drv.go(page, "Tasks & model")
            for label, value in (("Epochs", str(args.epochs)), ("Batch size", "512")):
                box = page.get_by_label(label, exact=True)
                box.fill(value)
                box.press("Enter")
                drv.wait_idle(page)
            drv.go(page, "Train")
            page.get_by_role("button", name="Start training").click()
            page.get_by_text(re.compile(r"running: epoch")).first.wait_for()
            page.evaluate("""() => {
                window.__stamps = [];
                const find = () => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
                                     .find(e => e.innerText.startsWith('updated '));
                let last = null;
                const obs = new MutationObserver(() => {
                    const e = find(); const t = e ? e.innerText : null;
                    if (t && t !== last) { last = t; window.__stamps.push(performance.now()); }
                });
                obs.observe(document.body, {subtree: true, childList: true, characterData: true});
            }""")
            t_watch = time.perf_counter()
            shot_taken = False
            while time.perf_counter() - t_watch < 600:
                txt = page.locator('[data-testid="stMain"]').inner_text()
                if "Finished. See" in txt or "The run failed" in txt:
                    break
                if not shot_taken and not args.no_screenshots and "epoch 2/" in txt:
                    drv.shot(page, SHOTS / "train.png")
                    shot_taken = True
                page.wait_for_timeout(250)
            stamps = page.evaluate("() => window.__stamps")
            gaps = [(b - a) / 1000.0 for a, b in zip(stamps, stamps[1:])]
            out["curve_refresh_s"] = _stats(gaps)
            out["training_watched_s"] = round(time.perf_counter() - t_watch, 1)
            drv.assert_no_exception(page, "on Train")
            if not args.no_screenshots:
                if not shot_taken:
                    drv.shot(page, SHOTS / "train.png")
                drv.go(page, "Results")
                page.locator('[data-testid="stPlotlyChart"]').nth(1).wait_for()
                page.wait_for_timeout(800)
                drv.shot(page, SHOTS / "results.png")
                drv.go(page, "Recommendations")
                page.get_by_text("Top 10 for user").wait_for()
                page.wait_for_timeout(300)
                drv.shot(page, SHOTS / "recommendations.png")
                out["screenshots"] = {q.name: q.stat().st_size for q in sorted(SHOTS.glob("*.png"))}
        except Exception:
            page.screenshot(path=str(runs / "failure.png"))
            print(f"failed; screenshot and server log in {runs}", file=sys.stderr)
            raise
        finally:
            drv.stop_server(proc)
            browser.close()
    if args.baseline:
        out["baseline_trivial_app"] = trivial_baseline(args.switch_rounds)
    out["meets_aims"] = {
        "first_page": out.get("first_page_s", 1e9) <= 3.0,
        "page_switch": out.get("page_switch_all_s", {}).get("median", 1e9) <= 0.5,
        "curve_refresh": out.get("curve_refresh_s", {}).get("median", 1e9) <= 1.0,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
