"""Hardening of training and run folders (issue 10): runs that end without a model, damaged
run folders, status.json that must not lie, and run names that must stay inside runs/."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from _fixtures_cli import write_cli_case
from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig
from mtlrec.errors import DataError, TrainingError

REPO = Path(__file__).resolve().parents[1]


def cfg_for(tasks=TASKS, name=None, **train) -> RunConfig:
    t = {"epochs": 1, "batch_size": 256, "lr": 0.01, "log_every": 5, "device": "cpu", "seed": 0, "ranking_k": 0}
    t.update(train)
    return RunConfig.from_dict({"name": name, "tasks": tasks, "model": {"arch": "shared_bottom"}, "train": t})


def _main(capsys, *args):
    from mtlrec.__main__ import main
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write_csv_data(d: Path, n_rows: int = 600, seed: int = 0) -> Path:
    """interactions.csv with ids, a binary and a regression label and two features; a config beside it."""
    return write_cli_case(d, n_rows=n_rows, seed=seed)


# ---- 2: no usable validation signal -----------------------------------------------------
def test_one_class_validation_warns_follows_the_loss_and_keeps_a_model(tmp_path):
    from mtlrec.training.jobs import TrainingJob
    from mtlrec.runs.load import load_run
    ds = make_dataset(n_rows=1500)
    ds.rows["valid"]["label:click"] = np.zeros_like(ds.rows["valid"]["label:click"])   # no positives
    job = TrainingJob(cfg_for(epochs=2, early_stopping={"task": "click", "metric": "auc"}),
                      tmp_path / "run", dataset=ds).start()
    assert job.join(120)
    s = job.snapshot()
    assert s["status"] == "finished", s["error"]
    assert len(s["warnings"]) == 1
    w = s["warnings"][0]
    assert "click" in w and "auc" in w and "0 positives" in w and "validation loss" in w and "Fix" in w
    run_dir = tmp_path / "run"
    assert (run_dir / "model.pt").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["monitor"]["metric"] == "loss" and metrics["monitor"]["fallback_from"] == "auc"
    assert metrics["best_epoch"] in (1, 2) and metrics["warnings"] == s["warnings"]
    assert json.loads((run_dir / "status.json").read_text())["warnings"] == s["warnings"]
    run = load_run(run_dir)
    assert run.warning is None and run.state["usable"]


def test_no_usable_validation_value_fails_and_never_says_finished(tmp_path):
    from mtlrec.training.jobs import TrainingJob
    from mtlrec.runs.load import run_status
    ds = make_dataset(n_rows=1500)
    ds.rows["valid"]["label:rating"] = np.full_like(ds.rows["valid"]["label:rating"], np.nan)
    job = TrainingJob(cfg_for(epochs=2, early_stopping={"task": "rating", "metric": "rmse"}),
                      tmp_path / "run", dataset=ds).start()
    assert job.join(120)
    s = job.snapshot()
    assert s["status"] == "failed"
    assert "no best model" in s["error"] and "rating" in s["error"] and "Fix" in s["error"]
    assert not (tmp_path / "run" / "model.pt").exists()
    st = run_status(tmp_path / "run")
    assert st["status"] == "failed" and st["error"] == s["error"] and not st["usable"]


# ---- 4: damaged run folders ---------------------------------------------------------------
@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    from mtlrec.training.pipeline import run_training
    d = tmp_path_factory.mktemp("good") / "run"
    run_training(cfg_for(tasks=TASKS[:3]), d, dataset=make_dataset(n_rows=800))
    return d


def _truncate(p: Path, keep: float = 0.5):
    b = p.read_bytes()
    p.write_bytes(b[: int(len(b) * keep)])


def _wrong_shapes(d: Path):
    state = torch.load(d / "model.pt", weights_only=True)
    k = next(k for k, v in state.items() if v.dim() == 2)
    state[k] = torch.zeros(state[k].shape[0] + 3, state[k].shape[1])
    torch.save(state, d / "model.pt")


def _to_format_2(d: Path) -> Path:
    """The run's dataset/ rewritten as before issue 16 (format 2: one arrays.npz + the index)."""
    dd = d / "dataset"
    doc = json.loads((dd / "dataset.json").read_text())
    assert doc["format"] == "mtlrec-dataset/3"
    np.savez(dd / "arrays.npz", **{k: np.load(dd / "arrays" / f"{k}.npy") for k in doc["arrays"]})
    shutil.rmtree(dd / "arrays")
    doc["format"] = "mtlrec-dataset/2"
    (dd / "dataset.json").write_text(json.dumps(doc))
    return dd / "arrays.npz"


