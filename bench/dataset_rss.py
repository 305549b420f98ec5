"""Peak memory of opening a prepared dataset: arrays.npz read whole (formats 1/2) vs one
memory-mapped .npy per array (format 3, issue 16).

    python bench/dataset_rss.py --rows 5000000 [--dir /tmp/rss] [--batches 10] [--batch-size 1024] [--shards 4]

Writes one synthetic dataset (``--rows`` interactions: user/item tables, context fields, three
labels, row ids, event times) in both layouts, then, in a fresh process per layout, loads it,
makes ``to_device("cpu")`` and gathers ``--batches`` random train batches, and prints the peak
resident set (VmHWM) and the resident anonymous / file-backed memory at the end (from
/proc/self/status). File-backed pages of a memory map are page cache: shared between processes
that map the same files, and given back under memory pressure.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            out[k] = int(v.split()[0]) // 1024          # MiB
    return out


def make(rows: int, d: Path) -> None:
    from mtlrec.dataset import FeatureField, LabelField, PreparedDataset
    rng = np.random.default_rng(0)
    n_users, n_items = 100_000, 50_000
    fields = [FeatureField("user_id", "categorical", "user", vocab_size=n_users + 1),
              FeatureField("item_id", "categorical", "item", vocab_size=n_items + 1),
              FeatureField("age", "numeric", "user"),
              FeatureField("genre", "categorical", "item", vocab_size=20),
              FeatureField("hour", "categorical", "context", vocab_size=25),
              FeatureField("device", "categorical", "context", vocab_size=5),
              FeatureField("price", "numeric", "context"),
              FeatureField("dwell", "numeric", "context"),
              FeatureField("pos", "numeric", "context")]
    labels = [LabelField("click", "binary"), LabelField("like", "binary"), LabelField("rating", "regression")]
    cut = [0, int(rows * 0.8), int(rows * 0.9), rows]
    split_rows = {}
    for s, (a, b) in zip(("train", "valid", "test"), zip(cut, cut[1:])):
        n = b - a
        split_rows[s] = {"user_index": rng.integers(0, n_users, n), "item_index": rng.integers(0, n_items, n),
                         "hour": rng.integers(0, 25, n), "device": rng.integers(0, 5, n),
                         "price": rng.normal(size=n).astype(np.float32),
                         "dwell": rng.normal(size=n).astype(np.float32),
                         "pos": rng.normal(size=n).astype(np.float32),
                         "label:click": (rng.random(n) < 0.3).astype(np.float32),
                         "label:like": (rng.random(n) < 0.1).astype(np.float32),
                         "label:rating": rng.normal(size=n).astype(np.float32),
                         "row_id": np.arange(a, b, dtype=np.int64),
                         "event_time": rng.random(n) * 1e9}
    ds = PreparedDataset(fields, labels, split_rows,
                         {"user_id": np.arange(1, n_users + 1), "age": rng.normal(size=n_users).astype(np.float32)},
                         {"item_id": np.arange(1, n_items + 1), "genre": rng.integers(0, 20, n_items)},
                         [f"u{i}" for i in range(n_users)], [f"i{i}" for i in range(n_items)])
    ds.save(d / "mmap")
    # the same arrays as the format-2 layout wrote them: one arrays.npz, positional keys + index
    old = d / "npz"
    old.mkdir(parents=True, exist_ok=True)
    doc = json.loads((d / "mmap" / "dataset.json").read_text())
    np.savez(old / "arrays.npz", **{k: np.load(d / "mmap" / "arrays" / f"{k}.npy") for k in doc["arrays"]})
    doc["format"] = "mtlrec-dataset/2"
    (old / "dataset.json").write_text(json.dumps(doc))


def measure(folder: Path, batches: int, batch_size: int, shards: int = 1) -> dict:
    import torch
    from mtlrec.dataset import PreparedDataset
    t0 = time.perf_counter()
    before = _status()
    ds = PreparedDataset.load(folder)
    data = ds.to_device("cpu")
    after_load = _status()
    g = torch.Generator().manual_seed(0)
    n = data.n_rows("train") // shards           # shards > 1: the first of that many contiguous row ranges
    total = 0.0
    for _ in range(batches):
        feats, labels = data.batch("train", torch.randint(0, n, (batch_size,), generator=g))
        total += float(labels["click"].sum()) + float(feats["price"].sum())
    end = _status()
    return {"layout": folder.name, "shards": shards, "start_MiB": before["VmRSS"], "after_load_MiB": after_load["VmRSS"],
            "peak_MiB": end["VmHWM"], "end_anon_MiB": end["RssAnon"], "end_file_MiB": end["RssFile"],
            "seconds": round(time.perf_counter() - t0, 2), "check": total}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--dir", default="/tmp/mtlrec-dataset-rss")
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--shards", type=int, default=1,
                    help="also draw the batches from the first of this many contiguous row ranges "
                         "(what one of several processes reads when each trains on its own range)")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--make", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.make:
        make(args.rows, Path(args.make))
        return 0
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args.batches, args.batch_size, args.shards)))
        return 0
    d = Path(args.dir)
    shutil.rmtree(d, ignore_errors=True)
    # made in a process of its own, so that the measuring processes start clean
    subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--make", str(d)], check=True)
    size = {p.name: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) // 2**20 for p in (d / "npz", d / "mmap")}
    print(f"{args.rows:,} rows; on disk: npz {size['npz']} MiB, npy files {size['mmap']} MiB")
    for shards in sorted({1, args.shards}):
        for layout in ("npz", "mmap"):
            out = subprocess.run([sys.executable, __file__, "--measure", str(d / layout), "--batches",
                                  str(args.batches), "--batch-size", str(args.batch_size), "--shards", str(shards)],
                                 check=True, capture_output=True, text=True)
            print(out.stdout.strip().splitlines()[-1])
    shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
