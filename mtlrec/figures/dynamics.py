"""Figures of the training dynamics (`mtlrec.training.dynamics`): pure functions of a history dict.

``history`` is what history.json holds (``{"epochs": [...], "batches": [...]}``); the epochs that
carry a ``"dynamics"`` record are plotted, the others (runs trained before it existed, or with
``train.dynamics_every`` = 0) are skipped. No streamlit here.
"""
from __future__ import annotations

import math
from typing import Mapping

from mtlrec.figures.charts import PALETTE, layout, plotly_go, template

TITLES = {
    "weights": "Loss weight per task",
    "implied_weights": "Implied weight per task (the aggregator's coefficients of the task gradients)",
    "grad_norm": "Gradient norm per task on the shared parameters",
    "cosine": "Gradient cosine per task pair (dotted: share of sampled batches in conflict)",
    "entropy": "Gate entropy per task",
    "shares": "Expert shares per task (last epoch)",
}


def _epochs(history: Mapping | None) -> list[dict]:
    return [e for e in (history or {}).get("epochs") or [] if isinstance(e, dict)]


def dynamics_epochs(history: Mapping | None) -> list[dict]:
    """The epoch records of ``history`` that carry a dynamics record with measured batches."""
    return [e for e in _epochs(history) if (e.get("dynamics") or {}).get("batches")]


def has_dynamics(history: Mapping | None) -> bool:
    return bool(dynamics_epochs(history))


def has_gates(history: Mapping | None) -> bool:
    return any((e["dynamics"].get("gates")) for e in dynamics_epochs(history))


def _x(e: dict, i: int) -> int:
    return int(e.get("epoch", i + 1))


def _task_names(epochs: list[dict], key: str) -> list[str]:
    out: list[str] = []
    for e in epochs:
        for t in (e.get(key) if key == "weights" else (e.get("dynamics") or {}).get(key)) or {}:
            if t not in out:
                out.append(t)
    return out


def combines_gradients(weighting: str | None) -> bool:
    """True for a gradient method (PCGrad, MGDA, ...): its recorded weights are not loss weights."""
    if not weighting:
        return False
    from mtlrec.weighting import WEIGHTINGS
    cls = WEIGHTINGS.get(str(weighting))
    return cls is not None and cls.combines == "gradients"


def weights_title(weighting: str | None) -> str:
    return TITLES["implied_weights" if combines_gradients(weighting) else "weights"]


def weights_fig(history: Mapping | None, weighting: str | None = None):
    """The weight of each task per epoch (``"weights"`` of the epoch records): loss weights for a loss
    weighting; for a gradient method (``weighting`` names one) the aggregator's implied weights w_i of
    ∇θ_s = Σ_i w_i ∇θ_s L_i at the epoch's last batch, titled as such."""
    go = plotly_go()
    eps = _epochs(history)
    fig = go.Figure()
    for i, t in enumerate(_task_names(eps, "weights")):
        fig.add_scatter(x=[_x(e, k) for k, e in enumerate(eps)], y=[(e.get("weights") or {}).get(t) for e in eps],
                        mode="lines+markers", name=t, line=dict(color=PALETTE[i % len(PALETTE)]))
    implied = combines_gradients(weighting)
    fig.update_layout(xaxis_title="epoch", yaxis_title="implied weight w_i (last batch)" if implied else "loss weight")
    return layout(fig, weights_title(weighting), height=280)


def grad_norm_fig(history: Mapping | None):
    """Mean ‖∂L_i/∂θ_shared‖ of each task's unweighted loss per epoch (log scale: tasks differ a lot)."""
    go = plotly_go()
    eps = dynamics_epochs(history)
    fig = go.Figure()
    for i, t in enumerate(_task_names(eps, "grad_norm")):
        fig.add_scatter(x=[_x(e, k) for k, e in enumerate(eps)],
                        y=[e["dynamics"].get("grad_norm", {}).get(t) for e in eps],
                        mode="lines+markers", name=t, line=dict(color=PALETTE[i % len(PALETTE)]))
    fig.update_layout(xaxis_title="epoch", yaxis_title="gradient norm", yaxis_type="log")
    return _below(layout(fig, TITLES["grad_norm"], height=300))


def pair_label(tasks) -> str:
    return " ↔ ".join(str(t) for t in tasks)


def _pairs(eps: list[dict]) -> list[str]:
    out: list[str] = []
    for e in eps:
        for p in e["dynamics"].get("pairs") or []:
            lab = pair_label(p.get("tasks") or [])
            if lab not in out:
                out.append(lab)
    return out


def _pair_value(e: dict, label: str, key: str):
    for p in e["dynamics"].get("pairs") or []:
        if pair_label(p.get("tasks") or []) == label:
            return p.get(key)
    return None


