"""Figures for the dashboard: plotly figure builders, graphviz DOT sources and an SVG diagram.

Pure functions of data (pandas / numpy / dicts) -> ``plotly.graph_objects.Figure`` or a DOT
string; no streamlit here, so they are testable and usable from notebooks.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

PALETTE = ["#4C6EF5", "#F76707", "#2B8A3E", "#AE3EC9", "#E03131", "#1098AD", "#F59F00", "#5C7CFA"]


def plotly_go():
    """plotly.graph_objects, imported when the first figure is drawn (the import is slow)."""
    import plotly.graph_objects as go
    return go


_GRID = "#EBF0F8"
# What the figures take from plotly's "plotly_white": white ground, light grid, our colours. Naming
# "plotly_white" instead copies its whole template (every trace type's defaults) into each figure:
# ~20 ms a figure, seconds on a page of charts (issue 15).
_TEMPLATE_SPEC = {"layout": {"paper_bgcolor": "white", "plot_bgcolor": "white", "colorway": PALETTE,
                       "font": {"color": "#2a3f5f"}, "hovermode": "closest",
                       "xaxis": {"gridcolor": _GRID, "zerolinecolor": _GRID, "linecolor": _GRID,
                                 "automargin": True},
                       "yaxis": {"gridcolor": _GRID, "zerolinecolor": _GRID, "linecolor": _GRID,
                                 "automargin": True}}}


_TEMPLATE: list = []


def template():
    """The figures' template, validated once per process (a plotly Template object: passing the
    dict would be validated again for every figure)."""
    if not _TEMPLATE:
        _TEMPLATE.append(plotly_go().layout.Template(_TEMPLATE_SPEC))
    return _TEMPLATE[0]


def layout(fig, title: str | None = None, height: int = 300, **kw):
    """``fig`` with the figures' common look: ``title``, ``height``, tight margins, the legend above, `template`."""
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1),
                      template=template(), **kw)
    return fig


# ---------------------------------------------------------------------------- diagrams
FLOW_STEPS = [("data", "Interaction data", "(users, items, labels)", "#EDF2FF", "#4C6EF5"),
              ("prep", "Preprocessing", "(validate, encode, split)", "#EDF2FF", "#4C6EF5"),
              ("lm", "Language-model", "features (MiniLM text)", "#EDF2FF", "#4C6EF5"),
              ("shared", "Shared representation", "(shared bottom / experts)", "#D0EBFF", "#4C6EF5"),
              ("towers", "Task towers", "(click, like, rating, ...)", "#D3F9D8", "#2B8A3E"),
              ("eval", "Evaluation & feedback", "(metrics, MTL gain, SHAP)", "#FFF4E6", "#F76707")]


