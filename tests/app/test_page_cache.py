"""Issue 25: pages redraw from memory on a second visit, and their caches are keyed on the data's or
the run's version, never its name: a run replaced or rewritten under the same folder shows its new
tables, a changed dataset its new statistics, and the global SHAP summary kept in the run folder
outlives a server restart but not a change of the run."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from _fixtures_train import finished_tiny_job

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


def no_exception(at: AppTest, where: str) -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"


def metric_labels(at: AppTest) -> list[str]:
    return sorted(m.label for m in at.metric)


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def counting(monkeypatch, module, name: str) -> list:
    """Replace ``module.name`` by a wrapper that records each call; the list of calls."""
    calls = []
    real = getattr(module, name)

    def wrapper(*a, **kw):
        calls.append(a)
        return real(*a, **kw)
    monkeypatch.setattr(module, name, wrapper)
    return calls


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished tiny MMoE runs with different tasks: A (click, rating) and B (click only)."""
    root = tmp_path_factory.mktemp("page_cache")
    return {"A": finished_tiny_job(root / "run-a", ("click", "rating")),
            "B": finished_tiny_job(root / "run-b", ("click",))}


def app_with_run(run_dir) -> AppTest:
    """A session that opened the run folder ``run_dir`` (a local run: ``local_runs``)."""
    from pages.ui.state import AppState
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["mtlrec_state"] = AppState(opened_runs=[str(run_dir)], selected_run=str(run_dir))
    return at


def test_results_second_visit_reads_nothing_again_and_a_rewritten_run_shows_its_new_metrics(runs, monkeypatch, tmp_path,
                                                                                          local_runs):
    import mtlrec.runs.load as load_mod
    d = tmp_path / "run"
    shutil.copytree(runs["A"].run_dir, d)
    loads = counting(monkeypatch, load_mod, "load_run")
    at = app_with_run(d)
    at.switch_page("pages/results.py").run()
    no_exception(at, "results")
    assert len(loads) == 1
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/results.py").run()
    no_exception(at, "results again")
    assert len(loads) == 1                      # the second visit is drawn from memory
    # the run is rewritten in place (as a resumed run's end rewrites metrics.json): new numbers shown
    m = json.loads((d / "metrics.json").read_text())
    m["test"]["click"] = {k: (0.1234 if isinstance(v, float) else v) for k, v in m["test"]["click"].items()}
    (d / "metrics.json").write_text(json.dumps(m))
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/results.py").run()
    no_exception(at, "results after the rewrite")
    assert len(loads) == 2
    click = [v for k, v in metric_values(at).items() if k.startswith("click")]
    assert click == ["0.1234"], metric_values(at)


def test_results_of_a_replaced_run_show_the_new_runs_tasks(runs, tmp_path, local_runs):
    """Run A's folder is deleted and run B's put in its place (same name): Results shows B's tasks."""
    d = tmp_path / "run"
    shutil.copytree(runs["A"].run_dir, d)
    at = app_with_run(d)
    at.switch_page("pages/results.py").run()
    no_exception(at, "results of A")
    before = metric_labels(at)
    assert any(label.startswith("rating") for label in before), before
    shutil.rmtree(d)
    shutil.copytree(runs["B"].run_dir, d)
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/results.py").run()
    no_exception(at, "results of the replaced run")
    after = metric_labels(at)
    assert after and not any(label.startswith("rating") for label in after), after


def test_global_summary_is_kept_with_the_run_through_a_restart_until_the_run_changes(runs, tmp_path, monkeypatch,
                                                                                    local_runs):
    import mtlrec.explain.api as api
    from pages.ui import explain_cache
    d = tmp_path / "run"
    shutil.copytree(runs["A"].run_dir, d)
    computed = counting(monkeypatch, api, "global_summary")

    def explain_app() -> AppTest:
        at = app_with_run(d)
        at.session_state["explain_request"] = {"run_dir": str(d), "user": "u4", "item": "i9"}
        at.switch_page("pages/explain.py").run()
        no_exception(at, "explain")
        return at
    at = explain_app()
    at.number_input(key="explain_global_rows").set_value(50).run()
    at.button(key="explain_global_go").click().run()
    no_exception(at, "global summary")
    assert len(computed) == 1 and at.button(key="explain_global_go").disabled
    # a server restart: every memory cache gone; a new session finds the summary in the run folder
    explain_cache._GLOBAL.clear()
    import streamlit as st
    st.cache_resource.clear()
    st.cache_data.clear()
    at = explain_app()
    at.number_input(key="explain_global_rows").set_value(50).run()
    assert at.button(key="explain_global_go").disabled
    assert len(computed) == 1
    assert any("Feature importance" in str(c.proto.spec) or "importance" in str(c.proto.spec).lower()
               for c in at.get("plotly_chart"))
    # the run changes (finished again: a new metrics.json): the kept summary is not shown for it
    (d / "metrics.json").write_text((d / "metrics.json").read_text() + " ")
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/explain.py").run()
    no_exception(at, "explain after the change")
    assert not at.button(key="explain_global_go").disabled


# ---------------------------------------------------------------------------- Data page
def test_histograms_carry_their_bins_not_every_row():
    from mtlrec.figures import charts
    rng = np.random.default_rng(0)
    ratings = rng.integers(1, 6, size=60_000).astype(float)
    fig = charts.value_hist_fig(ratings, "rating")
    bars = fig.data[0]
    assert bars.type == "bar" and len(bars.x) == 5 and int(sum(bars.y)) == 60_000
    assert list(bars.x) == [1.0, 2.0, 3.0, 4.0, 5.0]
    counts = rng.integers(1, 2_000, size=5_000)
    fig = charts.count_hist_fig(counts, "user")
    assert len(fig.data[0].x) == 40 and int(sum(fig.data[0].y)) == 5_000


def _use_upload(state, csv: bytes) -> None:
    """What loading new files does to the session (pages.ui.state.apply_workspace)."""
    from mtlrec.app.workflow import uploaded_workspace
    ws = uploaded_workspace([("ratings.csv", csv)])
    state.raw, state.spec, state.prep, state.suggested_spec = ws["raw"], ws["spec"], ws["prep"], ws["spec"]
    state.tasks, state.model, state.train, state.text = ws["tasks"], ws["model"], ws["train"], ws["text"]
    state.source, state.dataset, state.dataset_key, state.report = ws["source"], None, None, None
    state.counter += 1
    state.data_uid = "changed-data"


def test_data_page_statistics_are_computed_once_per_data_and_follow_a_changed_dataset(monkeypatch):
    import mtlrec.app.workflow as wf
    stats = counting(monkeypatch, wf, "data_statistics")
    at = AppTest.from_file(APP, default_timeout=240).run()
    at.button(key="home_load_sample").click().run()
    at.switch_page("pages/data.py").run()
    no_exception(at, "data")
    assert metric_values(at)["Interactions"] == "60,000"
    assert len(stats) == 1
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/data.py").run()
    assert len(stats) == 1                      # the second visit is drawn from memory
    rows = ["user_id,item_id,rating,click"] + [f"u{i % 37},i{i % 11},{1 + i % 5},{i % 2}" for i in range(1234)]
    _use_upload(at.session_state["mtlrec_state"], "\n".join(rows).encode())
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/data.py").run()
    no_exception(at, "data after the new upload")
    assert len(stats) == 2
    vals = metric_values(at)
    assert vals["Interactions"] == "1,234" and vals["Users"] == "37" and vals["Items"] == "11", vals
