"""Experiment tracking (issue 26, item 1): a run exported to MLflow (a local file store, no server) and
to TensorBoard event files carries the numbers of its folder, step by step; a second export completes
the same MLflow run instead of adding one; ``train.tracking`` logs the same per-epoch values live,
and a tracker that fails is a run warning, never a failed run."""
from __future__ import annotations

import json

import pytest

from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig

pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")


def _cfg(tracking=None, epochs=3):
    t = {"epochs": epochs, "batch_size": 256, "lr": 0.01, "log_every": 5, "device": "cpu", "seed": 0,
         "ranking_k": 5, "dynamics_every": 1, "early_stopping": {"patience": 0}}
    if tracking:
        t["tracking"] = tracking
    return RunConfig.from_dict({"name": "tracked", "tasks": TASKS[:3],
                                "model": {"arch": "mmoe", "n_experts": 2, "expert_dims": [16], "tower_dims": [8],
                                          "embedding_dim": 8}, "train": t})


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """One tiny run (3 epochs, dynamics every batch) trained with live MLflow and TensorBoard tracking."""
    from mtlrec.training.pipeline import run_training
    base = tmp_path_factory.mktemp("tracking")
    store, tb = f"file:{base / 'live-mlruns'}", base / "live-tb"
    run_dir = base / "runs" / "20260101-000000-tracked"
    res = run_training(_cfg({"mlflow_uri": store, "tensorboard_dir": str(tb)}), run_dir,
                       dataset=make_dataset(n_rows=900))
    return {"dir": run_dir, "store": store, "tb": tb, "base": base, "result": res,
            "history": json.loads((run_dir / "history.json").read_text()),
            "metrics": json.loads((run_dir / "metrics.json").read_text())}


def _main(capsys, *args):
    from mtlrec.__main__ import main
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _client(uri):
    from mtlrec.tracking.mlflow_log import client_for
    return client_for(uri)


def _mlflow_run(uri, run_name, experiment="mtlrec"):
    c = _client(uri)
    exp = c.get_experiment_by_name(experiment)
    runs = c.search_runs([exp.experiment_id])
    assert [r.data.tags.get("mtlrec.run_id") for r in runs] == [run_name]       # exactly one MLflow run
    return c, runs[0]


def _per_epoch(history, split, task, metric):
    out = {}
    for e in history["epochs"]:
        v = e["valid"][task][metric] if split == "valid" else e["train_loss"][task]
        out[e["epoch"]] = round(v, 6)
    return out


def _history_of(c, run_id, name):
    return {m.step: round(m.value, 6) for m in c.get_metric_history(run_id, name)}


def test_mlflow_export_round_trip_with_a_file_store(live, tmp_path, capsys):
    uri = f"file:{tmp_path / 'mlruns'}"
    d, h, m = live["dir"], live["history"], live["metrics"]
    code, out, err = _main(capsys, "runs", "export-mlflow", d, "--tracking-uri", uri, "--no-explain")
    assert code == 0, err
    assert "(new)" in out and "mlflow ui --backend-store-uri" in out
    c, run = _mlflow_run(uri, d.name)
    # params: the whole configuration, flattened, with the trained model's hyperparameters
    p = run.data.params
    assert p["train.lr"] == "0.01" and p["train.epochs"] == "3" and p["train.early_stopping.patience"] == "0"
    assert p["tasks.click.type"] == "binary" and p["model.n_experts"] == "2" and p["model.arch"] == "mmoe"
    # per-epoch metrics per task and split, step = epoch
    assert _history_of(c, run.info.run_id, "valid.click.auc") == _per_epoch(h, "valid", "click", "auc")
    assert _history_of(c, run.info.run_id, "valid.rating.rmse") == _per_epoch(h, "valid", "rating", "rmse")
    assert _history_of(c, run.info.run_id, "train.like.loss") == _per_epoch(h, "train", "like", None)
    # the dynamics series and the test metrics (step = the best epoch)
    grad = {e["epoch"]: round(e["dynamics"]["grad_norm"]["click"], 6) for e in h["epochs"]}
    assert _history_of(c, run.info.run_id, "dynamics.grad_norm.click") == grad
    assert len(_history_of(c, run.info.run_id, "dynamics.cosine.click_vs_like")) == 3
    assert _history_of(c, run.info.run_id, "test.click.auc") == {m["best_epoch"]: round(m["test"]["click"]["auc"], 6)}
    assert round(run.data.metrics["test.like.recall_at_5"], 6) == round(m["ranking"]["like"]["recall@5"], 6)
    # tags and artifacts
    t = run.data.tags
    assert (t["architecture"], t["weighting"], t["mtlrec.run_id"]) == ("mmoe", "static", d.name)
    assert t["dataset"] and t["mtlrec.status"] == "finished" and run.info.status == "FINISHED"
    arts = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"report.html", "model.pt", "model.json", "config.json", "metrics.json", "history.json"} <= arts