def cosine_fig(history: Mapping | None):
    """Mean cosine of each pair of task gradients per epoch (solid, left axis: -1 .. 1; below 0 the
    tasks pull the shared parameters apart) and the share of sampled batches where it was negative
    (dotted, same colour, right axis)."""
    go = plotly_go()
    eps = dynamics_epochs(history)
    xs = [_x(e, k) for k, e in enumerate(eps)]
    fig = go.Figure()
    for i, lab in enumerate(_pairs(eps)):
        c = PALETTE[i % len(PALETTE)]
        fig.add_scatter(x=xs, y=[_pair_value(e, lab, "cosine") for e in eps], mode="lines+markers", name=lab,
                        legendgroup=lab, line=dict(color=c))
        fig.add_scatter(x=xs, y=[_pair_value(e, lab, "conflict") for e in eps], mode="lines", name=f"{lab}: conflict",
                        legendgroup=lab, showlegend=False, yaxis="y2", line=dict(color=c, dash="dot"),
                        customdata=[int(e["dynamics"].get("batches") or 0) for e in eps],
                        hovertemplate="%{y:.0%} of %{customdata} sampled batches with cosine < 0<extra>"
                                      + lab + "</extra>")
    fig.add_hline(y=0, line=dict(color="#868E96", width=1))
    fig.update_layout(xaxis_title="epoch", yaxis=dict(title="cosine", range=[-1.05, 1.05]),
                      yaxis2=dict(title="conflict share", overlaying="y", side="right", range=[0, 1.05],
                                  tickvals=[0, 0.25, 0.5, 0.75, 1.0], tickformat=".0%", showgrid=False))
    return _below(layout(fig, TITLES["cosine"], height=340))


def _below(fig):
    """The legend under the plot, so that it never covers the title."""
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.25, x=0, xanchor="left"))
    return fig


def entropy_fig(history: Mapping | None):
    """Mean gate entropy of each task per epoch, with its maximum log(n_experts) dashed (at the
    maximum the gate mixes all experts alike; near 0 it picks one expert)."""
    go = plotly_go()
    eps = [e for e in dynamics_epochs(history) if e["dynamics"].get("gates")]
    xs = [_x(e, k) for k, e in enumerate(eps)]
    fig = go.Figure()
    for i, t in enumerate(_task_names(eps, "gates")):
        fig.add_scatter(x=xs, y=[(e["dynamics"]["gates"].get(t) or {}).get("entropy") for e in eps],
                        mode="lines+markers", name=t, line=dict(color=PALETTE[i % len(PALETTE)]))
    mx = next((e["dynamics"].get("max_entropy") for e in reversed(eps) if e["dynamics"].get("max_entropy")), None)
    if mx:
        fig.add_hline(y=mx, line=dict(color="#868E96", dash="dash", width=1),
                      annotation_text="log(n experts): all experts alike", annotation_position="bottom right")
    fig.update_layout(xaxis_title="epoch", yaxis=dict(title="entropy (nats)", rangemode="tozero"))
    return layout(fig, TITLES["entropy"], height=280)


def shares_fig(history: Mapping | None):
    """Mean gate weight of each expert per task in the last measured epoch (grouped bars)."""
    go = plotly_go()
    eps = [e for e in dynamics_epochs(history) if e["dynamics"].get("gates")]
    fig = go.Figure()
    if eps:
        d = eps[-1]["dynamics"]
        gates = d["gates"]
        n = max((len(g.get("shares") or []) for g in gates.values()), default=0)
        experts = list(d.get("experts") or [f"expert {k + 1}" for k in range(n)])
        for k, ex in enumerate(experts):
            fig.add_bar(x=list(gates), y=[(g.get("shares") or [None] * n)[k] for g in gates.values()], name=ex,
                        marker_color=PALETTE[k % len(PALETTE)])
    fig.update_layout(barmode="stack", xaxis_title="task", yaxis=dict(title="share of the gate", range=[0, 1],
                                                                      tickformat=".0%"))
    return layout(fig, TITLES["shares"], height=280)


def dynamics_figs(history: Mapping | None, weighting: str | None = None) -> dict:
    """{name: figure} of everything there is to show (empty when the history has no dynamics);
    ``weighting``: the run's method, which names its weights (`weights_fig`)."""
    if not has_dynamics(history):
        return {}
    out = {"weights": weights_fig(history, weighting), "grad_norm": grad_norm_fig(history),
           "cosine": cosine_fig(history)}
    if has_gates(history):
        out["entropy"] = entropy_fig(history)
        out["shares"] = shares_fig(history)
    return out


