"""Data-parallel training (torchrun, gloo on CPU): `mtlrec.training.distributed`, ``train --nproc``.

The processes are real: ``python -m mtlrec train --nproc 2`` starts torchrun, which starts two
ranks that train over gloo. Tolerances: the two-process run makes the same optimiser steps on
the same rows as the one-process run (the global batch is cut into shares and the gradients are
averaged), so its metrics differ only by float rounding (measured: 1e-5 on the sample data);
the tests allow 0.005.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mtlrec.training.distributed import Dist

REPO = Path(__file__).resolve().parents[1]
TOL = 0.005


def _env():
    return {"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1",
            "HOME": os.environ.get("HOME", "/tmp"), "MTLREC_RUNS_DIR": os.environ.get("MTLREC_RUNS_DIR", "runs")}


def _sample_config(d: Path, epochs: int) -> Path:
    cfg = json.loads((REPO / "sample_data" / "config_mmoe.json").read_text())
    cfg["data"]["paths"] = [str(REPO / "sample_data" / p) for p in cfg["data"]["paths"]]
    cfg.setdefault("train", {}).update(epochs=epochs, device="cpu", ranking_users=100)
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(cfg))
    return d / "config.json"


# ---- the arithmetic of shares (no process group) -----------------------------------------------
@pytest.mark.parametrize("n,world", [(1024, 2), (1000, 3), (7, 2), (1, 2), (2, 4)])
def test_every_row_of_a_batch_goes_to_exactly_one_rank(n, world):
    idx = torch.randperm(5000)[:n]
    ranks = [Dist(rank=r, world=world, local_rank=r, backend="gloo", device=torch.device("cpu"))
             for r in range(world)]
    owned = [len(idx.tensor_split(world)[d.rank]) for d in ranks]
    shares, weights = zip(*(d.share(idx) for d in ranks))
    taken = torch.cat([s for s, k in zip(shares, owned) if k])
    assert sorted(taken.tolist()) == sorted(idx.tolist())          # disjoint, and nothing left out
    assert max(owned) - min(owned) <= 1
    # weighted shares average to the global batch mean: sum_r w_r * mean_r / world = mean
    assert all(w == 0 for w, k in zip(weights, owned) if k == 0)   # an empty share weighs nothing
    vals = torch.randn(n)
    mean = sum(w * float(vals[(idx.unsqueeze(1) == s).any(1)].mean()) if len(s) and w else 0.0
               for w, s in zip(weights, shares)) / world
    assert mean == pytest.approx(float(vals.mean()), abs=1e-5)


@pytest.mark.parametrize("n,world", [(10, 3), (2, 4), (0, 2), (1001, 2)])
def test_evaluation_blocks_tile_the_split(n, world):
    blocks = [Dist(r, world, r, "gloo", torch.device("cpu")).block(n) for r in range(world)]
    assert blocks[0][0] == 0 and blocks[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    assert [e - s for s, e in blocks] == Dist(0, world, 0, "gloo", torch.device("cpu")).block_sizes(n)


# ---- two processes vs one ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The sample data prepared once (as ``python -m mtlrec prepare`` leaves it) for the module."""
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import build_dataset
    d = tmp_path_factory.mktemp("prepared")
    build_dataset(RunConfig.load(_sample_config(d, epochs=1))).save(d / "dataset")
    return d / "dataset"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, prepared):
    """The sample data, MMoE, 2 epochs: one process (in this process) and 2 processes (--nproc 2),
    both on the same prepared dataset (``--dataset``)."""
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import open_prepared, run_training
    d = tmp_path_factory.mktemp("ddp")
    cfg_path = _sample_config(d, epochs=2)
    one = run_training(RunConfig.load(cfg_path), d / "one", dataset=open_prepared(prepared))
    r = subprocess.run([sys.executable, "-m", "mtlrec", "train", "--nproc", "2", "--config", str(cfg_path),
                        "--dataset", str(prepared), "--out", str(d / "two"), "--json"], cwd=REPO,
                       capture_output=True, text=True, timeout=400, env=_env())
    return one, r, d


def test_two_gloo_processes_match_one_process(two_runs):
    one, r, d = two_runs
    assert r.returncode == 0, r.stderr[-3000:]
    two = json.loads(r.stdout)                          # rank 0 alone prints: exactly one JSON object
    assert two["status"] == "finished" and two["device"] == "cpu"
    assert "Traceback" not in r.stderr
    assert "2 processes (gloo)" in r.stderr
    m1 = one.metrics["test"]
    for task, metric in (("click", "auc"), ("like", "auc"), ("rating", "rmse"), ("genres", "micro_auc")):
        assert two["test"][task][metric] == pytest.approx(m1[task][metric], abs=TOL), (task, metric)
    assert two["best_epoch"] == one.metrics["best_epoch"]
    metrics = json.loads((d / "two" / "metrics.json").read_text())
    assert metrics["distributed"] == {"world_size": 2, "backend": "gloo", "global_batch_size": 1024}
    # every rank trained its own half of every epoch's rows
    ranks = [json.loads((d / "two" / "ranks" / f"rank{i}.json").read_text()) for i in (0, 1)]
    n_train = one.dataset.n_rows("train")
    assert sum(x["rows"] for x in ranks) == 2 * n_train
    assert all(x["peak_rss_mb"] > 0 and x["world"] == 2 for x in ranks)


