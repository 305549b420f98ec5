"""predictions_test.npz (issue 15, part 2): training stores the test predictions of the pass that gave
the test metrics; `mtlrec.runs.predictions.predictions`, the predictions CSV and the Results page read them instead of
scoring the test split; older folders without the file are still scored; a resumed run stores them too."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from _fixtures_train import TASKS, make_dataset, with_label_stats
from mtlrec.config import RunConfig


def _dataset():
    ds = with_label_stats(make_dataset(n_rows=1500))
    first = 0
    for split in ("train", "valid", "test"):      # source row ids, as `mtlrec.prep.prepare` keeps them
        n = ds.n_rows(split)
        ds.rows[split]["row_id"] = np.arange(first, first + n, dtype=np.int64)[::-1].copy()
        first += n
    return ds


def _cfg(**train):
    return RunConfig.from_dict({"tasks": TASKS, "model": {"arch": "shared_bottom", "shared_dims": [32, 16],
                                                          "tower_dims": [8], "embedding_dim": 8},
                                "train": {"epochs": 2, "batch_size": 256, "device": "cpu", "seed": 0,
                                          "ranking_k": 5, **train}})


def _train(run_dir, **kw):
    from mtlrec.training.pipeline import run_training
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_training(_cfg(), run_dir=run_dir, dataset=_dataset(), **kw)
    finally:
        torch.set_num_threads(n)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("stored_preds") / "run"
    assert _train(d).status == "finished"
    return d


def _no_forward(monkeypatch, run):
    """Make every forward pass of the run's model class (and `predictions.score_split`) raise."""
    from mtlrec.runs import predictions as workflow

    def boom(*a, **k):
        raise AssertionError("the model was run although the predictions are stored")

    monkeypatch.setattr(type(run.model), "forward", boom)
    monkeypatch.setattr(workflow, "score_split", boom)


def test_training_stores_the_test_predictions_of_the_test_metrics(run_dir):
    from mtlrec.metrics import evaluate_task
    from mtlrec.runs.load import load_run, read_predictions
    from mtlrec.runs.folder import read_json
    from mtlrec.runs.predictions import score_split
    assert (run_dir / "predictions_test.npz").is_file()
    assert not list(run_dir.glob(".*tmp*")), "a temporary file was left behind"
    got = read_predictions(run_dir, "test")
    run = load_run(run_dir)
    n = run.dataset.n_rows("test")
    assert list(got["tasks"]) == [t["name"] for t in TASKS]
    assert np.array_equal(got["row_id"], run.dataset.row_ids("test"))
    fresh = score_split(run, "test")
    metrics = read_json(run_dir / "metrics.json")
    for t in run.tasks:
        p, y = got["tasks"][t.name]["p"], got["tasks"][t.name]["y"]
        assert p.dtype == np.float32 and len(p) == len(y) == n
        np.testing.assert_allclose(p, fresh[t.name]["p"], atol=1e-5)
        np.testing.assert_array_equal(y, fresh[t.name]["y"])
        # the metrics.json test metrics are those of these very predictions
        m = evaluate_task(t, y, p)
        assert m[t.metric] == pytest.approx(metrics["test"][t.name][t.metric], abs=1e-6)


def test_predictions_and_csv_read_the_stored_file_without_the_model(run_dir, monkeypatch):
    from mtlrec.runs.report import predictions_csv
    from mtlrec.runs.load import load_run
    from mtlrec.runs.predictions import predictions, score_split
    run = load_run(run_dir)
    expected = score_split(run, "test")
    _no_forward(monkeypatch, run)
    got = predictions(run, "test")
    assert set(got) == set(expected)
    for name, e in expected.items():
        assert got[name]["type"] == e["type"] and got[name]["metric"] == e["metric"]
        np.testing.assert_allclose(got[name]["p"], e["p"], atol=1e-5)
    csv = predictions_csv(run_dir, "test").decode("utf-8-sig")
    assert csv.splitlines()[0].startswith("row_id,user_id,item_id")
    assert len(csv.strip().splitlines()) == run.dataset.n_rows("test") + 1