# when a pair of tasks is called "in conflict" (conflict_summary)
MIN_BATCHES = 10        # sampled batches (pooled over the latest epochs) needed before judging a pair
COSINE_EPS = 0.05       # |mean cosine| below this: the gradients are (nearly) orthogonal, not in conflict
Z95 = 1.959964          # the normal quantile of a 95% interval


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a share of k successes in n trials ((0, 1) when n = 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def pair_conflicts(history: Mapping | None, min_batches: int = MIN_BATCHES) -> list[dict]:
    """Per task pair, its measured batches pooled from the latest epoch backwards until there are
    ``min_batches`` (or the epochs run out): ``{"tasks", "first", "last" (epochs), "batches" n,
    "negative" k (batches with cosine < 0), "share", "low", "high" (95 % Wilson interval),
    "cosine" (mean over the batches), "verdict"}``. The verdict is "conflict" only when there are
    enough batches, the mean cosine is below -COSINE_EPS and the interval lies above one half (most
    batches opposed, beyond chance); "too few" below ``min_batches``; "orthogonal" when the mean
    cosine is within ±COSINE_EPS of 0; "aligned" above it; else "unclear"."""
    eps = dynamics_epochs(history)
    out = []
    for label in _pairs(eps):
        n = k = 0
        cos_sum = 0.0
        first = last = None
        for e in reversed(eps):
            rec = next((q for q in e["dynamics"].get("pairs") or [] if pair_label(q.get("tasks") or []) == label), None)
            m = int(e["dynamics"].get("batches") or 0)
            if rec is None or m <= 0 or rec.get("cosine") is None or rec.get("conflict") is None:
                continue
            n, k = n + m, k + int(round(float(rec["conflict"]) * m))
            cos_sum += float(rec["cosine"]) * m
            first, last = _x(e, 0), last if last is not None else _x(e, 0)
            if n >= min_batches:
                break
        if n == 0:
            continue
        tasks = next(q["tasks"] for e in eps for q in e["dynamics"].get("pairs") or []
                     if pair_label(q.get("tasks") or []) == label)
        cos = cos_sum / n
        lo, hi = wilson(k, n)
        verdict = ("too few" if n < min_batches else
                   "conflict" if cos < -COSINE_EPS and lo > 0.5 else
                   "orthogonal" if abs(cos) < COSINE_EPS else
                   "aligned" if cos >= COSINE_EPS else "unclear")
        out.append({"tasks": list(tasks), "first": first, "last": last, "batches": n, "negative": k,
                    "share": k / n, "low": lo, "high": hi, "cosine": cos, "verdict": verdict})
    return out


def _epochs_text(c: dict) -> str:
    return f"epoch {c['last']}" if c["first"] == c["last"] else f"epochs {c['first']}–{c['last']}"


def _evidence(c: dict) -> str:
    return (f"{c['negative']} of {c['batches']} sampled batches of {_epochs_text(c)} "
            f"({c['share']:.0%}, 95% interval {c['low']:.0%}–{c['high']:.0%}; mean cosine {c['cosine']:+.2f})")


def conflict_summary(history: Mapping | None, threshold: float = 0.5, min_batches: int = MIN_BATCHES) -> list[str]:
    """Plain sentences about the latest measured epochs (`pair_conflicts`): the pairs in conflict,
    most conflicting first, with the sample size and interval; pairs whose gradients opposed in at
    least ``threshold`` of the sampled batches without meeting the rule, said as not (yet) a
    conflict; and one line when there are too few sampled batches to judge any pair."""
    cs = pair_conflicts(history, min_batches)
    out = [f"{c['tasks'][0]} and {c['tasks'][1]} pulled the shared parameters in opposite directions: "
           + _evidence(c) for c in sorted((c for c in cs if c["verdict"] == "conflict"),
                                          key=lambda c: (-c["share"], c["cosine"]))]
    for c in cs:
        if c["verdict"] in ("orthogonal", "unclear", "aligned") and c["share"] >= threshold:
            why = ("their gradients are nearly orthogonal" if c["verdict"] == "orthogonal"
                   else "that is not clearly more than half")
            out.append(f"{c['tasks'][0]} and {c['tasks'][1]}: opposed in " + _evidence(c)
                       + f" — not called a conflict: {why}.")
    few = [c for c in cs if c["verdict"] == "too few"]
    if few and len(few) == len(cs):
        n = max(c["batches"] for c in few)
        out.append(f"Only {n} sampled batch{'es' if n != 1 else ''} so far: too few to call any pair of tasks "
                   f"in conflict (at least {min_batches} needed; a smaller train.dynamics_every samples more).")
    return out


def live_dynamics_fig(history: Mapping | None):
    """The compact live view (ONE figure, cheap to redraw): gradient norm per task (log scale) and
    gradient cosine per task pair, side by side; None when there is nothing measured yet."""
    go = plotly_go()
    eps = dynamics_epochs(history)
    if not eps:
        return None
    xs = [_x(e, k) for k, e in enumerate(eps)]
    data = []
    for i, t in enumerate(_task_names(eps, "grad_norm")):
        data.append({"type": "scatter", "x": xs, "y": [e["dynamics"].get("grad_norm", {}).get(t) for e in eps],
                     "mode": "lines+markers", "name": t, "line": {"color": PALETTE[i % len(PALETTE)]},
                     "xaxis": "x", "yaxis": "y"})
    for i, lab in enumerate(_pairs(eps)):
        data.append({"type": "scatter", "x": xs, "y": [_pair_value(e, lab, "cosine") for e in eps],
                     "mode": "lines+markers", "name": lab, "line": {"color": PALETTE[(i + 4) % len(PALETTE)],
                                                                    "dash": "dot"},
                     "xaxis": "x2", "yaxis": "y2"})
    layout = {"xaxis": {"domain": [0, 0.46], "anchor": "y", "title": {"text": "epoch"}},
              "yaxis": {"anchor": "x", "type": "log", "title": {"text": "gradient norm"}},
              "xaxis2": {"domain": [0.54, 1], "anchor": "y2", "title": {"text": "epoch"}},
              "yaxis2": {"anchor": "x2", "range": [-1.05, 1.05], "title": {"text": "cosine"}},
              "shapes": [{"type": "line", "xref": "x2 domain", "x0": 0, "x1": 1, "yref": "y2", "y0": 0, "y1": 0,
                          "line": {"color": "#868E96", "width": 1}}],
              "annotations": [{"text": "<b>gradient norm per task (shared parameters)</b>", "x": 0, "y": 1.08,
                               "xref": "paper", "yref": "paper", "showarrow": False, "xanchor": "left"},
                              {"text": "<b>gradient cosine per task pair</b>", "x": 0.54, "y": 1.08,
                               "xref": "paper", "yref": "paper", "showarrow": False, "xanchor": "left"}],
              "height": 300, "template": template(), "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
              "legend": {"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0}}
    return go.Figure({"data": data, "layout": layout})


def compare_fig(runs: Mapping[str, Mapping]):
    """Several runs' training dynamics side by side (the Lab's weighting comparison): three panels
    -- the gradient cosine of each task pair, the share of sampled batches where it was negative
    (hover: of how many), each task's gradient norm (log; one dash style per task) -- one colour per
    run, the legend under the panels. ``runs``: {name: history dict}. None when none has dynamics."""
    from plotly.subplots import make_subplots
    hist = {name: dynamics_epochs(h) for name, h in runs.items()}
    if not any(hist.values()):
        return None
    tasks = _task_names([e for eps in hist.values() for e in eps], "grad_norm")
    dashes = ["solid", "dot", "dash", "dashdot", "longdash"]
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.08, subplot_titles=[
        "gradient cosine per task pair", "share of batches with cosine < 0",
        "gradient norm (" + ", ".join(f"{t} {dashes[i % len(dashes)]}" for i, t in enumerate(tasks)) + ")"])
    for i, (name, eps) in enumerate(hist.items()):
        c = PALETTE[i % len(PALETTE)]
        xs = [_x(e, k) for k, e in enumerate(eps)]
        n = [int(e["dynamics"].get("batches") or 0) for e in eps]
        for j, lab in enumerate(_pairs(eps)):
            fig.add_scatter(x=xs, y=[_pair_value(e, lab, "cosine") for e in eps], mode="lines+markers", name=name,
                            legendgroup=name, showlegend=j == 0, line=dict(color=c), row=1, col=1,
                            hovertemplate=f"{name} · {lab}: cosine %{{y:+.2f}}<extra></extra>")
            fig.add_scatter(x=xs, y=[_pair_value(e, lab, "conflict") for e in eps], mode="lines+markers", name=name,
                            legendgroup=name, showlegend=False, line=dict(color=c), customdata=n, row=1, col=2,
                            hovertemplate=f"{name} · {lab}: %{{y:.0%}} of %{{customdata}} sampled batches"
                                          "<extra></extra>")
        for k, t in enumerate(tasks):
            fig.add_scatter(x=xs, y=[e["dynamics"].get("grad_norm", {}).get(t) for e in eps], mode="lines",
                            name=name, legendgroup=name, showlegend=False, row=1, col=3,
                            line=dict(color=c, dash=dashes[k % len(dashes)]),
                            hovertemplate=f"{name} · {t}: %{{y:.3g}}<extra></extra>")
    fig.add_hline(y=0, line=dict(color="#868E96", width=1), row=1, col=1)
    fig.update_yaxes(range=[-1.05, 1.05], row=1, col=1)
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=3)
    fig.update_xaxes(title_text="epoch")
    layout(fig, "Gradient conflict per epoch", height=340)
    fig.update_layout(margin=dict(l=10, r=10, t=80, b=10))
    return _below(fig)