def flow_svg(text_features: bool = True) -> str:
    """The mtlrec pipeline as an inline SVG (boxes, arrows, the ids-and-features shortcut and the
    feedback loop). Drawn by the browser at once: a graphviz chart loads a WebAssembly renderer
    first, which held the Home page's buttons back by ~0.8 s on a 2-core machine (issue 15)."""
    from html import escape
    w, h, gap, top = 150, 58, 26, 44
    x = [10 + i * (w + gap) for i in range(len(FLOW_STEPS))]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {x[-1] + w + 10} 170" width="100%" '
             'role="img" aria-label="The mtlrec pipeline" font-family="Helvetica, Arial, sans-serif">',
             '<defs><marker id="mtlrec-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#868E96"/></marker></defs>']
    for i, (key, title, sub, fill, line) in enumerate(FLOW_STEPS):
        dash = ' stroke-dasharray="5,3"' if key == "lm" and not text_features else ""
        parts.append(f'<rect x="{x[i]}" y="{top}" width="{w}" height="{h}" rx="9" fill="{fill}" stroke="{line}"'
                     f' stroke-width="1.4"{dash}/>')
        parts.append(f'<text x="{x[i] + w / 2}" y="{top + 25}" text-anchor="middle" font-size="13" '
                     f'font-weight="600" fill="#212529">{escape(title)}</text>')
        parts.append(f'<text x="{x[i] + w / 2}" y="{top + 43}" text-anchor="middle" font-size="11" '
                     f'fill="#495057">{escape(sub)}</text>')
        if i:
            parts.append(f'<line x1="{x[i - 1] + w}" y1="{top + h / 2}" x2="{x[i] - 2}" y2="{top + h / 2}" '
                         'stroke="#868E96" stroke-width="1.4" marker-end="url(#mtlrec-arrow)"/>')
    # preprocessing -> shared representation: ids and features, around the language model (above)
    x1, x3 = x[1] + w / 2, x[3] + w / 2
    parts.append(f'<path d="M{x1},{top} C{x1},{top - 34} {x3},{top - 34} {x3},{top - 2}" fill="none" '
                 'stroke="#868E96" stroke-width="1.2" stroke-dasharray="5,3" marker-end="url(#mtlrec-arrow)"/>')
    parts.append(f'<text x="{(x1 + x3) / 2}" y="{top - 31}" text-anchor="middle" font-size="10" '
                 'fill="#495057">ids &amp; features</text>')
    # evaluation -> preprocessing: the feedback loop (below)
    x5, yb = x[5] + w / 2, top + h
    parts.append(f'<path d="M{x5},{yb} C{x5},{yb + 44} {x1},{yb + 44} {x1},{yb + 2}" fill="none" '
                 'stroke="#868E96" stroke-width="1.2" stroke-dasharray="2,3" marker-end="url(#mtlrec-arrow)"/>')
    parts.append(f'<text x="{(x1 + x5) / 2}" y="{yb + 50}" text-anchor="middle" font-size="10" '
                 'fill="#495057">feedback: adjust data, tasks, weights</text>')
    parts.append("</svg>")
    return "".join(parts)


def arch_dot(arch: str, tasks: Sequence[str], hparams: Mapping | None = None,
             parents: Mapping[str, str] | None = None) -> str:
    """DOT diagram of one architecture with the given task names (``parents``: {task: the task it is
    given}, drawn by the architectures that pass information along a chain)."""
    hp = dict(hparams or {})
    tasks = list(tasks) or ["task"]
    lines = ['digraph arch {', '  rankdir=BT; bgcolor="transparent";',
             '  node [shape=box, style="rounded,filled", fillcolor="#EDF2FF", color="#4C6EF5", '
             'fontname="Helvetica", fontsize=10];', '  edge [color="#868E96"];',
             '  input [label="Input embeddings\\n(user, item, context, text)", fillcolor="#F1F3F5", color="#868E96"];']
    for i, t in enumerate(tasks):
        lines.append(f'  tower{i} [label="{t} tower", fillcolor="#D3F9D8", color="#2B8A3E"];')
        lines.append(f'  out{i} [label="{t}", shape=ellipse, fillcolor="#FFF4E6", color="#F76707"];')
        lines.append(f'  tower{i} -> out{i};')
    if arch == "shared_bottom":
        dims = " → ".join(str(d) for d in (hp.get("shared_dims") or []))
        lines.append(f'  shared [label="Shared bottom MLP\\n{dims}", fillcolor="#D0EBFF"];')
        lines.append('  input -> shared;')
        for i in range(len(tasks)):
            lines.append(f'  shared -> tower{i};')
    elif arch == "mmoe":
        n = int(hp.get("n_experts", 4) or 1)
        for e in range(n):
            lines.append(f'  e{e} [label="Expert {e + 1}", fillcolor="#D0EBFF"];')
            lines.append(f'  input -> e{e};')
        for i in range(len(tasks)):
            lines.append(f'  g{i} [label="Gate {tasks[i]}", shape=trapezium, fillcolor="#FFF9DB", color="#F59F00"];')
            lines.append(f'  input -> g{i} [style=dashed];')
            for e in range(n):
                lines.append(f'  e{e} -> g{i};')
            lines.append(f'  g{i} -> tower{i};')
    elif arch == "ple":
        ns = int(hp.get("n_shared_experts", 2) or 1)
        nt = int(hp.get("n_specific_experts", 1) or 0)
        nl = int(hp.get("n_levels", hp.get("levels", 1)) or 1)
        for s in range(ns):
            lines.append(f'  s{s} [label="Shared expert {s + 1}", fillcolor="#D0EBFF"];')
            lines.append(f'  input -> s{s};')
        for i, t in enumerate(tasks):
            for k in range(nt):
                lines.append(f'  t{i}_{k} [label="{t} expert {k + 1}", fillcolor="#E6FCF5", color="#0CA678"];')
                lines.append(f'  input -> t{i}_{k};')
            lines.append(f'  g{i} [label="Gate {t}", shape=trapezium, fillcolor="#FFF9DB", color="#F59F00"];')
            for s in range(ns):
                lines.append(f'  s{s} -> g{i};')
            for k in range(nt):
                lines.append(f'  t{i}_{k} -> g{i};')
            lines.append(f'  g{i} -> tower{i};')
        if nl > 1:
            lines.append(f'  note [shape=note, label="× {nl} extraction levels", fillcolor="#F8F9FA", color="#ADB5BD"];')
    elif arch in ("esmm", "aitm"):
        lines += _tower_per_task_dot(arch, tasks, dict(parents or {}))
    else:
        lines.append(f'  body [label="{arch}", fillcolor="#D0EBFF"];')
        lines.append('  input -> body;')
        for i in range(len(tasks)):
            lines.append(f'  body -> tower{i};')
    lines.append('}')
    return "\n".join(lines)


