"""AppTest tests of the dashboard: every page on the sample data, a bad upload, training from the
Train page, and re-ranking by the task-weight sliders.

One module-scoped app session loads the sample and trains a tiny model from the Train page
(2 epochs, large batches); the later tests look at that session's Results and Recommendations.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = ["pages/home.py", "pages/data.py", "pages/model.py", "pages/train.py", "pages/results.py",
         "pages/recommend.py", "pages/explain.py", "pages/runs.py"]


def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=120)


def no_exception(at: AppTest, where: str) -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"


def plain(markdown: str) -> str:
    """Markdown source as the visitor reads it: user text is shown escaped (pages.ui.messages.md_text)."""
    import re
    return re.sub(r"\\(.)", r"\1", str(markdown)).replace("\u2060", "")


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.title]
    parts += [e.value for e in at.error] + [i.value for i in at.info] + [s.value for s in at.success]
    return "\n".join(plain(p) for p in parts)


def state_of(at: AppTest):
    return at.session_state["mtlrec_state"]


@pytest.fixture(scope="module")
def trained(runs_dir):
    """Sample loaded with the Home button (click 1), trained with the Train button (click 2)."""
    at = new_app().run()
    no_exception(at, "home")
    at.button(key="home_load_sample").click().run()
    no_exception(at, "after loading the sample")
    # the Home button switched to the Train page
    assert any(t.value == "Train" for t in at.title), [t.value for t in at.title]
    st_ = state_of(at)
    # a tiny configuration for a fast test: two tasks, 2 epochs, large batches
    # two unconditional tasks (the sample's chain gives them "interact" as a parent)
    st_.tasks = [{k: v for k, v in t.items() if k != "given"} for t in st_.tasks if t["name"] in ("click", "rating")]
    st_.train.update(epochs=2, batch_size=4096)
    st_.model = {"arch": "mmoe", "n_experts": 2, "expert_dims": [16], "tower_dims": [8], "embedding_dim": 8}
    at.run()
    at.button(key="train_start").click().run()
    no_exception(at, "starting training")
    progress_seen = []
    deadline = time.time() + 240
    status = None
    while time.time() < deadline:
        at.run()
        no_exception(at, "while training")
        snap = st_.jobs[-1].snapshot()
        status = snap.get("status") if isinstance(snap, dict) else getattr(snap, "status", None)
        if at.get("progress"):
            progress_seen.append(at.get("progress")[0].proto.value)
        if status in ("finished", "failed", "cancelled"):
            break
        time.sleep(0.3)
    at.run()
    return {"at": at, "status": status, "progress": progress_seen}


def test_home_renders_with_intro_and_flow_diagram():
    at = new_app().run()
    no_exception(at, "home")
    assert "Multi-task learning" in texts(at)
    svg = next((m.value for m in at.markdown if "<svg" in m.value), None)
    assert svg, "the flow diagram is missing"
    for step in ("Preprocessing", "Language-model", "Shared representation", "Task towers", "Evaluation"):
        assert step in svg
    # sidebar: dataset, run, device
    side = "\n".join(m.value for m in at.sidebar.markdown) + "\n".join(c.value for c in at.sidebar.caption)
    assert "Dataset" in side and "Run" in side and "Device" in side


def test_every_page_renders_without_data():
    at = new_app().run()
    for page in PAGES:
        at.switch_page(page).run()
        no_exception(at, page)


def test_every_page_renders_on_sample_data(trained):
    at = trained["at"]
    for page in PAGES:
        at.switch_page(page).run()
        no_exception(at, page)
        assert at.title, page
    at.switch_page("pages/data.py").run()
    assert "No problems found" in texts(at) or at.warning
    assert len(at.get("plotly_chart")) >= 3, "statistics plots missing"
    # (AppTest drops the sidebar's elements after a page switch; the browser test checks the sidebar)


def test_training_from_train_page_progresses_and_finishes(trained):
    at = trained["at"]
    assert trained["status"] == "finished", trained
    at.switch_page("pages/train.py").run()
    no_exception(at, "train page after training")
    assert "Finished" in texts(at)
    bar = at.get("progress")[0].proto
    assert bar.value == 100
    # per-task curves: loss and metric for both tasks
    charts = at.get("plotly_chart")
    assert len(charts) == 2                             # the live curves, then the training dynamics
    spec = charts[0].proto.spec
    for text in ("click: loss", "rating: loss", "click: valid auc", "rating: valid rmse"):
        assert text in spec, text
    import json
    traces = json.loads(spec)["data"]
    metric_traces = [t for t in traces if t["name"] == "valid metric"]
    assert len(metric_traces) == 2                      # one per task
    for t in metric_traces:                             # a point per epoch, all finite
        assert list(t["x"]) == [1, 2] and all(v is not None for v in t["y"])
    table = at.dataframe[0].value
    assert list(table["status"]) == ["finished"]
    # the run belongs to the workspace that trained it, and to no other (mtlrec.runs.access)
    from mtlrec.runs.access import level
    st_ = state_of(at)
    assert level(st_.jobs[-1].run_dir, st_.ws_id) == "yours" and level(st_.jobs[-1].run_dir, "f" * 32) is None


def test_bad_upload_shows_the_data_error_message():
    from mtlrec.data.readers import load_uploaded
    from mtlrec.errors import DataError

    bad = b"user;item\n1\n\x00\x01\x02 not a table"
    with pytest.raises(DataError) as ei:
        load_uploaded([("bad.csv", bad)])
    at = new_app().run()
    at.switch_page("pages/data.py").run()
    at.radio(key="data_source").set_value("Upload files").run()
    at.file_uploader(key="data_upload").set_value(("bad.csv", bad, "text/csv")).run()
    no_exception(at, "bad upload")
    errors = "\n".join(plain(e.value) for e in at.error)
    assert ei.value.what in errors, errors
    assert "bad.csv" in errors
    assert state_of(at).raw is None


def test_good_upload_is_read_and_validated(sample_data_dir):
    at = new_app().run()
    at.switch_page("pages/data.py").run()
    at.radio(key="data_source").set_value("Upload files").run()
    files = [(n, (sample_data_dir / n).read_bytes(), "text/csv") for n in ("interactions.csv", "items.csv")]
    at.file_uploader(key="data_upload").set_value(files).run()
    no_exception(at, "good upload")
    assert not at.error, [e.value for e in at.error]
    assert state_of(at).raw is not None
    assert "Column roles" in [s.value for s in at.subheader]


def _order(at: AppTest) -> list[str]:
    import re
    out = []
    for m in at.markdown:
        hit = re.match(r"\*\*.*\*\* · ([^ \n]+)", m.value)      # **title** · item id
        if hit:
            hit = re.match(r"(.*)", plain(hit.group(1)))
        if hit:
            out.append(hit.group(1))
    return out


def test_task_weight_sliders_rerank_the_recommendations(trained):
    at = trained["at"]
    at.switch_page("pages/recommend.py").run()
    no_exception(at, "recommendations")
    assert "support" in [c.value for c in at.caption]     # each item's training interactions
    sliders = {s.label: s for s in at.slider}
    assert {"click", "rating"} <= set(sliders), list(sliders)
    sliders["click"].set_value(1.0)
    sliders["rating"].set_value(0.0)
    at.run()
    by_click = _order(at)
    assert len(by_click) == 10
    sliders = {s.label: s for s in at.slider}
    sliders["click"].set_value(0.0)
    sliders["rating"].set_value(1.0)
    at.run()
    no_exception(at, "re-ranked")
    by_rating = _order(at)
    assert len(by_rating) == 10
    assert by_click != by_rating, "changing the task weights did not change the list"
    assert at.get("download_button"), "CSV download missing"
    assert at.dataframe, "history table missing"


def test_results_page_shows_metrics_and_curves(trained):
    at = trained["at"]
    at.switch_page("pages/results.py").run()
    no_exception(at, "results")
    tasks = set()
    for d in at.dataframe:                 # one metrics table per task type (click: binary, rating: regression)
        if d.value.index.name == "task":
            tasks |= set(d.value.index)
            assert not d.value.isna().all().any(), d.value
    assert {"click", "rating"} <= tasks
    # the chart sections open on demand (each chart costs the browser ~0.5 s to draw)
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "ROC" not in specs and "residuals" not in specs
    at.session_state["results_roc_open"] = True          # the visitor opens the section
    at.run()
    no_exception(at, "results, predictions section open")
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "ROC" in specs and "Precision-recall" in specs and "residuals" in specs
    ranking = next(d.value for d in at.dataframe if "recall@10" in getattr(d.value, "columns", []))
    assert "click" in set(ranking["task"])
    assert ranking["recall@10"].between(0, 1).all() and ranking["ndcg@10"].between(0, 1).all()
    # the popularity and mean-rating baselines beside the model, and who wins against each, in words
    click = ranking[ranking["task"] == "click"]
    assert list(click["ranked by"]) == ["model", "popularity", "mean rating"]
    import re
    assert re.search(r"\*\*click\*\*: (the model|popularity beats the model) .*; (the model|mean rating beats the "
                     r"model) ", texts(at)), texts(at)
    assert "best-rated" in texts(at)


def test_tasks_and_data_pages_say_the_sample_genres_are_item_classification():
    from mtlrec.tasks import DEFAULT_METRIC
    at = new_app().run()
    at.button(key="home_load_sample").click().run()
    st_ = state_of(at)
    # genres are suggested as a multi-valued item feature; the visitor picks the label role instead
    from mtlrec.data.roles import DataSpec
    d = st_.spec.to_dict()
    d["multivalued"].pop("genres")
    d["labels"]["genres"] = "multilabel"
    st_.spec = st_.suggested_spec = DataSpec.from_dict(d)
    st_.tasks.append({"name": "genres", "type": "multilabel", "label": "genres", "weight": 1.0,
                      "metric": DEFAULT_METRIC["multilabel"]})
    at.switch_page("pages/model.py").run()
    no_exception(at, "tasks page")
    warned = [plain(w.value) for w in at.warning if "classification" in w.value]
    assert len(warned) == 1, warned                       # genres only: click, like, rating are interactions
    assert warned[0].startswith("task 'genres': the label is a property of the item")
    assert "item classification" in warned[0] and "drop the task" in warned[0]
    next(b for b in at.button if b.label == "Drop this task").click().run()
    no_exception(at, "dropping the task")
    assert "genres" not in [t["name"] for t in st_.tasks]
    assert not [w for w in at.warning if "classification" in w.value]
    at.switch_page("pages/data.py").run()
    no_exception(at, "data page")
    assert any(plain(w.value).startswith("label 'genres': the label is a property of the item") for w in at.warning)


def test_a_failed_run_shows_its_message(runs_dir):
    at = new_app().run()
    at.button(key="home_load_sample").click().run()
    st_ = state_of(at)
    st_.train.update(epochs=1, batch_size=4096, weighting="no-such-weighting")
    at.run()
    at.button(key="train_start").click().run()
    deadline = time.time() + 120
    while time.time() < deadline and not st_.jobs[-1].done:
        time.sleep(0.2)
    at.run()
    no_exception(at, "failed run")
    errors = "\n".join(plain(e.value) for e in at.error)
    assert "The run failed" in errors and "no-such-weighting" in errors, errors
    assert list(at.dataframe[0].value["status"]) == ["failed"]


def test_prepare_on_the_data_page_prepares_and_reports():
    at = new_app().run()
    at.button(key="home_load_sample").click().run()
    at.switch_page("pages/data.py").run()
    no_exception(at, "data page")
    assert state_of(at).dataset is None
    next(b for b in at.button if b.label == "Prepare").click().run()
    no_exception(at, "after Prepare")
    assert state_of(at).dataset is not None
    assert any(s.value.startswith("Prepared:") for s in at.success), [s.value for s in at.success]
