"""Train: start / cancel background training, live per-task curves, this session's runs."""
from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from mtlrec.figures import charts as viz
from mtlrec.metrics import higher_is_better
from mtlrec.app.public import public_message
from mtlrec.tasks import DEFAULT_METRIC
from mtlrec.training.early_stopping import describe as describe_early_stopping
from pages.ui.actions import prepare_dataset, start_training
from pages.ui.dynamics import live_view as live_dynamics
from pages.ui.messages import md_text, msg_text, show_exception
from pages.ui.sidebar import device_label
from pages.ui.state import (TERMINAL, ensure_app_navigation, get_state, job_run_dir, need_data, snap_get,
                             synced_selectbox)
from pages.ui.ranking import catalogue_size, ranking_option
from pages.ui.teaching import show_cv_option
from pages.ui.tracking import tracking_option


# ---------------------------------------------------------------------------- configuration summary
def _summary_section(state, tasks: list, tr: dict) -> None:
    """One line of what a run would train, the early-stopping rule, and a link back to change it."""
    arch = state.model.get("arch", "?")
    st.markdown(
        f"**Data:** {md_text(state.source)} · **Tasks:** "
        + ", ".join(f"{md_text(t['name'])} ({t['type']}, w={float(t.get('weight', 1)):.1f})" for t in tasks)
        + f" · **Model:** {arch} · **Weighting:** {tr.get('weighting', 'static')} · **Epochs:** {tr.get('epochs')}"
        + f" · **Batch:** {tr.get('batch_size')} · **Device:** {device_label() if tr.get('device', 'auto') == 'auto' else tr.get('device')}"
        + (" · **Text features:** on" if state.text.get("enabled") else ""))
    if tasks:
        es = tr.get("early_stopping") or {}
        es_task = next((t for t in tasks if t["name"] == es.get("task")), tasks[0])
        es_metric = es.get("metric") or es_task.get("metric") or DEFAULT_METRIC.get(es_task["type"], "auc")
        patience = int(es.get("patience", 3))
        try:
            hib = higher_is_better(es_metric)
        except (KeyError, ValueError):
            hib = False if es_metric == "loss" else None
        st.caption(md_text(describe_early_stopping(es_task["name"], es_metric, hib, patience)))
    st.page_link("pages/model.py", label="Change tasks & model", icon=":material/tune:")


# ---------------------------------------------------------------------------- start / cancel
def max_processes_here() -> int:
    from mtlrec.training.launch import max_processes
    return max_processes()


def _running_jobs(state):
    return [j for j in state.jobs if snap_get(j.snapshot(include_batches=False), "status") not in TERMINAL]


def _controls_section(state, tasks: list, tr: dict, has_data: bool) -> list:
    """Start and Cancel with the run's options (baselines, cross-validation, ranking, processes);
    returns the jobs that were running when the page was drawn."""
    running = _running_jobs(state)
    c1, c2, c3 = st.columns([2, 2, 3], vertical_alignment="center")
    tr["baselines"] = c3.checkbox("Also train single-task baselines (for the multi-task gain on Results)",
                                  value=bool(tr.get("baselines")), key=f"train_baselines_{state.counter}")
    # ------------------------------------------------------------ cross-validation (issue 14 §6)
    show_cv_option(tr, getattr(state.prep, "split", None), key=f"train_cv_{state.counter}")
    # ------------------------------------------------------------ ranking over the catalogue (issue 27)
    ranking_option(tr, catalogue_size(state.dataset, state.raw, state.spec), state.model.get("arch"),
                   key=f"train_ranking_{state.counter}")
    # ------------------------------------------------------------ live experiment tracking (issue 26)
    tracking_option(tr, key=f"train_tracking_{state.counter}")
    # ------------------------------------------------------------ several processes (issue 16)
    n_max = max_processes_here()
    processes = 1
    if n_max > 1 and has_data:
        processes = int(st.number_input(
            "Processes", min_value=1, max_value=n_max, value=1, step=1, key="train_processes",
            help="Data-parallel training with torchrun: each process (one per GPU, or gloo processes on the CPU) "
                 "trains its share of every batch; the batch size stays the global batch. The run folder is the "
                 "same as a one-process run's."))
    start = c1.button("Start training", type="primary", icon=":material/play_arrow:", key="train_start",
                      disabled=bool(running) or not tasks or not has_data, width="stretch")
    if start:
        if prepare_dataset():
            try:
                job = start_training(processes=processes)
                state.selected_run = job_run_dir(job)
                st.rerun()
            except Exception as e:
                show_exception(e, "Starting the training")
    if c2.button("Cancel", icon=":material/stop:", key="train_cancel", disabled=not running, width="stretch"):
        for j in running:
            j.cancel()
        st.toast("Cancelling ... the run stops after the current batch.")
    return running


