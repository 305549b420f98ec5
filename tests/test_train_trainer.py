"""Trainer behaviour: learning, early stopping direction, reproducibility, NaN, run folder, CV, baselines."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig
from mtlrec.errors import TrainingError
from mtlrec.training.early_stopping import EarlyStopping


def cfg_for(tasks=TASKS, arch="shared_bottom", **train) -> RunConfig:
    t = {"epochs": 3, "batch_size": 256, "lr": 0.01, "log_every": 4, "device": "cpu"}
    t.update(train)
    tasks = [dict(x) for x in tasks]
    for x in tasks:
        if x["name"] == "rating":
            x.setdefault("weight", 0.1)
    return RunConfig.from_dict({"tasks": tasks, "model": {"arch": arch}, "train": t})


@pytest.fixture(scope="module")
def ds():
    return make_dataset()


def test_early_stopping_direction_lower_is_better():
    es = EarlyStopping(higher_is_better=False, patience=2)
    for epoch, v in enumerate([1.0, 0.8, 0.9, 0.7, 0.75, 0.72], start=1):
        es.step(epoch, v)
    assert es.best_epoch == 4 and es.best_value == 0.7
    assert es.should_stop            # two epochs without improvement after epoch 4
    hi = EarlyStopping(higher_is_better=True, patience=2)
    for epoch, v in enumerate([0.6, 0.8, 0.7], start=1):
        hi.step(epoch, v)
    assert hi.best_epoch == 2 and not hi.should_stop
    nan = EarlyStopping(higher_is_better=False)
    nan.step(1, float("nan"))
    assert nan.best_epoch is None


def test_trainer_picks_best_epoch_for_rmse_and_restores_its_weights(ds):
    from mtlrec.training.pipeline import run_training
    # a high learning rate makes the validation RMSE move up and down between epochs
    cfg = cfg_for(tasks=TASKS[2:3], epochs=5, lr=0.05,
                  early_stopping={"task": "rating", "metric": "rmse", "patience": 0})
    res = run_training(cfg, dataset=ds)
    rmse = [e["valid"]["rating"]["rmse"] for e in res.history.epochs]
    assert len(rmse) == 5
    best = int(np.argmin(rmse)) + 1
    assert res.metrics["best_epoch"] == best
    assert res.metrics["monitor"]["higher_is_better"] is False
    # the model handed back carries the best epoch's weights: its validation RMSE is the best one
    from mtlrec.training.trainer import Trainer
    valid, _ = Trainer(res.model, res.tasks, cfg.train).evaluate(ds.to_device("cpu"), "valid")
    assert valid["rating"]["rmse"] == pytest.approx(min(rmse), rel=1e-5)


def test_same_seed_same_history_on_cpu(ds):
    from mtlrec.training.pipeline import run_training
    a = run_training(cfg_for(epochs=2, seed=7), dataset=ds).history
    b = run_training(cfg_for(epochs=2, seed=7), dataset=ds).history
    c = run_training(cfg_for(epochs=2, seed=8), dataset=ds).history
    strip = lambda h: [{k: v for k, v in e.items() if k not in ("samples_per_s", "time_s")} for e in h.epochs]
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)
    assert len(a.batches) == len(b.batches) > 0
    assert [r["train_loss"] for r in a.batches] == [r["train_loss"] for r in b.batches]


def test_nan_loss_stops_with_a_clear_message(ds):
    from mtlrec.training.pipeline import run_training
    bad = make_dataset()
    bad.user_table["age"] = bad.user_table["age"].copy()
    bad.user_table["age"][::3] = np.inf          # an infinite feature value poisons the loss
    with pytest.raises(TrainingError) as ei:
        run_training(cfg_for(epochs=2), dataset=bad)
    msg = str(ei.value)
    assert "NaN" in msg or "infinite" in msg
    assert "epoch 1, batch 1" in msg
    assert "learning rate" in msg
    assert any(f"task '{t['name']}'" in msg for t in TASKS)


def test_run_folder_is_complete_and_reloads(ds, tmp_path):
    from mtlrec.runs.load import load_run
    from mtlrec.training.pipeline import run_training
    run_dir = tmp_path / "run"
    res = run_training(cfg_for(epochs=2), run_dir, dataset=ds)
    for name in ("config.json", "history.json", "metrics.json", "model.pt", "model.json", "status.json",
                 "dataset/dataset.json"):
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"
    hist = json.loads((run_dir / "history.json").read_text())
    assert len(hist["epochs"]) == 2 and hist["batches"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["test"]) == {t["name"] for t in TASKS}
    state = torch.load(run_dir / "model.pt", weights_only=True)
    assert isinstance(state, dict) and state
    run = load_run(run_dir)
    data = run.device_data()
    feats, _ = data.batch("test", torch.arange(50))
    res.model.eval()
    with torch.inference_mode():
        a, b = res.model(feats), run.model(feats)
    for t in TASKS:
        assert torch.allclose(a[t["name"]], b[t["name"]], atol=1e-6)
    assert run.metrics["best_epoch"] == res.metrics["best_epoch"]


def test_config_messages_list_the_options(ds, tmp_path):
    from mtlrec.training.pipeline import run_training
    with pytest.raises(TrainingError, match="shared_bottom"):
        cfg_for(arch="transformer").validate()
    with pytest.raises(TrainingError, match="available labels: .*click"):
        cfg_for(tasks=[{"name": "buy", "type": "binary", "label": "buy"}]).validate(
            label_names=[lab.name for lab in ds.labels])
    with pytest.raises(TrainingError, match="valid keys: .*epochs"):
        RunConfig.from_dict({"tasks": TASKS, "train": {"epoch": 3}})
    with pytest.raises(TrainingError, match="static"):
        cfg_for(weighting="magic").validate()
    # round trip through JSON, paths relative to the config file's folder
    p = tmp_path / "sub" / "c.json"
    cfg = cfg_for()
    cfg.data.paths = ["data.csv", "../x/items.csv"]
    cfg.save(p)
    back = RunConfig.load(p)
    assert back.to_dict() == cfg.to_dict()
    assert back.data_paths() == [(tmp_path / "sub" / "data.csv").resolve(), (tmp_path / "x" / "items.csv").resolve()]


def test_cross_validation_and_single_task_gain(ds):
    from mtlrec.metrics import higher_is_better
    from mtlrec.training.pipeline import run_training
    cfg = cfg_for(tasks=[TASKS[0], TASKS[2]], epochs=2, cv_folds=2, baselines=True)
    m = run_training(cfg, dataset=ds).metrics
    cv = m["cv"]
    assert cv["k"] == 2 and len(cv["folds"]) == 2
    for task, metric in (("click", "auc"), ("rating", "rmse")):
        vals = [f["valid"][task][metric] for f in cv["folds"]]
        assert cv["valid"][task][metric]["mean"] == pytest.approx(np.mean(vals))
        assert cv["valid"][task][metric]["std"] == pytest.approx(np.std(vals))
        g = m["gain"][task]
        assert g["metric"] == metric and g["stl"] == m["stl"][task][metric] and g["mtl"] == m["test"][task][metric]
        diff = g["mtl"] - g["stl"]
        assert g["gain"] == pytest.approx(diff if higher_is_better(metric) else -diff)
        assert math.isfinite(g["gain"])
