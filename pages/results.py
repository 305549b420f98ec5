"""Results: per-task test metrics, curves of several runs, multi-task gain, ROC/PR, residuals."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import streamlit as st

from mtlrec import metrics as metrics_lib
from mtlrec.figures import charts as viz
from mtlrec.errors import DataError
from mtlrec.metrics import higher_is_better, precision_recall_points, roc_curve_points
from mtlrec.app.workflow import metrics_by_type
from mtlrec.runs.predictions import own_space_rows, predictions
from pages.ui.actions import load_run_cached, open_run, run_version
from pages.ui.downloads import download
from pages.ui.dynamics import results_section as dynamics_section
from pages.ui.messages import md_text, show_data_error
from pages.ui.ranking import show_ranking_note
from pages.ui.state import ensure_app_navigation, get_state, lazy_section, need_run
from pages.ui.tables import show_table
from pages.ui.teaching import show_cross_validation, show_seesaw


# ---------------------------------------------------------------------------- test metrics
def _test_metrics_section(metrics: dict, tasks_cfg: list, task_metric: dict) -> None:
    """Each task's headline test metric (with its gain), one table per task type, and the run's facts."""
    st.subheader("Test metrics per task")
    test = metrics.get("test") or {}
    cols = st.columns(max(1, len(test)))
    for col, (task, vals) in zip(cols, test.items()):
        m = task_metric.get(task) or next(iter(vals), None)
        v = vals.get(m) if m else None
        g = (metrics.get("gain") or {}).get(task) or {}
        delta = None
        if g.get("metric") == m and g.get("gain") is not None:
            # the same number as the gain chart below: positive = multi-task helped, whatever the metric
            delta = f"{float(g['gain']):+.4f} gain vs single-task"
        col.metric(f"{md_text(task)} — {m}", "—" if v is None else f"{v:.4f}", delta=delta, delta_color="normal",
                   help=None if m is None else (f"{m}: higher is better" if higher_is_better(m) else f"{m}: lower is better"))
    # one table per task type: each shows the metrics of its own tasks, with no empty cells
    for kind, block in metrics_by_type(metrics, tasks_cfg, "test").items():
        st.markdown(f"**{kind.capitalize()} tasks**")
        show_table(block, width="stretch", key=f"metrics_table_{kind}")
    extra = {k: metrics.get(k) for k in ("best_epoch", "epochs_run", "samples_per_s", "device") if k in metrics}
    if extra:
        st.caption(" · ".join(f"{k.replace('_', ' ')}: {v:.0f}" if isinstance(v, float) else f"{k.replace('_', ' ')}: {v}"
                              for k, v in extra.items()))


def _ranking_section(metrics: dict) -> None:
    """Ranking over the whole catalogue (when the run measured it) and the note on what it means."""
    ranking_rows = metrics_lib.ranking_rows(metrics)
    if ranking_rows:
        st.markdown("**Ranking over the whole catalogue** — for test users, every item they have not seen in "
                    "training or validation is scored; how many of their test positives reach the top K. "
                    + md_text(metrics_lib.baselines_text(metrics)))
        show_table(ranking_rows, hide_index=True, key="ranking_table")
        for task, verdict in metrics_lib.ranking_verdicts(metrics).items():
            st.markdown(f"- **{md_text(task)}**: {md_text(verdict)}")
    show_ranking_note(metrics)


# ---------------------------------------------------------------------------- gain
def _gain_section(metrics: dict) -> None:
    """The multi-task gain over single-task baselines per task (or how to get it)."""
    st.subheader("Multi-task gain over single-task baselines")
    gains = metrics.get("gain") or {}
    if gains:
        flat = {t: float(g["gain"]) for t, g in gains.items() if g.get("gain") is not None}
        mnames = {t: g.get("metric") for t, g in gains.items()}
        st.plotly_chart(viz.gain_fig(flat, mnames), key="gain_fig")
        show_table([{"task": t, "metric": g.get("metric"), "multi-task": g.get("mtl"), "single-task": g.get("stl"),
                     "gain": g.get("gain")} for t, g in gains.items()], hide_index=True, key="gain_table")
        st.caption("Gain = test metric of the multi-task model minus that of a single-task model trained with the same "
                   "settings, sign-flipped for error metrics: positive means training the tasks together helped.")
        show_seesaw(gains)      # Δm over the baselines; the seesaw named when gains have mixed signs
    else:
        st.info("This run has no single-task baselines. Tick **Also train single-task baselines** on Train to see "
                "what multi-task learning gains per task.")


# ---------------------------------------------------------------------------- interests
def _interest_section(run, metrics: dict) -> None:
    """A user's predicted interest profile next to the actual one (distribution tasks), and the
    training-mean baseline of each such task."""
    from mtlrec.figures.interest import interest_profile_fig
    from mtlrec.runs.interest import distribution_tasks, interest_profile, interest_users
    tasks = distribution_tasks(run)
    if not tasks:
        return
    st.subheader("User interests: predicted and actual")
    for name, b in (metrics.get("task_baseline") or {}).items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in (b.get("metrics") or {}).items() if isinstance(v, float))
        st.caption(f"{md_text(name)} — the {md_text(b.get('name', 'baseline'))} baseline (every test row predicted as "
                   f"the average training distribution): {shown}")
    c1, c2 = st.columns(2)
    task = c1.selectbox("Interest task", [t.name for t in tasks], key="results_interest_task")
    try:
        users = interest_users(run, task)
        if not users:
            st.info("No test row of this task has a known interest distribution.")
            return
        user = c2.selectbox("User", users[:500], key=f"results_interest_user_{task}",
                            help="test users with rows of a known interest distribution, most rows first")
        prof = interest_profile(run, user, task)
    except DataError as e:
        show_data_error(e)
        return
    st.plotly_chart(interest_profile_fig(prof), key="interest_fig")
    st.caption("Shares of the user's interest per class: the model's prediction and the actual shares (the next "
               "positives after each test row, or the user's training profile when none follow), averaged over "
               "the user's test rows; the marks are the training mean, what the baseline predicts for everyone.")


# ---------------------------------------------------------------------------- runs overlay
def overlay(runs: list[str], task_metric: dict) -> None:
    pick = st.multiselect("Runs", runs, default=runs[: min(3, len(runs))], format_func=lambda p: Path(p).name,
                          key="results_runs")
    c1, c2 = st.columns(2)
    task = c1.selectbox("Task", list(task_metric), key="results_task")
    curve = c2.selectbox("Curve", ["valid metric", "valid loss", "train loss"], key="results_curve")
    hists = {}
    for rd in pick:
        r = load_run_cached(rd)
        h = r.history.to_dict() if hasattr(r.history, "to_dict") else r.history
        hists[Path(rd).name] = h
    key = {"valid metric": "valid", "valid loss": "valid_loss", "train loss": "train_loss"}[curve]
    st.plotly_chart(viz.runs_overlay_fig(hists, task, key, task_metric.get(task)), key="overlay_fig")


def _overlay_section(runs: list[str], task_metric: dict) -> None:
    """The curves of this session's finished runs side by side (drawn only while open)."""
    st.subheader("Curves of several runs")
    lazy_section("Validation and training curves of this session's runs, side by side", "results_overlay_open",
                 functools.partial(overlay, runs, task_metric), icon=":material/stacked_line_chart:")


