"""Interrupted runs and resume (issue 11 item 4): every epoch leaves a checkpoint.pt; a run whose
process was killed is "interrupted" and `train --resume` / `resume_run` / `TrainingJob.resume`
continue it from the last checkpoint to the same result as a run that was never interrupted."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from _fixtures_cli import write_cli_case
from _fixtures_train import TASKS, make_dataset, with_label_stats
from mtlrec.config import RunConfig

REPO = Path(__file__).resolve().parents[1]

# the CLI in a child process that stops dead in the middle of epoch 3 (after its 2nd batch) and
# says so in a marker file, so that the test kills it there -- no timing involved
_BLOCK_IN_EPOCH_3 = """
import pathlib, sys, threading
import mtlrec.training.progress as progress
marker = pathlib.Path(sys.argv[1])
class BlockInEpoch3(progress.Progress):
    def __setattr__(self, key, value):
        object.__setattr__(self, key, value)
        if key == "batch" and value == 2 and self.epoch == 3:
            marker.write_text("in epoch 3")
            threading.Event().wait()
progress.Progress = BlockInEpoch3
from mtlrec.__main__ import main
sys.exit(main(sys.argv[2:]))
"""


def write_data(d: Path, n_rows: int = 700, seed: int = 0) -> Path:
    """interactions.csv (ids, a binary and a regression label, two features) and a 5-epoch config
    beside it: MMoE with dropout (global torch RNG) and DWA (loss history), no early stop."""
    return write_cli_case(
        d, n_rows=n_rows, seed=seed, click_per_user=0.01, model={"arch": "mmoe", "n_experts": 2, "dropout": 0.2},
        train={"epochs": 5, "batch_size": 64, "lr": 0.01, "seed": 3, "weighting": "dwa", "log_every": 3,
               "ranking_k": 5, "early_stopping": {"task": "click", "metric": "auc", "patience": 100}})


def _main(capsys, *args):
    from mtlrec.__main__ import main
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _close(a, b, tol=1e-6):
    """Same nested dict of numbers within ``tol`` (None for NaN on both sides)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (a, b)
        for k in a:
            _close(a[k], b[k], tol)
    elif isinstance(a, (int, float)) and a is not None and b is not None:
        assert math.isclose(a, b, rel_tol=0, abs_tol=tol), (a, b)
    else:
        assert a == b


