"""Recommendation latency: top 10 of 10,000 items for one user, on CPU.

    .venv/bin/python bench/recommend_latency.py [--json] [--items 10000] [--calls 200]
        [--archs shared_bottom,mmoe,ple] [--threads 0]

A synthetic catalogue (10,000 items with a category and a year, 2,000 users with an age
and a gender, 100,000 interactions) and a model of the default size with four tasks
(click, like, rating, genres). Each call is ``mtlrec.recommend.recommend(run, user, k=10)``:
one batched forward pass over all items, leave out the user's items, top 10, per-task
values and item info. The model is trained for one short epoch first (latency does not
depend on the weights). Reported per architecture (default sizes): median and p95 over
calls for different users. ``--threads 0`` (default) leaves torch's own thread count (all
cores), ``--threads 1`` measures one core. Target (issue 3): <= 20 ms on CPU.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_dataset(n_users: int, n_items: int, n_rows: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    from mtlrec.dataset import FeatureField, LabelField, PreparedDataset
    rng = np.random.default_rng(seed)
    genres = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Animation"]
    ui = rng.integers(0, n_users, n_rows)
    ii = rng.integers(0, n_items, n_rows)
    item_genres = (rng.random((n_items, len(genres))) < 0.25).astype(np.float32)
    cut = [int(n_rows * 0.8), int(n_rows * 0.9)]
    parts = {"train": slice(0, cut[0]), "valid": slice(cut[0], cut[1]), "test": slice(cut[1], n_rows)}
    click = (rng.random(n_rows) < 0.5).astype(np.float32)
    rows = {s: {"user_index": ui[p], "item_index": ii[p], "label:click": click[p],
                "label:like": (click[p] * (rng.random(len(ui[p])) < 0.5)).astype(np.float32),
                "label:rating": rng.uniform(1, 5, len(ui[p])).astype(np.float32),
                "label:genres": item_genres[ii[p]]} for s, p in parts.items()}
    fields = [FeatureField("user_id", "categorical", "user", "user id", vocab_size=n_users + 1),
              FeatureField("age", "numeric", "user"),
              FeatureField("gender", "categorical", "user", vocab_size=3),
              FeatureField("item_id", "categorical", "item", "item id", vocab_size=n_items + 1),
              FeatureField("category", "categorical", "item", vocab_size=21),
              FeatureField("year", "numeric", "item")]
    labels = [LabelField("click", "binary"), LabelField("like", "binary"), LabelField("rating", "regression"),
              LabelField("genres", "multilabel", genres)]
    user_table = {"user_id": np.arange(1, n_users + 1), "age": rng.normal(size=n_users).astype(np.float32),
                  "gender": rng.integers(1, 3, n_users)}
    item_table = {"item_id": np.arange(1, n_items + 1), "category": rng.integers(1, 21, n_items),
                  "year": rng.normal(size=n_items).astype(np.float32)}
    item_ids = np.array([f"m{j}" for j in range(n_items)])
    info = pd.DataFrame({"item_id": item_ids, "title": [f"Movie number {j}" for j in range(n_items)]})
    return PreparedDataset(fields, labels, rows, user_table, item_table, [f"u{j}" for j in range(n_users)],
                           item_ids, {"context_defaults": {}}, item_info=info)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--items", type=int, default=10000)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--archs", default="shared_bottom,mmoe,ple")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = ap.parse_args(argv)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    from mtlrec.config import RunConfig
    from mtlrec.recommend import recommend
    from mtlrec.runs import run_from_result
    from mtlrec.training.pipeline import run_training
    ds = make_dataset(args.users, args.items, args.rows)
    tasks = [{"name": n} for n in ("click", "like", "rating", "genres")]
    users = [ds.user_ids[i] for i in range(0, args.users, max(1, args.users // args.calls))][:args.calls]
    results = {}
    for arch in args.archs.split(","):
        cfg = RunConfig.from_dict({"tasks": tasks, "model": {"arch": arch},
                                   "train": {"epochs": 1, "batch_size": 2048, "device": "cpu",
                                             "ranking_k": 0}})   # latency only: no test ranking
        run = run_from_result(run_training(cfg, dataset=ds))
        for u in users[:5]:                       # warm-up (caches the device tensors)
            recommend(run, u, k=args.k)
        times = []
        for u in users:
            t = time.perf_counter()
            recs = recommend(run, u, k=args.k)
            times.append((time.perf_counter() - t) * 1000)
            assert len(recs) == args.k
        times.sort()
        med = statistics.median(times)
        results[arch] = {"median_ms": round(med, 2), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
                         "max_ms": round(times[-1], 2), "pass": med <= 20}
        print(f"[latency] {arch}: {results[arch]}", file=sys.stderr, flush=True)
    out = {"benchmark": "recommend latency", "items": args.items, "users": args.users, "k": args.k,
           "calls": len(users), "threads": torch.get_num_threads(), "device": "cpu",
           "results": results, "target_ms": 20}
    if args.json:
        print(json.dumps(out))
    else:
        for arch, r in results.items():
            print(f"{arch}: top {args.k} of {args.items} items: median {r['median_ms']:.2f} ms, "
                  f"p95 {r['p95_ms']:.2f} ms (target <= 20 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
