"""AppTest: the Runs page lists the run folders under the runs root (three runs and a damaged one),
filters them, opens one as the current run (Results and Recommendations then work from its folder
alone, in a session that trained nothing), renames, compares with Δm, and deletes with confirmation."""
from __future__ import annotations

import re
import shutil

import pytest
import torch
from streamlit.testing.v1 import AppTest

from _fixtures_train import TASKS, make_dataset
from test_pages import APP, no_exception, plain, texts

pytestmark = pytest.mark.usefixtures("local_runs")     # runs trained by the tests' own jobs: local runs
ARCHS = {"shared_bottom": {"shared_dims": [16], "tower_dims": [8], "embedding_dim": 8},
         "mmoe": {"n_experts": 2, "expert_dims": [16], "tower_dims": [8], "embedding_dim": 8},
         "ple": {"n_shared_experts": 1, "n_specific_experts": 1, "expert_dims": [16], "tower_dims": [8],
                 "embedding_dim": 8}}


@pytest.fixture(scope="module")
def library(runs_dir):
    """Three finished runs and a copy with a damaged metrics.json in the module's runs root."""
    from mtlrec.config import RunConfig
    from mtlrec.training.jobs import TrainingJob
    root = runs_dir
    tasks = [t for t in TASKS if t["name"] in ("click", "rating")]
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for arch, hp in ARCHS.items():
            cfg = RunConfig.from_dict({"name": arch, "tasks": tasks, "model": {"arch": arch, **hp},
                                       "train": {"epochs": 2, "batch_size": 512, "device": "cpu", "ranking_k": 0}})
            job = TrainingJob(cfg, run_dir=root / f"20260101-00000{len(list(root.iterdir()))}-{arch}",
                              dataset=make_dataset(n_rows=1500)).start()
            job.join(timeout=240)
            assert job.snapshot()["status"] == "finished", job.snapshot()
    finally:
        torch.set_num_threads(n)
    broken = root / "20260101-000009-broken"
    shutil.copytree(root / "20260101-000000-shared_bottom", broken)
    (broken / "metrics.json").write_text("{ not json")
    return root


def runs_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240).run()
    at.switch_page("pages/runs.py").run()
    no_exception(at, "runs page")
    return at


def table(at: AppTest):
    return next(d.value for d in at.dataframe if "problems" in d.value.columns)


def test_the_library_lists_every_run_and_names_a_damaged_one(library):
    at = runs_page()
    t = table(at)
    assert len(t) == 4
    assert set(t["model"]) == {"shared_bottom", "mmoe", "ple"}
    broken = t[t["run"].str.contains("broken")]
    assert len(broken) == 1 and "metrics.json" in broken["problems"].iloc[0]
    assert (t[~t["run"].str.contains("broken")]["status"] == "finished").all()
    assert t[t["model"] == "mmoe"]["test metrics"].iloc[0].startswith("click auc")
    at.multiselect(key="runs_f_arch").set_value(["mmoe"]).run()
    assert list(table(at)["model"]) == ["mmoe"]


def test_opened_run_works_on_results_and_recommendations_without_training(library):
    at = runs_page()
    label = next(o for o in at.multiselect(key="runs_selected").options if o.startswith("mmoe"))
    at.multiselect(key="runs_selected").set_value([label]).run()
    no_exception(at, "one run selected")
    at.button(key="runs_open").click().run()
    no_exception(at, "open")
    assert any(t.value == "Results" for t in at.title)
    assert at.selectbox(key="run_picker").value.endswith("mmoe")
    assert "Test metrics per task" in [s.value for s in at.subheader]
    at.switch_page("pages/recommend.py").run()
    no_exception(at, "recommendations of an opened run")
    assert any("Top 10 for user" in plain(m.value) for m in at.markdown)


def test_rename_and_delete_with_confirmation(library):
    at = runs_page()
    label = next(o for o in at.multiselect(key="runs_selected").options if o.startswith("ple"))
    at.multiselect(key="runs_selected").set_value([label]).run()
    name_box = next(t for t in at.text_input if t.label == "Name")
    name_box.set_value("PLE for the meeting")
    next(t for t in at.text_input if t.label.startswith("Tags")).set_value("demo, best")
    next(b for b in at.button if b.label == "Save").click().run()
    no_exception(at, "rename")
    t = table(at)
    row = t[t["model"] == "ple"].iloc[0]
    assert row["run"].startswith("PLE for the meeting") and row["tags"] == "demo, best"
    # delete: the button stays disabled until the confirmation is ticked
    label = next(o for o in at.multiselect(key="runs_selected").options if o.startswith("PLE for the meeting"))
    at.multiselect(key="runs_selected").set_value([label]).run()
    assert at.button(key="runs_delete").disabled
    at.checkbox(key="runs_delete_sure").check().run()
    at.button(key="runs_delete").click().run()
    no_exception(at, "delete")
    assert "ple" not in set(table(at)["model"])
    assert not any(p.name.endswith("-ple") for p in library.iterdir())


