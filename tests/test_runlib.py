"""The run library (issue 11): listing that survives damaged folders, rename/tag/delete confined to
the runs root, comparison (config diff, best by direction, Δm) and the `runs` CLI."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig
from mtlrec.errors import DataError


def _cfg(name, **model):
    t = {"epochs": 1, "batch_size": 256, "lr": 0.01, "log_every": 5, "device": "cpu", "seed": 0, "ranking_k": 0}
    return RunConfig.from_dict({"name": name, "tasks": TASKS[:3], "model": {"arch": "shared_bottom", **model},
                                "train": t})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny finished run (1 epoch), copied by the tests that damage it."""
    from mtlrec.training.pipeline import run_training
    d = tmp_path_factory.mktemp("trained") / "run-a"
    run_training(_cfg("alpha"), d, dataset=make_dataset(n_rows=600))
    return d


def _main(capsys, *args):
    from mtlrec.__main__ import main
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# ---- listing -----------------------------------------------------------------------------------
DAMAGE = {
    "metrics.json missing": (lambda d: (d / "metrics.json").unlink(), "metrics.json is missing"),
    "metrics.json invalid": (lambda d: (d / "metrics.json").write_text("{oops"), "metrics.json is damaged"),
    "model.pt missing": (lambda d: (d / "model.pt").unlink(), "model.pt is missing"),
    "model.pt truncated": (lambda d: (d / "model.pt").write_bytes((d / "model.pt").read_bytes()[:300]),
                           "model.pt is damaged"),
}


