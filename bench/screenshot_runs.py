"""Screenshot of the Runs page comparing the runs of a runs folder (for the README).

    .venv/bin/python bench/screenshot_runs.py RUNS_DIR [--out bench/screenshots/runs.png]

RUNS_DIR holds a few finished runs, e.g. from
``MTLREC_RUNS_DIR=/tmp/r python -m mtlrec train --config sample_data/config_mmoe.json`` (and the
shared-bottom and PLE configs). The page is served on 127.0.0.1 and driven in headless Chromium.
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
    ap.add_argument("runs_dir")
    ap.add_argument("--out", default=str(ROOT / "bench" / "screenshots" / "runs.png"))
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright
    port = drv.free_port()
    proc = drv.start_server(port, Path(args.runs_dir), Path(tempfile.mkdtemp()) / "server.log",
                            env={"MTLREC_LOCAL_RUNS": "read"})    # the runs folder's runs: local runs
    url = f"http://127.0.0.1:{port}"
    try:
        drv.wait_healthy(url, proc)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=drv.CHROMIUM, args=drv.CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1400, "height": 1500})
            drv.open_app(page, url)
            drv.go(page, "Runs")
            picker = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Select runs")
            for _ in range(3):
                picker.locator("input").click()
                opt = page.get_by_role("option").first
                opt.wait_for()
                opt.click()
                page.keyboard.press("Escape")
                drv.wait_idle(page)
                page.wait_for_timeout(300)
            page.get_by_text("Configuration differences").wait_for()
            page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for()
            drv.wait_idle(page)
            page.wait_for_timeout(800)
            page.screenshot(path=args.out, full_page=True)
            b.close()
    finally:
        drv.stop_server(proc)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
