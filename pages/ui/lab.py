"""The live panel of the Lab page (pages/lab.py): jobs, progress, tables; its figures are `mtlrec.figures.teaching`,

Lab results survive a reload like runs do: a job's result is stored in the visitor's workspace when
it ends (``lab_<kind>.json`` beside workspace.json, `mtlrec.app.workspace.save_part`, written by the
job's own thread), and a running job is kept per workspace in this server process, so F5 or a
bookmark finds the running experiment or its result.
"""
from __future__ import annotations

import logging
import threading

import streamlit as st

from mtlrec.figures.teaching import sweep_fig
from mtlrec.teaching import lab
from pages.ui.state import forget_ended_jobs, get_state, with_running_jobs

JOBS_KEY = "lab_jobs"          # st.session_state[JOBS_KEY] = {"archs" | "sweep" | "weightings": LabJob | StoredJob}
TERMINAL = ("finished", "cancelled", "failed")
_LIVE: dict[str, dict] = {}    # workspace id -> {kind: LabJob} started in this server process
_LIVE_LOCK = threading.Lock()
_LOG = logging.getLogger("mtlrec.teaching.lab")


def _part(kind: str) -> str:
    return f"lab_{kind}"


def _restored(ws_id: str | None) -> dict:
    """The workspace's lab jobs: the ones running (or run) in this process, else the stored results."""
    if not ws_id:
        return {}
    from mtlrec.app import workspace
    with _LIVE_LOCK:
        out = dict(_LIVE.get(ws_id, {}))
    for kind in lab.LabJob.KINDS:
        if kind in out:
            continue
        rec = workspace.load_part(ws_id, _part(kind))
        if rec:
            try:
                out[kind] = lab.StoredJob(rec)
            except Exception:  # noqa: BLE001 - a damaged record is skipped, the page still opens
                _LOG.warning("stored lab result %s of workspace %s is unreadable", kind, ws_id, exc_info=True)
    return out


def _ended(job) -> bool:
    return job.status in TERMINAL and job.join(0)       # its result is stored once its thread has ended


def forget_finished_jobs(live_ws_ids: set) -> int:
    """Drop the ended Lab jobs of workspaces no live session has open (their results are stored in
    the workspace, where a reload reads them); returns how many were dropped."""
    with _LIVE_LOCK:
        return forget_ended_jobs(_LIVE, live_ws_ids, _ended)


def running_workspaces() -> set:
    """Ids of the workspaces with a Lab job that has not ended."""
    with _LIVE_LOCK:
        return with_running_jobs(_LIVE, _ended)


def lab_jobs() -> dict:
    jobs = st.session_state.get(JOBS_KEY)
    if jobs is None:
        jobs = st.session_state[JOBS_KEY] = _restored(get_state().ws_id)
    return jobs


def running_jobs() -> list:
    return [j for j in lab_jobs().values() if j.status not in TERMINAL]


def _store(ws_id: str, kind: str):
    def on_done(snap: dict) -> None:          # called from the job's thread: a file write, no UI
        from mtlrec.app import workspace
        workspace.save_part(ws_id, _part(kind), lab.to_json(snap))
    return on_done


def start_job(kind: str, p: float = 0.5, **options) -> None:
    """Start a LabJob (the previous one of this kind is replaced; one runs at a time); its result is
    stored in the workspace when it ends."""
    if running_jobs():
        st.toast("An experiment is still running: cancel it or wait for it.")
        return
    ws_id = get_state().ws_id
    job = lab.LabJob(kind, p=p, on_done=_store(ws_id, kind) if ws_id else None, **options).start()
    lab_jobs()[kind] = job
    if ws_id:
        with _LIVE_LOCK:
            _LIVE.setdefault(ws_id, {})[kind] = job


def cached_fig(name: str, snap: dict, build):
    """The figure of ``build()``, rebuilt only when an epoch or a run has ended since the last draw."""
    sig = (snap["job"], snap["p"], snap["status"], snap["done"],
           tuple(len(r["history"]["epochs"]) for r in snap["runs"].values()))
    cache = st.session_state.setdefault("lab_fig_cache", {})
    if name not in cache or cache[name][0] != sig:
        cache[name] = (sig, build())
    return cache[name][1]


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
    st.plotly_chart(cached_fig("sweep", snap, lambda: sweep_fig(sw)), key="lab_sweep_fig")
    table = []
    for arch, by_p in summary.items():
        table.append({"architecture": lab.ARCH_LABELS.get(arch, arch),
                      **{f"p = {p:g}": round(v, 4) for p, v in sorted(by_p.items())}})
    st.dataframe(table, hide_index=True, width="stretch", key="lab_sweep_table")
    adv = (sw.get("ordering") or {}).get("advantage") or {}
    gaps = ", ".join(f"p = {p:g}: {v:+.4f}" for p, v in sorted(adv.items()))
    text = lab.verdict(sw)                 # from the very numbers drawn above; None for a partial sweep
    if text:
        st.markdown(f"**Shared-bottom RMSE − MMoE RMSE** (positive: MMoE better): {gaps}. {text}")
    elif snap["status"] in TERMINAL:
        st.caption(f"No verdict: the sweep {snap['status']} before all its runs had finished.")
    else:
        st.caption("The verdict comes when every run of the sweep has finished.")
