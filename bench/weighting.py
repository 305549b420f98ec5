"""Loss-weighting benchmark: every weighting method on the sample data and on Census-Income.

    .venv/bin/python bench/weighting.py [--json] [--methods static,pcgrad,mgda] [--datasets sample,census]
                                        [--seeds 0] [--epochs N] [--device cpu] [--threads 1]

Per dataset, one model per method (the dataset's architecture and training defaults, only
``train.weighting`` changes, same seed), per-task test metrics with the best-by-validation
weights, Δm (%) against single-task baselines (LibMTL's Δm, `mtlrec.runs.compare.delta_m`; the
baselines are trained once per dataset with ``train.baselines`` in the first method's run, same
budget; put ``static`` first: with one task every method but ``uncertainty`` trains on the plain
loss) and the mean training time per epoch (wall clock of this process: on a shared machine, noisy).
With several ``--seeds`` (the training seed; the split stays fixed) every method and the baselines
are trained once per seed and the figures are the means over the seeds (per seed under ``"seeds"``;
``delta_m_std``: the standard deviation of Δm over them);
``s_per_epoch`` is the median wall-clock epoch of a run, then the median over the seeds;
``cpu_s_per_epoch`` the same in CPU seconds of this process (training and validation of the
multi-task model, its first epoch left out), which other work on a shared machine hardly moves;
``cost_vs_static`` is a method's ``cpu_s_per_epoch`` over static's.

* sample: ``sample_data/config_mmoe.json`` as shipped (MMoE; click, like, rating, genres);
* census: ``../shared/datasets/census-income-kdd`` loaded and split as ``bench/census.py`` does
  (80/10/10, seed 2024; income and never_married, MMoE), early stopping on the income AUC;
* movielens: ``../shared/datasets/ml-latest-small`` (100,836 ratings) with the rows and features of
  ``bench/quality.py`` (like = rating >= 4 AUC, rating RMSE; user, item, genre, decade; 80/10/10 with
  split seed 2024), MMoE with mtlrec's defaults. ``mtlrec.weighting.facts.MEASURED`` holds its
  figures (``.venv/bin/python bench/weighting.py --datasets movielens --seeds 0,1,2``), shown beside
  each method on the Tasks & model page.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

CENSUS = REPO.parent / "shared" / "datasets" / "census-income-kdd"
CENSUS_TASKS = [{"name": "income", "type": "binary", "label": "income_50k", "metric": "auc"},
                {"name": "never_married", "type": "binary", "label": "never_married", "metric": "auc"}]


def load(name: str, args):
    """(RunConfig, PreparedDataset) of a benchmark dataset."""
    from mtlrec.config import RunConfig
    if name == "sample":
        from mtlrec.training.pipeline import build_dataset
        cfg = RunConfig.load(REPO / "sample_data" / "config_mmoe.json")
        return cfg, build_dataset(cfg)
    if name == "census":
        from mtlrec.data.readers import load_census
        from mtlrec.prep import PrepConfig, prepare
        raw, spec = load_census(args.census_data)
        ds = prepare(raw, spec, PrepConfig(split="random", valid_frac=0.1, test_frac=0.1, seed=2024))
        cfg = RunConfig.from_dict({"tasks": CENSUS_TASKS, "model": {"arch": "mmoe"},
                                   "train": {"early_stopping": {"task": "income"}}})
        return cfg, ds
    if name == "movielens":
        from quality import run_config, write_movielens
        from mtlrec.training.pipeline import build_dataset
        cfg = run_config(write_movielens(Path(args.work), 2024), "mmoe", 0)
        return cfg, build_dataset(cfg)
    raise SystemExit(f"unknown dataset {name!r}; choose sample, census or movielens")


def with_train(cfg, **train):
    from mtlrec.config import RunConfig
    d = cfg.to_dict()
    d["train"] = {**d.get("train", {}), **train}
    return RunConfig.from_dict(d)


def run_method(cfg, ds, method: str, seed: int, baselines: bool, train: dict):
    """(row, single-task reference or None) of one method's run with training seed ``seed``."""
    from mtlrec.runs.compare import delta_m
    from mtlrec.training.pipeline import run_training
    cpu_marks = []          # process CPU time at the end of each multi-task epoch (robust to other work)
    t = time.time()
    res = run_training(with_train(cfg, weighting=method, baselines=baselines, seed=seed, **train), dataset=ds,
                       on_epoch=lambda *a, **k: cpu_marks.append(time.process_time()))
    secs = time.time() - t
    cpu = sorted(b - a for a, b in zip(cpu_marks, cpu_marks[1:]))
    ref = None
    if baselines:   # the single-task baselines, trained once per seed with the first method's run
        ref = {tk.name: (tk.metric, res.metrics["stl"].get(tk.name, {}).get(tk.metric)) for tk in res.tasks}
    vals = {tk.name: (tk.metric, res.metrics["test"].get(tk.name, {}).get(tk.metric)) for tk in res.tasks}
    ep = sorted(e["time_s"] for e in res.history.epochs if "time_s" in e)
    return {"test": {k: v for k, (_, v) in vals.items() if v is not None}, "vals": vals,
            "best_epoch": res.metrics["best_epoch"], "epochs_run": res.metrics["epochs_run"],
            "s_per_epoch": ep[len(ep) // 2] if ep else None, "cpu_s_per_epoch": cpu[len(cpu) // 2] if cpu else None,
            "total_s": secs}, ref


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _std(xs):
    """The sample standard deviation over the seeds (None with fewer than two)."""
    import statistics
    xs = [x for x in xs if x is not None]
    return round(statistics.stdev(xs), 2) if len(xs) > 1 else None


def _median(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


def summarize(per_seed: dict, methods: list[str]) -> dict:
    """{method: means over the seeds} from {seed: {method: row with "delta_m_pct"}}."""
    rows = {}
    for m in methods:
        rs = [per_seed[s][m] for s in per_seed if m in per_seed[s]]
        tasks = list(rs[0]["test"]) if rs else []
        rows[m] = {"test": {k: round(_mean([r["test"].get(k) for r in rs]), 4) for k in tasks},
                   "delta_m_pct": None if _mean([r["delta_m_pct"] for r in rs]) is None
                   else round(_mean([r["delta_m_pct"] for r in rs]), 2),
                   "delta_m_std": _std([r["delta_m_pct"] for r in rs]),
                   "best_epoch": [r["best_epoch"] for r in rs], "epochs_run": [r["epochs_run"] for r in rs],
                   "s_per_epoch": round(_median([r["s_per_epoch"] for r in rs]), 2),
                   "cpu_s_per_epoch": round(_median([r["cpu_s_per_epoch"] for r in rs]), 3),
                   "total_s": round(sum(r["total_s"] for r in rs), 1)}
    static = (rows.get("static") or {}).get("cpu_s_per_epoch")
    for r in rows.values():
        r["cost_vs_static"] = round(r["cpu_s_per_epoch"] / static, 2) if static else None
    return rows


def bench_dataset(name: str, args, methods: list[str], seeds: list[int], log) -> dict:
    from mtlrec.runs.compare import delta_m
    t = time.time()
    base_cfg, ds = load(name, args)
    log(f"{name}: {ds.n_rows('train')}/{ds.n_rows('valid')}/{ds.n_rows('test')} rows ({time.time() - t:.1f}s)")
    train = {"device": args.device, "ranking_k": 0, "log_every": 100}
    if args.epochs is not None:
        train["epochs"] = args.epochs
    per_seed, refs = {}, {}
    for seed in seeds:
        per_seed[seed], ref = {}, None
        for i, method in enumerate(methods):
            row, r = run_method(base_cfg, ds, method, seed, i == 0, train)
            ref = r if i == 0 else ref
            dm = delta_m(row.pop("vals"), ref)
            row["delta_m_pct"] = dm
            per_seed[seed][method] = row
            log(f"{name} seed {seed} {method}: Δm {dm if dm is None else round(dm, 2)} %, "
                f"{row['s_per_epoch']:.2f} s/epoch ({row['cpu_s_per_epoch'] or 0:.2f} CPU s), "
                f"best epoch {row['best_epoch']}")
        refs[seed] = {k: v for k, (_, v) in (ref or {}).items()}
    tasks = list(next(iter(refs.values()), {}))
    return {"arch": base_cfg.arch, "split": {s: ds.n_rows(s) for s in ("train", "valid", "test")},
            "metrics": {t["name"]: t.get("metric") for t in base_cfg.tasks}, "seeds_trained": seeds,
            "single_task": {k: round(_mean([refs[s].get(k) for s in refs]), 4) for k in tasks},
            "methods": summarize(per_seed, methods),
            "seeds": {str(s): {m: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                               for m, r in rows.items()} for s, rows in per_seed.items()}}


def main(argv=None) -> int:
    from mtlrec.weighting import WEIGHTINGS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--methods", default=",".join(WEIGHTINGS), help="comma-separated; default: all")
    ap.add_argument("--datasets", default="sample,census")
    ap.add_argument("--seeds", default="0", help="training seeds, comma-separated (figures: their means)")
    ap.add_argument("--epochs", type=int, default=None, help="default: mtlrec's (an early-stopping cap)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--census-data", default=str(CENSUS))
    ap.add_argument("--work", default=str(REPO / "bench" / "results" / "quality"),
                    help="where the movielens input files are written (as bench/quality.py)")
    args = ap.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in WEIGHTINGS]
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; choose from {', '.join(WEIGHTINGS)}")
    seeds = [int(x) for x in args.seeds.split(",") if x]

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)

    def log(s):
        print(f"[weighting] {s}", file=sys.stderr, flush=True)

    t0 = time.time()
    out = {"benchmark": "loss weighting", "device": args.device, "threads": torch.get_num_threads(),
           "datasets": {}}
    for name in [d for d in args.datasets.split(",") if d]:
        out["datasets"][name] = bench_dataset(name, args, methods, seeds, log)
    out["total_s"] = round(time.time() - t0, 1)
    if args.json:
        print(json.dumps(out))
    else:
        for name, d in out["datasets"].items():
            print(f"{name} ({d['arch']}; seeds {d['seeds_trained']}; test "
                  f"{', '.join(f'{k} {m}' for k, m in d['metrics'].items())}):")
            print(f"  {'single-task':<12} " + "  ".join(f"{k} {v}" for k, v in d["single_task"].items()))
            for m, r in d["methods"].items():
                print(f"  {m:<12} " + "  ".join(f"{k} {v:.4f}" for k, v in r["test"].items())
                      + f"  Δm {r['delta_m_pct']}%  {r['s_per_epoch']} s/epoch, {r['cpu_s_per_epoch']} CPU s"
                      f" ({r['cost_vs_static']}x static)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
