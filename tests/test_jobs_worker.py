"""TrainingJob in a worker process (issue 15): same snapshot as the thread, cancel, failures, a dead worker."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig


def cfg_for(tasks=TASKS, **train) -> RunConfig:
    t = {"epochs": 2, "batch_size": 256, "lr": 0.01, "log_every": 2, "device": "cpu", "seed": 3}
    t.update(train)
    return RunConfig.from_dict({"tasks": tasks, "model": {"arch": "shared_bottom", "shared_dims": [32, 16],
                                                          "tower_dims": [8], "embedding_dim": 8},
                                "train": t})


def wait(job, cond, timeout=180):
    t0 = time.time()
    s = job.snapshot()
    while time.time() - t0 < timeout:
        s = job.snapshot()
        if cond(s):
            return s
        if job.done:
            raise AssertionError(f"the job ended before the condition: {s['status']} {s['error']}")
        time.sleep(0.05)
    raise AssertionError(f"condition not reached; last snapshot status {s['status']}")


def read(d, name):
    return json.loads((d / name).read_text())


def test_isolation_mode_argument_env_and_default(monkeypatch):
    from mtlrec.training.jobs import isolation_mode
    monkeypatch.delenv("MTLREC_TRAIN_ISOLATION", raising=False)
    assert isolation_mode() == "process"
    assert isolation_mode("thread") == "thread"
    monkeypatch.setenv("MTLREC_TRAIN_ISOLATION", "thread")
    assert isolation_mode() == "thread"
    assert isolation_mode("process") == "process"
    monkeypatch.setenv("MTLREC_TRAIN_ISOLATION", "fork")
    with pytest.raises(ValueError, match="MTLREC_TRAIN_ISOLATION"):
        isolation_mode()


def test_progress_travels_field_by_field():
    """Every dataclass field of Progress crosses over (also fields added later); properties derive."""
    import dataclasses

    from mtlrec.training.progress import Progress, apply_progress, progress_fields
    src = Progress(phases=["multi-task", "single-task click"], phase_index=1, epochs=4, epoch=3, batch=5,
                   n_batches=10, started=123.0, warnings=["w"])
    values = progress_fields(src)
    assert set(values) == {f.name for f in dataclasses.fields(Progress)}
    json.dumps(values)     # plain values
    dst = Progress()
    apply_progress(dst, values)
    assert dst == src and dst.fraction == src.fraction and dst.phase == "single-task click"
    assert dst.warnings is not src.warnings


def test_process_job_finishes_and_its_snapshot_matches_the_run_folder(tmp_path, monkeypatch):
    from mtlrec.training.jobs import TrainingJob
    monkeypatch.delenv("MTLREC_TRAIN_ISOLATION", raising=False)
    d = tmp_path / "run"
    job = TrainingJob(cfg_for(), d, dataset=make_dataset(n_rows=1500))
    assert job.isolate == "process" and job.snapshot()["status"] == "queued"
    job.start()
    assert job.join(240)
    s = job.snapshot()
    assert s["status"] == "finished", s["error"]
    assert job.worker_pid and job.worker_pid != os.getpid() and job.worker_exitcode == 0
    assert s["fraction"] == 1.0 and s["epoch"] == 2 and s["device"] == "cpu"
    assert s["history"] == read(d, "history.json")
    assert len(s["history"]["epochs"]) == 2 and s["history"]["batches"]
    assert s["metrics"] == read(d, "metrics.json") and set(s["metrics"]["test"]) == {t["name"] for t in TASKS}
    assert read(d, "status.json")["status"] == "finished"
    res = job.result               # loaded from the run folder
    assert res.status == "finished" and res.model is not None and len(res.tasks) == len(TASKS)
    assert res.metrics == s["metrics"]


def test_cancel_stops_the_worker_and_keeps_a_consistent_folder(tmp_path):
    from mtlrec.training.jobs import TrainingJob
    d = tmp_path / "run"
    job = TrainingJob(cfg_for(epochs=200, batch_size=64), d, dataset=make_dataset(n_rows=3000),
                      isolate="process").start()
    wait(job, lambda s: s["epoch"] >= 2 and s["batch"] >= 2)
    job.cancel()
    assert job.join(120)
    s = job.snapshot()
    assert s["status"] == "cancelled" and s["epoch"] < 200
    assert job.worker_exitcode == 0
    assert s["history"] == read(d, "history.json") and len(s["history"]["epochs"]) >= 1
    assert read(d, "status.json")["status"] == "cancelled"
    assert (d / "model.pt").exists()


def test_cancel_of_a_queued_process_job_starts_no_worker(tmp_path):
    from mtlrec.training.jobs import TrainingJob
    job = TrainingJob(cfg_for(), tmp_path / "run", dataset=make_dataset(n_rows=300), isolate="process")
    job.cancel()
    job.start()
    assert job.join(30)
    assert job.status == "cancelled" and job.worker_pid is None


def test_a_data_error_in_the_worker_fails_the_job_with_its_message(tmp_path):
    from mtlrec.training.jobs import TrainingJob
    d = tmp_path / "run"
    bad = [{"name": "watched", "type": "binary", "label": "watched"}]     # no such label in the data
    job = TrainingJob(cfg_for(tasks=bad), d, dataset=make_dataset(n_rows=300), isolate="process").start()
    assert job.join(180)
    s = job.snapshot()
    assert s["status"] == "failed" and s["error_kind"] == "TrainingError"
    assert "watched" in s["error"] and "not in the data" in s["error"] and "Traceback" not in s["error"]
    st = read(d, "status.json")
    assert st["status"] == "failed" and st["error"] == s["error"]


def test_a_worker_that_exits_mid_run_fails_the_job_and_the_parent_goes_on(tmp_path, monkeypatch):
    from mtlrec.training.jobs import TrainingJob
    from mtlrec.training.worker import CRASH_ENV, CRASH_EXIT_CODE
    d = tmp_path / "run"
    monkeypatch.setenv(CRASH_ENV, "7")            # the worker os._exit()s after its 7th batch (read there only)
    job = TrainingJob(cfg_for(epochs=5), d, dataset=make_dataset(n_rows=1500), isolate="process").start()
    assert job.join(180)
    s = job.snapshot()
    assert job.worker_exitcode == CRASH_EXIT_CODE
    assert s["status"] == "failed" and s["error_kind"] == "worker_died"
    assert "ended unexpectedly" in s["error"] and f"exit code {CRASH_EXIT_CODE}" in s["error"]
    st = read(d, "status.json")
    assert st["status"] == "failed" and st["error"] == s["error"]
    assert job.snapshot()["status"] == "failed"      # and this process (the server) is still here to ask


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_worker_killed_with_sigkill_fails_the_job_and_the_folder_says_so(tmp_path):
    from mtlrec.training.jobs import TrainingJob
    d = tmp_path / "run"
    job = TrainingJob(cfg_for(epochs=200, batch_size=64), d, dataset=make_dataset(n_rows=3000),
                      isolate="process").start()
    wait(job, lambda s: len(s["history"]["epochs"]) >= 1)
    assert job.worker_pid
    os.kill(job.worker_pid, signal.SIGKILL)
    assert job.join(60)
    s = job.snapshot()
    assert s["status"] == "failed" and job.worker_exitcode == -signal.SIGKILL
    assert "the training process ended unexpectedly (exit code -9)" in s["error"]
    assert "best model so far is in" in s["error"] and str(d) in s["error"]
    st = read(d, "status.json")
    assert st["status"] == "failed" and st["error"] == s["error"] and st["has_model"] is True
    assert len(s["history"]["epochs"]) == len(read(d, "history.json")["epochs"])


def test_the_worker_does_not_rerun_the_parents_main_script(monkeypatch):
    """In the Streamlit server __main__ is the app script: spawn must not run it in the worker."""
    import multiprocessing.spawn as mp_spawn
    import sys
    import types

    from mtlrec.training import worker
    fake = types.ModuleType("__main__")
    fake.__file__ = "/somewhere/app.py"            # as Streamlit installs its script module
    monkeypatch.setitem(sys.modules, "__main__", fake)
    worker._install_no_main_hook()
    assert mp_spawn.get_preparation_data("x").get("init_main_from_path") == "/somewhere/app.py"   # others: as before
    worker._NO_MAIN.on = True
    try:
        d = mp_spawn.get_preparation_data("x")
    finally:
        worker._NO_MAIN.on = False
    assert "init_main_from_path" not in d and "init_main_from_name" not in d and d["sys_path"]
