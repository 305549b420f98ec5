"""Batch scoring: pairs/s of ``python -m mtlrec score`` and users/s of ``recommend --users``, with peak RSS.

    .venv/bin/python bench/score.py [--json] [--pairs 1000000] [--list-users 10000] [--items 10000]
        [--users 20000] [--rows 200000] [--arch mmoe] [--epochs 1] [--chunk-rows 100000] [--threads 1] [--seeds 0]

A synthetic catalogue (``bench/recommend_latency.py``'s: ``--items`` items with a category and a year,
``--users`` users with an age and a gender, ``--rows`` interactions; four tasks click, like, rating, genres)
and a model of the default size of ``--arch``, trained ``--epochs`` short epochs and saved as a run folder
in a temporary directory. Then, each in its own process (the real command line):

* ``score``: a CSV of ``--pairs`` (user, item) rows -- 1% unknown users, 1% unknown items, the rest random
  known pairs -- scored into a CSV (every task, the fused score);
* ``recommend --users``: the top 10 of ``--list-users`` users (all known) into a CSV;
* ``load``: the same process only loading the run (``load_run``): the floor of both RSS figures.

Reported: wall seconds, pairs/s (users/s) over the whole command (start-up and loading included) and as the
command itself reports it (``rows_per_s`` / ``users_per_s``: reading, scoring, writing), and each process's
peak RSS (``ru_maxrss`` of ``os.wait4``, read by a small launcher process: a child of this process
would start with this process's own peak); and in-process, for comparison, users/s of single-user
``mtlrec.serve.recommend.recommend`` over 300 users. ``--seeds``: the pairs are drawn per seed and the run
repeated (figures per seed, and the median).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def make_run(d: Path, args) -> Path:
    """The synthetic run folder (trained ``args.epochs`` epochs) under ``d``."""
    from recommend_latency import make_dataset

    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import run_training
    ds = make_dataset(args.users, args.items, args.rows)
    tasks = [{"name": n} for n in ("click", "like", "rating", "genres")]
    cfg = RunConfig.from_dict({"tasks": tasks, "model": {"arch": args.arch},
                               "train": {"epochs": args.epochs, "batch_size": 2048, "device": "cpu", "ranking_k": 0}})
    run_training(cfg, d / "run", dataset=ds)
    return d / "run"


def write_pairs(path: Path, n: int, n_users: int, n_items: int, seed: int) -> None:
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(seed)
    users = np.char.add("u", rng.integers(0, n_users, n).astype(str)).astype(object)
    items = np.char.add("m", rng.integers(0, n_items, n).astype(str)).astype(object)
    users[rng.random(n) < 0.01] = "new-user"
    items[rng.random(n) < 0.01] = "new-item"
    pd.DataFrame({"user": users, "item": items}).to_csv(path, index=False)


# A child process starts with its parent's peak RSS (Linux copies it at fork and keeps it across exec), and
# this benchmark's process holds a trained model and its data: each command is started by a small launcher
# process, which reads the command's own peak with os.wait4 and writes it to a file.
LAUNCHER = ("import os, subprocess, sys\n"
            "p = subprocess.Popen(sys.argv[2:])\n"
            "_, status, usage = os.wait4(p.pid, 0)\n"
            "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
            "sys.exit(os.waitstatus_to_exitcode(status))\n")


def timed(cmd: list[str]) -> dict:
    """Run ``cmd``; wall seconds, the peak RSS (MB) of that very process, its JSON output."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as tmp:
        rss, out, err = Path(tmp) / "rss", Path(tmp) / "out", Path(tmp) / "err"
        t = time.perf_counter()
        with open(out, "w") as o, open(err, "w") as e:
            code = subprocess.run([sys.executable, "-c", LAUNCHER, str(rss), *cmd], cwd=REPO, stdout=o, stderr=e,
                                  env=env).returncode
        wall = time.perf_counter() - t
        if code != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{err.read_text()[-2000:]}")
        text, peak_kb = out.read_text(), int(rss.read_text())
    doc = json.loads(text.strip().splitlines()[-1]) if text.strip() else {}
    return {"seconds": round(wall, 2), "max_rss_mb": round(peak_kb / 1024, 1), "out": doc}


