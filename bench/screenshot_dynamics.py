"""Screenshot of the "Training dynamics" (conflict) view on Results (for the README).

    .venv/bin/python bench/screenshot_dynamics.py [--run RUN_DIR] [--epochs 8] [--every 5]
                                                  [--out bench/screenshots/dynamics.png]

Without ``--run``, trains the shipped sample with the MMoE config (four tasks, CPU, ``--epochs``
epochs without early stopping, ``train.dynamics_every`` = ``--every``: more sampled batches per
epoch than the library's default 20, so the conflict shares are less coarse) into a temporary runs
folder. The app is served on 127.0.0.1 on a free port (never 8501), driven in headless Chromium
(tests/browser/appdriver.py): Runs -> select the run -> "Open as the current run" -> Results,
scrolled to the "Training dynamics" section (anchor ``#training-dynamics``): loss weights and
per-task gradient norms on the shared parameters, cosines and conflict shares between task
gradients, gate entropy and expert shares. The server is stopped afterwards.
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


def train_sample(runs_dir: Path, epochs: int, every: int) -> Path:
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import run_training
    cfg = RunConfig.load(ROOT / "sample_data" / "config_mmoe.json")
    cfg.train.epochs = epochs
    cfg.train.device = "cpu"
    cfg.train.baselines = False
    cfg.train.early_stopping.patience = 0      # every epoch: the curves span the whole run
    cfg.train.dynamics_every = every
    d = runs_dir / "sample-mmoe"
    assert run_training(cfg, run_dir=d).status == "finished"
    return d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="a finished run folder with dynamics records (default: train the sample)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--every", type=int, default=5, help="train.dynamics_every of the trained sample run")
    ap.add_argument("--out", default=str(ROOT / "bench" / "screenshots" / "dynamics.png"))
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright
    tmp = Path(tempfile.mkdtemp())
    runs_dir = tmp / "runs"
    runs_dir.mkdir()
    if args.run:
        shutil.copytree(args.run, runs_dir / Path(args.run).name)
    else:
        train_sample(runs_dir, args.epochs, args.every)
    port = drv.free_port()
    proc = drv.start_server(port, runs_dir, tmp / "server.log",
                            env={"MTLREC_LOCAL_RUNS": "read"})    # the runs folder's runs: local runs
    url = f"http://127.0.0.1:{port}"
    try:
        drv.wait_healthy(url, proc)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=drv.CHROMIUM, args=drv.CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1400, "height": 2400})
            page.set_default_timeout(LONG)
            drv.open_app(page, url)
            drv.open_first_run(page, LONG)
            head = page.locator("#training-dynamics")
            head.wait_for(timeout=LONG)
            charts = page.locator('[data-testid="stPlotlyChart"]')
            charts.first.wait_for()
            drv.wait_idle(page, LONG)
            drv.assert_no_exception(page, "on Results")
            head.evaluate("e => e.scrollIntoView({block: 'start'})")
            page.mouse.move(2, 2)                # off the figures: no plotly toolbar or hover label
            page.wait_for_timeout(2000)          # plotly draws the figures that came into view
            top = head.bounding_box()
            # the section's last figure: the expert shares (MMoE), else the cosines
            gate = page.get_by_text("Gate entropy 0:").first
            end = gate.bounding_box() if gate.count() else None
            if end is None:
                cos = [c for c in (charts.nth(i).bounding_box() for i in range(charts.count()))
                       if c and c["y"] > top["y"]]
                end = cos[2] if len(cos) > 2 else cos[-1]
            box = page.locator('[data-testid="stMain"]').bounding_box()
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.out,
                            clip={"x": box["x"], "y": max(0.0, top["y"] - 20), "width": box["width"],
                                  "height": end["y"] + end["height"] - top["y"] + 40})
            b.close()
    finally:
        drv.stop_server(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    print(args.out, f"{Path(args.out).stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
