"""Figures of the teaching aids: the Lab's curves, sweep and weighting comparison, and the labels'
correlation heatmap (Data). Pure functions of data; plotly loads with them."""
from __future__ import annotations

from mtlrec.figures.charts import PALETTE, layout
from mtlrec.teaching import lab


def curves_fig(runs: dict, title: str, metric: str = lab.METRIC):
    """Validation ``metric`` per epoch, one panel per task, one line per run."""
    from plotly.subplots import make_subplots
    rows = lab.curve_rows(runs, "valid", metric)
    fig = make_subplots(rows=1, cols=len(lab.TASKS), subplot_titles=[f"task {t}" for t in lab.TASKS])
    for i, name in enumerate(runs):
        for c, task in enumerate(lab.TASKS, 1):
            pts = [r for r in rows if r["run"] == name and r["task"] == task]
            fig.add_scatter(x=[r["epoch"] for r in pts], y=[r["value"] for r in pts], mode="lines+markers",
                            name=name, legendgroup=name, showlegend=c == 1,
                            line=dict(color=PALETTE[i % len(PALETTE)]), row=1, col=c)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text=f"validation {metric.upper()}", col=1)
    layout(fig, title, height=340)
    fig.update_layout(margin=dict(t=80), legend=dict(y=1.14))    # above the panel titles
    return fig


def sweep_fig(sw: dict, metric: str = lab.METRIC):
    """Mean test ``metric`` against the task correlation p, one line per architecture; the title says
    how large the sweep is."""
    import plotly.graph_objects as go
    fig = go.Figure()
    for i, (arch, by_p) in enumerate((sw.get("summary") or {}).items()):
        ps = sorted(by_p)
        fig.add_scatter(x=ps, y=[by_p[p] for p in ps], mode="lines+markers", name=lab.ARCH_LABELS.get(arch, arch),
                        line=dict(color=PALETTE[i % len(PALETTE)]))
    fig.update_xaxes(title_text="task correlation p")
    fig.update_yaxes(title_text=f"mean test {metric.upper()} (lower is better)")
    layout(fig, f"Sweep: test error against task correlation<br><sup>{lab.sweep_size(sw)}</sup>", height=360)
    fig.update_layout(margin=dict(l=10, r=10, t=70, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0, xanchor="left"))
    return fig


def dynamics_fig(runs: dict):
    """The weighting comparison's gradient-conflict panels (`mtlrec.figures.dynamics.compare_fig`)."""
    from mtlrec.figures.dynamics import compare_fig
    return compare_fig({name: r.get("history") or {} for name, r in runs.items()})


def label_correlation_fig(corr):
    """Heatmap of a labels' correlation matrix (`mtlrec.teaching.correlation.label_correlation`)."""
    import plotly.graph_objects as go
    names = [str(c) for c in corr.columns]
    z = corr.to_numpy()
    fig = go.Figure(go.Heatmap(z=z, x=names, y=names, zmin=-1, zmax=1, colorscale="RdBu", reversescale=False,
                               text=[[("" if v != v else f"{v:.2f}") for v in row] for row in z],
                               texttemplate="%{text}", hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>"))
    fig.update_layout(height=120 + 40 * len(names), margin=dict(l=10, r=10, t=10, b=10), yaxis_autorange="reversed")
    return fig
