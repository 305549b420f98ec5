"""Screenshot of the Explain page for one recommendation, values table visible (for the README),
and of its "Because of the user's history" section (a run with a history input).

    .venv/bin/python bench/screenshot_explain.py [--run RUN_DIR] [--out bench/screenshots/explain.png]
        [--history 20] [--history-out bench/screenshots/explain_history.png]

Without ``--run``, trains the shipped sample with the MMoE config (2 epochs, CPU; with
``--history N`` > 0 the user's last N items as input, target attention) into a temporary runs
folder. The app is served on 127.0.0.1 on a free port (never 8501), driven in
headless Chromium (tests/browser/appdriver.py): Runs -> select the run -> "Open as the current
run" -> Explain, which explains the first user's first item. The server is stopped afterwards.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "browser"))
import appdriver as drv  # noqa: E402

LONG = 240_000


def train_sample(runs_dir: Path, epochs: int = 2, history: int = 0) -> Path:
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import run_training
    cfg = RunConfig.load(ROOT / "sample_data" / "config_mmoe.json")
    if history:
        cfg.model["history"] = {"length": int(history), "encoder": "attention"}
    cfg.train.epochs = epochs
    cfg.train.device = "cpu"
    cfg.train.baselines = False
    d = runs_dir / "sample-mmoe"
    assert run_training(cfg, run_dir=d).status == "finished"
    return d


def history_shot(page, box: dict, out: str) -> None:
    """The "Because of the user's history" section: its heading down to the attention note."""
    top = page.get_by_role("heading", name="Because of the user's history").bounding_box()
    end = page.locator('[data-testid="stAlert"]').filter(has_text="not attributions").first.bounding_box()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=out, clip={"x": box["x"], "y": top["y"] - 20, "width": box["width"],
                                    "height": end["y"] + end["height"] - top["y"] + 40})
    from PIL import Image                # a 64-colour palette: a third of the size, the same to the eye
    Image.open(out).convert("RGB").quantize(64).save(out, optimize=True)
    print(out, f"{Path(out).stat().st_size / 1024:.0f} KB")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="a finished run folder to show (default: train the sample)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "screenshots" / "explain.png"))
    ap.add_argument("--history", type=int, default=20, help="history length of the trained sample (0: none)")
    ap.add_argument("--history-out", default=str(ROOT / "bench" / "screenshots" / "explain_history.png"),
                    help="the history section's screenshot (when the run has a history input)")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright
    tmp = Path(tempfile.mkdtemp())
    runs_dir = tmp / "runs"
    runs_dir.mkdir()
    if args.run:
        shutil.copytree(args.run, runs_dir / Path(args.run).name)
    else:
        train_sample(runs_dir, history=args.history)
    port = drv.free_port()
    proc = drv.start_server(port, runs_dir, tmp / "server.log",
                            env={"MTLREC_LOCAL_RUNS": "read"})    # the runs folder's runs: local runs
    url = f"http://127.0.0.1:{port}"
    try:
        drv.wait_healthy(url, proc)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=drv.CHROMIUM, args=drv.CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1400, "height": 4800})
            page.set_default_timeout(LONG)
            drv.open_app(page, url)
            drv.open_first_run(page, LONG)
            drv.go(page, "Explain", "Explain a recommendation")
            page.get_by_text("What the model saw for this pair").wait_for(timeout=LONG)
            page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for()
            drv.wait_idle(page, LONG)
            drv.assert_no_exception(page, "on Explain")
            page.wait_for_timeout(1500)          # a tall window: the local view fits, no scrolling
            box = page.locator('[data-testid="stMain"]').bounding_box()
            top = page.get_by_role("heading", name="Why user").first.bounding_box()
            end = page.get_by_text("What the model saw for this pair").bounding_box()
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.out,
                            clip={"x": box["x"], "y": top["y"] - 20, "width": box["width"],
                                  "height": end["y"] - top["y"] + 420})
            if page.get_by_role("heading", name="Because of the user's history").count():
                history_shot(page, box, args.history_out)
            b.close()
    finally:
        drv.stop_server(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    print(args.out, f"{Path(args.out).stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
