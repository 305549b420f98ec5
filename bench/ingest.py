"""Ingestion + preparation benchmark: 1,000,000 synthetic interactions with users and items tables.

    .venv/bin/python bench/ingest.py [--rows 1000000] [--split random] [--negatives 0] [--json]

The tables are generated (``mtlrec.data.sample.synthetic_interactions``) and written as CSV to a
temporary folder; then a *fresh child process* runs ``load_data`` -> ``validate`` ->
``prepare`` on that folder, timing each stage. Peak memory is the child's peak resident set
(``VmHWM`` from /proc/self/status, cross-checked with ``getrusage(RUSAGE_CHILDREN).ru_maxrss``),
so it counts numpy/pandas buffers that tracemalloc would miss, and excludes the generator.
Targets (issue 2): <= 30 s and <= 2 GB on a 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_S = 30.0
TARGET_MB = 2048.0


def _spec():
    from mtlrec.data.roles import DataSpec
    return DataSpec(user_id="user_id", item_id="item_id", timestamp="timestamp",
                    labels={"click": "binary", "rating": "regression", "genres": "multilabel"},
                    categorical={"device": "context", "gender": "user", "country": "user"},
                    numeric={"age": "user", "price": "item"},
                    text={"title": "item"})


def _peak_mb_self() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(folder: str, split: str, negatives: float) -> None:
    """Runs in its own process: load -> validate -> prepare, prints one JSON line."""
    t0 = time.perf_counter()
    from mtlrec.data.readers import load_data
    from mtlrec.data.validate import validate
    from mtlrec.prep import PrepConfig, prepare
    t_import = time.perf_counter() - t0
    stages = {}
    t = time.perf_counter()
    raw = load_data([folder])
    stages["load_data"] = time.perf_counter() - t
    spec = _spec()
    t = time.perf_counter()
    cfg = PrepConfig(split=split, negative_ratio=negatives,
                     derived_labels=[{"name": "like", "source": "rating", "op": ">=", "threshold": 4}])
    report = validate(raw, spec, missing_items=cfg.missing_items)
    stages["validate"] = time.perf_counter() - t
    t = time.perf_counter()
    ds = prepare(raw, spec, cfg, validation=report)
    stages["prepare"] = time.perf_counter() - t
    rep = ds.meta["report"]
    out = {"imports_s": round(t_import, 3),
           "stages_s": {k: round(v, 3) for k, v in stages.items()},
           "prepare_breakdown_s": rep["timing_s"],
           "total_s": round(sum(stages.values()), 3),
           "peak_rss_mb": round(_peak_mb_self(), 1),
           "rows_in": int(len(raw.interactions)),
           "rows_out": rep["rows"], "users": rep["users"], "items": rep["items"],
           "fields": [f.name for f in ds.fields], "labels": [lab.name for lab in ds.labels]}
    print(json.dumps(out))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--split", default="random", choices=["random", "temporal", "cold_item"])
    ap.add_argument("--negatives", type=float, default=0.0, help="negative_ratio (default 0)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.split, args.negatives)
        return 0

    from mtlrec.data.sample import synthetic_interactions
    with tempfile.TemporaryDirectory(prefix="mtlrec-ingest-") as tmp:
        t = time.perf_counter()
        inter, users, items = synthetic_interactions(args.rows, args.users, args.items, seed=0)
        for name, df in (("interactions.csv", inter), ("users.csv", users), ("items.csv", items)):
            df.to_csv(Path(tmp) / name, index=False)
        gen_s = time.perf_counter() - t
        sizes = {p.name: round(p.stat().st_size / 1e6, 1) for p in Path(tmp).iterdir()}
        del inter, users, items
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", tmp, "--split", args.split,
               "--negatives", str(args.negatives)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        child_wall = time.perf_counter() - t
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        res = json.loads(proc.stdout.strip().splitlines()[-1])
    ru_children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    res.update({"generate_and_write_csv_s": round(gen_s, 2), "csv_mb": sizes,
                "child_process_wall_s": round(child_wall, 2),
                "peak_rss_mb_ru_maxrss": round(ru_children_mb, 1),
                "cpu_count": os.cpu_count(), "split": args.split, "negative_ratio": args.negatives,
                "target": {"seconds": TARGET_S, "mb": TARGET_MB},
                "within_target": bool(res["total_s"] <= TARGET_S and max(res["peak_rss_mb"], ru_children_mb)
                                      <= TARGET_MB)})
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{res['rows_in']:,} interactions, {res['users']:,} users, {res['items']:,} items "
              f"(CSV {sum(sizes.values()):.0f} MB), split={args.split}, negatives={args.negatives}")
        for k, v in res["stages_s"].items():
            print(f"  {k:<10} {v:7.2f} s")
        print("  prepare breakdown: " + ", ".join(f"{k} {v:.2f}s" for k, v in res["prepare_breakdown_s"].items()))
        print(f"  total      {res['total_s']:7.2f} s   (target <= {TARGET_S:.0f} s)")
        print(f"  peak RSS   {res['peak_rss_mb']:7.0f} MB  (ru_maxrss {ru_children_mb:.0f} MB; "
              f"target <= {TARGET_MB:.0f} MB)")
        print(f"  rows out: {res['rows_out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
