"""What each weighting method cost on a real benchmark: the one home of these measured figures.

``MEASURED`` is the summary of one run of

    .venv/bin/python bench/weighting.py --datasets movielens --seeds 0,1,2 --json

(MovieLens ml-latest-small with the rows and features of ``bench/quality.py``: like = rating >= 4
AUC and rating RMSE; MMoE with mtlrec's defaults; every method trained with the same 3 seeds).
Per method: ``delta_m_pct``, Δm (%) against single-task models trained with the same settings
(mean of the seeds; negative = worse than training each task alone), ``s_per_epoch`` (median over
the seeds of each run's median epoch, CPU, 1 thread) and ``cost_vs_static`` (that over static's).
To refresh: run the command and copy its ``datasets.movielens`` figures here; the Tasks & model
page shows them beside each method (`mtlrec.weighting.describe`, `choice_label`, `measured_line`).
"""
from __future__ import annotations

MEASURED: dict = {
    "source": "bench/weighting.py --datasets movielens --seeds 0,1,2",
    "data": "MovieLens ml-latest-small (like AUC, rating RMSE)",
    "arch": "mmoe",
    "seeds": 3,
    "machine": "2-core CPU, 1 thread",
    "single_task": {},
    "methods": {},
}


def measured_line(row: dict | None) -> str:
    """One sentence on a method's benchmark row (``MEASURED["methods"][name]``)."""
    if not row or row.get("delta_m_pct") is None:
        return "Not measured by the benchmark."
    dm = float(row["delta_m_pct"])
    than = "better than" if dm > 0 else "worse than" if dm < 0 else "the same as"
    cost = row.get("cost_vs_static")
    return (f"On {MEASURED['data']}, {MEASURED['arch'].upper()}, {MEASURED['seeds']} seeds: Δm {dm:+.2f} % — "
            f"{than} training each task alone"
            + (f"; {float(cost):.1f}× static's time per epoch" if cost is not None else "") + ".")


def choice_label(name: str, row: dict | None) -> str:
    """How a method reads in a list of choices: its name with its Δm and cost, when measured."""
    if not row or row.get("delta_m_pct") is None:
        return name
    cost = row.get("cost_vs_static")
    return f"{name} · Δm {float(row['delta_m_pct']):+.2f} %" + (f" · {float(cost):.1f}× time" if cost is not None else "")
