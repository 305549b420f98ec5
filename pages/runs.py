"""Runs: the runs of this workspace (trained or imported here), runs shared with it by a link, and --
when the operator allows it (``MTLREC_LOCAL_RUNS``) -- the server's local runs (`mtlrec.runs.access`).

Filter and sort them, open a run as the current run (Results, Recommendations and Explain then work
on it from its folder alone, also after a restart), rename, tag, delete, resume or cancel your own,
share one by a link, download its report, metrics or folder, import a run zip, and compare several
runs side by side.
"""
from __future__ import annotations

import re

import streamlit as st

from mtlrec.runs.access import LEVELS, local_mode, visible_run_rows
from mtlrec.display import display_number
from mtlrec.errors import DataError
from mtlrec.figures.charts import compare_figs
from mtlrec.runs.compare import compare_metrics_frame, compare_runs
from mtlrec.runs.library import cancel_problem, cancel_run, delete_run, runs_root, set_meta
from pages.ui.actions import run_version, start_resume
from pages.ui.downloads import download
from pages.ui.messages import md_text, msg_text, show_data_error, show_exception
from pages.ui.state import TERMINAL, ensure_app_navigation, get_state, job_run_dir, open_library_run
from pages.ui.tables import show_table
from pages.ui.upload_note import refusal_note

LOCAL_NOTE = {"off": "", "read": " The server's local runs (trained with the command line) are listed too, read-only.",
              "manage": " The server's local runs (trained with the command line) are listed too, and anyone here "
                        "may manage them."}


def _label(r: dict) -> str:
    return r["run"] if r["name"] == r["run"] else f"{r['name']} ({r['run']})"


def _cancel_control(state, root, r: dict) -> None:
    """Cancel for a run still training: this session's job directly; a run of another process of
    this machine (another server's worker, a command line) through `cancel_run`; otherwise the
    reason it cannot be cancelled from here, and where it can."""
    from pathlib import Path
    here = Path(r["path"]).resolve()
    mine = next((j for j in state.jobs if job_run_dir(j) and Path(job_run_dir(j)).resolve() == here), None)
    why_not = None if mine is not None else cancel_problem(r["path"])
    if st.button("Cancel the run", icon=":material/stop:", key="runs_cancel", disabled=why_not is not None,
                 help=why_not or "it stops after its current batch, keeps its checkpoint and can be resumed") \
            and _allowed(state, r):
        try:
            if mine is not None:
                mine.cancel()
                said = "asked to stop: the run ends after its current batch"
            else:
                said = cancel_run(r["path"], root)
            st.toast(md_text(said))
        except DataError as e:
            show_data_error(e)
    if why_not:
        st.caption(msg_text(why_not))


READ_ONLY = {"shared": "Shared with you, read-only: open it, build its report or download it (import the zip for "
                       "a copy of your own).",
             "local": "A local run of this server, read-only here: open it, build its report or download it."}


def _allowed(state, r: dict) -> bool:
    """The library's check before a change (`mtlrec.runs.access.check_access`); its message when refused."""
    try:
        state.check_run(r["path"], manage=True)
        return True
    except DataError as e:
        show_data_error(e)
        return False


def _resume_or_cancel(state, root, r: dict) -> None:
    from mtlrec.training.resume import resume_problem
    if r["status"] in ("interrupted", "cancelled", "failed"):
        why_not = resume_problem(r["path"])
        busy = any(j.snapshot(include_batches=False).get("status") not in TERMINAL for j in state.jobs)
        if st.button("Resume training", icon=":material/play_arrow:", key="runs_resume",
                     disabled=why_not is not None or busy,
                     help=why_not or "continue from the last epoch's checkpoint (at most one epoch is lost)"):
            try:
                start_resume(r["path"])
                st.switch_page("pages/train.py")
            except DataError as e:
                show_data_error(e)
        if why_not:
            st.caption(msg_text(why_not))
    elif r["status"] in ("running", "queued"):
        _cancel_control(state, root, r)


