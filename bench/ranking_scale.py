"""The ranking phase at the end of a training on a large catalogue: time and peak extra memory.

    .venv/bin/python bench/ranking_scale.py [--json] [--items 200000] [--users 50000]
        [--rows 2000000] [--arch mmoe] [--ranking-users auto] [--repo PATH]

A synthetic catalogue (``--items`` items with a category and a year; ``--users`` users with an
age and a gender; ``--rows`` interactions, split 80/10/10 at random; labels click, like (binary)
and rating, as the sample workspace's tasks) and a model of the default size for ``--arch``
(randomly initialised: the ranking's cost does not depend on the weights). Timed: exactly what
`mtlrec.training.pipeline.run_training` does after the test evaluation -- ``rank_test`` (and,
in code before issue 27, ``rank_test_baselines``): the model's ranking of the test users over the
whole catalogue and the popularity baseline on the same users, with ``train.ranking_users`` =
``--ranking-users`` (a number, or "auto", or "default" = the config's default).

Peak extra memory: the process's peak resident set (VmHWM, reset through /proc/self/clear_refs
when the phase starts) minus its resident set just before the phase. ``--repo`` runs another
checkout's mtlrec (e.g. the base commit, for the "before" figure). Aim (issue 27): <= 30 s and
<= 500 MB extra at 200,000 items on the 2-core box.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--arch", default="mmoe")
    ap.add_argument("--ranking-users", default="default", help='a number, "auto", or "default" (the config default)')
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--repo", default=str(HERE.parent), help="the mtlrec checkout to measure")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(args.repo).resolve()))
    sys.path.insert(1, str(HERE))
    import torch

    import mtlrec
    from mtlrec.config import RunConfig
    from mtlrec.models import build_model
    from mtlrec.tasks import tasks_from_config
    from mtlrec.training import pipeline
    from recommend_latency import make_dataset
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    ds = make_dataset(args.users, args.items, args.rows)
    train = {"ranking_k": args.k, "device": "cpu", "seed": 0}
    if args.ranking_users != "default":
        train["ranking_users"] = args.ranking_users if args.ranking_users == "auto" else int(args.ranking_users)
    tasks = [{"name": "click"}, {"name": "like"}, {"name": "rating"}]
    cfg = RunConfig.from_dict({"tasks": tasks, "model": {"arch": args.arch}, "train": train})
    specs = tasks_from_config(cfg.tasks, ds)
    torch.manual_seed(0)
    model = build_model(args.arch, ds.fields, specs).eval()
    data = ds.to_device("cpu")
    build_s = time.perf_counter() - t0
    steps = []

    def on_progress(done, total):
        steps.append((done, total))
    rss_before = _status_kb("VmRSS")
    peak_reset = _reset_peak()
    t = time.perf_counter()
    out = pipeline.rank_test(cfg, model, data, specs, on_progress=on_progress)
    ranking, baseline, info = (out.get("ranking"), out.get("ranking_baseline"), out.get("ranking_info")) \
        if isinstance(out, dict) and "ranking" in out else (out, None, None)
    if baseline is None and hasattr(pipeline, "rank_test_baselines"):        # before issue 27
        baseline = pipeline.rank_test_baselines(cfg, data, specs)
    seconds = time.perf_counter() - t
    peak_kb = _status_kb("VmHWM")
    users_total = steps[-1][1] if steps else None
    res = {"benchmark": "ranking phase at a large catalogue", "repo": str(Path(args.repo).resolve()),
           "mtlrec_file": mtlrec.__file__, "arch": args.arch, "items": args.items, "users": args.users,
           "rows": args.rows, "k": args.k, "ranking_users_setting": args.ranking_users,
           "users_ranked": (info or {}).get("users", users_total), "of_users": (info or {}).get("of_users"),
           "seconds": round(seconds, 2), "peak_extra_mb": round((peak_kb - rss_before) / 1024, 1) if peak_reset else None,
           "rss_before_mb": round(rss_before / 1024, 1), "setup_s": round(build_s, 1),
           "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
           "load_avg_1min": round(os.getloadavg()[0], 2),
           "ranking": ranking, "ranking_baseline": baseline, "aim": {"seconds": 30, "peak_extra_mb": 500}}
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{args.arch}, {args.items:,} items: ranked {res['users_ranked']} users in {res['seconds']} s, "
              f"peak extra {res['peak_extra_mb']} MB (load {res['load_avg_1min']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
