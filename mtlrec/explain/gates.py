"""Gate weights of MMoE / PLE for one recommendation, beside their average over test rows.

``pair_gates(run, user, item)`` -> ``{"has_gates", "arch", "pair": {task: {expert: weight}},
"average": {task: {expert: weight}}, "n_rows", "note"}``; every task's weights sum to 1. The
average is taken over the same random test rows as the global summary (`global_summary`'s
``seed + 1`` sample), so it matches the page's "gates" chart. Shared-bottom (no gates):
``has_gates`` False and a note that says so.
"""
from __future__ import annotations

import numpy as np

DEFAULT_ROWS = 500


def pair_gates(run, user, item, *, n_rows: int = DEFAULT_ROWS, seed: int = 0) -> dict:
    import torch

    from mtlrec.explain.inputs import cpu_model, row_inputs, sample_inputs
    model = cpu_model(run)
    arch = getattr(model, "arch", "")
    if not getattr(model, "has_gates", False):
        return {"has_gates": False, "arch": arch,
                "note": f"the {arch.replace('_', '-')} architecture has no gates: every task reads the same "
                        "shared layers, so there are no expert weights per pair"}
    feats, _ = row_inputs(run, user, item)
    sfeats, _ = sample_inputs(run, n_rows, seed=seed + 1, prefer=("test", "valid", "train"))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            gp = model.gate_weights(feats)
            ga = model.gate_weights(sfeats)
    finally:
        model.train(was)

    names = model.expert_names()

    def table(g, mean):
        return {t: dict(zip(names, map(float, (w.double().mean(0) if mean else w.double()[0]).cpu().numpy())))
                for t, w in g.items()}

    n = int(next(iter(sfeats.values())).shape[0]) if sfeats else 0
    note = "gate weight of each expert for this pair (rows sum to 1), beside the mean over test rows"
    if arch == "ple":
        note += "; last-level gates: the task's own experts first, then the shared experts"
    return {"has_gates": True, "arch": arch, "user": str(user), "item": str(item),
            "pair": table(gp, False), "average": table(ga, True), "n_rows": n, "note": note}


def gates_frame(res: dict):
    """A small table: one row per (task, expert), this pair's weight, the average, the difference."""
    import pandas as pd
    rows = []
    for t, w in res.get("pair", {}).items():
        for e, v in w.items():
            a = res["average"][t][e]
            rows.append({"task": t, "expert": e, "this pair": v, "average": a, "difference": v - a})
    return pd.DataFrame(rows, columns=["task", "expert", "this pair", "average", "difference"])


def max_difference(res: dict) -> float:
    """Largest |pair - average| gate weight over tasks and experts (0.0 without gates)."""
    diffs = [abs(v - res["average"][t][e]) for t, w in res.get("pair", {}).items() for e, v in w.items()]
    return float(np.max(diffs)) if diffs else 0.0
