"""The lab's correlation sweep (Ma et al., KDD 2018, §3.2): does MMoE gain more over a shared
bottom when the tasks are less related?

    .venv/bin/python bench/lab.py [--json] [--ps 0.5,0.9,1.0] [--seeds 0,1,2] [--n 3000]
                                  [--epochs 12] [--threads 1] [--no-overhead] [--overhead-rounds 3]

For each p and seed one data set of ``mtlrec.data.sample.synthetic_tasks`` (16 inputs, two regression
tasks whose weight vectors have cosine p; 70/10/20 split) is trained on by shared-bottom, MMoE
and PLE with the lab's settings (``mtlrec.teaching.lab.LAB_MODELS`` / ``LAB_TRAIN``: small models of
similar size, Adam 1e-2, batch 64, no early stopping). The figure per architecture and p is the
test RMSE averaged over both tasks and the seeds.

The check (asserted here, the exit status is 1 when it fails): MMoE's advantage over
shared-bottom (shared-bottom RMSE - MMoE RMSE) is larger at the lowest p than at the highest.

Unless ``--no-overhead``, it also reports the cost of the training-dynamics logging (issue 14)
under ``"dynamics_overhead"``: ``bench/dynamics_overhead.py``'s ``measure`` (MMoE on the sample
data, ``dynamics_every`` on vs off; ``slowdown``, ``expected_slowdown``, ``within_10pct``, ...),
with ``--overhead-rounds`` rounds of 2 epochs. It does not change the exit status.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from mtlrec.teaching import lab
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object (progress goes to stderr)")
    ap.add_argument("--ps", default="0.5,0.9,1.0")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n", type=int, default=lab.LAB_N)
    ap.add_argument("--epochs", type=int, default=lab.LAB_TRAIN["epochs"])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--no-overhead", dest="overhead", action="store_false",
                    help="skip the training-dynamics logging overhead (bench/dynamics_overhead.py)")
    ap.add_argument("--overhead-rounds", type=int, default=3, help="on/off rounds of the overhead measurement")
    args = ap.parse_args(argv)
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if args.json else (lambda s: print(s, flush=True))
    ps = tuple(float(x) for x in args.ps.split(","))
    seeds = tuple(int(x) for x in args.seeds.split(","))
    t0 = time.perf_counter()

    def on_row(row, done, total):
        log(f"[{done}/{total}] p={row['p']:g} seed={row['seed']} {row['arch']:<13} test RMSE {row['metric']:.4f}"
            f" ({row['time_s']:.1f} s)")

    sw = lab.sweep(ps, seeds, n=args.n, epochs=args.epochs, threads=args.threads or None, on_row=on_row)
    order = sw["ordering"]
    overhead = None
    if args.overhead:
        log("training-dynamics logging overhead (bench/dynamics_overhead.py) ...")
        sys.path.insert(0, str(ROOT / "bench"))
        from dynamics_overhead import measure
        overhead = measure(rounds=args.overhead_rounds)
        log(f"dynamics overhead: slowdown {overhead['slowdown']:.1%} (whole runs), "
            f"expected {overhead['expected_slowdown']:.1%} (step timings)")
    result = {
        "benchmark": "lab correlation sweep (Ma et al. 2018, §3.2)",
        "settings": {"ps": list(ps), "seeds": list(seeds), "n": args.n, "epochs": args.epochs,
                     "models": lab.LAB_MODELS, "train": {**lab.LAB_TRAIN, "epochs": args.epochs, "dynamics_every": 0},
                     "metric": "test RMSE, mean of y1 and y2, mean over seeds (lower is better)"},
        "test_rmse": {a: {f"{p:g}": round(v, 4) for p, v in by_p.items()} for a, by_p in sw["summary"].items()},
        "mmoe_advantage": {f"{p:g}": round(v, 4) for p, v in sorted(order["advantage"].items())},
        "checks": {"paper_ordering": order["holds"],
                   "statement": f"shared-bottom RMSE - MMoE RMSE larger at p={order['low_p']:g} "
                                f"than at p={order['high_p']:g}"},
        "rows": [{k: r[k] for k in ("p", "seed", "arch", "metric", "time_s")} for r in sw["rows"]],
        **({"dynamics_overhead": overhead} if overhead is not None else {}),
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(json.dumps({k: result[k] for k in ("test_rmse", "mmoe_advantage", "checks", "dynamics_overhead")
                          if k in result}, indent=2))
    print(f"paper's ordering (MMoE's advantage larger for less related tasks): "
          f"{'HOLDS' if order['holds'] else 'DOES NOT HOLD'}", file=sys.stderr if args.json else sys.stdout)
    return 0 if order["holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