# ---------------------------------------------------------------------------- ROC / PR / residuals
@st.cache_data(show_spinner="Reading the test predictions ...", max_entries=8)
def _preds(rd: str, version: str) -> dict:
    # stored by training (predictions_test.npz): no scoring on page open; older folders are scored once
    return predictions(load_run_cached(rd), "test")


def prediction_charts(run_dir: str) -> None:
    preds = _preds(run_dir, run_version(run_dir))
    binary = {t: p for t, p in preds.items() if p["type"] == "binary"}
    if binary:
        st.markdown("**ROC and precision-recall (binary tasks)**")
        from sklearn.metrics import average_precision_score, roc_auc_score
        rocs, prs = {}, {}
        for t, p in binary.items():
            yv, pv = own_space_rows(p)          # each task on its own space (a chained one: parent = 1)
            r = roc_curve_points(yv, pv)
            pr = precision_recall_points(yv, pv)
            if r["fpr"]:
                rocs[t] = (r["fpr"], r["tpr"], float(roc_auc_score(yv > 0.5, pv)))
            if pr["recall"]:
                prs[t] = (pr["recall"], pr["precision"], float(average_precision_score(yv > 0.5, pv)))
        c1, c2 = st.columns(2)
        c1.plotly_chart(viz.roc_fig(rocs), key="roc_fig")
        c2.plotly_chart(viz.pr_fig(prs), key="pr_fig")
        spaces = [f"{t}: {p['space']} ({int(p['mask'].sum()):,} test rows)" for t, p in binary.items()
                  if p.get("mask") is not None]
        if spaces:
            st.caption(md_text("Each task on its own space — " + "; ".join(spaces)))
    regression = {t: p for t, p in preds.items() if p["type"] == "regression"}
    if regression:
        st.markdown("**Residuals (regression tasks)**")
        for t, p in regression.items():
            yv, pv = own_space_rows(p)          # observed rows only: sampled negatives have no rating
            st.plotly_chart(viz.residual_fig(yv, pv, t), key=f"resid_{t}")
            err = pv - yv
            st.caption(f"{md_text(t)}: mean residual {err.mean():+.3f}, RMSE {np.sqrt(np.mean(err ** 2)):.3f}, "
                       f"MAE {np.abs(err).mean():.3f} on {len(err):,} test rows ({md_text(p['space'])})")