DAMAGE = {
    "truncated model.pt": ("model.pt", lambda d: _truncate(d / "model.pt")),
    "model.pt of another model": ("model.pt", _wrong_shapes),
    "model.pt missing": ("model.pt", lambda d: (d / "model.pt").unlink()),
    "model.json invalid": ("model.json", lambda d: (d / "model.json").write_text("{\"arch\": ")),
    "model.json not a model": ("model.json", lambda d: (d / "model.json").write_text('{"arch": "nope", "tasks": []}')),
    "config.json invalid": ("config.json", lambda d: (d / "config.json").write_text("[1, 2")),
    "dataset.json missing": ("dataset.json", lambda d: (d / "dataset" / "dataset.json").unlink()),
    "arrays/ missing": ("arrays", lambda d: shutil.rmtree(d / "dataset" / "arrays")),
    "arrays/a3.npy missing": ("arrays/a3.npy", lambda d: (d / "dataset" / "arrays" / "a3.npy").unlink()),
    "arrays/a3.npy truncated": ("arrays/a3.npy", lambda d: _truncate(d / "dataset" / "arrays" / "a3.npy", 0.7)),
    "arrays/a0.npy header cut": ("arrays/a0.npy", lambda d: _truncate(d / "dataset" / "arrays" / "a0.npy", 0.01)),
    # folders of format 2 (one arrays.npz), as runs trained before issue 16 have them
    "arrays.npz missing": ("arrays.npz", lambda d: _to_format_2(d).unlink()),
    "arrays.npz truncated": ("arrays.npz", lambda d: _truncate(_to_format_2(d), 0.7)),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_run_folder_names_the_file_and_the_fix(good_run, tmp_path, capsys, case):
    from mtlrec.runs.load import RunFolderError, load_run
    fname, damage = DAMAGE[case]
    d = tmp_path / "run"
    shutil.copytree(good_run, d)
    damage(d)
    with pytest.raises(RunFolderError) as ei:
        load_run(d)
    e = ei.value
    assert isinstance(e, DataError) and e.file.endswith(fname) and e.fix
    code, out, err = _main(capsys, "recommend", "--run", str(d), "--user", "u1", "--json")
    assert code == 2 and json.loads(out)["error"] in err          # --json: the message as {"error": ...} too
    assert fname in err and "Fix:" in err and "Traceback" not in err


def test_a_run_folder_of_format_2_still_opens(good_run, tmp_path, capsys):
    from mtlrec.runs.load import load_run
    d = tmp_path / "run"
    shutil.copytree(good_run, d)
    _to_format_2(d)
    run = load_run(d)
    assert run.dataset.n_rows("train") == load_run(good_run).dataset.n_rows("train")
    code, out, err = _main(capsys, "recommend", "--run", str(d), "--user", "u1", "--k", "3", "--json")
    assert code == 0, err
    assert len(json.loads(out)["items"]) == 3


def test_optional_files_damaged_or_missing_do_not_block_recommending(good_run, tmp_path, capsys):
    from mtlrec.runs.load import load_run
    d = tmp_path / "run"
    shutil.copytree(good_run, d)
    (d / "metrics.json").write_text("{not json")
    (d / "history.json").write_text("[]")
    (d / "status.json").unlink()
    run = load_run(d)
    assert run.metrics == {} and len(run.history) == 0
    assert any("metrics.json" in n for n in run.notes) and any("status.json" in n for n in run.notes)
    assert run.state["status"] == "unknown" and "status.json" in run.warning
    code, out, err = _main(capsys, "recommend", "--run", str(d), "--user", "u1", "--k", "3", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert len(res["items"]) == 3 and "unknown" in res["warning"]
    assert "warning" in err and "Traceback" not in err


# ---- 5: status that does not lie -------------------------------------------------------------
def _status(d: Path, **doc):
    d.mkdir(parents=True, exist_ok=True)
    (d / "status.json").write_text(json.dumps(doc))
    return d


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_run_status_tells_a_live_owner_from_a_gone_one(tmp_path):
    import socket

    from mtlrec.runs.load import run_status
    from mtlrec.runs.folder import owner_identity
    me = owner_identity()
    now = time.time()
    assert run_status(_status(tmp_path / "alive", status="running", heartbeat=now, **me))["status"] == "running"
    gone = run_status(_status(tmp_path / "dead", status="running", heartbeat=now, **{**me, "pid": _dead_pid()}))
    assert gone["status"] == "interrupted" and "gone" in gone["reason"]
    if me["process_start"] is not None:   # same pid, another start time: the pid was reused
        reused = run_status(_status(tmp_path / "reused", status="running", heartbeat=now,
                                    **{**me, "process_start": me["process_start"] + 1}))
        assert reused["status"] == "interrupted" and "another process" in reused["reason"]
    other = {**me, "hostname": socket.gethostname() + "-elsewhere"}
    assert run_status(_status(tmp_path / "o1", status="running", heartbeat=now - 30, **other))["status"] == "running"
    stale = run_status(_status(tmp_path / "o2", status="running", heartbeat=now - 3600, **other))
    assert stale["status"] == "interrupted" and "heartbeat" in stale["reason"]
    old = _status(tmp_path / "old", status="running")           # written before owner fields existed
    os.utime(old / "status.json", (now - 3600, now - 3600))
    assert run_status(old)["status"] == "interrupted"
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "status.json").write_text("{")
    assert run_status(tmp_path / "bad")["status"] == "unknown"
    for s in ("finished", "cancelled", "failed"):
        assert run_status(_status(tmp_path / s, status=s, **{**me, "pid": _dead_pid()}))["status"] == s


def test_heartbeat_refreshes_while_running_and_stops_at_the_end(tmp_path):
    from mtlrec.runs.folder import RunWriter
    w = RunWriter(tmp_path / "run")
    w.write_status("running", device="cpu")
    first = json.loads((tmp_path / "run" / "status.json").read_text())
    assert first["pid"] == os.getpid() and first["hostname"] and first["device"] == "cpu"
    w.start_heartbeat(interval=0.01)
    for _ in range(2000):
        if json.loads((tmp_path / "run" / "status.json").read_text())["heartbeat"] > first["heartbeat"]:
            break
        time.sleep(0.01)
    else:
        raise AssertionError("no heartbeat")
    w.write_status("finished")
    w.stop_heartbeat()
    w.beat()
    end = json.loads((tmp_path / "run" / "status.json").read_text())
    assert end["status"] == "finished" and end["device"] == "cpu" and end["started_at"] == first["started_at"]


def test_an_error_anywhere_in_the_pipeline_is_recorded(tmp_path, monkeypatch):
    from mtlrec.training import pipeline
    from mtlrec.training.pipeline import run_training

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline, "rank_test", boom)
    with pytest.raises(RuntimeError):
        run_training(cfg_for(), tmp_path / "a", dataset=make_dataset(n_rows=600))
    st = json.loads((tmp_path / "a" / "status.json").read_text())
    assert st["status"] == "failed" and st["error"] == "RuntimeError: disk on fire"
    assert "Traceback" in st["traceback"] and st["has_model"] is True

    def interrupt(*a, **k):
        raise KeyboardInterrupt()

    monkeypatch.setattr(pipeline, "rank_test", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg_for(), tmp_path / "b", dataset=make_dataset(n_rows=600))
    assert json.loads((tmp_path / "b" / "status.json").read_text())["status"] == "cancelled"


