"""`python -m mtlrec train` / `recommend` on a slice of the shipped sample data."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _cli(*args, cwd=REPO):
    """The real entry point in a fresh interpreter (stdout must be exactly one JSON object)."""
    env = {"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "mtlrec", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


class _Res:
    def __init__(self, code, out, err):
        self.returncode, self.stdout, self.stderr = code, out, err


def _main(capsys, *args):
    """Same command in this process (saves an interpreter start per call)."""
    from mtlrec.__main__ import main
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return _Res(code, out, err)


@pytest.fixture(scope="module")
def small_config(tmp_path_factory):
    """The shipped shared-bottom config, pointed at the first 4000 sample interactions."""
    d = tmp_path_factory.mktemp("cli")
    lines = (REPO / "sample_data" / "interactions.csv").read_text().splitlines()
    (d / "data").mkdir()
    (d / "data" / "interactions.csv").write_text("\n".join(lines[:4001]) + "\n")
    for name in ("users.csv", "items.csv"):
        (d / "data" / name).write_text((REPO / "sample_data" / name).read_text())
    cfg = json.loads((REPO / "sample_data" / "config_shared_bottom.json").read_text())
    cfg["data"]["paths"] = ["data/interactions.csv", "data/users.csv", "data/items.csv"]  # relative to the config
    cfg["train"].update(epochs=2, batch_size=256, lr=0.01, log_every=5)
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def test_train_json_then_recommend_json(small_config, tmp_path, capsys):
    out = tmp_path / "run"
    r = _cli("train", "--config", str(small_config / "config.json"), "--out", str(out), "--json",
             "--device", "cpu", "--threads", "1", "--baselines")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)                       # exactly one JSON object on stdout
    assert res["run_dir"] == str(out) and res["device"] == "cpu"
    assert set(res["test"]) == {"click", "like", "rating", "genres"}
    assert 0 <= res["test"]["click"]["auc"] <= 1 and res["test"]["rating"]["rmse"] > 0
    assert set(res["stl_gain"]) == set(res["test"])
    assert set(res["ranking"]) == {"click", "like"}  # test-split ranking metrics of the binary tasks
    assert all(0 <= v <= 1 for vals in res["ranking"].values() for v in vals.values())
    # the same users ranked by item popularity, beside the model's ranking
    assert {t: set(v) for t, v in res["ranking_baseline"]["popularity"].items()} == \
        {t: set(v) for t, v in res["ranking"].items()}
    # the sample's genres are the clicked movie's: item classification, said once
    assert [w for w in res["warnings"] if "item classification" in w][0].startswith("task 'genres'")
    assert res["best_epoch"] in (1, 2)
    assert "epoch 1/2" in r.stderr                   # progress went to stderr
    for name in ("config.json", "history.json", "metrics.json", "model.pt", "dataset/dataset.json"):
        assert (out / name).exists()

    r2 = _main(capsys, "recommend", "--run", str(out), "--user", "1", "--k", "5", "--json")
    assert r2.returncode == 0, r2.stderr
    rec = json.loads(r2.stdout)
    assert rec["user"] == "1" and len(rec["items"]) == 5
    assert set(rec["items"][0]["tasks"]) >= {"click", "like", "rating"}
    assert all(isinstance(it["support"], int) and it["support"] >= 0 for it in rec["items"])
    seen = {ln.split(",")[1] for ln in (small_config / "data" / "interactions.csv").read_text().splitlines()[1:]
            if ln.split(",")[0] == "1"}
    assert not seen & {it["item"] for it in rec["items"]}

    r3 = _main(capsys, "recommend", "--run", str(out), "--user", "no-such-user")
    assert r3.returncode == 2 and "no-such-user" in r3.stderr and "Traceback" not in r3.stderr


def test_bad_config_exits_2_with_a_message(small_config, tmp_path, capsys):
    cfg = json.loads((small_config / "config.json").read_text())
    cfg["model"]["arch"] = "transformer"
    p = small_config / "bad_arch.json"
    p.write_text(json.dumps(cfg))
    r = _main(capsys, "train", "--config", str(p), "--json")
    assert r.returncode == 2 and "mmoe" in r.stderr and "Traceback" not in r.stderr
    res = json.loads(r.stdout)                       # --json: one object on failure too
    assert res["status"] == "failed" and "mmoe" in res["error"] and res["run_dir"] is None
    cfg["model"]["arch"] = "mmoe"
    cfg["data"]["paths"] = ["missing.csv"]
    p.write_text(json.dumps(cfg))
    r = _main(capsys, "train", "--config", str(p))
    assert r.returncode == 2 and "missing.csv" in r.stderr and "Traceback" not in r.stderr
    p.write_text("{not json")
    r = _main(capsys, "train", "--config", str(p))
    assert r.returncode == 2 and "not valid JSON" in r.stderr


def test_ranking_users_and_no_ranking_flags(small_config, tmp_path, capsys):
    """``--ranking-users N`` ranks N test users and says N of M; ``--no-ranking`` skips the ranking and
    says so; a bad number is refused (exit 2) before anything trains."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = ("train", "--config", str(small_config / "config.json"), "--device", "cpu", "--epochs", "1")
        r = _main(capsys, *base, "--out", str(tmp_path / "few"), "--json", "--ranking-users", "3")
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)["ranking_info"]
        assert info["status"] == "done" and info["users"] == 3 < info["of_users"]
        assert json.loads((tmp_path / "few" / "config.json").read_text())["train"]["ranking_users"] == 3
        r = _main(capsys, *base, "--out", str(tmp_path / "none"), "--no-ranking")
        assert r.returncode == 0, r.stderr
        assert "Ranking skipped: the ranking over the whole catalogue was switched off" in r.stdout
        assert "test ranking click" not in r.stdout
        assert json.loads((tmp_path / "none" / "metrics.json").read_text())["ranking"] == {}
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(SystemExit) as e:
        _main(capsys, *base, "--ranking-users", "0")
    assert e.value.code == 2 and "whole number of users >= 1 or 'auto'" in capsys.readouterr().err