# ---------------------------------------------------------------------------- live panel
def _eta_text(snap) -> str:
    """The ETA from measured time: the soonest early stopping allows, and "up to" the epoch cap."""
    from mtlrec.training.progress import ETA_KEYS, eta_text
    return eta_text(snap if isinstance(snap, dict) else {k: snap_get(snap, k) for k in ETA_KEYS})


def _phase_label(snap) -> str:
    """"phase — its own progress" (the snapshot's label, or rebuilt from its phase fields)."""
    from mtlrec.training.progress import progress_label
    return progress_label(snap if isinstance(snap, dict) else {k: snap_get(snap, k) for k in
                          ("label", "phase", "phases", "epoch", "epochs", "batch", "n_batches")})


BATCH_REDRAW_S = 2.0      # new batch records redraw the live curves at most this often (a new epoch: at once)


def live_panel(state, running: list, tasks: list, tr: dict) -> None:
    """The selected (or last) run of this session: progress, its end, and its live curves. Run as a
    fragment that redraws itself every half second while ``running`` (the jobs running at the page's draw)."""
    if running and not _running_jobs(state):
        # A run this page drew as running has ended: redraw the whole page (buttons, runs table,
        # sidebar) before showing its end, so that no part of the page shows a stale state.
        st.rerun(scope="app")
    if not state.jobs:
        st.info("No run is training in this session: press **Start training**." if state.past_runs else
                "No run yet in this session: press **Start training**.")
        return
    job = state.job_for(state.selected_run) or state.jobs[-1]
    snap = job.snapshot()
    status = snap_get(snap, "status", "?")
    name = Path(job_run_dir(job) or "run").name
    n_proc = int(snap_get(snap, "processes", 1) or 1)
    if n_proc > 1:
        name += f" ({n_proc} processes)"
    frac = float(snap_get(snap, "fraction", 0.0) or 0.0)
    epoch, epochs = snap_get(snap, "epoch", 0), snap_get(snap, "epochs", tr.get("epochs"))
    if status in TERMINAL:
        text = f"{name} — {status}: epoch {epoch}/{epochs} · {frac:.0%}"
    elif snap_get(snap, "starting"):       # its worker process is not up yet: no "0 %" that does not move
        text = f"{name} — Starting the training process … {int(snap_get(snap, 'elapsed_s', 0) or 0)} s"
    else:       # the phase (training, test evaluation, ranking, baseline k of n, fold k of n) with its own progress
        text = f"{name} — {status}: {_phase_label(snap)} · {frac:.0%} · {_eta_text(snap)}"
    st.progress(min(1.0, max(0.0, frac)), text=text)
    for w in snap_get(snap, "warnings") or []:         # e.g. a validation split the metric is undefined on
        st.warning(msg_text(w), icon=":material/warning:")
    if status == "failed":
        st.error(f"The run failed: {msg_text(snap_get(snap, 'error') or 'unknown error')}", icon=":material/error:")
    elif status == "cancelled":
        st.warning("The run was cancelled; the best model so far is kept.", icon=":material/stop_circle:")
    elif status == "finished":
        st.success("Finished. See **Results** and **Recommendations**.", icon=":material/task_alt:")
    _live_curves(job, snap, name, status, tasks)


