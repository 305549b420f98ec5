"""Explaining a trained run: the library API (fused score included) and the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _fixtures_train import TASKS, make_dataset, tiny_run_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny shared-bottom run folder, trained for one epoch through the training API."""
    return tiny_run_folder(tmp_path_factory.mktemp("explain_run") / "run", make_dataset(n_rows=1500))


@pytest.fixture(scope="module")
def run(run_dir):
    from mtlrec.runs.load import load_run
    return load_run(run_dir)


def test_explain_recommendation_adds_up_per_task_and_for_the_fused_score(run):
    from mtlrec.explain.api import explain_recommendation
    from mtlrec.explain.core import state_snapshot
    from mtlrec.serve.recommend import fuse, score_items
    before = state_snapshot(run.model)
    res = explain_recommendation(run, "u3", "i7", background=50, weights={"click": 2, "like": 1, "rating": 1})
    assert res["space"] == "per task" and res["background"] == 50
    assert set(res["tasks"]) == {t["name"] for t in TASKS}
    for name, t in res["tasks"].items():
        assert abs(t["base_value"] + sum(t["contributions"].values()) - t["output"]) < 1e-3, name
        assert {"user id", "item id", "age", "occupation"} <= set(t["contributions"])
    # the task outputs are the model's logits for this pair
    u, i = run.dataset.user_index("u3"), run.dataset.item_index("i7")
    with torch.no_grad():
        out = run.model(run.device_data().candidates(u, [i]))
    assert abs(res["tasks"]["click"]["output"] - float(out["click"][0])) < 1e-5
    # a multilabel task: the logit of its most likely class for this pair, with that probability
    g = res["tasks"]["genres"]
    top = int(out["genres"][0].argmax())
    assert g["class_index"] == top and g["class"] == run.dataset.label("genres").classes[top]
    assert abs(g["output"] - float(out["genres"][0][top])) < 1e-5
    assert abs(g["prediction"] - float(torch.sigmoid(out["genres"][0][top]))) < 1e-5
    # the fused score is the one the recommendation list ranks by, and it decomposes exactly
    f = res["fused"]
    w = {"click": 2, "like": 1, "rating": 1}
    ref = fuse(run, score_items(run, u, [i]), w)[0]
    assert abs(f["score"] - ref) < 1e-5
    assert abs(f["base_value"] + sum(f["contributions"].values()) - f["score"]) < 1e-6
    assert abs(sum(f["by_task"].values()) - f["score"]) < 1e-6
    assert abs(f["weights"]["click"] - 0.5) < 1e-9
    # the sentence names the strongest reasons (with their values) and what each task relies on
    assert res["sentence"].startswith(("Recommended mainly because ", "Scores below an average",
                                       "Scores like an average"))
    assert "most on" in res["sentence"] and "click-" in res["sentence"] and "genres-task" in res["sentence"]
    after = run.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_unknown_user_or_item_is_a_clear_error(run):
    from mtlrec.errors import DataError
    from mtlrec.explain.api import explain_recommendation
    with pytest.raises(DataError, match="user 'nobody' is not in this run's data"):
        explain_recommendation(run, "nobody", "i1")
    with pytest.raises(DataError, match="item 'zzz'"):
        explain_recommendation(run, "u1", "zzz")
    with pytest.raises(DataError, match="at least 1"):
        explain_recommendation(run, "u1", "i1", background=0)


def test_global_summary_of_a_run(run):
    from mtlrec.explain.api import global_summary
    steps = []
    s = global_summary(run, n_rows=80, background=40, progress=lambda f, m: steps.append((f, m)))
    assert s["n_rows"] == 80 and s["importance_method"] == "deep"
    assert set(s["importance"]) == {t["name"] for t in TASKS}
    assert steps[-1][0] == 1.0
    assert "tower_reliance" in s and len(s["heatmap"]["groups"]) == 4


def test_cli_json(run_dir):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "mtlrec", "explain", "--run", str(run_dir), "--user", "u2",
                        "--item", "i5", "--json", "--background", "30"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["space"] == "per task" and doc["user"] == "u2" and doc["item"] == "i5"
    assert doc["background"] == 30 and doc["elapsed_ms"] > 0
    for name in ("click", "like", "rating", "genres"):
        t = doc["tasks"][name]
        assert set(t) >= {"base_value", "output", "contributions"}
        assert abs(t["base_value"] + sum(t["contributions"].values()) - t["output"]) < 1e-3


def test_cli_errors_are_messages_not_tracebacks(run_dir, capsys):
    from mtlrec.__main__ import main
    assert main(["explain", "--run", str(run_dir), "--user", "nobody", "--item", "i1"]) == 2
    err = capsys.readouterr().err
    assert "user 'nobody' is not in this run's data" in err and "Traceback" not in err
    assert main(["explain", "--run", str(run_dir) + "-missing", "--user", "u1", "--item", "i1"]) == 2
    assert "run folder not found" in capsys.readouterr().err


def test_cli_text_output(run_dir, capsys):
    from mtlrec.__main__ import main
    assert main(["explain", "--run", str(run_dir), "--user", "u1", "--item", "i2", "--background", "20"]) == 0
    out = capsys.readouterr().out
    assert "logit space" in out and "fused score" in out
    assert ("Recommended mainly because" in out) or ("Scores" in out)
    # each contribution is labelled with the pair's value
    assert "user id = u1" in out and "item id = i2" in out and "(probability " in out