def _tower_per_task_dot(arch: str, tasks: list[str], parents: dict[str, str]) -> list[str]:
    """ESMM / AITM: every tower reads the shared embedding; along a chain ESMM multiplies the
    probabilities, AITM transfers the parent's representation into the child's tower (AIT)."""
    lines = [f'  input -> tower{i};' for i in range(len(tasks))]
    idx = {t: i for i, t in enumerate(tasks)}
    for child, parent in parents.items():
        if child not in idx or parent not in idx:
            continue
        c, p = idx[child], idx[parent]
        if arch == "aitm":
            lines.append(f'  ait{c} [label="AIT\\n(transfer + attention)", shape=hexagon, fillcolor="#FFF9DB", '
                         'color="#F59F00"];')
            lines.append(f'  tower{p} -> ait{c} [style=dashed]; ait{c} -> tower{c};')
        else:
            lines.append(f'  out{p} -> out{c} [style=dashed, label="×"];')
    return lines


# ---------------------------------------------------------------------------- data statistics
def label_balance_fig(interactions, labels: Mapping[str, str]):
    """Share of positives per binary label (and the class counts of multi-label labels)."""
    go = plotly_go()
    import pandas as pd
    names, pos, neg = [], [], []
    for col, t in labels.items():
        if t != "binary" or col not in interactions:
            continue
        v = pd.to_numeric(interactions[col], errors="coerce").dropna()
        names.append(col)
        pos.append(float((v > 0).mean()) if len(v) else 0.0)
        neg.append(1.0 - pos[-1])
    fig = go.Figure()
    fig.add_bar(y=names, x=pos, name="positive", orientation="h", marker_color=PALETTE[0],
                text=[f"{p:.1%}" for p in pos], textposition="inside")
    fig.add_bar(y=names, x=neg, name="negative", orientation="h", marker_color="#DEE2E6")
    fig.update_layout(barmode="stack", xaxis=dict(tickformat=".0%", range=[0, 1]))
    return layout(fig, "Label balance (binary labels)", height=120 + 40 * max(1, len(names)))


def histogram_bins(values, bins: int) -> dict:
    """Counts of ``values`` (NaN left out) in at most ``bins`` bins, computed here rather than in the
    browser: a figure then carries ``bins`` bars, not every value (60,000 ratings made the Data page's
    figures seconds to build, send and draw). Few distinct values (ratings, small counts) get one bar
    each; otherwise ``bins`` equal-width bins over the range. ``{"x": centres, "y": counts, "width":
    bar widths}`` (lists; empty for no values)."""
    import numpy as np
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        return {"x": [], "y": [], "width": []}
    uniq, counts = np.unique(v, return_counts=True)
    if uniq.size <= bins:
        step = float(np.min(np.diff(uniq))) if uniq.size > 1 else 1.0
        return {"x": uniq.tolist(), "y": counts.astype(int).tolist(), "width": [0.9 * step] * int(uniq.size)}
    counts, edges = np.histogram(v, bins=bins)
    return {"x": ((edges[:-1] + edges[1:]) / 2).tolist(), "y": counts.astype(int).tolist(),
            "width": np.diff(edges).tolist()}