def test_a_second_export_completes_the_same_mlflow_run(live, tmp_path, capsys):
    uri = f"file:{tmp_path / 'mlruns'}"
    d = live["dir"]
    for _ in range(2):
        code, out, err = _main(capsys, "runs", "export-mlflow", d, "--tracking-uri", uri, "--no-explain", "--json")
        assert code == 0, err
    doc = json.loads(out)["runs"][0]
    assert doc["created"] is False and doc["metric_points"] == 0 and doc["params"] == 0
    c, run = _mlflow_run(uri, d.name)                     # still one MLflow run
    assert len(c.get_metric_history(run.info.run_id, "valid.click.auc")) == 3   # one point per epoch


def test_tensorboard_event_files_read_back_with_the_history_values(live, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    d, h, logdir = live["dir"], live["history"], tmp_path / "tb"
    for _ in range(2):                                      # exported twice: replaced, not doubled
        code, out, err = _main(capsys, "runs", "export-tensorboard", d, "--logdir", logdir)
        assert code == 0, err
    assert "tensorboard --logdir" in out
    files = list((logdir / d.name).glob("events.out.tfevents.*"))
    assert len(files) == 1
    acc = EventAccumulator(str(logdir / d.name)).Reload()
    got = {e.step: round(e.value, 4) for e in acc.Scalars("valid/click/auc")}      # float32 in the file
    assert got == {k: round(v, 4) for k, v in _per_epoch(h, "valid", "click", "auc").items()}
    assert {e.step for e in acc.Scalars("dynamics/grad_norm/rating")} == {1, 2, 3}
    assert round(acc.Scalars("test/click/auc")[0].value, 4) == round(live["metrics"]["test"]["click"]["auc"], 4)


def test_live_tracking_logs_the_same_per_epoch_values(live):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    d, h = live["dir"], live["history"]
    assert live["result"].status == "finished" and live["metrics"]["warnings"] == []
    c, run = _mlflow_run(live["store"], d.name)
    for task, metric in (("click", "auc"), ("rating", "rmse")):
        assert _history_of(c, run.info.run_id, f"valid.{task}.{metric}") == _per_epoch(h, "valid", task, metric)
    assert run.info.status == "FINISHED" and "model.pt" in {a.path for a in c.list_artifacts(run.info.run_id)}
    assert run.data.params["train.tracking.mlflow_uri"] == live["store"]
    acc = EventAccumulator(str(live["tb"] / d.name)).Reload()
    got = {e.step: round(e.value, 4) for e in acc.Scalars("valid/like/auc")}
    assert got == {k: round(v, 4) for k, v in _per_epoch(h, "valid", "like", "auc").items()}


def test_live_tracking_reaches_the_tracker_epoch_by_epoch(tmp_path):
    """The trainer's per-epoch hook hands each epoch to the tracker while the run trains."""
    from mtlrec.training.pipeline import run_training
    from mtlrec.tracking import live as live_mod
    seen = []
    real = live_mod.LiveTracking.epoch_end

    def spy(self, rec, history=None):
        seen.append((rec["epoch"], (tmp_path / "r" / "status.json").read_text().count('"running"') > 0))
        return real(self, rec, history)

    live_mod.LiveTracking.epoch_end = spy
    try:
        run_training(_cfg({"tensorboard_dir": str(tmp_path / "tb")}, epochs=2), tmp_path / "r",
                     dataset=make_dataset(n_rows=600))
    finally:
        live_mod.LiveTracking.epoch_end = real
    assert seen == [(1, True), (2, True)]                  # at each epoch's end, the run still running


def test_a_failing_tracker_is_a_run_warning_not_a_failed_run(tmp_path):
    from mtlrec.training.pipeline import run_training
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the tracking folder should be")
    d = tmp_path / "runs" / "r"
    res = run_training(_cfg({"mlflow_uri": f"file:{blocker / 'mlruns'}", "tensorboard_dir": str(blocker / "tb")},
                            epochs=1), d, dataset=make_dataset(n_rows=600))
    status = json.loads((d / "status.json").read_text())
    assert res.status == "finished" and status["status"] == "finished" and (d / "model.pt").is_file()
    said = [w for w in status["warnings"] if "logging stopped" in w]
    assert len(said) == 2, status["warnings"]
    assert any("python -m mtlrec runs export-mlflow r --tracking-uri" in w for w in said)
    assert any("python -m mtlrec runs export-tensorboard r --logdir" in w for w in said)
    assert json.loads((d / "metrics.json").read_text())["warnings"] == status["warnings"]


def test_without_the_package_the_message_says_how_to_install_it(live, tmp_path, capsys, monkeypatch):
    import mtlrec.tracking as tracking
    monkeypatch.setattr(tracking, "installed", lambda module: False)
    code, out, err = _main(capsys, "runs", "export-mlflow", live["dir"], "--tracking-uri", f"file:{tmp_path}")
    assert code == 2 and "mlflow-skinny" in err and "pip install -r requirements-extras.txt" in err
    assert "Traceback" not in err
    code, out, err = _main(capsys, "runs", "export-tensorboard", live["dir"], "--logdir", tmp_path)
    assert code == 2 and "pip install -r requirements-extras.txt" in err
    from mtlrec.tracking.live import live_tracking
    warnings = []
    assert live_tracking({"mlflow_uri": "file:x"}, tmp_path, warnings.append) is None
    assert "pip install -r requirements-extras.txt" in warnings[0]


def test_bad_tracking_settings_are_said_in_words():
    from mtlrec.errors import TrainingError
    with pytest.raises(TrainingError, match=r"unknown key\(s\) \['mlflow'\]; known"):
        _cfg({"mlflow": "file:x"}).train.validate()
    with pytest.raises(TrainingError, match="tensorboard_dir must be a string"):
        _cfg({"tensorboard_dir": 3}).train.validate()


def test_params_are_flattened_and_cut_to_mlflows_limits():
    from mtlrec.tracking.scalars import MAX_PARAM_CHARS, flat_params, joined
    p = flat_params({"name": "x" * 7000, "train": {"early_stopping": {"patience": 2}}, "tasks": [{"name": "a b@c"}],
                     "data": {"paths": ["a.csv", "b.csv"]}})
    assert len(p["name"]) == MAX_PARAM_CHARS and p["train.early_stopping.patience"] == "2"
    assert p["tasks.a b_at_c.name"] == "a b@c" and p["data.paths"] == '["a.csv", "b.csv"]'
    assert joined(("test", "click", "recall@10")) == "test.click.recall_at_10"
    assert joined(("valid", "a.b/c", "auc"), "/") == "valid/a_b_c/auc"


def test_a_cancelled_then_resumed_run_is_one_mlflow_run_with_every_epoch_once(tmp_path):
    import threading

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mtlrec.training.pipeline import run_training
    from mtlrec.training.resume import resume_run
    uri, tb, d = f"file:{tmp_path / 'mlruns'}", tmp_path / "tb", tmp_path / "runs" / "r"
    stop = threading.Event()
    res = run_training(_cfg({"mlflow_uri": uri, "tensorboard_dir": str(tb)}), d, dataset=make_dataset(n_rows=600),
                       stop_event=stop, on_epoch=lambda rec, h: rec["epoch"] == 1 and stop.set())
    assert res.status == "cancelled"
    c, run = _mlflow_run(uri, d.name)
    assert run.info.status == "KILLED" and _history_of(c, run.info.run_id, "valid.click.auc").keys() == {1}
    assert resume_run(d).status == "finished"
    c, run = _mlflow_run(uri, d.name)                      # the same MLflow run, completed
    h = json.loads((d / "history.json").read_text())
    assert run.info.status == "FINISHED"
    assert _history_of(c, run.info.run_id, "valid.click.auc") == _per_epoch(h, "valid", "click", "auc")
    assert len(c.get_metric_history(run.info.run_id, "valid.click.auc")) == 3
    acc = EventAccumulator(str(tb / d.name)).Reload()
    assert [e.step for e in acc.Scalars("valid/click/auc")] == [1, 2, 3]
