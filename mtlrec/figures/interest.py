"""The interest profile of one user: predicted shares next to the actual ones (`mtlrec.runs.interest`)."""
from __future__ import annotations

from mtlrec.figures.charts import PALETTE, layout, plotly_go


def interest_profile_fig(profile: dict, top: int = 20):
    """Grouped bars per class (the ``top`` largest actual or predicted shares, largest actual first):
    predicted and actual share, the training mean as a marker."""
    go = plotly_go()
    classes, pred, act = profile["classes"], profile["predicted"], profile["actual"]
    mean = profile.get("training_mean") or []
    order = sorted(range(len(classes)), key=lambda k: (-act[k], -pred[k]))[:top]
    names = [str(classes[k]) for k in order]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=names, y=[act[k] for k in order], name="actual", marker_color=PALETTE[0]))
    fig.add_trace(go.Bar(x=names, y=[pred[k] for k in order], name="predicted", marker_color=PALETTE[1]))
    if len(mean) == len(classes):
        fig.add_trace(go.Scatter(x=names, y=[mean[k] for k in order], mode="markers", name="training mean",
                                 marker=dict(symbol="line-ew-open", size=18, color="#495057")))
    fig.update_layout(barmode="group", yaxis_title="share of the user's interest", xaxis_title=None)
    rows = profile.get("rows", 0)
    title = (f"{profile['task']}: user {profile['user']}, predicted vs actual "
             f"(mean over {rows} {profile.get('split', 'test')} row{'s' if rows != 1 else ''})")
    return layout(fig, title, height=360)
