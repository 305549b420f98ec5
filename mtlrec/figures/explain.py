"""Plotly figures of explanations (pure functions of the result dicts; no streamlit)."""
from __future__ import annotations

import plotly.graph_objects as go

POS, NEG, TOTAL = "#2e7d32", "#c62828", "#1565c0"


def _sorted_items(contrib: dict, top: int | None, order: list | None = None):
    if order and set(order) == set(contrib):
        items = [(g, contrib[g]) for g in order]       # e.g. the probability view: its path's order
    else:
        items = sorted(contrib.items(), key=lambda kv: -abs(kv[1]))
    if top is not None and len(items) > top:
        rest = sum(v for _, v in items[top:])
        items = items[:top] + [(f"{len(items) - top} other groups", rest)]
    return items


def bar_label(group: str, features: dict | None, width: int = 40) -> str:
    """The bar's label: the pair's value ("occupation = student", "age = 24"), else the group."""
    text = ((features or {}).get(group) or {}).get("text") or group
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")   # data, not plotly markup


def waterfall_figure(task_result: dict, title: str = "", top: int | None = 12, unit: str | None = None,
                     features: dict | None = None) -> go.Figure:
    """Base value -> each group's contribution -> the task's output (one task of
    `explain_recommendation`'s ``tasks``, its ``probability`` / ``model_space`` view, or its
    ``fused`` part), in the task's units (``unit``: logit, probability, or label units for a
    regression task) unless ``unit`` says otherwise. ``features`` (the result's ``features``):
    bars are labelled with the pair's values, e.g. "occupation = student"."""
    base = float(task_result["base_value"])
    out = float(task_result.get("output", task_result.get("score", 0.0)))
    items = _sorted_items(task_result["contributions"], top, task_result.get("order"))
    names = [bar_label(g, features) for g, _ in items]
    if len(set(names)) != len(names):
        names = [g for g, _ in items]
    x = ["base value"] + names + ["output"]
    y = [base] + [float(v) for _, v in items] + [out]
    measure = ["absolute"] + ["relative"] * len(items) + ["total"]
    fig = go.Figure(go.Waterfall(
        orientation="v", x=x, y=y, measure=measure,
        text=[f"{base:.3f}"] + [f"{v:+.3f}" for _, v in items] + [f"{out:.3f}"], textposition="outside",
        increasing={"marker": {"color": POS}}, decreasing={"marker": {"color": NEG}},
        totals={"marker": {"color": TOTAL}}, connector={"line": {"color": "#9e9e9e", "width": 1}}))
    fig.update_layout(title=title or None, showlegend=False, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      yaxis_title=unit or task_result.get("unit") or task_result.get("output_kind", "logit"),
                      height=340)
    # zoom on the path from the base value to the output (the bars of both start at 0)
    path = [base]
    for _, v in items:
        path.append(path[-1] + float(v))
    lo, hi = min(path + [out]), max(path + [out])
    pad = 0.2 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.1
    fig.update_yaxes(range=[lo - pad, hi + pad])
    return fig