def _live_curves(job, snap, name: str, status: str, tasks: list) -> None:
    """The run's per-task curves and training dynamics, rebuilt only when new records arrived."""
    hist = snap_get(snap, "history") or {}
    if hasattr(hist, "to_dict"):
        hist = hist.to_dict()
    cfg_tasks = list(getattr(getattr(job, "config", None), "tasks", None) or tasks)
    spec = [(t["name"], t.get("metric")) if isinstance(t, dict) else (t.name, t.metric) for t in cfg_tasks]
    # the figure changes only when a batch or epoch record arrives: rebuild it only then
    sig = (name, len(hist.get("epochs") or []), len(hist.get("batches") or []), status)
    # and a batch record alone redraws it at most every BATCH_REDRAW_S: building the figure costs the
    # server ~0.1 s, and every watching session's redraw competes with other visitors' pages (issue 15)
    cache = st.session_state.get("live_fig_cache")
    now = time.monotonic()
    if (cache is None or cache[0][:2] != sig[:2] or cache[0][3] != sig[3]
            or (cache[0] != sig and now - cache[2] >= BATCH_REDRAW_S)):
        cache = (sig, viz.live_fig(hist, spec, n_batches=snap_get(snap, "n_batches")), now)
        st.session_state["live_fig_cache"] = cache
    st.plotly_chart(cache[1], key="live_curves")
    live_dynamics(hist, sig[:2])
    st.caption(f"updated {time.strftime('%H:%M:%S')}.{int(time.time() * 10) % 10}", help="refreshed every second while training runs")


# ---------------------------------------------------------------------------- runs of this session
def _job_row(job) -> dict:
    """A row of the runs table for a job of this server process (its device once its worker reported)."""
    s = job.snapshot(include_batches=False)
    n_proc = snap_get(s, "processes", 1) or 1
    return {"run": Path(job_run_dir(job) or "?").name, "status": snap_get(s, "status"),
            "epoch": f"{snap_get(s, 'epoch', 0)}/{snap_get(s, 'epochs', '?')}", "model": snap_get(s, "arch", ""),
            "tasks": ", ".join(t.get("name", "") for t in job.config.tasks),
            "device": (snap_get(s, "device") or "—") + (f" × {n_proc} processes" if n_proc > 1 else ""),
            "message": public_message(snap_get(s, "error") or "")}


def _folder_row(run_dir: str) -> dict:
    """A row for a run this workspace trained before the server restarted: read from its folder."""
    from mtlrec.runs.library import run_row
    r = run_row(Path(run_dir))
    return {"run": r["run"], "status": r["status"],
            "epoch": "—" if r["best_epoch"] is None else f"best {r['best_epoch']}", "model": r["arch"],
            "tasks": ", ".join(r["tasks"]), "device": r["device"] or "—",
            "message": public_message(r["error"] or "")}


def _runs_section(state) -> None:
    """The runs of this session (jobs, then runs from before a restart) and which one the live panel shows."""
    st.subheader("Runs of this session")
    if not state.jobs and not state.past_runs:
        st.caption("None yet.")
        return
    rows = [_job_row(j) for j in reversed(state.jobs)] + [_folder_row(r) for r in reversed(state.past_runs)]
    st.dataframe(rows, hide_index=True, width="stretch", key="runs_table")
    if state.past_runs:
        st.caption("Runs trained before the server restarted are read from their folders; open them on "
                   "**Results** or **Runs**.")
    for row in rows:
        if row["status"] == "failed":
            st.error(f"{md_text(row['run'])}: {md_text(row['message'])}")
    names = [job_run_dir(j) for j in reversed(state.jobs) if job_run_dir(j)]
    synced_selectbox("Show run", names, key="train_show_run", attr="selected_run",
                     format_func=lambda p: Path(p).name)


def render() -> None:
    """The Train page."""
    ensure_app_navigation()
    state = get_state()
    st.title("Train")
    has_data = state.raw is not None
    if not has_data:
        need_data("Train")          # a hint; a run resumed from the Runs page is still shown below
        if not state.jobs and not state.past_runs:
            st.stop()
    tasks = state.tasks
    tr = state.train
    if has_data:
        _summary_section(state, tasks, tr)
    running = _controls_section(state, tasks, tr, has_data)
    st.subheader("Live curves")
    st.fragment(live_panel, run_every=0.5 if running else None)(state, running, tasks, tr)
    _runs_section(state)


render()