def test_the_two_process_run_folder_opens_like_any_other(two_runs):
    one, r, d = two_runs
    assert r.returncode == 0, r.stderr[-3000:]
    from mtlrec.runs.load import load_run, run_status
    a, b = d / "one", d / "two"
    # the same files as a one-process run (plus ranks/ and progress.json)
    extra = {p.name for p in b.iterdir()} - {p.name for p in a.iterdir()}
    assert extra <= {"ranks", "progress.json"}
    assert json.loads((a / "config.json").read_text()) == json.loads((b / "config.json").read_text())
    assert run_status(b)["status"] == "finished" and not (b / "checkpoint.pt").exists()
    run = load_run(b)
    assert run.dataset.n_rows("train") == one.dataset.n_rows("train")
    user = str(run.dataset.user_ids[0])
    rec = subprocess.run([sys.executable, "-m", "mtlrec", "recommend", "--run", str(b), "--user", user, "-k", "5",
                          "--json"],
                         cwd=REPO, capture_output=True, text=True, timeout=120, env=_env())
    assert rec.returncode == 0, rec.stderr
    items = json.loads(rec.stdout)
    assert len(items["items"]) == 5


# ---- loss weightings keep one state across ranks -------------------------------------------------
def test_weightings_stay_identical_across_ranks_and_match_one_process(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    import _ddp_weightings as w
    out = tmp_path / "w.json"
    env = {**_env(), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        str(Path(w.__file__)), str(out)], cwd=tmp_path, capture_output=True, text=True,
                       timeout=400, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(out.read_text())
    assert set(got) == set(w.WEIGHTINGS)
    for name in w.WEIGHTINGS:
        g = got[name]
        assert g["rank_param_spread"] < 1e-6, name          # model and weighting parameters identical
        _, alone = w.train_one(name, None)
        for task in ("click", "like"):
            assert g["valid"][task]["auc"] == pytest.approx(alone.valid[task]["auc"], abs=TOL), (name, task)
        assert g["valid"]["rating"]["rmse"] == pytest.approx(alone.valid["rating"]["rmse"], abs=TOL), name


# ---- cancel --------------------------------------------------------------------------------------
def _processes_naming(text: str) -> list[int]:
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != os.getpid():
            try:
                if text in (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(p.name))
            except OSError:
                pass
    return found


def test_cancel_stops_both_ranks_and_leaves_a_consistent_folder(tmp_path):
    """(Also the path where rank 0 prepares the config's data and the other rank memory-maps it.)"""
    cfg = _sample_config(tmp_path / "c", epochs=50)
    run = tmp_path / "cancelled-run"
    p = subprocess.Popen([sys.executable, "-m", "mtlrec", "train", "--nproc", "2", "--config", str(cfg),
                          "--out", str(run)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=_env())
    try:
        deadline = time.time() + 240
        while time.time() < deadline and p.poll() is None:
            h = run / "history.json"
            if h.exists() and json.loads(h.read_text() or "{}").get("epochs"):
                break
            time.sleep(0.3)
        assert p.poll() is None, p.stderr.read()[-3000:]
        assert len(_processes_naming(str(run))) >= 3            # launcher, torchrun, 2 ranks
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "cancelled" and status["has_model"] is True
    # both ranks left the training loop at the same batch and wrote their figures
    assert {f.name for f in (run / "ranks").iterdir()} == {"rank0.json", "rank1.json"}
    assert _processes_naming(str(run)) == []
    from mtlrec.dataset import PreparedDataset
    assert PreparedDataset.load(run / "dataset").n_rows("train") > 0        # what rank 1 trained on
    from mtlrec.runs.load import load_run
    from mtlrec.training.resume import resume_problem
    assert load_run(run).model is not None
    assert resume_problem(run) is None                           # its checkpoint can carry it on


# ---- bad input ---------------------------------------------------------------------------------
def test_launcher_refuses_unusable_input_before_starting_any_process(tmp_path, capsys):
    from mtlrec.__main__ import main
    cfg = _sample_config(tmp_path, epochs=1)
    code = main(["train", "--nproc", "2", "--config", str(cfg), "--dataset", str(tmp_path / "nothing"), "--json"])
    out, err = capsys.readouterr()
    assert code == 2
    assert json.loads(out)["status"] == "failed"
    assert "not a prepared dataset folder" in err and "Fix:" in err
    code = main(["train", "--nproc", "0", "--config", str(cfg)])
    assert code == 2 and "--nproc must be at least 1" in capsys.readouterr().err


def test_a_data_error_on_rank_0_ends_every_rank_with_its_message(tmp_path):
    cfg = json.loads(_sample_config(tmp_path, epochs=1).read_text())
    cfg["data"]["paths"][0] = str(tmp_path / "missing.csv")
    (tmp_path / "bad.json").write_text(json.dumps(cfg))
    r = subprocess.run([sys.executable, "-m", "mtlrec", "train", "--nproc", "2", "--config", str(tmp_path / "bad.json"),
                        "--out", str(tmp_path / "run"), "--json"], cwd=REPO, capture_output=True, text=True,
                       timeout=300, env=_env())
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert "missing.csv: file or folder not found" in json.loads(r.stdout)["error"]
    assert "[rank 1]" in r.stderr                                  # rank 1 stopped too, and said why
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["status"] == "failed" and "missing.csv" in status["error"]


def test_the_runs_list_names_the_processes(two_runs):
    one, r, d = two_runs
    assert r.returncode == 0, r.stderr[-3000:]
    from mtlrec.runs.library import run_row
    assert run_row(d / "two")["device"] == "cpu × 2 processes (gloo)"
    assert run_row(d / "one")["device"] == "cpu"
