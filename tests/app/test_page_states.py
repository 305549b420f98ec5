"""AppTest: pages in the states a visitor meets outside one uninterrupted session (issue 21).

1. A run whose worker process has not reported yet (no device known): Train lists it, no error box.
2. After a server restart (the workspace's jobs are gone, their folders remain): Train lists the
   workspace's runs with their status and the sidebar names the current run; a run opened from
   Runs is named in the sidebar too, also in a session that trained others.
3. Home: the pipeline diagram is markup the browser draws, and the page table lists every page.
4. The sidebar's device line on a cold load: the device, never "detecting ...".
(tests/browser/test_state_matrix.py visits every page in each of these states in Chromium.)
"""
from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from _fixtures_train import finished_tiny_job
from test_pages import APP, no_exception, plain, state_of, texts

PAGE_TITLES = ["Data", "Tasks & model", "Train", "Results", "Recommendations", "Explain", "Runs", "Lab"]


def sample_session() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.button(key="home_load_sample").click().run()
    no_exception(at, "sample loaded")
    return at


def sidebar_text(at: AppTest) -> str:
    """The sidebar as read (markdown emphasis and code marks dropped)."""
    text = "\n".join([m.value for m in at.sidebar.markdown] + [c.value for c in at.sidebar.caption])
    return plain(text).replace("**", "").replace("`", "")


def runs_table(at: AppTest) -> list[dict]:
    frame = next(d.value for d in at.dataframe if "message" in d.value.columns)
    return frame.to_dict("records")


@pytest.fixture(scope="module")
def finished_jobs(runs_dir) -> list:
    """Two finished TrainingJobs (thread mode, tiny) with their folders in the module's runs root."""
    return [finished_tiny_job(runs_dir / f"20260101-00000{i}-mmoe", ("click", "rating")) for i in (1, 2)]


def test_a_run_whose_worker_has_not_reported_is_listed_without_an_error(runs_dir):
    """Until the worker process reports, a job knows no device: the runs table shows the run (its
    device "—"), not an error box in its place."""
    from mtlrec.training.jobs import TrainingJob
    from mtlrec.app.workflow import build_run_config
    at = sample_session()
    s = state_of(at)
    cfg = build_run_config(spec=s.spec, prep=s.prep, tasks=s.tasks, model=s.model, train=s.train, text=s.text,
                           source=s.source)
    job = TrainingJob(cfg, runs_dir / "20260101-000100-mmoe", isolate="process")     # its worker not up
    assert job.snapshot()["device"] is None
    s.jobs.append(job)
    s.selected_run = str(job.run_dir)
    at.switch_page("pages/train.py").run()
    no_exception(at, "Train, a run whose worker has not reported")
    assert not at.error, [e.value for e in at.error]
    rows = runs_table(at)
    assert [(r["run"], r["device"]) for r in rows] == [("20260101-000100-mmoe", "—")]
    assert "Run: 20260101-000100-mmoe — queued" in sidebar_text(at)


def test_after_a_restart_train_and_sidebar_name_the_workspace_runs(finished_jobs, monkeypatch):
    from mtlrec.runs.access import record_owner
    from pages.ui import workspace
    job = finished_jobs[1]
    at = sample_session()
    s = state_of(at)
    s.jobs.append(job)                                          # as Start training leaves it:
    record_owner(job.run_dir, s.ws_id)                          # the workspace's own run
    s.selected_run = str(job.run_dir)
    at.switch_page("pages/train.py").run()                      # the workspace is saved with its run
    no_exception(at, "Train before the restart")
    assert [r["run"] for r in runs_table(at)] == [job.run_dir.name]

    monkeypatch.setattr(workspace, "_JOBS", {})                 # a new server process: no job in memory
    again = AppTest.from_file(APP, default_timeout=120)
    again.query_params["ws"] = s.ws_id
    again.run()
    again.switch_page("pages/train.py").run()
    no_exception(again, "Train after the restart")
    assert not again.error, [e.value for e in again.error]
    assert "None yet" not in texts(again)
    assert [(r["run"], r["status"]) for r in runs_table(again)] == [(job.run_dir.name, "finished")]
    assert f"Run: {job.run_dir.name} — finished" in sidebar_text(again), sidebar_text(again)


def test_the_sidebar_names_a_run_opened_from_runs(finished_jobs, local_runs):
    """A visitor who trained nothing, and one who trained another run, open a run from Runs: the
    sidebar names the opened run (not "none yet", not the run they trained)."""
    opened, own = finished_jobs
    for jobs in ([], [own]):
        at = AppTest.from_file(APP, default_timeout=120).run()
        state_of(at).jobs.extend(jobs)
        at.switch_page("pages/runs.py").run()
        label = next(o for o in at.multiselect(key="runs_selected").options if o.startswith(opened.run_dir.name))
        at.multiselect(key="runs_selected").set_value([label]).run()
        at.button(key="runs_open").click().run()
        no_exception(at, "a run opened from Runs")
        assert any(t.value == "Results" for t in at.title)
        side = sidebar_text(at)
        assert f"Run: {opened.run_dir.name} — finished" in side, side


def test_home_draws_the_pipeline_and_lists_every_page():
    """The diagram is inline SVG in markdown with HTML allowed (st.html drops SVG under this
    Streamlit), and the page table has a row for each page of the navigation."""
    at = AppTest.from_file(APP, default_timeout=120).run()
    no_exception(at, "Home")
    svg = [m for m in at.markdown if "<svg" in m.value]
    assert len(svg) == 1 and svg[0].proto.allow_html, "the pipeline diagram is not drawable markup"
    for step in ("Interaction data", "Preprocessing", "Shared representation", "Task towers", "Evaluation"):
        assert step in svg[0].value
    table = next(m.value for m in at.markdown if "| Page |" in m.value)
    rows = re.findall(r"^\| \*\*(.+?)\*\* \|", table, flags=re.M)
    assert rows == PAGE_TITLES, rows


def test_the_device_line_on_a_cold_load_names_the_device(monkeypatch):
    """A fresh server has not probed the device yet when the first page is drawn: once the page has
    run, the sidebar names the device (never "detecting ...")."""
    from pages.ui import sidebar
    monkeypatch.setattr(sidebar, "_WARM", {"thread": "warm-up not started in this test"})
    at = AppTest.from_file(APP, default_timeout=120).run()
    no_exception(at, "a cold load")
    device = [line for line in sidebar_text(at).splitlines() if line.startswith("Device:")]
    assert len(device) == 1 and "detecting" not in device[0] and "CPU" in device[0], device
