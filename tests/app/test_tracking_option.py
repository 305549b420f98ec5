"""Train: the live experiment tracking boxes (issue 26, item 1). They log to the operator's targets
(MTLREC_MLFLOW_URI, MTLREC_TENSORBOARD_DIR), are enabled only when the package is installed and a
target is set, and a run started with one ticked logs from its worker process as it trains."""
from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from test_pages import APP, no_exception, state_of, texts

from mtlrec.app.workflow import build_run_config
from pages.ui.state import TERMINAL

pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")


def _box(at: AppTest, label: str):
    return next((c for c in at.checkbox if c.label.startswith(label)), None)


def _train_page(at: AppTest):
    at.button(key="home_load_sample").click().run()
    at.switch_page("pages/train.py").run()
    no_exception(at, "opening Train")
    return state_of(at)


def test_boxes_log_to_the_operators_targets(monkeypatch, tmp_path):
    uri = f"file:{tmp_path / 'mlruns'}"
    monkeypatch.setenv("MTLREC_MLFLOW_URI", uri)
    monkeypatch.setenv("MTLREC_TENSORBOARD_DIR", str(tmp_path / "tb"))
    at = AppTest.from_file(APP, default_timeout=240).run()
    st_ = _train_page(at)
    ml, tb = _box(at, "Log this run live to MLflow"), _box(at, "Write TensorBoard event files")
    assert ml is not None and tb is not None and not ml.disabled and not tb.disabled
    assert "tracking" not in st_.train                       # a visit saves nothing
    ml.check().run()
    no_exception(at, "ticking MLflow")
    assert st_.train["tracking"] == {"mlflow_uri": uri}
    cfg = build_run_config(spec=st_.spec, prep=st_.prep, tasks=st_.tasks, model=st_.model, train=st_.train,
                           text=st_.text, source=st_.source)
    assert cfg.train.tracking == {"mlflow_uri": uri}
    _box(at, "Log this run live to MLflow").uncheck().run()
    assert "tracking" not in st_.train


def test_boxes_are_off_without_a_target_or_without_the_package(monkeypatch):
    monkeypatch.delenv("MTLREC_MLFLOW_URI", raising=False)
    monkeypatch.delenv("MTLREC_TENSORBOARD_DIR", raising=False)
    at = AppTest.from_file(APP, default_timeout=240).run()
    _train_page(at)
    assert _box(at, "Log this run live to MLflow").disabled
    assert "has not set MTLREC_MLFLOW_URI" in texts(at)
    import mtlrec.tracking as tracking
    monkeypatch.setenv("MTLREC_MLFLOW_URI", "file:/nowhere")
    monkeypatch.setattr(tracking, "installed", lambda module: False)
    at.run()
    no_exception(at, "without the packages")
    assert _box(at, "Log this run live to MLflow").disabled and _box(at, "Write TensorBoard event files").disabled
    assert "pip install -r requirements-extras.txt" in texts(at)


@pytest.mark.slow
def test_a_run_started_with_mlflow_ticked_logs_each_epoch(monkeypatch, tmp_path, runs_dir):
    uri = f"file:{tmp_path / 'mlruns'}"
    monkeypatch.setenv("MTLREC_MLFLOW_URI", uri)
    monkeypatch.setenv("MTLREC_TRAIN_ISOLATION", "process")      # as the app trains: in a worker process
    at = AppTest.from_file(APP, default_timeout=240).run()
    st_ = _train_page(at)
    st_.tasks = [{k: v for k, v in t.items() if k != "given"} for t in st_.tasks if t["name"] in ("click", "rating")]
    st_.train.update(epochs=2, batch_size=4096, ranking_k=0)
    st_.model = {"arch": "shared_bottom", "shared_dims": [16], "tower_dims": [8], "embedding_dim": 8}
    at.run()
    _box(at, "Log this run live to MLflow").check().run()
    at.button(key="train_start").click().run()
    no_exception(at, "starting a tracked run")
    job = st_.jobs[-1]
    assert job.isolate == "process"
    deadline = time.time() + 240
    while time.time() < deadline and job.snapshot(include_batches=False)["status"] not in TERMINAL:
        time.sleep(0.5)
    snap = job.snapshot(include_batches=False)
    assert snap["status"] == "finished", snap.get("error")
    assert not [w for w in snap.get("warnings") or [] if "logging" in w]
    from mtlrec.tracking.mlflow_log import client_for
    c = client_for(uri)
    runs = c.search_runs([c.get_experiment_by_name("mtlrec").experiment_id])
    assert [r.data.tags["mtlrec.run_id"] for r in runs] == [job.run_dir.name]
    steps = [m.step for m in c.get_metric_history(runs[0].info.run_id, "valid.click.auc")]
    assert sorted(steps) == [1, 2]