def test_cancelled_run_with_a_model_opens_like_a_finished_one(tmp_path):
    from mtlrec.training.jobs import TrainingJob
    from mtlrec.serve.recommend import recommend
    from mtlrec.runs.load import load_run
    job = TrainingJob(cfg_for(epochs=200, batch_size=64), tmp_path / "run", dataset=make_dataset(n_rows=1200))
    job.start()
    for _ in range(60000):
        if (tmp_path / "run" / "model.pt").exists() or job.done:
            break
        time.sleep(0.01)
    job.cancel()
    assert job.join(120)
    assert job.snapshot()["status"] == "cancelled"
    run = load_run(tmp_path / "run")
    assert run.state["status"] == "cancelled" and run.state["usable"] and run.warning is None
    assert len(recommend(run, "u1", k=3)) == 3


def test_nan_loss_in_the_cli_fails_with_a_json_object(tmp_path, capsys):
    from mtlrec.runs.load import run_status
    cfg_path = write_csv_data(tmp_path / "data")
    cfg = json.loads(cfg_path.read_text())
    cfg["train"]["lr"] = 1e30
    cfg_path.write_text(json.dumps(cfg))
    out_dir = tmp_path / "run"
    code, out, err = _main(capsys, "train", "--config", str(cfg_path), "--out", str(out_dir), "--json", "--quiet")
    assert code == 2
    res = json.loads(out)                                    # exactly one JSON object, also on failure
    assert res["status"] == "failed" and res["run_dir"] == str(out_dir)
    assert "NaN" in res["error"] or "infinite" in res["error"]
    assert "Traceback" not in err
    st = run_status(out_dir)
    assert st["status"] == "failed" and st["error"] == res["error"]
    code, out, err = _main(capsys, "train", "--config", str(tmp_path / "nope.json"), "--json")
    assert code == 2 and json.loads(out)["status"] == "failed" and "nope.json" in json.loads(out)["error"]


