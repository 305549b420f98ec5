"""Screenshot of the Lab page after a run of the three architectures, the prepared sweep (bench/lab.py's
size: n = 3000, 3 seeds, 12 epochs) and a comparison of static and PCGrad weighting (README).

    .venv/bin/python bench/screenshot_lab.py [--out bench/screenshots/lab.png]

The app is served on 127.0.0.1 and driven in headless Chromium (tests/browser/appdriver.py).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
import appdriver as drv  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "screenshots" / "lab.png"))
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright
    tmp = Path(tempfile.mkdtemp())
    port = drv.free_port()
    proc = drv.start_server(port, tmp / "runs", tmp / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        drv.wait_healthy(url, proc)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=drv.CHROMIUM, args=drv.CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1400, "height": 2950})
            page.set_default_timeout(180_000)
            page.goto(url)
            drv.wait_idle(page)
            drv.go(page, "Lab")
            page.get_by_role("button", name="Train shared-bottom, MMoE and PLE").click()
            page.get_by_text("p = 0.5 — finished").wait_for()
            drv.wait_idle(page)
            page.get_by_role("button", name="Prepared sweep").click()
            page.get_by_text("The paper's ordering").wait_for(timeout=600_000)
            page.get_by_text("Sweep — finished").wait_for()
            drv.wait_idle(page)
            from playwright.sync_api import expect
            expect(page.get_by_role("button", name="Prepared sweep")).to_be_enabled(timeout=60_000)
            drv.wait_idle(page)
            method_b = page.locator('[data-testid="stSelectbox"]').filter(has_text="Method B")
            method_b.click()
            page.get_by_role("option", name="pcgrad", exact=True).click()
            drv.wait_idle(page)
            page.get_by_role("button", name="Compare").click()
            page.get_by_text("static vs pcgrad at p = 0.5 — finished").wait_for()
            drv.wait_idle(page)
            page.wait_for_timeout(1000)
            drv.assert_no_exception(page, "on the Lab page")
            page.screenshot(path=args.out, full_page=True)
            b.close()
    finally:
        drv.stop_server(proc)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