def test_compare_shows_delta_m_metrics_and_config_differences(library):
    at = runs_page()
    opts = [o for o in at.multiselect(key="runs_selected").options if "broken" not in o]
    at.multiselect(key="runs_selected").set_value(opts).run()
    no_exception(at, "compare")
    assert "Compare" in [s.value for s in at.subheader]
    dms = [m.value for m in at.metric if m.label.startswith("Δm")]
    # compared runs carry the names the listing shows (here the configs' names)
    assert {plain(m.label).split(" — ", 1)[1] for m in at.metric if m.label.startswith("Δm")} \
        == {o.split(" (")[0] for o in opts}
    assert len(dms) == len(opts) and dms.count("+0.00 %") >= 1       # the reference against itself
    assert all(v == "—" or v.endswith(" %") for v in dms)
    metrics = next(d.value for d in at.dataframe if "best" in d.value.columns)
    assert set(metrics["task"]) == {"click", "rating"}
    assert (metrics["best"].str.len() > 0).all()                       # a best run named for each task
    assert set(metrics["direction"]) == {"higher is better", "lower is better"}
    diff = next(d.value for d in at.dataframe if "setting" in d.value.columns)
    assert "model.arch" in set(diff["setting"]) and "train.epochs" not in set(diff["setting"])
    assert len(at.get("plotly_chart")) == 2            # one validation-curve figure per task


def test_a_cancelled_run_resumes_from_the_runs_page(library):
    import time

    from mtlrec.config import RunConfig
    from mtlrec.training.jobs import TrainingJob
    tasks = [t for t in TASKS if t["name"] in ("click", "rating")]
    cfg = RunConfig.from_dict({"name": "to-resume", "tasks": tasks, "model": {"arch": "mmoe", **ARCHS["mmoe"]},
                               "train": {"epochs": 4, "batch_size": 64, "device": "cpu", "ranking_k": 0,
                                         "early_stopping": {"patience": 0}}})
    d = library / "20260101-000020-to-resume"
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        job = TrainingJob(cfg, run_dir=d, dataset=make_dataset(n_rows=1500)).start()
        deadline = time.time() + 120
        while time.time() < deadline and not (d / "checkpoint.pt").exists() and not job.done:
            time.sleep(0.05)
        job.cancel()
        job.join(timeout=120)
    finally:
        torch.set_num_threads(n)
    assert job.snapshot()["status"] == "cancelled" and (d / "checkpoint.pt").exists()

    at = runs_page()
    label = next(o for o in at.multiselect(key="runs_selected").options if o.startswith("to-resume"))
    at.multiselect(key="runs_selected").set_value([label]).run()
    no_exception(at, "cancelled run selected")
    assert not at.button(key="runs_resume").disabled
    at.button(key="runs_resume").click().run()
    no_exception(at, "resume")
    assert any(t.value == "Train" for t in at.title)
    st_ = at.session_state["mtlrec_state"]
    resumed = st_.jobs[-1]
    at.switch_page("pages/train.py")          # AppTest keeps its own page for later runs: follow the switch
    deadline = time.time() + 240
    while time.time() < deadline and not resumed.done:
        at.run()
        time.sleep(0.3)
    at.run()
    no_exception(at, "after the resumed run")
    assert resumed.snapshot()["status"] == "finished", resumed.snapshot().get("error")
    assert at.get("progress")[0].proto.text.startswith(d.name)
    assert "Finished" in texts(at)


def test_damaged_run_folders_show_a_message_never_a_traceback(library, tmp_path):
    """Opened in the app: an invalid metrics.json is a note (the run still works); a truncated
    model.pt is a message naming the file and the fix; neither shows an exception box."""
    at = runs_page()
    label = next(o for o in at.multiselect(key="runs_selected").options if "broken" in o)
    at.multiselect(key="runs_selected").set_value([label]).run()
    at.button(key="runs_open").click().run()
    no_exception(at, "a run with a damaged metrics.json")
    assert "metrics.json is damaged" in texts(at)
    assert any(t.value == "Results" for t in at.title)

    cut = tmp_path / "cut-model"
    shutil.copytree(library / "20260101-000001-mmoe", cut)
    data = (cut / "model.pt").read_bytes()
    (cut / "model.pt").write_bytes(data[: len(data) // 3])
    st_ = at.session_state["mtlrec_state"]
    st_.opened_runs.append(str(cut))
    st_.selected_run = str(cut)
    at.switch_page("pages/recommend.py").run()
    no_exception(at, "a run with a truncated model.pt")
    errors = "\n".join(plain(e.value) for e in at.error)
    assert "model.pt" in errors and "Fix:" in errors, errors


def test_an_unexpected_error_in_a_page_is_a_short_message(library, monkeypatch, page_errors):
    """The boundary: the visitor reads a short message with a reference (no traceback, no server
    path); the server log gets the marker, the same reference and the traceback."""
    import mtlrec.app.workflow as wf
    from pages.ui.boundary import MARKER

    def boom(*a, **k):
        raise RuntimeError("internal detail /srv/secret/path.py")
    monkeypatch.setattr(wf, "metrics_by_type", boom)
    at = runs_page()
    label = next(o for o in at.multiselect(key="runs_selected").options if o.startswith("mmoe"))
    at.multiselect(key="runs_selected").set_value([label]).run()
    at.button(key="runs_open").click().run()
    assert not at.exception, "a traceback reached the page"
    errors = "\n".join(e.value for e in at.error)
    assert "Something went wrong on this page (RuntimeError)" in errors and "Reference" in errors
    assert "/srv/secret" not in errors
    ref = re.search(r"server log: ([0-9a-f]{8})", errors).group(1)
    logged = page_errors.messages()
    assert len(logged) == 1, logged
    assert MARKER in logged[0] and ref in logged[0] and "'Results'" in logged[0]
    assert "Traceback (most recent call last)" in logged[0] and "internal detail" in logged[0]