def test_killed_training_reads_interrupted_and_serves_with_a_warning(tmp_path, capsys):
    from mtlrec.runs.load import run_status
    cfg_path = write_csv_data(tmp_path / "data", n_rows=3000)
    cfg = json.loads(cfg_path.read_text())
    cfg["train"].update(epochs=100000, batch_size=32)
    cfg_path.write_text(json.dumps(cfg))
    out_dir = tmp_path / "run"
    env = {"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mtlrec", "train", "--config", str(cfg_path), "--out",
                             str(out_dir), "--quiet"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(30000):    # until the first epoch's model is saved (no timing asserted)
            if (out_dir / "model.pt").exists() or proc.poll() is not None:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "training ended before it could be killed"
        assert run_status(out_dir)["status"] == "running"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert json.loads((out_dir / "status.json").read_text())["status"] == "running"   # what it says ...
    st = run_status(out_dir)                                                          # ... and what it is
    assert st["status"] == "interrupted" and st["has_model"] and not st["usable"]
    assert str(proc.pid) in st["reason"]
    code, out, err = _main(capsys, "recommend", "--run", str(out_dir), "--user", "1", "--k", "3", "--json",
                           "--include-seen")
    assert code == 0, err
    assert "warning" in err and "interrupted" in err and len(err.strip().splitlines()) == 1
    res = json.loads(out)
    assert len(res["items"]) == 3 and "interrupted" in res["warning"]


# ---- 7: run names stay inside runs/ ---------------------------------------------------------
HOSTILE = ["../../x", "/etc/passwd", "..", ".", "", "   ", "a/b/c", "a\\b", "a\x00b", "~/x", ".hidden",
           "x" * 500, "naïve run", "<script>", None]


@pytest.mark.parametrize("name", HOSTILE)
def test_run_names_are_slugs_inside_the_runs_folder(tmp_path, name):
    from mtlrec.runs.folder import default_run_dir, safe_run_name
    root = tmp_path / "runs"
    p = default_run_dir("mmoe", root=root, name=name)
    assert p.resolve().parent == root.resolve()
    folder = p.name
    assert "/" not in folder and "\\" not in folder and "\x00" not in folder and not folder.startswith(".")
    assert len(folder) <= 100
    slug = safe_run_name(name)
    assert folder.endswith(slug or "mmoe")
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in slug)


def test_job_with_a_hostile_name_writes_inside_runs(tmp_path, monkeypatch):
    from mtlrec.training.jobs import TrainingJob
    from mtlrec.runs.folder import confine
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MTLREC_RUNS_DIR", raising=False)          # the default runs root: ./runs
    job = TrainingJob(cfg_for(name="../../escape"), dataset=make_dataset(n_rows=300))
    assert job.run_dir.resolve().parent == (tmp_path / "runs").resolve()
    assert job.run_dir.name.endswith("-escape")
    with pytest.raises(TrainingError, match="outside the runs folder"):
        confine(tmp_path / "runs" / ".." / "x", tmp_path / "runs")
    with pytest.raises(TrainingError, match="must be a string"):
        cfg_for(name=["x"]).validate()


def test_a_nearly_one_class_validation_split_is_warned_about(tmp_path):
    from mtlrec.training.pipeline import run_training
    from mtlrec.training.progress import Progress
    ds = make_dataset(n_rows=1500)
    y = np.zeros_like(ds.rows["valid"]["label:click"])
    y[:2] = 1                                              # 2 positives: AUC defined, but noisy
    ds.rows["valid"]["label:click"] = y
    progress = Progress()
    res = run_training(cfg_for(early_stopping={"task": "click", "metric": "auc"}), tmp_path / "run", dataset=ds,
                       progress=progress)
    assert res.status == "finished" and res.metrics["monitor"]["metric"] == "auc"
    assert len(progress.warnings) == 1 and "only 2 positive rows" in progress.warnings[0]
