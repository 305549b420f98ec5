"""Loss-weighting benchmark: every weighting method on the sample data and on Census-Income.

    .venv/bin/python bench/weighting.py [--json] [--methods static,pcgrad,mgda] [--datasets sample,census]
                                        [--epochs N] [--device cpu] [--threads 1]

Per dataset, one model per method (the dataset's architecture and training defaults, only
``train.weighting`` changes, same seed), per-task test metrics with the best-by-validation
weights, Δm (%) against single-task baselines (LibMTL's Δm, `mtlrec.runlib.delta_m`; the
baselines are trained once per dataset with ``train.baselines`` in the first method's run, same
budget; put ``static`` first: with one task every method but ``uncertainty`` trains on the plain
loss) and the mean training time per epoch (wall clock of this process: on a shared machine, noisy).

* sample: ``sample_data/config_mmoe.json`` as shipped (MMoE; click, like, rating, genres);
* census: ``../shared/datasets/census-income-kdd`` loaded and split as ``bench/census.py`` does
  (80/10/10, seed 2024; income and never_married, MMoE), early stopping on the income AUC.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

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
        from mtlrec.data.census import load_census
        from mtlrec.prep import PrepConfig, prepare
        raw, spec = load_census(args.census_data)
        ds = prepare(raw, spec, PrepConfig(split="random", valid_frac=0.1, test_frac=0.1, seed=2024))
        cfg = RunConfig.from_dict({"tasks": CENSUS_TASKS, "model": {"arch": "mmoe"},
                                   "train": {"early_stopping": {"task": "income"}}})
        return cfg, ds
    raise SystemExit(f"unknown dataset {name!r}; choose sample or census")


def with_train(cfg, **train):
    from mtlrec.config import RunConfig
    d = cfg.to_dict()
    d["train"] = {**d.get("train", {}), **train}
    return RunConfig.from_dict(d)


def main(argv=None) -> int:
    from mtlrec.weighting import WEIGHTINGS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--methods", default=",".join(WEIGHTINGS), help="comma-separated; default: all")
    ap.add_argument("--datasets", default="sample,census")
    ap.add_argument("--epochs", type=int, default=None, help="default: mtlrec's (an early-stopping cap)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--census-data", default=str(CENSUS))
    args = ap.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in WEIGHTINGS]
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; choose from {', '.join(WEIGHTINGS)}")

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    from mtlrec.runlib import delta_m
    from mtlrec.training.pipeline import run_training

    def log(s):
        print(f"[weighting] {s}", file=sys.stderr, flush=True)

    t0 = time.time()
    out = {"benchmark": "loss weighting", "device": args.device, "threads": torch.get_num_threads(),
           "datasets": {}}
    for name in [d for d in args.datasets.split(",") if d]:
        t = time.time()
        base_cfg, ds = load(name, args)
        log(f"{name}: {ds.n_rows('train')}/{ds.n_rows('valid')}/{ds.n_rows('test')} rows ({time.time() - t:.1f}s)")
        train = {"device": args.device, "ranking_k": 0, "log_every": 100}
        if args.epochs is not None:
            train["epochs"] = args.epochs
        rows, ref, tasks = {}, None, None
        for i, method in enumerate(methods):
            cfg = with_train(base_cfg, weighting=method, baselines=(i == 0), **train)
            t = time.time()
            res = run_training(cfg, dataset=ds)
            secs = time.time() - t
            tasks = res.tasks
            if i == 0:   # the single-task baselines, trained once with the first method's run
                ref = {tk.name: (tk.metric, res.metrics["stl"].get(tk.name, {}).get(tk.metric)) for tk in tasks}
            vals = {tk.name: (tk.metric, res.metrics["test"].get(tk.name, {}).get(tk.metric)) for tk in tasks}
            ep = [e["time_s"] for e in res.history.epochs if "time_s" in e]
            dm = delta_m(vals, ref)
            rows[method] = {"test": {k: round(v, 4) for k, (_, v) in vals.items() if v is not None},
                            "delta_m_pct": None if dm is None else round(dm, 2),
                            "best_epoch": res.metrics["best_epoch"], "epochs_run": res.metrics["epochs_run"],
                            "s_per_epoch": round(sum(ep) / max(len(ep), 1), 2), "total_s": round(secs, 1)}
            log(f"{name} {method}: {rows[method]}")
        out["datasets"][name] = {
            "arch": base_cfg.arch, "split": {s: ds.n_rows(s) for s in ("train", "valid", "test")},
            "metrics": {tk.name: tk.metric for tk in tasks or []},
            "single_task": {k: None if v is None else round(v, 4) for k, (_, v) in (ref or {}).items()},
            "methods": rows}
    out["total_s"] = round(time.time() - t0, 1)
    if args.json:
        print(json.dumps(out))
    else:
        for name, d in out["datasets"].items():
            print(f"{name} ({d['arch']}; test {', '.join(f'{k} {m}' for k, m in d['metrics'].items())}):")
            print(f"  {'single-task':<12} " + "  ".join(f"{k} {v}" for k, v in d["single_task"].items()))
            for m, r in d["methods"].items():
                print(f"  {m:<12} " + "  ".join(f"{k} {v:.4f}" for k, v in r["test"].items())
                      + f"  Δm {r['delta_m_pct']}%  {r['s_per_epoch']} s/epoch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
