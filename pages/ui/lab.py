"""Figures and the live panel of the Lab page (pages/lab.py); the experiments are `mtlrec.lab`."""
from __future__ import annotations

import streamlit as st

from mtlrec import lab
from mtlrec.viz import PALETTE, _layout

JOBS_KEY = "lab_jobs"          # st.session_state[JOBS_KEY] = {"archs" | "sweep" | "weightings": LabJob}
TERMINAL = ("finished", "cancelled", "failed")


def lab_jobs() -> dict:
    return st.session_state.setdefault(JOBS_KEY, {})


def running_jobs() -> list:
    return [j for j in lab_jobs().values() if j.status not in TERMINAL]


def start_job(kind: str, p: float = 0.5, **options) -> None:
    """Start a LabJob (the previous one of this kind is replaced; one runs at a time)."""
    if running_jobs():
        st.toast("An experiment is still running: cancel it or wait for it.")
        return
    lab_jobs()[kind] = lab.LabJob(kind, p=p, **options).start()


def cached_fig(name: str, snap: dict, build):
    """The figure of ``build()``, rebuilt only when an epoch or a run has ended since the last draw."""
    sig = (snap["job"], snap["p"], snap["status"], snap["done"],
           tuple(len(r["history"]["epochs"]) for r in snap["runs"].values()))
    cache = st.session_state.setdefault("lab_fig_cache", {})
    if name not in cache or cache[name][0] != sig:
        cache[name] = (sig, build())
    return cache[name][1]


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
    _layout(fig, title, height=340)
    fig.update_layout(margin=dict(t=80), legend=dict(y=1.14))    # above the panel titles
    return fig


def sweep_fig(summary: dict, metric: str = lab.METRIC):
    """Mean test ``metric`` against the task correlation p, one line per architecture."""
    import plotly.graph_objects as go
    fig = go.Figure()
    for i, (arch, by_p) in enumerate(summary.items()):
        ps = sorted(by_p)
        fig.add_scatter(x=ps, y=[by_p[p] for p in ps], mode="lines+markers", name=lab.ARCH_LABELS.get(arch, arch),
                        line=dict(color=PALETTE[i % len(PALETTE)]))
    fig.update_xaxes(title_text="task correlation p")
    fig.update_yaxes(title_text=f"test {metric.upper()} (mean of both tasks; lower is better)")
    return _layout(fig, "Sweep: test error against task correlation", height=340)


def dynamics_fig(rows: list[dict]):
    import plotly.graph_objects as go
    fig = go.Figure()
    keys = sorted({(r["run"], r["measure"]) for r in rows})
    for i, (run, measure) in enumerate(keys):
        pts = [r for r in rows if r["run"] == run and r["measure"] == measure]
        fig.add_scatter(x=[r["epoch"] for r in pts], y=[r["value"] for r in pts], mode="lines+markers",
                        name=f"{run}: {measure}", line=dict(color=PALETTE[i % len(PALETTE)]))
    fig.update_xaxes(title_text="epoch")
    return _layout(fig, "Gradient conflict per epoch", height=300)


def progress_line(snap: dict, what: str) -> None:
    status = snap["status"]
    text = f"{what} — {status}: {snap['done']}/{snap['total'] or '?'} runs"
    if snap.get("current"):
        text += f" · training {snap['current']}"
    text += f" · {snap['elapsed_s']:.0f} s"
    st.progress(min(1.0, max(0.0, float(snap.get("fraction") or 0.0))), text=text)
    if status == "failed":
        from pages.ui.messages import msg_text
        st.error(f"The experiment failed: {msg_text(snap.get('error') or 'unknown error')}", icon=":material/error:")
    elif status == "cancelled":
        st.warning("Cancelled; what had finished is shown.", icon=":material/stop_circle:")


def runs_table(runs: dict) -> None:
    rows = [r for r in lab.test_table(runs) if r.get("mean rmse") is not None]
    if rows:
        st.dataframe([{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
                     hide_index=True, width="stretch")


def sweep_panel(snap: dict) -> None:
    sw = snap.get("sweep") or {}
    summary = sw.get("summary") or {}
    if not summary:
        return
    st.plotly_chart(sweep_fig(summary), key="lab_sweep_fig")
    table = []
    for arch, by_p in summary.items():
        table.append({"architecture": lab.ARCH_LABELS.get(arch, arch),
                      **{f"p = {p:g}": round(v, 4) for p, v in sorted(by_p.items())}})
    st.dataframe(table, hide_index=True, width="stretch", key="lab_sweep_table")
    order = sw.get("ordering") or {}
    adv = order.get("advantage") or {}
    if order.get("holds") is not None:
        gaps = ", ".join(f"p = {p:g}: {v:+.4f}" for p, v in sorted(adv.items()))
        lo, hi = f"{order['low_p']:g}", f"{order['high_p']:g}"
        verdict = (f"holds: MMoE fares better against shared-bottom at p = {lo} than at p = {hi}"
                   if order["holds"] else f"does not hold on this sweep: MMoE fares no better against "
                                          f"shared-bottom at p = {lo} than at p = {hi}")
        behind = all(v < 0 for v in adv.values())
        st.markdown(f"**Shared-bottom RMSE − MMoE RMSE** (positive: MMoE better): {gaps}. "
                    f"The paper's ordering **{verdict}**"
                    + (" (though MMoE is behind at every p here: these runs are short; `bench/lab.py` trains longer)"
                       if behind else "") + ".")
