"""Benchmark of SHAP explanations on CPU: ``python bench/explain.py [--json] [--run RUN_DIR ...]``.

Without ``--run``, trains one small run per architecture on the shipped sample data
(``sample_data/config_<arch>.json``, 1 epoch) in a temporary folder. For each run:

* ``local_ms_first``: one recommendation explained for all tasks with 100 background rows,
  including building the explainer (background sample, model copy, method probe);
* ``local_ms_warm``: median of the next explanations with the same explainer (the Explain
  page keeps one per run);
* ``global_s``: the global summary over 500 test rows (importance per task, groups x
  shared units heatmap, towers / gates);
* ``additivity_max_err``: max |base + sum(contributions) - logit| over tasks and rows.

* ``lime_ms``: LIME beside SHAP for one recommendation and one task (`mtlrec.explain.lime`,
  the lime package, 1000 samples, warm explainer; includes the SHAP values it is compared
  with), median over the tasks; ``lime_agreement``: median Spearman rank agreement with SHAP;
* ``dependence_s``: a dependence plot's data over 500 test rows (SHAP of every row over 32
  background rows, values decoded), plus drawing its plotly figure;
* ``whatif_ms``: one what-if update (`mtlrec.serve.whatif`): one edit of a user feature -> new
  scores of every item for that user, the ranks, the top-10 list and the explanation of the
  pair (warm explainer), median over a few edits; ``whatif_page_ms``: the same plus the pair's
  before/after (`pair_change`), as the Explain page computes it;
* with ``--lime-compare``: the same LIME explanation with captum's `Lime` (``captum_ms``,
  ``captum_agreement``) -- the measurement behind choosing the lime package.

Budgets (issue 5): local <= 300 ms, global <= 10 s; (issue 13) LIME <= 1 s, dependence <= 3 s,
what-if update <= 300 ms on the 2-core box with 1 thread. Importing shap/torch/lime and loading
the run are not timed. Prints the load average: the figures are only comparable on an idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ARCHS = ("shared_bottom", "mmoe", "ple")


def train_sample_runs(out: Path, epochs: int = 1) -> list[Path]:
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import build_dataset, run_training
    dirs, dataset = [], None
    for arch in ARCHS:
        cfg = RunConfig.load(ROOT / "sample_data" / f"config_{arch}.json")
        cfg.train.epochs = epochs
        cfg.train.device = "cpu"
        cfg.train.baselines = False
        if dataset is None:
            dataset = build_dataset(cfg)
        d = out / arch
        run_training(cfg, run_dir=d, dataset=dataset)
        dirs.append(d)
    return dirs


def bench_lime(run, ex, pair, compare: bool = False, global_rows: int = 500) -> dict:
    """LIME (and captum's, with ``compare``) for one recommendation, and the dependence plot."""
    from mtlrec.explain.dependence import dependence_data, dependence_figure, plottable_groups
    from mtlrec.explain.lime import lime_explanation
    out: dict = {}
    methods = ("lime", "captum") if compare else ("lime",)
    for m in methods:
        lime_explanation(run, *pair, run.tasks[0].name, method=m, explainer=ex)      # warm-up
        ms, agree = [], []
        for t in run.tasks:
            r = lime_explanation(run, *pair, t.name, method=m, explainer=ex)
            ms.append(r["elapsed_ms"])
            agree.append(r["agreement"])
        out[f"{m}_ms"] = round(statistics.median(ms), 1)
        out[f"{m}_ms_max"] = round(max(ms), 1)
        out[f"{m}_agreement"] = round(statistics.median(agree), 3)
        out[f"{m}_agreement_min"] = round(min(agree), 3)
    groups = plottable_groups(run)
    g = next((k for k, v in groups.items() if v != "support"), next(iter(groups), None))
    if g is not None:
        colour = next((k for k in groups if k != g), None)
        t0 = time.perf_counter()
        d = dependence_data(run, g, colour, n_rows=global_rows, explainer=ex)
        dependence_figure(d)
        out.update(dependence_group=g, dependence_rows=d["n_rows"], dependence_method=d["method"],
                   dependence_background=d["background"],
                   dependence_s=round(time.perf_counter() - t0, 2))
    out["within_budget_13"] = {"lime_1s": out["lime_ms"] <= 1000.0, "dependence_3s": out.get("dependence_s", 0) <= 3.0}
    return out


def _edits(run, user, n: int) -> list[dict]:
    """``n`` single-feature edits of ``user``: another category, or the number moved by a std."""
    from mtlrec.serve.whatif import categories, current_values, editable_fields, numeric_scale
    now = current_values(run, user)
    out: list[dict] = []
    fields = editable_fields(run, "user")
    for k in range(n):
        if not fields:
            break
        f = fields[k % len(fields)]
        if f.kind == "categorical":
            names = [c for c in categories(run, f.name) if c != str(now.get(f.name))]
            if names:
                out.append({f.name: names[k % len(names)]})
        else:
            mean, std = numeric_scale(run, f.name)
            base = now.get(f.name)
            base = float(base) if isinstance(base, (int, float)) else mean
            out.append({f.name: round(base + (k + 1) * std, 1)})
    return out


def bench_whatif(run, ex, pair, n: int = 6) -> dict:
    """One what-if update: the edit -> scores of all items, ranks, top-10, the pair's explanation."""
    from mtlrec.serve.whatif import explain_whatif, pair_change, whatif_recommend, whatif_scores
    user, item = pair
    edits = _edits(run, user, n + 1)
    if not edits:
        return {}
    lean, page = [], []
    for k, e in enumerate(edits):
        t0 = time.perf_counter()
        s = whatif_scores(run, user, e, item=item)
        whatif_recommend(run, user, e, k=10, scores=s)
        explain_whatif(run, user, item, e, explainer=ex, scores=s)
        t1 = time.perf_counter()
        pair_change(run, user, item, e)
        t2 = time.perf_counter()
        if k:                                  # the first one warms up
            lean.append((t1 - t0) * 1000.0)
            page.append((t2 - t0) * 1000.0)
    return {"whatif_ms": round(statistics.median(lean), 1), "whatif_ms_max": round(max(lean), 1),
            "whatif_page_ms": round(statistics.median(page), 1), "whatif_items": len(run.dataset.item_ids),
            "whatif_edits": edits[1:]}


def bench_run(run_dir: Path, n_local: int = 8, background: int = 100, global_rows: int = 500,
              lime_compare: bool = False) -> dict:
    import numpy as np

    from mtlrec.explain.api import explain_recommendation, global_summary, make_explainer
    from mtlrec.serve.recommend import recommend
    from mtlrec.runs.load import load_run
    run = load_run(run_dir)
    ds = run.dataset
    rng = np.random.default_rng(0)
    users = [str(u) for u in rng.choice(ds.user_ids, size=n_local, replace=len(ds.user_ids) < n_local)]
    pairs = [(u, recommend(run, u, k=1)[0]["item"]) for u in users]
    run.device_data()                                  # tensors of the dataset (done once by any page)
    t0 = time.perf_counter()
    first = explain_recommendation(run, *pairs[0], background=background)
    first_ms = (time.perf_counter() - t0) * 1000.0
    ex = make_explainer(run, background)
    ex.explain(ex.background[:1])                      # build the copy / choose the method once
    warm, err = [], 0.0
    for u, i in pairs[1:]:
        t0 = time.perf_counter()
        r = explain_recommendation(run, u, i, background=background, explainer=ex)
        warm.append((time.perf_counter() - t0) * 1000.0)
        for t in r["tasks"].values():
            err = max(err, abs(t["base_value"] + sum(t["contributions"].values()) - t["output"]))
    t0 = time.perf_counter()
    g = global_summary(run, n_rows=global_rows, explainer=ex)
    global_s = time.perf_counter() - t0
    extra = bench_lime(run, ex, pairs[0], lime_compare, global_rows)
    extra.update(bench_whatif(run, ex, pairs[0]))
    if "whatif_ms" in extra:
        extra["within_budget_13"]["whatif_300ms"] = extra["whatif_ms"] <= 300.0
    return {**extra, "arch": run.info.get("arch"), "method": first["method"], "global_method": g["importance_method"],
            "heatmap_method": g["heatmap"]["method"], "groups": len(next(iter(first["tasks"].values()))["contributions"]),
            "tasks": len(first["tasks"]), "background": background,
            "local_ms_first": round(first_ms, 1), "local_ms_warm": round(statistics.median(warm), 1),
            "local_ms_warm_max": round(max(warm), 1), "global_rows": global_rows, "global_s": round(global_s, 2),
            "additivity_max_err": float(f"{err:.3g}"),
            "within_budget": {"local_300ms": statistics.median(warm) <= 300.0, "global_10s": global_s <= 10.0}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", default=[], help="run folder(s) to benchmark (default: train on the sample)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--lime-compare", action="store_true", help="also time captum's Lime on the same pairs")
    args = p.parse_args(argv)
    import lime.lime_tabular  # noqa: F401
    import shap  # noqa: F401  (import time is not part of an explanation)
    if args.lime_compare:
        import captum.attr  # noqa: F401
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [Path(r) for r in args.run] or train_sample_runs(Path(tmp))
        results = [bench_run(d, lime_compare=args.lime_compare) for d in dirs]
    out = {"device": "cpu", "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
           "load_avg_1min": round(os.getloadavg()[0], 2), "budgets": {"local_ms": 300, "global_s": 10,
                                                                     "lime_ms": 1000, "dependence_s": 3,
                                                                     "whatif_ms": 300},
           "runs": results}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"CPU, {out['torch_threads']} torch threads, load average {out['load_avg_1min']}")
        for r in results:
            print(f"{r['arch']:>14}: {r['method']:>5} SHAP, {r['groups']} groups x {r['tasks']} tasks | one "
                  f"recommendation {r['local_ms_warm']:.0f} ms (first {r['local_ms_first']:.0f} ms) | global "
                  f"{r['global_rows']} rows {r['global_s']:.1f} s ({r['global_method']}) | additivity "
                  f"{r['additivity_max_err']:.1e}")
            cmp = (f" | captum {r['captum_ms']:.0f} ms (agreement {r['captum_agreement']:.2f})"
                   if "captum_ms" in r else "")
            print(f"{'':>14}  LIME {r['lime_ms']:.0f} ms (max {r['lime_ms_max']:.0f}; agreement with SHAP "
                  f"{r['lime_agreement']:.2f}, min {r['lime_agreement_min']:.2f}){cmp} | dependence "
                  f"{r.get('dependence_rows', 0)} rows {r.get('dependence_s', float('nan')):.1f} s | what-if "
                  f"{r.get('whatif_ms', float('nan')):.0f} ms (page {r.get('whatif_page_ms', float('nan')):.0f} ms, "
                  f"{r.get('whatif_items', 0)} items)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