def single_user_rate(run_dir: Path, threads: int, n: int = 300) -> float:
    import torch

    from mtlrec.runs.load import load_run
    if threads:
        torch.set_num_threads(threads)
    from mtlrec.serve.recommend import recommend
    run = load_run(run_dir)
    users = [str(u) for u in run.dataset.user_ids[:n]]
    recommend(run, users[0], k=10)                  # the item-side cache, built once
    t = time.perf_counter()
    for u in users:
        recommend(run, u, k=10)
    return len(users) / (time.perf_counter() - t)


def one_seed(d: Path, run_dir: Path, args, seed: int) -> dict:
    py = sys.executable
    threads = ["--threads", str(args.threads)] if args.threads else []
    pairs, users = d / f"pairs{seed}.csv", d / "users.csv"
    write_pairs(pairs, args.pairs, args.users, args.items, seed)
    import pandas as pd
    pd.DataFrame({"user": [f"u{j}" for j in range(args.list_users)]}).to_csv(users, index=False)
    load = timed([py, "-c", f"from mtlrec.runs.load import load_run; load_run({str(run_dir)!r}); print('{{}}')"])
    score = timed([py, "-m", "mtlrec", "score", "--run", str(run_dir), "--pairs", str(pairs), "--out",
                   str(d / "scores.csv"), "--chunk-rows", str(args.chunk_rows), "--json", *threads])
    rec = timed([py, "-m", "mtlrec", "recommend", "--run", str(run_dir), "--users", str(users), "--k", "10",
                 "--out", str(d / "recs.csv"), "--json", *threads])
    assert score["out"]["rows"] == args.pairs and rec["out"]["users"] == args.list_users
    return {"score": {"pairs": args.pairs, "seconds": score["seconds"],
                      "pairs_per_s": round(args.pairs / score["seconds"]),
                      "pairs_per_s_in_command": score["out"]["rows_per_s"], "max_rss_mb": score["max_rss_mb"],
                      "unknown_user_rows": score["out"]["unknown_user_rows"],
                      "unknown_item_rows": score["out"]["unknown_item_rows"]},
            "recommend_users": {"users": args.list_users, "seconds": rec["seconds"],
                                "users_per_s": round(args.list_users / rec["seconds"], 1),
                                "users_per_s_in_command": rec["out"]["users_per_s"], "max_rss_mb": rec["max_rss_mb"]},
            "load_only": {"seconds": load["seconds"], "max_rss_mb": load["max_rss_mb"]}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--list-users", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--arch", default="mmoe")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads of the commands (0: torch's default, all cores); 1 by default: on the "
                         "shared 2-core box two threads under load run ~10x slower")
    ap.add_argument("--seeds", default="0", help="comma list of seeds for the pairs drawn")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mtlrec-bench-score-") as tmp:
        d = Path(tmp)
        run_dir = make_run(d, args)
        per_seed = {}
        for s in seeds:
            per_seed[str(s)] = one_seed(d, run_dir, args, s)
            print(f"[score] seed {s}: {per_seed[str(s)]}", file=sys.stderr, flush=True)
        single = single_user_rate(run_dir, args.threads)
    med = (lambda part, key: statistics.median(r[part][key] for r in per_seed.values()))
    out = {"benchmark": "batch scoring", "arch": args.arch, "items": args.items, "users": args.users,
           "rows": args.rows, "pairs": args.pairs, "list_users": args.list_users, "chunk_rows": args.chunk_rows,
           "threads": args.threads or "default", "device": "cpu", "cpu_count": os.cpu_count(),
           "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
           "pairs_per_s": med("score", "pairs_per_s"), "score_max_rss_mb": med("score", "max_rss_mb"),
           "users_per_s": med("recommend_users", "users_per_s"),
           "recommend_users_max_rss_mb": med("recommend_users", "max_rss_mb"),
           "load_only_max_rss_mb": med("load_only", "max_rss_mb"),
           "single_user_recommend_users_per_s": round(single, 1), "seeds": per_seed}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"score: {out['pairs_per_s']:,.0f} pairs/s, peak RSS {out['score_max_rss_mb']} MB; "
              f"recommend --users: {out['users_per_s']:,.1f} users/s, peak RSS {out['recommend_users_max_rss_mb']} MB "
              f"(single-user recommend: {single:,.1f} users/s; loading alone: {out['load_only_max_rss_mb']} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