def _hist_bar(values, bins: int, color: str):
    go = plotly_go()
    h = histogram_bins(values, bins)
    return go.Figure(go.Bar(x=h["x"], y=h["y"], width=h["width"], marker_color=color,
                            marker_line_width=0, hovertemplate="%{x}: %{y:,}<extra></extra>"))


def count_hist_fig(counts: Iterable[int], what: str, color: str = PALETTE[0]):
    """Histogram of interactions per user / item (log y axis: counts are long-tailed)."""
    fig = _hist_bar(list(counts) if not hasattr(counts, "__array__") else counts, 40, color)
    fig.update_layout(xaxis_title=f"interactions per {what}", yaxis_title=f"{what}s", yaxis_type="log", bargap=0)
    return layout(fig, f"Interactions per {what}")


def value_hist_fig(values, name: str):
    fig = _hist_bar(values, 30, PALETTE[2])
    fig.update_layout(xaxis_title=name, yaxis_title="interactions", bargap=0)
    return layout(fig, f"{name} histogram")


# ---------------------------------------------------------------------------- training curves
def curves_fig(epochs: Sequence, series: Mapping[str, Sequence], title: str, y_title: str = "",
               dash: Mapping[str, str] | None = None):
    """Line chart of several named series over epochs (train/valid loss, a metric ...)."""
    go = plotly_go()
    fig = go.Figure()
    for i, (name, ys) in enumerate(series.items()):
        ys = list(ys)
        xs = list(epochs)[:len(ys)] if epochs is not None else list(range(1, len(ys) + 1))
        if len(xs) < len(ys):
            xs = list(range(1, len(ys) + 1))
        fig.add_scatter(x=xs, y=ys, mode="lines+markers", name=name,
                        line=dict(color=PALETTE[i % len(PALETTE)], dash=(dash or {}).get(name, "solid")))
    fig.update_layout(xaxis_title="epoch", yaxis_title=y_title)
    return layout(fig, title, height=260)


def gain_fig(gains: Mapping[str, float], metric_names: Mapping[str, str] | None = None):
    """Multi-task gain per task: test metric of the multi-task model minus that of the single-task
    baseline, sign-flipped for lower-is-better metrics (positive = training together helped)."""
    go = plotly_go()
    tasks = list(gains)
    vals = [float(gains[t]) for t in tasks]
    labels = [f"{t} ({metric_names[t]})" if metric_names and metric_names.get(t) else t for t in tasks]
    fig = go.Figure(go.Bar(x=labels, y=vals, marker_color=[PALETTE[2] if v >= 0 else PALETTE[4] for v in vals],
                           text=[f"{v:+.4f}" for v in vals], textposition="outside"))
    fig.update_layout(yaxis_title="gain (MTL − single-task)")
    fig.add_hline(y=0, line_color="#868E96")
    return layout(fig, "Multi-task gain per task", height=320)


def roc_fig(curves: Mapping[str, tuple]):
    """ROC curves: {name: (fpr, tpr, auc)}."""
    go = plotly_go()
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#ADB5BD"), name="chance")
    for i, (name, (fpr, tpr, auc)) in enumerate(curves.items()):
        fig.add_scatter(x=list(fpr), y=list(tpr), mode="lines", name=f"{name} (AUC {auc:.3f})",
                        line=dict(color=PALETTE[i % len(PALETTE)]))
    fig.update_layout(xaxis_title="false positive rate", yaxis_title="true positive rate")
    return layout(fig, "ROC", height=320)


def pr_fig(curves: Mapping[str, tuple]):
    """Precision-recall curves: {name: (recall, precision, ap)}."""
    go = plotly_go()
    fig = go.Figure()
    for i, (name, (rec, prec, ap)) in enumerate(curves.items()):
        fig.add_scatter(x=list(rec), y=list(prec), mode="lines", name=f"{name} (AP {ap:.3f})",
                        line=dict(color=PALETTE[i % len(PALETTE)]))
    fig.update_layout(xaxis_title="recall", yaxis_title="precision", yaxis_range=[0, 1.02])
    return layout(fig, "Precision-recall", height=320)


