"""TrainingJob: background thread, snapshot, cancel within one batch, failure, isolation."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig


def cfg_for(tasks=TASKS, **train) -> RunConfig:
    t = {"epochs": 2, "batch_size": 128, "lr": 0.01, "log_every": 3, "device": "cpu", "seed": 3}
    t.update(train)
    return RunConfig.from_dict({"tasks": tasks, "model": {"arch": "shared_bottom"}, "train": t})


def wait(job, cond, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        s = job.snapshot()
        if cond(s):
            return s
        time.sleep(0.01)
    raise AssertionError(f"condition not reached; last snapshot status {s['status']}")


def steps(s) -> int:
    return (s["epoch"] - 1) * s["n_batches"] + s["batch"]


def test_cancel_stops_within_one_batch_and_keeps_history(tmp_path):
    from mtlrec.training.jobs import TrainingJob
    ds = make_dataset(n_rows=6000)
    job = TrainingJob(cfg_for(epochs=50, batch_size=64), tmp_path / "run", dataset=ds)
    assert job.snapshot()["status"] == "queued"
    job.start()
    s = wait(job, lambda s: s["epoch"] >= 2 and s["batch"] >= 5)
    assert s["status"] == "running" and s["device"] == "cpu"
    assert 0 < s["fraction"] < 1 and s["eta_s"] is not None
    job.cancel()
    at_cancel = steps(job.snapshot())
    assert job.join(60)
    end = job.snapshot()
    assert end["status"] == "cancelled"
    assert steps(end) - at_cancel <= 1          # at most the batch that was running
    assert end["epoch"] < 50
    assert len(end["history"]["epochs"]) >= 1 and end["history"]["batches"]
    on_disk = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(on_disk["epochs"]) == len(end["history"]["epochs"])
    assert json.loads((tmp_path / "run" / "status.json").read_text())["status"] == "cancelled"
    assert (tmp_path / "run" / "model.pt").exists()    # the best epoch so far is kept


def test_nan_loss_job_ends_failed_with_message(tmp_path):
    from mtlrec.training.jobs import TrainingJob
    ds = make_dataset(n_rows=1500)
    ds.rows["train"]["label:rating"] = ds.rows["train"]["label:rating"].copy()
    ds.rows["train"]["label:rating"][700:] = np.nan     # bad labels deep in the training split
    job = TrainingJob(cfg_for(epochs=3), tmp_path / "run", dataset=ds).start()
    assert job.join(120)
    s = job.snapshot()
    assert s["status"] == "failed"
    assert "task 'rating'" in s["error"] and "NaN" in s["error"] and "learning rate" in s["error"]
    assert "Traceback" not in s["error"]
    st = json.loads((tmp_path / "run" / "status.json").read_text())
    assert st["status"] == "failed" and st["error"] == s["error"]


def test_two_concurrent_jobs_keep_their_own_histories(tmp_path):
    from mtlrec.training.jobs import TrainingJob
    from mtlrec.training.pipeline import run_training
    ds = make_dataset(n_rows=3000)
    cfg_a = cfg_for(tasks=[TASKS[0], TASKS[2]], epochs=2, batch_size=128, seed=1)
    cfg_b = cfg_for(tasks=[TASKS[1], TASKS[3]], epochs=3, batch_size=200, seed=2)
    a = TrainingJob(cfg_a, tmp_path / "a", dataset=ds)
    b = TrainingJob(cfg_b, tmp_path / "b", dataset=ds)
    a.start(), b.start()
    assert a.join(180) and b.join(180)
    sa, sb = a.snapshot(), b.snapshot()
    assert sa["status"] == sb["status"] == "finished"
    assert len(sa["history"]["epochs"]) == 2 and len(sb["history"]["epochs"]) == 3
    for s, names in ((sa, {"click", "rating"}), (sb, {"like", "genres"})):
        for rec in s["history"]["epochs"] + s["history"]["batches"]:
            assert set(rec["train_loss"]) == names
        assert set(s["metrics"]["test"]) == names
    # the same configs trained alone give the same losses: nothing leaked between the jobs (the jobs
    # train in worker processes, whose torch thread count may differ from this process's: approx)
    alone_a = run_training(cfg_a, dataset=ds).history

    def losses(records):
        return [r["train_loss"][k] for r in records for k in sorted(r["train_loss"])]
    assert losses(sa["history"]["epochs"]) == pytest.approx(losses(alone_a.epochs), rel=1e-4)
    assert losses(sa["history"]["batches"]) == pytest.approx(losses(alone_a.batches), rel=1e-4)
    assert len(sa["history"]["batches"]) == len(alone_a.batches)
