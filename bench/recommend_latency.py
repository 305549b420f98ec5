"""Recommendation latency: top 10 of 10,000 items for one user, on CPU, full path vs fast path.

    .venv/bin/python bench/recommend_latency.py [--json] [--items 10000] [--calls 200]
        [--archs shared_bottom,mmoe,ple] [--threads 1,0] [--epochs 1] [--history none,mean,attention]

A synthetic catalogue (10,000 items with a category and a year, 2,000 users with an age
and a gender, 100,000 interactions) and a model of the default size with four tasks
(click, like, rating, genres). Each call is ``mtlrec.serve.recommend.recommend(run, user, k=10)``:
score all items, leave out the user's items, top 10, per-task values and item info.
Two paths: ``full`` (``fast=False``: one forward pass over the candidate features of all
items) and ``fast`` (default: the item side of the input layers cached per model, the user
row added per request; `mtlrec.serve.recommend.item_split`; since issue 25 in two stages: the tasks of
the fused score over the catalogue, the multilabel task for the top k only). The model is trained for ``--epochs``
short epochs first (0: random weights; latency does not depend on the weights).

Reported per architecture and thread count (``--threads``: a comma list, 0 = torch's
default, i.e. all cores): median and p95 over calls for different users, wall clock and the
process CPU time (steadier on a shared machine), the speed-up of the fast path, and the
identical-results check: the max abs difference of every task's outputs (probabilities,
regression values, multilabel classes) between the two paths, and whether the top-10 lists
match. Aim (issue 15): <= 10 ms median on one thread. ``--history``: also with the user's
behaviour history as input (``model.history``, length ``--history-length``, each user's training
interactions; "none" = without), each architecture once per setting (results keyed
``arch+history-mean`` ...): the attention block is computed per request over the catalogue.
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


def _stats(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {"median_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
            "max_ms": round(ms[-1], 2)}


def time_path(run, users, k: int, fast: bool) -> dict:
    from mtlrec.serve.recommend import recommend
    for u in users[:5]:                           # warm-up (device tensors, the item cache)
        recommend(run, u, k=k, fast=fast)
    wall, cpu = [], []
    for u in users:
        t, c = time.perf_counter(), time.process_time()
        recs = recommend(run, u, k=k, fast=fast)
        cpu.append((time.process_time() - c) * 1000)
        wall.append((time.perf_counter() - t) * 1000)
        assert len(recs) == k
    out = _stats(wall)
    out["cpu_median_ms"] = round(statistics.median(cpu), 2)
    return out


def same_results(run, users, k: int) -> dict:
    """Max abs difference of every task's outputs between the paths, and whether the lists match."""
    import numpy as np

    from mtlrec.serve.recommend import recommend, score_items, user_index
    worst, by_task, lists_match = 0.0, {}, True
    for u in users:
        i = user_index(run, u)
        fast, full = score_items(run, i), score_items(run, i, fast=False)
        for t in run.tasks:
            d = float(np.abs(fast[t.name].astype(np.float64) - full[t.name]).max())
            by_task[t.name] = max(by_task.get(t.name, 0.0), d)
            worst = max(worst, d)
        a = [r["item"] for r in recommend(run, u, k=k)]
        b = [r["item"] for r in recommend(run, u, k=k, fast=False)]
        lists_match &= a == b
    return {"max_abs_diff": worst, "max_abs_diff_by_task": by_task, "top_k_lists_match": bool(lists_match),
            "users_checked": len(users), "within_1e-5": worst <= 1e-5}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--items", type=int, default=10000)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--archs", default="shared_bottom,mmoe,ple")
    ap.add_argument("--threads", default="1,0", help="comma list of torch CPU thread counts (0 = torch default)")
    ap.add_argument("--epochs", type=int, default=1, help="training epochs before timing (0 = random weights)")
    ap.add_argument("--paths", default="full,fast", help="which paths to time: full, fast or both")
    ap.add_argument("--history", default="none", help="comma list of none, mean, attention (model.history)")
    ap.add_argument("--history-length", type=int, default=20)
    args = ap.parse_args(argv)
    import os

    import torch
    default_threads = torch.get_num_threads()
    thread_counts = [int(t) or default_threads for t in args.threads.split(",")]
    from mtlrec.config import RunConfig
    from mtlrec.runs.load import Run, run_from_result
    ds = make_dataset(args.users, args.items, args.rows)
    tasks = [{"name": n} for n in ("click", "like", "rating", "genres")]
    users = [ds.user_ids[i] for i in range(0, args.users, max(1, args.users // args.calls))][:args.calls]
    paths = [p for p in args.paths.split(",") if p]
    load_before = os.getloadavg()[0]
    results = {}
    settings = [(a, h) for a in args.archs.split(",") for h in args.history.split(",")]
    for arch, hist in settings:
        model_cfg = {"arch": arch}
        if hist != "none":
            model_cfg["history"] = {"length": args.history_length, "encoder": hist}
        name = arch if hist == "none" else f"{arch}+history-{hist}"
        if args.epochs > 0:
            from mtlrec.training.pipeline import run_training
            cfg = RunConfig.from_dict({"tasks": tasks, "model": model_cfg,
                                       "train": {"epochs": args.epochs, "batch_size": 2048, "device": "cpu",
                                                 "ranking_k": 0}})   # latency only: no test ranking
            run = run_from_result(run_training(cfg, dataset=ds))
        else:
            from mtlrec.models import build_model
            from mtlrec.prep.history import with_history
            from mtlrec.tasks import tasks_from_config
            cfg = RunConfig.from_dict({"tasks": tasks, "model": model_cfg})
            ds_h = with_history(ds, cfg.history)
            specs = tasks_from_config(tasks, ds_h)
            torch.manual_seed(0)
            run = Run(config=None, dataset=ds_h, model=build_model(arch, ds_h.fields, specs, **cfg.hparams).eval(),
                      history=None, metrics={}, run_dir=None, tasks=specs)
        r = {}
        for n in thread_counts:
            torch.set_num_threads(n)
            per = {p: time_path(run, users, args.k, fast=p == "fast") for p in paths}
            if "full" in per and "fast" in per:
                per["speedup"] = round(per["full"]["median_ms"] / per["fast"]["median_ms"], 2)
                per["cpu_speedup"] = round(per["full"]["cpu_median_ms"] / per["fast"]["cpu_median_ms"], 2)
            if "fast" in per:
                per["fast"]["meets_10ms_aim"] = per["fast"]["median_ms"] <= 10
            r[f"threads={n}"] = per
            print(f"[latency] {name} threads={n}: {per}", file=sys.stderr, flush=True)
        torch.set_num_threads(default_threads)
        r["check"] = same_results(run, users[:20], args.k)
        print(f"[latency] {name} check: {r['check']}", file=sys.stderr, flush=True)
        results[name] = r
    out = {"benchmark": "recommend latency", "items": args.items, "users": args.users, "k": args.k,
           "calls": len(users), "threads": thread_counts, "device": "cpu", "epochs": args.epochs,
           "cpu_count": os.cpu_count(), "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
           "results": results, "aim_ms": 10}
    if args.json:
        print(json.dumps(out))
    else:
        for arch, r in results.items():
            for key, per in r.items():
                if key == "check":
                    continue
                line = ", ".join(f"{p} median {v['median_ms']:.2f} ms (p95 {v['p95_ms']:.2f}, "
                                 f"cpu {v['cpu_median_ms']:.2f})" for p, v in per.items() if isinstance(v, dict))
                print(f"{arch} {key}: {line}" + (f", speed-up {per['speedup']}x" if "speedup" in per else ""))
            c = r["check"]
            print(f"{arch}: max abs diff {c['max_abs_diff']:.2e}, top-{args.k} lists match: {c['top_k_lists_match']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
