"""MovieLens (ml-latest-small): per-task test metrics and the multi-task gain per task.

    .venv/bin/python bench/movielens.py [--json] [--epochs N] [--arch mmoe] [--device cpu]

Runs ``sample_data/config_movielens.json`` (like = rating >= 4, rating regression, genres
multi-label; random 80/10/10 split, seed 42) with single-task baselines: the same
architecture, hyperparameters and budget trained once per task. gain = metric_MTL - metric_STL,
sign-flipped for lower-is-better metrics (RMSE), so a positive gain means multi-task helped.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CONFIG = REPO / "sample_data" / "config_movielens.json"
SHOW = {"binary": ("auc", "logloss", "best_f1"), "regression": ("rmse", "mae"),
        "multilabel": ("micro_auc", "macro_auc", "micro_f1")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--config", default=str(CONFIG))
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--arch", default=None, help="override model.arch (its default hyperparameters)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="also write the run folder here")
    args = ap.parse_args(argv)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import run_training
    cfg = RunConfig.load(args.config)
    if args.epochs:
        cfg.train.epochs = args.epochs
    if args.arch:
        cfg.model = {"arch": args.arch}
    cfg.train.device = args.device
    cfg.train.baselines = True
    t0 = time.time()
    res = run_training(cfg, args.out, log=lambda s: print(f"[movielens] {s}", file=sys.stderr, flush=True))
    m = res.metrics
    types = {t.name: t.type for t in res.tasks}

    def pick(d, task):
        return {k: round(d[task][k], 4) for k in SHOW[types[task]] if k in d.get(task, {})
                and d[task][k] is not None and math.isfinite(d[task][k])}

    out = {"benchmark": "ml-latest-small", "arch": cfg.arch, "epochs": cfg.train.epochs,
           "split": {s: res.dataset.n_rows(s) for s in res.dataset.splits},
           "best_epoch": m["best_epoch"], "stl_best_epoch": m.get("stl_best_epoch"),
           "test_mtl": {t: pick(m["test"], t) for t in types},
           "test_stl": {t: pick(m["stl"], t) for t in types if t in m.get("stl", {})},
           "gain": {t: {"metric": g["metric"], "gain": round(g["gain"], 4)} for t, g in m.get("gain", {}).items()},
           "device": res.device, "seconds": round(time.time() - t0, 1)}
    if args.json:
        print(json.dumps(out))
    else:
        for t in types:
            g = out["gain"].get(t, {})
            print(f"{t:<8} MTL {out['test_mtl'][t]}  STL {out['test_stl'].get(t)}  gain ({g.get('metric')}) {g.get('gain'):+.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