def test_an_older_folder_without_the_file_is_scored(run_dir, tmp_path):
    import shutil

    from mtlrec.runs.load import load_run
    from mtlrec.runs.predictions import predictions, stored_predictions
    old = tmp_path / "old-run"
    shutil.copytree(run_dir, old)
    (old / "predictions_test.npz").unlink()
    run = load_run(old)
    assert stored_predictions(run, "test") is None
    got = predictions(run, "test")
    assert len(got["click"]["p"]) == run.dataset.n_rows("test")
    # a damaged file is no file: scored as well
    (old / "predictions_test.npz").write_bytes(b"not a zip")
    assert stored_predictions(load_run(old), "test") is None
    assert len(predictions(load_run(old), "test")["click"]["p"]) == run.dataset.n_rows("test")
    # the other splits are always scored
    assert stored_predictions(load_run(run_dir), "valid") is None


def test_a_resumed_run_stores_its_test_predictions(tmp_path):
    from mtlrec.runs.load import load_run, read_predictions
    from mtlrec.training.resume import resume_run
    from mtlrec.runs.predictions import score_split
    d = tmp_path / "run"
    stop = threading.Event()
    res = _train(d, stop_event=stop, on_epoch=lambda rec, hist: stop.set())    # cancelled after epoch 1
    assert res.status == "cancelled" and (d / "checkpoint.pt").is_file()
    assert not (d / "predictions_test.npz").exists()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert resume_run(d).status == "finished"
    finally:
        torch.set_num_threads(n)
    got = read_predictions(d, "test")
    fresh = score_split(load_run(d), "test")
    for name, e in fresh.items():
        np.testing.assert_allclose(got["tasks"][name]["p"], e["p"], atol=1e-5)


def test_results_page_opens_without_scoring(run_dir, monkeypatch, runs_dir_env, local_runs):
    """Results on a freshly trained run: ROC / PR, residuals and the CSV download, no forward pass."""
    from streamlit.testing.v1 import AppTest

    from pathlib import Path

    from mtlrec.runs.load import load_run
    from pages.ui.state import AppState
    _no_forward(monkeypatch, load_run(run_dir))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=240)
    at.session_state["mtlrec_state"] = AppState(opened_runs=[str(run_dir)], selected_run=str(run_dir))
    at.session_state["results_roc_open"] = True           # the section with the ROC / PR / residual charts
    at.switch_page("pages/results.py").run()
    assert not at.exception, [e.value for e in at.exception]
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "ROC" in specs and "Precision-recall" in specs and "residuals" in specs
    assert at.get("download_button"), "the predictions download is missing"


@pytest.fixture
def runs_dir_env(run_dir, monkeypatch):
    monkeypatch.setenv("MTLREC_RUNS_DIR", str(run_dir.parent))
    return run_dir.parent


def test_export_and_import_keep_the_stored_predictions(run_dir, tmp_path):
    import io
    import zipfile

    from mtlrec.errors import DataError
    from mtlrec.runs.archive import export_zip, import_zip
    from mtlrec.runs.load import load_run
    from mtlrec.runs.predictions import stored_predictions
    data = export_zip(run_dir)
    assert "predictions_test.npz" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    d = import_zip(data, tmp_path / "other")
    assert stored_predictions(load_run(d), "test") is not None
    # a damaged member is refused, and nothing is left behind
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w") as dst:
        for n in src.namelist():
            dst.writestr(n, b"junk" if n == "predictions_test.npz" else src.read(n))
    with pytest.raises(DataError, match="predictions_test.npz"):
        import_zip(buf.getvalue(), tmp_path / "third")
    assert not [p for p in (tmp_path / "third").iterdir()] if (tmp_path / "third").exists() else True