@st.cache_resource(show_spinner="Writing the test predictions ...", max_entries=4)
def _preds_csv_shared(run_dir: str, version: str) -> bytes:
    from mtlrec.runs.report import predictions_csv
    return predictions_csv(run_dir, "test", run=load_run_cached(run_dir))


def _preds_csv(run_dir: str) -> bytes:
    """The test predictions as CSV, made once per run version for every session (bytes: never changed)."""
    return _preds_csv_shared(run_dir, run_version(run_dir))


def _predictions_section(run, run_dir: str, task_metric: dict) -> None:
    """ROC / PR and residual charts (drawn only while open), and the test predictions as CSV."""
    st.subheader("Test predictions")
    lazy_section("ROC and precision-recall curves (binary tasks), residuals (regression tasks)", "results_roc_open",
                 functools.partial(prediction_charts, run_dir), icon=":material/ssid_chart:")
    try:
        download("Download test predictions (CSV)", functools.partial(_preds_csv, run_dir),
                 file_name=f"{Path(run_dir).name}_test_predictions.csv",
                 mime="text/csv", key="dl_test_preds", stamp=(run_dir, run_version(run_dir)),
                 size=run.dataset.n_rows("test") * (40 + 24 * len(task_metric)) if "test" in run.dataset.rows else 0,
                 prepare="Prepare the test predictions (CSV)",
                 help="one row per test row: row_id (its row in your interactions file, -1 for sampled "
                      "negatives), user and item, then each task's label and prediction")
    except DataError as e:
        show_data_error(e)


# ---------------------------------------------------------------------------- cold start
@st.cache_data(show_spinner="Scoring cold and warm items ...", max_entries=16)
def _cold(rd: str, version: str) -> dict:
    from mtlrec.serve.coldstart import evaluate_cold_warm
    r = load_run_cached(rd)
    return evaluate_cold_warm(r.model, r.dataset, r.tasks)


def _cold_start_section(runs: list[str]) -> None:
    """Cold items against warm ones for the runs with held-out items (or how to get such a run)."""
    st.subheader("Cold-start items")
    cold_runs = [rd for rd in runs if len(load_run_cached(rd).dataset.cold_items)]
    if not cold_runs:
        st.info("To see how the model does on items never seen in training, choose **split = cold_item** under "
                "Preprocessing on Data and train again — once with and once without language-model features "
                "(Tasks & model) to compare them side by side here.")
        return
    rows = []
    for rd in cold_runs:
        r = load_run_cached(rd)
        text_on = bool(getattr(getattr(r.config, "text", None), "enabled", False)) or any(
            f.kind == "dense" for f in r.dataset.fields)
        for task, e in _cold(rd, run_version(rd)).items():
            m = e["metric"]
            rows.append({"run": Path(rd).name, "text features": "on" if text_on else "off", "task": task,
                         "metric": m, "cold items": e["cold"].get(m), "warm items": e["warm"].get(m),
                         "cold rows": e["cold"].get("n"), "warm rows": e["warm"].get("n")})
    st.plotly_chart(viz.coldstart_fig(rows), key="cold_fig")
    show_table(rows, hide_index=True, width="stretch", key="cold_table")
    st.caption("Test metric of each task on rows of held-out (cold) items and of items seen in training (warm). "
               "Cold items have no trained id embedding: only their features — above all their text — "
               "tell them apart.")


def render() -> None:
    """The Results page of the current run."""
    ensure_app_navigation()
    state = get_state()
    st.title("Results")
    run_dir = need_run("Results")
    if run_dir is None:
        st.stop()

    run = open_run(run_dir)
    if run is None:
        st.stop()
    metrics = run.metrics or {}
    tasks_cfg = [t for t in (run.config.tasks if hasattr(run.config, "tasks") else run.config["tasks"])]
    task_metric = {t["name"]: t.get("metric") for t in tasks_cfg}

    _test_metrics_section(metrics, tasks_cfg, task_metric)
    _ranking_section(metrics)
    _interest_section(run, metrics)
    _gain_section(metrics)
    dynamics_section(run.history, key="results_dyn", config=run.config)
    show_cross_validation(metrics, task_metric)
    runs = state.finished_run_dirs()
    _overlay_section(runs, task_metric)
    _predictions_section(run, run_dir, task_metric)
    _cold_start_section(runs)


render()
