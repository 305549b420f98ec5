"""Figures of the training dynamics (`mtlrec.training.dynamics`): pure functions of a history dict.

``history`` is what history.json holds (``{"epochs": [...], "batches": [...]}``); the epochs that
carry a ``"dynamics"`` record are plotted, the others (runs trained before it existed, or with
``train.dynamics_every`` = 0) are skipped. No streamlit here.
"""
from __future__ import annotations

from typing import Mapping

from mtlrec.viz import PALETTE, _go, _layout, template

TITLES = {
    "weights": "Loss weight per task",
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


def weights_fig(history: Mapping | None):
    """The loss weight of each task per epoch (``"weights"`` of the epoch records)."""
    go = _go()
    eps = _epochs(history)
    fig = go.Figure()
    for i, t in enumerate(_task_names(eps, "weights")):
        fig.add_scatter(x=[_x(e, k) for k, e in enumerate(eps)], y=[(e.get("weights") or {}).get(t) for e in eps],
                        mode="lines+markers", name=t, line=dict(color=PALETTE[i % len(PALETTE)]))
    fig.update_layout(xaxis_title="epoch", yaxis_title="weight")
    return _layout(fig, TITLES["weights"], height=280)


def grad_norm_fig(history: Mapping | None):
    """Mean ‖∂L_i/∂θ_shared‖ of each task's unweighted loss per epoch (log scale: tasks differ a lot)."""
    go = _go()
    eps = dynamics_epochs(history)
    fig = go.Figure()
    for i, t in enumerate(_task_names(eps, "grad_norm")):
        fig.add_scatter(x=[_x(e, k) for k, e in enumerate(eps)],
                        y=[e["dynamics"].get("grad_norm", {}).get(t) for e in eps],
                        mode="lines+markers", name=t, line=dict(color=PALETTE[i % len(PALETTE)]))
    fig.update_layout(xaxis_title="epoch", yaxis_title="gradient norm", yaxis_type="log")
    return _below(_layout(fig, TITLES["grad_norm"], height=300))


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
    go = _go()
    eps = dynamics_epochs(history)
    xs = [_x(e, k) for k, e in enumerate(eps)]
    fig = go.Figure()
    for i, lab in enumerate(_pairs(eps)):
        c = PALETTE[i % len(PALETTE)]
        fig.add_scatter(x=xs, y=[_pair_value(e, lab, "cosine") for e in eps], mode="lines+markers", name=lab,
                        legendgroup=lab, line=dict(color=c))
        fig.add_scatter(x=xs, y=[_pair_value(e, lab, "conflict") for e in eps], mode="lines", name=f"{lab}: conflict",
                        legendgroup=lab, showlegend=False, yaxis="y2", line=dict(color=c, dash="dot"),
                        hovertemplate="%{y:.0%} of sampled batches with cosine < 0<extra>" + lab + "</extra>")
    fig.add_hline(y=0, line=dict(color="#868E96", width=1))
    fig.update_layout(xaxis_title="epoch", yaxis=dict(title="cosine", range=[-1.05, 1.05]),
                      yaxis2=dict(title="conflict share", overlaying="y", side="right", range=[0, 1.05],
                                  tickvals=[0, 0.25, 0.5, 0.75, 1.0], tickformat=".0%", showgrid=False))
    return _below(_layout(fig, TITLES["cosine"], height=340))


def _below(fig):
    """The legend under the plot, so that it never covers the title."""
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    return fig


def entropy_fig(history: Mapping | None):
    """Mean gate entropy of each task per epoch, with its maximum log(n_experts) dashed (at the
    maximum the gate mixes all experts alike; near 0 it picks one expert)."""
    go = _go()
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
    return _layout(fig, TITLES["entropy"], height=280)


def shares_fig(history: Mapping | None):
    """Mean gate weight of each expert per task in the last measured epoch (grouped bars)."""
    go = _go()
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
    return _layout(fig, TITLES["shares"], height=280)


def dynamics_figs(history: Mapping | None) -> dict:
    """{name: figure} of everything there is to show (empty when the history has no dynamics)."""
    if not has_dynamics(history):
        return {}
    out = {"weights": weights_fig(history), "grad_norm": grad_norm_fig(history), "cosine": cosine_fig(history)}
    if has_gates(history):
        out["entropy"] = entropy_fig(history)
        out["shares"] = shares_fig(history)
    return out


def conflict_summary(history: Mapping | None, threshold: float = 0.5) -> list[str]:
    """Plain sentences about the last measured epoch: the pairs whose gradients disagreed (negative
    cosine) in at least ``threshold`` of the sampled batches, most conflicting first."""
    eps = dynamics_epochs(history)
    if not eps:
        return []
    e = eps[-1]
    d = e["dynamics"]
    rows = sorted((p for p in d.get("pairs") or [] if (p.get("conflict") or 0) >= threshold),
                  key=lambda p: (-(p.get("conflict") or 0), p.get("cosine") or 0))
    n = int(d.get("batches") or 0)
    return [f"{p['tasks'][0]} and {p['tasks'][1]} pulled the shared parameters in opposite directions in "
            f"{p['conflict']:.0%} of the {n} sampled batch{'es' if n != 1 else ''} of epoch {_x(e, 0)} "
            f"(mean cosine {p['cosine']:+.2f})" for p in rows]


def live_dynamics_fig(history: Mapping | None):
    """The compact live view (ONE figure, cheap to redraw): gradient norm per task (log scale) and
    gradient cosine per task pair, side by side; None when there is nothing measured yet."""
    go = _go()
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