def _leaves(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, (str, int)), k
            yield from _leaves(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _leaves(v)
    else:
        yield obj


def test_killed_run_is_interrupted_and_resumes_to_the_uninterrupted_result(tmp_path, capsys):
    from mtlrec.runs.load import run_status
    cfg = write_data(tmp_path / "data")
    run = tmp_path / "killed"
    marker = tmp_path / "marker"
    env = {"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _BLOCK_IN_EPOCH_3, str(marker), "train", "--config", str(cfg),
                             "--out", str(run), "--json"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240     # a guard against a hang, not a measurement
        while not marker.exists():
            assert proc.poll() is None, f"the run ended before epoch 3: {proc.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "the run never reached epoch 3"
            time.sleep(0.05)
        ck = torch.load(run / "checkpoint.pt", weights_only=True)      # data only, no pickled objects
        assert ck["epoch"] == 2 and len(ck["history"]["epochs"]) == 2
        assert json.loads((run / "status.json").read_text())["status"] == "running"
        os.kill(proc.pid, signal.SIGKILL)          # in the middle of epoch 3
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    st = run_status(run)
    assert st["status"] == "interrupted" and "gone" in st["reason"]

    code, out, err = _main(capsys, "train", "--resume", str(run), "--json")
    assert code == 0, err
    resumed = json.loads(out)
    assert resumed["status"] == "finished" and "after epoch 2" in err
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "finished" and status["resumed_from_epoch"] == 2 and status["pid"] == os.getpid()
    assert run_status(run)["status"] == "finished"
    assert not (run / "checkpoint.pt").exists()            # a finished run keeps no checkpoint
    hist = json.loads((run / "history.json").read_text())
    assert [e["epoch"] for e in hist["epochs"]] == [1, 2, 3, 4, 5]

    code, out, err = _main(capsys, "train", "--config", str(cfg), "--out", str(tmp_path / "whole"), "--json")
    assert code == 0, err
    whole = json.loads(out)
    # same machine, one thread, every random state restored: the same numbers
    assert resumed["best_epoch"] == whole["best_epoch"]
    _close(resumed["test"], whole["test"])
    _close(resumed["valid"], whole["valid"])
    _close(resumed["ranking"], whole["ranking"])
    whole_hist = json.loads((tmp_path / "whole" / "history.json").read_text())
    for a, b in zip(hist["epochs"], whole_hist["epochs"]):
        _close(a["valid_loss"], b["valid_loss"])
        _close(a["weights"], b["weights"])            # DWA's weights follow the same loss history


def _cfg(**train) -> RunConfig:
    t = {"epochs": 4, "batch_size": 256, "lr": 0.01, "log_every": 5, "device": "cpu", "seed": 0, "ranking_k": 0,
         "weighting": "uncertainty", "early_stopping": {"patience": 100}}
    t.update(train)
    return RunConfig.from_dict({"tasks": TASKS, "model": {"arch": "shared_bottom"}, "train": t})


def _cancelled_after(epoch: int, run_dir: Path, **train):
    """A run folder cancelled right after ``epoch`` (its checkpoint holds that epoch)."""
    from mtlrec.training.pipeline import run_training
    stop = threading.Event()

    def on_epoch(rec, history):
        if rec["epoch"] == epoch:
            stop.set()

    res = run_training(_cfg(**train), run_dir, dataset=with_label_stats(make_dataset(n_rows=1500)),
                       stop_event=stop, on_epoch=on_epoch)
    assert res.status == "cancelled"
    return res


def test_checkpoint_holds_only_tensors_and_plain_data(tmp_path):
    _cancelled_after(2, tmp_path / "run")
    ck = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 2 and ck["tasks"] == [t["name"] for t in TASKS]
    kinds = {type(v) for v in _leaves(ck)}
    assert kinds <= {torch.Tensor, str, int, float, bool, type(None)}, kinds
    assert set(ck["weighting"]) == {"log_vars", "_scale"}           # the learned uncertainty weights
    assert ck["optimizer"]["state"]                                   # Adam's moments
    es = ck["early_stopping"]
    assert es["best_epoch"] in (1, 2) and es["patience"] == 100 and ck["monitor"]["task"] == "click"
    assert len(ck["rng"]["python"]["state"]) == 625 and ck["rng"]["numpy"]["keys"].numel() == 624


def test_resume_refuses_finished_running_and_checkpointless_runs(tmp_path, capsys):
    from mtlrec.training.pipeline import run_training
    from mtlrec.training.resume import ResumeRefused, resume_problem, resume_run
    from mtlrec.runs.folder import RunWriter

    done = tmp_path / "done"
    run_training(_cfg(epochs=1), done, dataset=with_label_stats(make_dataset(n_rows=600)))
    before = (done / "status.json").read_text()
    with pytest.raises(ResumeRefused, match="finished"):
        resume_run(done)
    code, out, err = _main(capsys, "train", "--resume", str(done), "--json")
    assert code == 2 and "finished" in err and "Traceback" not in err
    assert json.loads(out)["status"] == "failed"
    assert (done / "status.json").read_text() == before           # refused: nothing written

    early = tmp_path / "early"
    stop = threading.Event()
    stop.set()                                    # cancelled before the first epoch ended
    run_training(_cfg(), early, dataset=with_label_stats(make_dataset(n_rows=600)), stop_event=stop)
    assert "checkpoint.pt is missing" in resume_problem(early)
    with pytest.raises(ResumeRefused, match="checkpoint.pt is missing"):
        resume_run(early)

    live = tmp_path / "live"
    _cancelled_after(1, live)
    assert resume_problem(live) is None
    RunWriter(live).write_status("running")      # owned by this (living) process
    with pytest.raises(ResumeRefused, match="still training"):
        resume_run(live)


def test_training_job_resumes_a_cancelled_run(tmp_path):
    from mtlrec.training.jobs import TrainingJob
    from mtlrec.training.pipeline import run_training
    from mtlrec.training.resume import ResumeRefused
    whole = run_training(_cfg(), tmp_path / "whole", dataset=with_label_stats(make_dataset(n_rows=1500)))
    _cancelled_after(2, tmp_path / "run")
    job = TrainingJob.resume(tmp_path / "run")
    assert job.join() and job.status == "queued"
    job.start()
    assert job.join(timeout=300)
    snap = job.snapshot()
    assert snap["status"] == "finished", snap["error"]
    assert [e["epoch"] for e in snap["history"]["epochs"]] == [1, 2, 3, 4]
    _close(snap["metrics"]["test"], whole.metrics["test"])
    assert snap["metrics"]["best_epoch"] == whole.metrics["best_epoch"]
    with pytest.raises(ResumeRefused, match="finished"):     # at once, before any thread starts
        TrainingJob.resume(tmp_path / "run")


def test_run_killed_after_its_last_epoch_resumes_straight_to_the_end(tmp_path):
    """Killed during the test evaluation / ranking / baselines: the checkpoint holds the last epoch,
    so resuming trains no epoch and does only the ending (here: config.json says 2 epochs and the
    checkpoint holds epoch 2, as after a kill in the ending)."""
    from mtlrec.training.resume import resume_run
    _cancelled_after(2, tmp_path / "run")
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    cfg["train"]["epochs"] = 2
    (tmp_path / "run" / "config.json").write_text(json.dumps(cfg))
    seen = []
    res = resume_run(tmp_path / "run", on_epoch=lambda rec, h: seen.append(rec["epoch"]))
    assert res.status == "finished" and seen == [] and len(res.history.epochs) == 2
    assert set(res.metrics["test"]) == {t["name"] for t in TASKS}
    assert res.metrics["best_epoch"] in (1, 2) and (tmp_path / "run" / "model.pt").is_file()