def _rename_and_delete(state, root, r: dict, c2, c3) -> None:
    with c2.popover("Rename / tag", icon=":material/edit:"):
        with st.form("runs_meta_form"):
            new_name = st.text_input("Name", value=r["name"])
            new_tags = st.text_input("Tags (comma separated)", value=", ".join(r["tags"]))
            if st.form_submit_button("Save") and _allowed(state, r):
                try:
                    set_meta(r["path"], root, name=new_name, tags=[t for t in re.split(r"\s*,\s*", new_tags) if t])
                    st.rerun()
                except DataError as e:
                    show_data_error(e)
    with c3.popover("Delete", icon=":material/delete:"):
        st.markdown(f"Delete **{md_text(_label(r))}** and everything in its folder? This cannot be undone.")
        sure = st.checkbox("Yes, delete this run", key="runs_delete_sure")
        if st.button("Delete the run", disabled=not sure, key="runs_delete", type="primary") and _allowed(state, r):
            try:
                delete_run(r["path"], root)
                state.forget_run(r["path"])
                st.session_state.pop("runs_selected", None)
                st.rerun()
            except DataError as e:
                show_data_error(e)


def _share_control(state, r: dict) -> None:
    """The owner's share link: whoever opens it gets the run read-only; stopping takes it back from all."""
    from mtlrec.runs.access import create_share, revoke_share, share_token
    token = share_token(r["path"])
    if token is None:
        st.caption("Nobody else sees this run. A share link lets whoever opens it see the run read-only "
                   "(results, recommendations with its users' histories, explanations, report, downloads).")
        if st.button("Create a share link", key="runs_share", icon=":material/add_link:"):
            create_share(r["path"], state.ws_id)
            st.rerun()
        return
    base = (st.context.url or "").split("?")[0]
    st.markdown("Anyone with this link sees the run, read-only:")
    st.code(f"{base}?share={token}", language=None)
    if st.button("Stop sharing", key="runs_unshare", icon=":material/link_off:",
                 help="the link stops working and everyone it was shared with loses the run"):
        revoke_share(r["path"], state.ws_id)
        st.rerun()


