"""What each weighting method cost on a real benchmark: the one home of these measured figures.

``MEASURED`` is the summary of one run of

    .venv/bin/python bench/weighting.py --datasets movielens --seeds 0,1,2 --json

(MovieLens ml-latest-small with the rows and features of ``bench/quality.py``: like = rating >= 4
AUC and rating RMSE; MMoE with mtlrec's defaults; every method trained with the same 3 seeds).
Per method: ``delta_m_pct``, Δm (%) against single-task models trained with the same settings
(mean of the seeds; negative = worse than training each task alone), its standard deviation and
per-seed values, ``cpu_s_per_epoch`` (median over the seeds of each run's median CPU seconds per
epoch, 1 thread; the box was shared, so CPU time, not wall time) and ``cost_vs_static`` (that over
static's), and the mean test metrics (single-task: ``single_task``). Measured on the 2-core box,
2026-12 (issue 21; nash_mtl re-measured in issue 25 after its DPP rewrite).
To refresh: run the command and copy its ``datasets.movielens`` figures here; the Tasks & model
page shows them beside each method (`mtlrec.weighting.describe`, `choice_label`, `measured_line`).
"""
from __future__ import annotations

MEASURED: dict = {
    "source": "bench/weighting.py --datasets movielens --seeds 0,1,2",
    "data": "MovieLens ml-latest-small (like AUC, rating RMSE)",
    "arch": "MMoE",
    "seeds": 3,
    "machine": "2-core CPU, 1 thread, CPU seconds (issue 21)",
    "single_task": {"like_auc": 0.7912, "rating_rmse": 0.852},
    "methods": {
        "static": {"delta_m_pct": 0.17, "delta_m_std": 0.07, "delta_m_seeds": [0.1, 0.17, 0.24],
                   "cost_vs_static": 1.0, "cpu_s_per_epoch": 0.603, "like_auc": 0.7951, "rating_rmse": 0.8534},
        "uncertainty": {"delta_m_pct": 0.36, "delta_m_std": 0.11, "delta_m_seeds": [0.24, 0.46, 0.37],
                        "cost_vs_static": 1.0, "cpu_s_per_epoch": 0.604, "like_auc": 0.7957, "rating_rmse": 0.8508},
        "dwa": {"delta_m_pct": 0.12, "delta_m_std": 0.04, "delta_m_seeds": [0.08, 0.17, 0.11],
                "cost_vs_static": 0.97, "cpu_s_per_epoch": 0.587, "like_auc": 0.7946, "rating_rmse": 0.8536},
        "gradnorm": {"delta_m_pct": 0.08, "delta_m_std": 0.11, "delta_m_seeds": [-0.03, 0.09, 0.19],
                     "cost_vs_static": 1.68, "cpu_s_per_epoch": 1.015, "like_auc": 0.7947, "rating_rmse": 0.8544},
        "rlw": {"delta_m_pct": 0.36, "delta_m_std": 0.23, "delta_m_seeds": [0.13, 0.34, 0.59],
                "cost_vs_static": 0.96, "cpu_s_per_epoch": 0.58, "like_auc": 0.7958, "rating_rmse": 0.851},
        "pcgrad": {"delta_m_pct": 0.31, "delta_m_std": 0.37, "delta_m_seeds": [0.03, 0.16, 0.73],
                   "cost_vs_static": 1.85, "cpu_s_per_epoch": 1.115, "like_auc": 0.7956, "rating_rmse": 0.8516},
        "mgda": {"delta_m_pct": -0.68, "delta_m_std": 0.76, "delta_m_seeds": [-1.43, 0.1, -0.72],
                 "cost_vs_static": 2.03, "cpu_s_per_epoch": 1.227, "like_auc": 0.7935, "rating_rmse": 0.8661},
        "cagrad": {"delta_m_pct": 0.38, "delta_m_std": 0.37, "delta_m_seeds": [0.15, 0.8, 0.2],
                   "cost_vs_static": 2.66, "cpu_s_per_epoch": 1.604, "like_auc": 0.7961, "rating_rmse": 0.8508},
        # issue 25 (the DPP problem): ``--methods static,nash_mtl``, static 0.601 CPU s/epoch in that run
        "nash_mtl": {"delta_m_pct": -0.13, "delta_m_std": 0.45, "delta_m_seeds": [-0.63, 0.23, 0.02],
                     "cost_vs_static": 2.34, "cpu_s_per_epoch": 1.407, "like_auc": 0.7919, "rating_rmse": 0.8551},
        "imtlg": {"delta_m_pct": 0.49, "delta_m_std": 0.62, "delta_m_seeds": [0.16, 0.1, 1.21],
                  "cost_vs_static": 1.61, "cpu_s_per_epoch": 0.973, "like_auc": 0.7968, "rating_rmse": 0.8497},
        "aligned_mtl": {"delta_m_pct": 0.71, "delta_m_std": 0.92, "delta_m_seeds": [-0.35, 1.16, 1.32],
                        "cost_vs_static": 1.77, "cpu_s_per_epoch": 1.068, "like_auc": 0.7993, "rating_rmse": 0.8486},
        "upgrad": {"delta_m_pct": 0.82, "delta_m_std": 0.5, "delta_m_seeds": [0.27, 1.24, 0.95],
                   "cost_vs_static": 1.76, "cpu_s_per_epoch": 1.064, "like_auc": 0.7985, "rating_rmse": 0.8459},
    },
}


def _dm(row: dict) -> str:
    std = row.get("delta_m_std")
    return f"Δm {float(row['delta_m_pct']):+.2f}" + (f" ± {float(std):.2f}" if std is not None else "") + " %"


def measured_line(row: dict | None) -> str:
    """One sentence on a method's benchmark row (``MEASURED["methods"][name]``)."""
    if not row or row.get("delta_m_pct") is None:
        return "Not measured by the benchmark."
    dm = float(row["delta_m_pct"])
    than = "better than" if dm > 0 else "worse than" if dm < 0 else "the same as"
    seeds = [v for v in row.get("delta_m_seeds") or [] if v is not None]
    worse = sum(v < 0 for v in seeds)
    per_seed = f" (below zero on {worse} of {len(seeds)} seeds)" if seeds and worse else ""
    cost = row.get("cost_vs_static")
    return (f"On {MEASURED['data']}, {MEASURED['arch']}, {MEASURED['seeds']} seeds: {_dm(row)} — "
            f"{than} training each task alone on average{per_seed}"
            + (f"; {float(cost):.1f}× static's CPU time per epoch" if cost is not None else "") + ".")


def choice_label(name: str, row: dict | None) -> str:
    """How a method reads in a list of choices: its name with its Δm (mean ± std) and cost, when measured."""
    if not row or row.get("delta_m_pct") is None:
        return name
    cost = row.get("cost_vs_static")
    return f"{name} · {_dm(row)}" + (f" · {float(cost):.1f}× time" if cost is not None else "")