def residual_fig(y_true, y_pred, name: str):
    """Predicted vs true and the residual distribution of one regression task."""
    go = plotly_go()
    from plotly.subplots import make_subplots
    import numpy as np
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    n = len(y_true)
    if n > 4000:  # keep the browser light
        idx = np.random.default_rng(0).choice(n, 4000, replace=False)
        yt, yp = y_true[idx], y_pred[idx]
    else:
        yt, yp = y_true, y_pred
    fig = make_subplots(rows=1, cols=2, subplot_titles=("predicted vs true", "residuals (pred − true)"))
    fig.add_trace(go.Scattergl(x=yt, y=yp, mode="markers", marker=dict(size=4, opacity=0.35, color=PALETTE[0]),
                               name="test rows"), row=1, col=1)
    lo, hi = float(np.nanmin(y_true)) if n else 0.0, float(np.nanmax(y_true)) if n else 1.0
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(dash="dot", color="#868E96"),
                             name="ideal"), row=1, col=1)
    fig.add_trace(go.Histogram(x=y_pred - y_true, nbinsx=40, marker_color=PALETTE[1], name="residual"),
                  row=1, col=2)
    fig.update_xaxes(title_text="true", row=1, col=1)
    fig.update_yaxes(title_text="predicted", row=1, col=1)
    return layout(fig, f"{name}: rating residuals", height=320, showlegend=False)


def runs_overlay_fig(runs: Mapping[str, Mapping], task: str, key: str, metric: str | None = None):
    """One curve per run: ``key`` is "train_loss", "valid_loss" or "valid" (then ``metric``)."""
    go = plotly_go()
    fig = go.Figure()
    for i, (name, hist) in enumerate(runs.items()):
        eps = list((hist or {}).get("epochs") or [])
        xs = [int(e.get("epoch", j + 1)) for j, e in enumerate(eps)]
        if key == "valid":
            ys = [((e.get("valid") or {}).get(task) or {}).get(metric) for e in eps]
        else:
            ys = [(e.get(key) or {}).get(task) for e in eps]
        fig.add_scatter(x=xs, y=ys, mode="lines+markers", name=name, line=dict(color=PALETTE[i % len(PALETTE)]))
    what = f"valid {metric}" if key == "valid" else key.replace("_", " ")
    fig.update_layout(xaxis_title="epoch", yaxis_title=what)
    return layout(fig, f"{task}: {what}", height=300)


def compare_figs(cmp: dict) -> dict:
    """{task: plotly figure} of the validation curves of `mtlrec.runs.compare.compare_runs` (`runs_overlay_fig`)."""
    out = {}
    for task, c in cmp["curves"].items():
        hists = {lab: {"epochs": [{"epoch": x, "valid": {task: {c["metric"]: y}}}
                                  for x, y in zip(r["epochs"], r["values"])]}
                 for lab, r in c["runs"].items()}
        out[task] = runs_overlay_fig(hists, task, "valid", c["metric"])
    return out


def coldstart_fig(rows: Sequence[Mapping]):
    """Grouped bars: each task's test metric on cold vs warm items, one bar group per run
    (rows: run, text features, task, metric, cold items, warm items)."""
    go = plotly_go()
    from plotly.subplots import make_subplots
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig = make_subplots(rows=1, cols=max(1, len(tasks)), subplot_titles=[
        f"{t} ({next(r['metric'] for r in rows if r['task'] == t)})" for t in tasks] or [""])
    runs = list(dict.fromkeys((r["run"], r["text features"]) for r in rows))
    for k, (run, text) in enumerate(runs):
        for j, t in enumerate(tasks):
            r = next((x for x in rows if x["run"] == run and x["task"] == t), None)
            if r is None:
                continue
            fig.add_bar(x=["cold items", "warm items"], y=[r["cold items"], r["warm items"]],
                        name=f"{run} (text {text})", legendgroup=run, showlegend=(j == 0),
                        marker_color=PALETTE[k % len(PALETTE)], row=1, col=j + 1)
    fig.update_layout(barmode="group")
    return layout(fig, "Cold-start vs warm items", height=320)