def _headline(r: dict) -> str:
    parts = []
    for task, m in r["metrics"].items():
        if m.get("value") is not None:
            parts.append(f"{task} {m['metric']} {m['value']:.4f}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------- library table
def _library_section(rows: list[dict]) -> list[dict]:
    """Filters and the table of the runs they leave; returns those runs."""
    f1, f2, f3, f4 = st.columns([2, 2, 2, 3])
    statuses = sorted({r["status"] for r in rows})
    archs = sorted({r["arch"] for r in rows})
    datas = sorted({r["data"] for r in rows})
    pick_status = f1.multiselect("Status", statuses, key="runs_f_status")
    pick_arch = f2.multiselect("Architecture", archs, key="runs_f_arch")
    pick_data = f3.multiselect("Dataset", datas, key="runs_f_data")
    search = f4.text_input("Name or tag contains", key="runs_f_text")
    shown = [r for r in rows
             if (not pick_status or r["status"] in pick_status) and (not pick_arch or r["arch"] in pick_arch)
             and (not pick_data or r["data"] in pick_data)
             and (not search or search.lower() in (r["name"] + " " + " ".join(r["tags"])).lower())]
    table = [{"run": _label(r), "created": r["created_text"], "status": r["status"], "data": r["data"],
              "model": r["arch"], "tasks": ", ".join(r["tasks"]), "weighting": r["weighting"] or "",
              "test metrics": _headline(r),
              "gain": ", ".join(f"{t} {g['gain']:+.4f}" for t, g in r["gain"].items()),
              "epochs": r["best_epoch"], "duration s": None if r["duration_s"] is None else round(r["duration_s"], 1),
              "device": r["device"] or "", "tags": ", ".join(r["tags"]), "access": LEVELS[r["access"]],
              "problems": "; ".join(r["problems"])} for r in shown]
    show_table(table, hide_index=True, width="stretch", key="runs_table",
               column_config={"epochs": st.column_config.NumberColumn("best epoch")})
    st.caption(f"{len(shown)} of {len(rows)} runs. Click a column header to sort.")
    return shown


# ---------------------------------------------------------------------------- one run
def _one_run_section(state, root, r: dict) -> None:
    """One selected run: its problems, resume / cancel, open, rename / tag, delete, share, downloads."""
    st.subheader(f"Run {md_text(_label(r))}")
    for p in r["problems"]:
        st.warning(msg_text(p), icon=":material/warning:")
    if r["status"] in ("failed", "interrupted") and r.get("error"):
        st.caption(msg_text(r["error"]))
    if r["manage"]:
        _resume_or_cancel(state, root, r)
    else:
        st.caption(READ_ONLY[r["access"]])
    c1, c2, c3, c4 = st.columns(4)
    if c1.button("Open as the current run", type="primary", icon=":material/open_in_new:", key="runs_open",
                 disabled=not r["usable"],
                 help=None if r["usable"] else "only finished runs, or cancelled ones with a kept model, open"):
        try:
            open_library_run(r["path"])
            st.switch_page("pages/results.py")
        except DataError as e:
            show_data_error(e)
    if r["manage"]:
        _rename_and_delete(state, root, r, c2, c3)
    if r["access"] == "yours":
        with c4.popover("Share", icon=":material/share:"):
            _share_control(state, r)
    _downloads_section(r)


def _downloads_section(r: dict) -> None:
    """The run's HTML report (built on a click), its metrics as CSV and its folder as a zip."""
    d1, d2, d3 = st.columns(3)
    if d1.button("Build the HTML report", icon=":material/description:", key="runs_report_build",
                 help="one self-contained file (figures included, works offline) for stakeholders"):
        try:
            from mtlrec.runs.report import report_html
            with st.spinner("Building the report (scores recommendations and explains one) ..."):
                st.session_state["runs_report"] = (r["path"], report_html(r["path"]).encode("utf-8"))
        except Exception as e:
            show_exception(e, "Building the report")
    rep = st.session_state.get("runs_report")
    if rep and rep[0] == r["path"]:
        download("Download report", rep[1], file_name=f"{r['run']}-report.html", mime="text/html",
                 key="runs_report_dl", where=d1)
    try:
        from mtlrec.runs.archive import export_stamp, export_zip
        from mtlrec.runs.report import metrics_csv
        download("Metrics (CSV)", metrics_csv(r["path"]), file_name=f"{r['run']}-metrics.csv", mime="text/csv",
                 icon=":material/table:", key="runs_metrics_dl", where=d2)
        if r["status"] != "running":
            size, stamp = export_stamp(r["path"])
            download("Run folder (zip)", lambda p=r["path"]: export_zip(p), file_name=f"{r['run']}.zip",
                     mime="application/zip", icon=":material/folder_zip:", key="runs_zip_dl", where=d3,
                     stamp=(r["path"], stamp), size=size, prepare="Prepare the run folder (zip)",
                     help="the run's configuration, model, metrics and dataset: import it on another "
                          "server's Runs page or with `python -m mtlrec runs import`")
    except DataError as e:
        show_data_error(e)
    except Exception as e:
        show_exception(e, "Preparing the downloads")


# ---------------------------------------------------------------------------- compare
@st.cache_resource(show_spinner=False, max_entries=16)
def _comparison(paths: tuple, versions: tuple, reference: str):
    """(comparison, metrics table, curve figures) of these runs, per version of each (shared by sessions:
    a page switch redraws them from memory; a run that changed is compared anew). Not copied on a hit:
    callers only read them."""
    cmp = compare_runs(list(paths), reference=reference)
    return cmp, compare_metrics_frame(cmp), compare_figs(cmp)


def _compare_section(chosen: list[dict], by_label: dict) -> None:
    """Two or more selected runs side by side: Δm against a reference, metrics, settings, curves."""
    st.subheader("Compare")
    ref_label = st.selectbox("Reference run (Δm is measured against it)", [_label(r) for r in chosen],
                             key="runs_reference")
    try:
        paths = tuple(str(r["path"]) for r in chosen)
        cmp, frame, figs = _comparison(paths, tuple(run_version(p) for p in paths), str(by_label[ref_label]["path"]))
    except DataError as e:
        show_data_error(e)
        st.stop()
    except Exception as e:
        show_exception(e, "Comparing the runs")
        st.stop()
    labels = [x["label"] for x in cmp["runs"]]
    cols = st.columns(len(labels))
    for col, lab in zip(cols, labels):
        dm = cmp["delta_m"].get(lab)
        col.metric(f"Δm — {md_text(lab)}", "—" if dm is None else f"{dm:+.2f} %",
                   help="mean relative per-task improvement over the reference run (LibMTL's Δm; "
                        "sign-corrected for lower-is-better metrics)")
    if cmp.get("delta_m_note"):
        st.caption(md_text(cmp["delta_m_note"]))
    st.markdown("**Test metrics** (the best of each row is named in *best*)")
    show_table(frame, hide_index=True, width="stretch", key="runs_cmp_metrics")
    st.markdown("**Configuration differences**")
    if cmp["config_diff"]:
        show_table([{"setting": d["key"], **{lab: None if v is None else str(display_number(v))
                                             for lab, v in d["values"].items()}}
                    for d in cmp["config_diff"]], hide_index=True, width="stretch", key="runs_cmp_diff")
    else:
        st.caption("The runs have the same configuration.")
    st.markdown("**Validation curves**")
    fcols = st.columns(2)
    for k, (task, fig) in enumerate(figs.items()):
        fcols[k % 2].plotly_chart(fig, key=f"runs_cmp_curve_{k}")


# ---------------------------------------------------------------------------- import
def _import_section(state, root) -> None:
    """Import a run zip into this workspace."""
    st.divider()
    with st.expander("Import a run (a zip exported from this page or with `python -m mtlrec runs export`)"):
        up = st.file_uploader("Run zip", type=["zip"], key="runs_import")
        refusal_note(f"A file marked in red above was not uploaded (the reason is beside it): run zips of up to "
                     f"{float(st.get_option('server.maxUploadSize')):.0f} MB can be imported here. Fix: import a larger "
                     "one with the command line: python -m mtlrec runs import ZIP; remove the red file with its ×.")
        if up is not None and st.button("Import", key="runs_import_go", icon=":material/upload:"):
            try:
                from mtlrec.runs.archive import import_zip
                dest = import_zip(up.getvalue(), root, source=up.name, owner=state.ws_id)
                st.toast(f"Imported as {md_text(dest.name)}.")
                st.rerun()
            except DataError as e:
                show_data_error(e)
            except Exception as e:
                show_exception(e, "Importing the run")


def render() -> None:
    """The Runs page: the library table, the selected run or the comparison, and the import."""
    ensure_app_navigation()
    state = get_state()
    root = runs_root()
    st.title("Runs")
    st.caption("The runs of this workspace — trained or imported here — and runs shared with you by a link. Nobody "
               "else sees your runs unless you share one." + LOCAL_NOTE[local_mode()] + " Open a run to see it on "
               "Results, Recommendations and Explain; select two or more to compare them. To see them beside your "
               "other experiments in MLflow or TensorBoard, export them with "
               "`python -m mtlrec runs export-mlflow RUN --tracking-uri URI` or `python -m mtlrec runs "
               "export-tensorboard RUN --logdir DIR` (docs/tracking.md), or tick the live tracking on **Train**.")

    rows = visible_run_rows(root, state.ws_id)
    if not rows:
        st.info("No runs yet in this workspace: train a model on **Train**, import a run zip below, or open a run "
                "someone shared with you by its link.")
    else:
        shown = _library_section(rows)
        by_label = {_label(r): r for r in shown}
        selected = st.multiselect("Select runs (one to open or manage, two or more to compare)", list(by_label),
                                  key="runs_selected")
        chosen = [by_label[s] for s in selected if s in by_label]
        if len(chosen) == 1:
            _one_run_section(state, root, chosen[0])
        elif len(chosen) >= 2:
            _compare_section(chosen, by_label)
    _import_section(state, root)


render()