def fused_by_task_figure(fused: dict, title: str = "Fused score by task") -> go.Figure:
    """Each task's weighted term a_t * s_t of the fused score, with its weight."""
    names = list(fused["by_task"])
    fig = go.Figure(go.Bar(x=names, y=[fused["by_task"][n] for n in names], marker_color=TOTAL,
                           text=[f"a={fused['weights'][n]:.2f}" for n in names], textposition="outside"))
    fig.update_layout(title=title, yaxis_title="a_t · s_t", height=300, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def importance_figure(importance: dict, title: str = "Feature-group importance per task (mean |SHAP|, logit)") \
        -> go.Figure:
    """Grouped horizontal bars: one bar per (group, task)."""
    tasks = list(importance)
    groups = list(next(iter(importance.values()))) if tasks else []
    order = sorted(groups, key=lambda g: sum(importance[t][g] for t in tasks))
    fig = go.Figure([go.Bar(y=order, x=[importance[t][g] for g in order], name=t, orientation="h")
                     for t in tasks])
    fig.update_layout(title=title, barmode="group", xaxis_title="mean |SHAP value|",
                      height=max(300, 40 + 28 * len(groups) * max(1, len(tasks)) // 2),
                      margin=dict(l=10, r=10, t=40, b=10), legend_title_text="task")
    return fig


def heatmap_figure(heatmap: dict, title: str = "Which inputs drive which shared units (mean |SHAP|)") -> go.Figure:
    """Feature groups (rows) x shared units of H (columns)."""
    fig = go.Figure(go.Heatmap(z=heatmap["values"], x=heatmap.get("unit_labels") or [str(u) for u in heatmap["units"]],
                               y=heatmap["groups"], colorscale="Blues", colorbar={"title": "mean |SHAP|"}))
    fig.update_layout(title=title, xaxis_title="shared unit", height=max(300, 60 + 30 * len(heatmap["groups"])),
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def tower_reliance_figure(reliance: dict, top: int = 24,
                          title: str = "Which shared units each task's tower relies on (mean |SHAP|)") -> go.Figure:
    """Tasks (rows) x the ``top`` most used shared units (columns)."""
    tasks = list(reliance["values"])
    units = reliance["units"]
    total = [sum(reliance["values"][t][i] for t in tasks) for i in range(len(units))]
    keep = sorted(sorted(range(len(units)), key=lambda i: -total[i])[:top])
    fig = go.Figure(go.Heatmap(z=[[reliance["values"][t][i] for i in keep] for t in tasks],
                               x=[f"u{units[i]}" for i in keep], y=tasks, colorscale="Purples",
                               colorbar={"title": "mean |SHAP|"}))
    fig.update_layout(title=title, xaxis_title="shared unit", height=max(260, 80 + 40 * len(tasks)),
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def gates_figure(gates: dict, title: str = "Mean gate weight per task and expert") -> go.Figure:
    tasks = list(gates)
    experts = list(next(iter(gates.values()))) if tasks else []
    fig = go.Figure(go.Heatmap(z=[[gates[t][e] for e in experts] for t in tasks], x=experts, y=tasks,
                               zmin=0, zmax=1, colorscale="Oranges", colorbar={"title": "weight"},
                               text=[[f"{gates[t][e]:.2f}" for e in experts] for t in tasks],
                               texttemplate="%{text}"))
    fig.update_layout(title=title, height=max(260, 80 + 40 * len(tasks)), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def expert_reliance_figure(reliance: dict,
                           title: str = "Which experts each task's logit relies on (mean |SHAP| of its gated "
                                        "expert outputs)") -> go.Figure:
    tasks = list(reliance)
    experts = list(next(iter(reliance.values()))) if tasks else []
    fig = go.Figure(go.Heatmap(z=[[reliance[t][e] for e in experts] for t in tasks], x=experts, y=tasks,
                               colorscale="Greens", colorbar={"title": "mean |SHAP|"},
                               text=[[f"{reliance[t][e]:.3f}" for e in experts] for t in tasks],
                               texttemplate="%{text}"))
    fig.update_layout(title=title, height=max(260, 80 + 40 * len(tasks)), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def summary_figures(summary: dict) -> list:
    """The figures of a global summary (`mtlrec.explain.api.global_summary`), in the Explain page's
    order: importance per task, inputs x shared units, then those the model has (tower reliance,
    gates, expert reliance)."""
    figs = [importance_figure(summary["importance"]), heatmap_figure(summary["heatmap"])]
    if "tower_reliance" in summary:
        figs.append(tower_reliance_figure(summary["tower_reliance"]))
    if "gates" in summary:
        figs.append(gates_figure(summary["gates"]))
    if "expert_reliance" in summary:
        figs.append(expert_reliance_figure(summary["expert_reliance"]))
    return figs


def history_label(entry: dict, width: int = 36) -> str:
    """A history item's bar label: "Casablanca 5★ (#1)", #1 the most recent (escaped: data, not markup)."""
    text = f"{entry['name']} {entry.get('value_text') or ''}".strip()
    text = text if len(text) <= width else text[: width - 1] + "…"
    return f"{text} (#{entry['recency']})".replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def history_figure(history: dict, top: int = 15) -> go.Figure:
    """Each history item's contribution to the fused score (else the first task's output), strongest
    first (`mtlrec.explain.history.explain_history`), with the DIN attention weights of this candidate
    in a panel beside it when the model has them (they are not attributions: the panel's title says so)."""
    from plotly.subplots import make_subplots
    items = history.get("items") or []
    fused = history.get("fused") is not None
    task = None if fused else next(iter(history.get("units") or {}), None)
    value = (lambda e: e["fused"]) if fused else (lambda e: e["contributions"][task])
    shown = sorted(items, key=lambda e: -abs(value(e)))[:top][::-1]       # strongest on top
    labels = [history_label(e) for e in shown]
    att = history.get("attention_note") is not None
    unit = "fused score" if fused else f"{task}: {history['units'][task]}"
    fig = make_subplots(rows=1, cols=2 if att else 1, shared_yaxes=True, column_widths=[0.7, 0.3] if att else None,
                        horizontal_spacing=0.03,
                        subplot_titles=[f"contribution to the {unit} (removing the item)"]
                        + (["attention weight (not an attribution)"] if att else []))
    vals = [value(e) for e in shown]
    fig.add_trace(go.Bar(x=vals, y=labels, orientation="h", marker_color=[POS if v >= 0 else NEG for v in vals],
                         text=[f"{v:+.2g}" for v in vals], textposition="outside", cliponaxis=False,
                         name="contribution"), 1, 1)
    if att:
        fig.add_trace(go.Bar(x=[e["attention"] for e in shown], y=labels, orientation="h", marker_color="#9e9e9e",
                             text=[f"{e['attention']:.2f}" for e in shown], textposition="outside",
                             cliponaxis=False, name="attention"), 1, 2)
    fig.update_layout(showlegend=False, height=max(220, 40 + 28 * len(shown)), margin=dict(l=10, r=10, t=40, b=10))
    fig.update_annotations(font_size=12)
    lo, hi = min(vals + [0.0]), max(vals + [0.0])
    pad = 0.35 * (hi - lo) if hi > lo else 1.0
    fig.update_xaxes(range=[lo - pad if lo < 0 else 0.0, hi + pad if hi > 0 else 0.0], row=1, col=1)   # room for the labels
    if att:
        fig.update_xaxes(range=[0.0, 1.4 * max([e["attention"] for e in shown] + [1e-9])], row=1, col=2)
    return fig