def live_fig(history: Mapping | None, tasks: Sequence[tuple[str, str | None]], *, n_batches: int | None = None):
    """All live training curves in ONE figure (cheap to redraw every second): row 1 the loss of
    each task (train per logged batch and per epoch, valid per epoch), row 2 its valid metric.
    ``tasks``: [(name, metric)]."""
    go = plotly_go()
    history = history or {}
    epochs = list(history.get("epochs") or [])
    batches = list(history.get("batches") or [])
    per_epoch: dict[int, int] = {}
    for b in batches:
        e = int(b.get("epoch", 1))
        per_epoch[e] = max(per_epoch.get(e, 0), int(b.get("batch", 0)))
    n_per = int(n_batches or 0) or (max(per_epoch.values()) if per_epoch else 1)
    n = max(1, len(tasks))
    ex = [int(e.get("epoch", i + 1)) for i, e in enumerate(epochs)]
    data, annotations = [], []
    layout: dict = {}
    gap = 0.06
    w = (1.0 - gap * (n - 1)) / n
    for j, (task, metric) in enumerate(tasks):
        x0 = j * (w + gap)
        xa, ya, xb, yb = f"x{2 * j + 1}", f"y{2 * j + 1}", f"x{2 * j + 2}", f"y{2 * j + 2}"
        layout[f"xaxis{2 * j + 1}"] = {"domain": [x0, x0 + w], "anchor": ya, "title": {"text": "epoch"}}
        layout[f"yaxis{2 * j + 1}"] = {"domain": [0.58, 1.0], "anchor": xa, "title": {"text": "loss"} if j == 0 else {}}
        layout[f"xaxis{2 * j + 2}"] = {"domain": [x0, x0 + w], "anchor": yb, "title": {"text": "epoch"}}
        layout[f"yaxis{2 * j + 2}"] = {"domain": [0.0, 0.36], "anchor": xb}
        annotations.append({"text": f"<b>{task}: loss</b>", "x": x0, "y": 1.07, "xref": "paper", "yref": "paper",
                            "showarrow": False, "xanchor": "left"})
        annotations.append({"text": f"<b>{task}: valid {metric or ''}</b>", "x": x0, "y": 0.44, "xref": "paper",
                            "yref": "paper", "showarrow": False, "xanchor": "left"})
        bx, by = [], []
        for b in batches:
            v = (b.get("train_loss") or {}).get(task)
            if v is not None:
                bx.append(int(b.get("epoch", 1)) - 1 + int(b.get("batch", 0)) / max(1, n_per))
                by.append(v)
        first = j == 0
        data.append({"type": "scatter", "x": bx, "y": by, "mode": "lines", "name": "train (batches)",
                     "line": {"color": PALETTE[0], "width": 1}, "opacity": 0.45, "xaxis": xa, "yaxis": ya,
                     "legendgroup": "tb", "showlegend": first})
        data.append({"type": "scatter", "x": ex, "y": [(e.get("train_loss") or {}).get(task) for e in epochs],
                     "mode": "lines+markers", "name": "train", "line": {"color": PALETTE[0]}, "xaxis": xa,
                     "yaxis": ya, "legendgroup": "tr", "showlegend": first})
        data.append({"type": "scatter", "x": ex, "y": [(e.get("valid_loss") or {}).get(task) for e in epochs],
                     "mode": "lines+markers", "name": "valid", "line": {"color": PALETTE[1]}, "xaxis": xa,
                     "yaxis": ya, "legendgroup": "va", "showlegend": first})
        data.append({"type": "scatter", "x": ex,
                     "y": [((e.get("valid") or {}).get(task) or {}).get(metric) for e in epochs],
                     "mode": "lines+markers", "name": "valid metric", "line": {"color": PALETTE[2]}, "xaxis": xb,
                     "yaxis": yb, "legendgroup": "vm", "showlegend": first})
    layout.update({"annotations": annotations, "height": 460, "template": template(),
                   "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
                   "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.1, "x": 0}})
    return go.Figure({"data": data, "layout": layout})