def test_listing_reports_damaged_folders_and_skips_non_runs(trained, tmp_path, capsys):
    from mtlrec.runs.library import list_run_rows
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(trained, root / "good")
    for i, (case, (damage, _)) in enumerate(DAMAGE.items()):
        d = root / f"bad{i}"
        shutil.copytree(trained, d)
        damage(d)
    (root / "notes").mkdir()                            # not a run folder: skipped
    (root / "notes" / "readme.txt").write_text("hello")
    (root / ".hidden").mkdir()
    (root / "stray.txt").write_text("x")
    rows = {r["run"]: r for r in list_run_rows(root)}
    assert set(rows) == {"good"} | {f"bad{i}" for i in range(len(DAMAGE))}
    good = rows["good"]
    assert good["problems"] == [] and good["status"] == "finished" and good["usable"]
    assert good["name"] == "alpha" and good["arch"] == "shared_bottom" and good["tasks"] == ["click", "like", "rating"]
    assert good["metrics"]["rating"]["metric"] == "rmse" and good["metrics"]["rating"]["higher_is_better"] is False
    assert isinstance(good["metrics"]["click"]["value"], float) and good["device"] == "cpu"
    assert good["hparams"]["lr"] == 0.01 and good["weighting"] == "static"
    for i, (case, (_, expected)) in enumerate(DAMAGE.items()):
        r = rows[f"bad{i}"]
        assert any(expected in p for p in r["problems"]), (case, r["problems"])
        if case.startswith("model.pt"):
            assert not r["usable"]
    # the CLI shows the same, with the problems, and exits 0
    code, out, err = _main(capsys, "runs", "list", "--root", root, "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert {r["run"] for r in doc["runs"]} == set(rows)
    code, out, err = _main(capsys, "runs", "list", "--root", root)
    assert code == 0 and "problem: metrics.json is damaged" in out and "Traceback" not in out + err


def test_listing_sorts_newest_first_and_a_missing_root_is_empty(trained, tmp_path):
    from mtlrec.runs.library import list_run_rows
    root = tmp_path / "runs"
    for name, started in (("old", 1000.0), ("new", 3000.0), ("mid", 2000.0)):
        d = root / name
        shutil.copytree(trained, d)
        st = json.loads((d / "status.json").read_text())
        st["started_at"] = started
        (d / "status.json").write_text(json.dumps(st))
    assert [r["run"] for r in list_run_rows(root)] == ["new", "mid", "old"]
    assert list_run_rows(tmp_path / "nowhere") == []


# ---- manage ------------------------------------------------------------------------------------
def test_rename_and_tags_live_in_meta_json_and_are_cleaned(trained, tmp_path):
    from mtlrec.runs.library import list_run_rows, set_meta
    root = tmp_path / "runs"
    shutil.copytree(trained, root / "r1")
    meta = set_meta("r1", root, name="  My <b>best</b>\nrun\u202e " + "x" * 200, tags=["ab", "ab", "=cmd", "\x00z"])
    assert "\n" not in meta["name"] and "\u202e" not in meta["name"] and len(meta["name"]) <= 80
    assert meta["name"].startswith("My <b>best</b> run")           # text stays text; displays escape it
    assert meta["tags"] == ["ab", "=cmd", "z"]
    assert sorted(p.name for p in root.iterdir()) == ["r1"]       # the folder did not move
    row = list_run_rows(root)[0]
    assert row["name"] == meta["name"] and row["tags"] == meta["tags"]


@pytest.mark.parametrize("hostile", ["../../x", "..", "/etc", "r1/../../x", "", "."])
def test_manage_refuses_anything_outside_the_root(trained, tmp_path, hostile, capsys):
    from mtlrec.runs.library import delete_run, set_meta
    root = tmp_path / "a" / "runs"
    shutil.copytree(trained, root / "r1")
    victim = tmp_path / "x"                                   # what ../../x would reach
    shutil.copytree(trained, victim)
    with pytest.raises(DataError) as ei:
        set_meta(hostile, root, name="pwned")
    assert "not a run folder inside the runs folder" in str(ei.value) and ei.value.fix
    with pytest.raises(DataError):
        delete_run(hostile, root)
    assert victim.is_dir() and not (victim / "meta.json").exists() and (root / "r1").is_dir()
    code, out, err = _main(capsys, "runs", "delete", hostile, "--yes", "--root", root)
    assert code == 2 and "Fix:" in err and "Traceback" not in err and victim.is_dir()


def test_delete_needs_a_run_folder_and_not_a_symlink_out(trained, tmp_path, capsys):
    from mtlrec.runs.library import delete_run, list_run_rows
    root = tmp_path / "runs"
    shutil.copytree(trained, root / "r1")
    (root / "plain").mkdir()
    (root / "plain" / "keep.txt").write_text("mine")
    outside = tmp_path / "outside"
    shutil.copytree(trained, outside)
    (root / "link").symlink_to(outside, target_is_directory=True)
    for name in ("plain", "link"):
        with pytest.raises(DataError):
            delete_run(name, root)
    assert (root / "plain" / "keep.txt").exists() and (outside / "model.pt").exists()
    code, out, err = _main(capsys, "runs", "delete", "r1", "--root", root)       # no --yes: nothing happens
    assert code == 2 and (root / "r1").is_dir()
    code, out, err = _main(capsys, "runs", "delete", "r1", "--yes", "--root", root)
    assert code == 0, err
    assert not (root / "r1").exists() and [r["run"] for r in list_run_rows(root)] == []
    assert sorted(p.name for p in root.iterdir()) == ["link", "plain"]        # no half-deleted leftovers


def test_delete_refuses_a_run_that_is_still_training(trained, tmp_path):
    import os
    import socket
    from mtlrec.runs.library import delete_run
    from mtlrec.runs.folder import owner_identity
    root = tmp_path / "runs"
    shutil.copytree(trained, root / "live")
    st = {"status": "running", "error": None, **owner_identity(), "heartbeat": 0.0}
    assert st["pid"] == os.getpid() and st["hostname"] == socket.gethostname()
    (root / "live" / "status.json").write_text(json.dumps(st))
    with pytest.raises(DataError, match="still training"):
        delete_run("live", root)
    assert (root / "live" / "model.pt").exists()


# ---- compare -----------------------------------------------------------------------------------
def _fake_run(d: Path, *, lr, arch="mmoe", auc, rmse, tasks=None, name=None):
    d.mkdir(parents=True)
    tasks = tasks or [{"name": "click", "type": "binary", "label": "click", "metric": "auc"},
                      {"name": "rating", "type": "regression", "label": "rating", "metric": "rmse"}]
    (d / "config.json").write_text(json.dumps({"name": name, "tasks": tasks, "model": {"arch": arch},
                                               "train": {"lr": lr, "epochs": 5, "batch_size": 512}}))
    (d / "status.json").write_text(json.dumps({"status": "finished", "error": None}))
    (d / "metrics.json").write_text(json.dumps({"test": {"click": {"auc": auc, "logloss": 0.5},
                                                         "rating": {"rmse": rmse, "mae": 0.7}}}))
    (d / "history.json").write_text(json.dumps({"epochs": [
        {"epoch": 1, "valid": {"click": {"auc": auc - 0.02}, "rating": {"rmse": rmse + 0.1}}},
        {"epoch": 2, "valid": {"click": {"auc": auc}, "rating": {"rmse": rmse}}}]}))
    return d


def test_compare_diff_best_by_direction_and_delta_m_by_hand(tmp_path, capsys):
    from mtlrec.figures.charts import compare_figs
    from mtlrec.runs.compare import compare_runs
    a = _fake_run(tmp_path / "A", lr=0.001, auc=0.80, rmse=1.00)
    b = _fake_run(tmp_path / "B", lr=0.01, auc=0.84, rmse=1.10)
    c = compare_runs([a, b], reference=a)
    assert [d["key"] for d in c["config_diff"]] == ["train.lr"]          # only what differs
    assert c["config_diff"][0]["values"] == {"A": 0.001, "B": 0.01}
    m = {r["task"]: r for r in c["metrics"]}
    assert m["click"]["best"] == ["B"] and m["click"]["higher_is_better"] is True     # higher AUC wins
    assert m["rating"]["best"] == ["A"] and m["rating"]["higher_is_better"] is False  # lower RMSE wins
    # by hand: click (0.84 - 0.80) / 0.80 = +5 %, rating -(1.10 - 1.00) / 1.00 = -10 %  ->  mean -2.5 %
    assert c["delta_m"]["A"] == pytest.approx(0.0)
    assert c["delta_m"]["B"] == pytest.approx(-2.5)
    c2 = compare_runs([a, b], reference="B")
    # click (0.80 - 0.84) / 0.84, rating -(1.00 - 1.10) / 1.10
    assert c2["delta_m"]["A"] == pytest.approx(100 * ((0.80 - 0.84) / 0.84 + 0.10 / 1.10) / 2)
    assert c["curves"]["rating"]["runs"]["B"]["values"] == pytest.approx([1.2, 1.1])
    figs = compare_figs(c)
    assert set(figs) == {"click", "rating"} and len(figs["click"].data) == 2
    code, out, err = _main(capsys, "runs", "compare", a, b, "--reference", a, "--json")
    assert code == 0 and json.loads(out)["delta_m"]["B"] == pytest.approx(-2.5)
    code, out, err = _main(capsys, "runs", "compare", a, b)
    assert code == 0 and "train.lr" in out and "B=0.8400*" in out and "A=1.0000*" in out


def test_compare_undefined_delta_m_and_bad_input(tmp_path, capsys):
    from mtlrec.runs.compare import compare_runs
    a = _fake_run(tmp_path / "A", lr=0.001, auc=0.80, rmse=1.00)
    b = _fake_run(tmp_path / "B", lr=0.001, arch="ple", auc=0.82, rmse=0.9,
                  tasks=[{"name": "click", "type": "binary", "label": "click", "metric": "auc"}])
    c = compare_runs([a, b])
    keys = {d["key"] for d in c["config_diff"]}
    assert keys == {"model.arch", "tasks.rating.type", "tasks.rating.label", "tasks.rating.metric"}
    assert {r["task"]: r["values"]["B"] for r in c["metrics"]}["rating"] is None
    assert c["delta_m"]["B"] is None and "not defined for B" in c["delta_m_note"]   # B lacks the rating task
    with pytest.raises(DataError):
        compare_runs([a])
    code, out, err = _main(capsys, "runs", "compare", a, tmp_path / "nope")
    assert code == 2 and "Fix:" in err and "Traceback" not in err
