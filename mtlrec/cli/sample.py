"""``python -m mtlrec sample``: write the shipped sample data, or synthetic data.

    python -m mtlrec sample --out sample_data [--seed 42]
    python -m mtlrec sample --synthetic --p 0.5 --out synth [--n 10000 --dim 16]
    python -m mtlrec sample --interactions 1000000 --out big   (large tables for benchmarks)
"""
from __future__ import annotations

import sys
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--synthetic", action="store_true",
                        help="two regression tasks with controllable correlation p (Ma et al., KDD 2018)")
    parser.add_argument("--p", type=float, default=0.5, help="task correlation for --synthetic (-1..1)")
    parser.add_argument("--n", type=int, default=10_000, help="rows for --synthetic")
    parser.add_argument("--dim", type=int, default=16, help="input dimension for --synthetic")
    parser.add_argument("--interactions", type=int, default=0,
                        help="write large synthetic interactions/users/items tables with this many rows")


def run(args) -> int:
    from mtlrec.errors import DiskFullError
    try:
        return _write(args)
    except DiskFullError as e:          # no half-written file is left (mtlrec.diskio)
        print(f"mtlrec sample: {e}", file=sys.stderr)
        return 2


def _write(args) -> int:
    from mtlrec.data import sample
    from mtlrec.diskio import write_atomic

    out = Path(args.out)
    if args.synthetic:
        if not -1.0 <= args.p <= 1.0:
            print("mtlrec sample: --p must be between -1 and 1", file=sys.stderr)
            return 2
        df = sample.synthetic_tasks(n=args.n, dim=args.dim, p=args.p, seed=args.seed)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "synthetic.csv"
        write_atomic(path, lambda fh: df.to_csv(fh, index=False), text=True)
        corr = float(df["y1"].corr(df["y2"]))
        print(f"wrote {path} ({len(df)} rows, label correlation {corr:.3f} at p={args.p})")
        return 0
    if args.interactions:
        inter, users, items = sample.synthetic_interactions(args.interactions, seed=args.seed)
        out.mkdir(parents=True, exist_ok=True)
        for name, df in (("interactions.csv", inter), ("users.csv", users), ("items.csv", items)):
            write_atomic(out / name, lambda fh, df=df: df.to_csv(fh, index=False), text=True)
        print(f"wrote {out}/interactions.csv ({len(inter)} rows), users.csv ({len(users)}), "
              f"items.csv ({len(items)})")
        return 0
    paths = sample.write_sample(out, seed=args.seed)
    total = sum(p.stat().st_size for p in paths.values())
    for name, p in paths.items():
        print(f"wrote {p} ({p.stat().st_size / 1e6:.2f} MB)")
    print(f"total {total / 1e6:.2f} MB")
    return 0
