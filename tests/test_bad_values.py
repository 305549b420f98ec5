"""Bad values that would reach the model: one test per class, in the library (`mtlrec.serve.whatif`) and
through the command line (exit status 2, a message with what / where / fix, strict JSON).

* a number far outside the training range (``age = 1e308``), NaN, an infinity: refused with the
  training range -- never NaN scores or ranks made of NaNs;
* a number outside the training range but near it (``age = -5``): scored, with a warning;
* a yes/no value for a number (``true``): refused;
* ``--features`` JSON that is nested, holds a number of hundreds of digits, a NaN token, or is not an
  object: refused with a clear message (never a RecursionError / ValueError traceback);
* ``train --nproc N`` beyond what this machine can run: refused before any process starts.
"""
from __future__ import annotations

import json
import math
import os
import re

import numpy as np
import pytest

from _fixtures_train import tiny_run_folder
from _fixtures_whatif import AGE_MEAN, AGE_STD, make_whatif_dataset


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    ds = make_whatif_dataset(n_rows=600)
    z = np.clip(np.asarray(ds.user_table["age"]), -1.2, 4.0).astype(np.float32)   # ages 18 to 70 years
    z[:2] = -1.2, 4.0
    ds.user_table["age"] = z
    ds.user_info["age"] = np.round(z.astype(np.float64) * AGE_STD + AGE_MEAN, 3)
    return tiny_run_folder(tmp_path_factory.mktemp("bad_values") / "run", ds)


@pytest.fixture(scope="module")
def run(run_dir):
    from mtlrec.runs.load import load_run
    return load_run(run_dir)


def _age_range(run) -> tuple[float, float]:
    ages = run.dataset.user_info["age"].astype(float)
    return float(ages.min()), float(ages.max())


def _range_in(message: str, after: str) -> tuple[float, float]:
    """The (lowest, highest) a message names as ``<after> (<lo> to <hi>)``."""
    m = re.search(re.escape(after) + r" \((\S+) to (\S+)\)", message)
    assert m, message
    return float(m.group(1)), float(m.group(2))


def _strict(text: str) -> dict:
    """One JSON document without NaN / Infinity tokens (json.loads would take them)."""
    def refuse(token):
        raise AssertionError(f"invalid JSON token {token} in {text[:300]}")
    return json.loads(text, parse_constant=refuse)


def _cli(capsys, *argv) -> tuple[int, str, str]:
    from mtlrec.__main__ import main
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- the library ---------------------------------------------------------------------------------
def test_a_number_far_outside_the_training_range_is_refused_with_the_range(run):
    from mtlrec.errors import DataError
    from mtlrec.serve.whatif import whatif_recommend, whatif_scores
    lo, hi = _age_range(run)
    for value in (1e308, -1e308, 10 ** 400, float("nan"), float("inf"), "nan", "1e999"):
        with pytest.raises(DataError) as e:
            whatif_recommend(run, "u1", {"age": value}, k=5)
        msg = str(e.value)
        assert e.value.column == "age" and "Fix:" in msg, msg
        assert "Traceback" not in msg and len(msg) < 600, msg
    with pytest.raises(DataError) as e:
        whatif_scores(run, None, {"age": 1e308})
    msg = str(e.value)
    assert "far outside the values the model was trained on" in msg
    assert _range_in(msg, "trained on") == pytest.approx((lo, hi), abs=2e-3), msg   # the training range, in years
    # a value near the range is still scored: every score finite, ranks a permutation
    s = whatif_scores(run, None, {"age": hi + 5})
    assert np.isfinite(s["score"]).all()
    assert sorted(s["rank"].tolist()) == list(range(1, len(run.dataset.item_ids) + 1))


def test_a_number_outside_the_training_range_is_scored_with_a_warning(run):
    from mtlrec.serve.whatif import explain_whatif, whatif_recommend, whatif_scores
    lo, hi = _age_range(run)
    res = whatif_recommend(run, "u1", {"age": -5}, k=5)
    assert len(res["items"]) == 5 and all(math.isfinite(it["score"]) for it in res["items"])
    assert len(res["warnings"]) == 1, res["warnings"]
    w = res["warnings"][0]
    assert w.startswith("age = -5 is outside the range seen in training"), w
    assert _range_in(w, "seen in training") == pytest.approx((lo, hi), abs=2e-3), w
    assert "Fix:" in w
    assert explain_whatif(run, "u1", "i3", {"age": -5}, background=10)["warnings"] == [w]
    # inside the range (its very ends included): no warning
    assert whatif_scores(run, "u1", {"age": hi})["warnings"] == []
    assert whatif_scores(run, "u1", {"age": lo, "occupation": "artist"})["warnings"] == []


def test_a_yes_no_value_is_refused_for_a_number(run):
    from mtlrec.errors import DataError
    from mtlrec.serve.whatif import whatif_scores
    for value in (True, False, np.bool_(True)):
        with pytest.raises(DataError) as e:
            whatif_scores(run, None, {"age": value})
        assert "age is a number, not a yes/no value" in str(e.value) and "Fix:" in str(e.value)


# ---- the command line ------------------------------------------------------------------------------
def test_cli_whatif_bad_numbers_exit_2_with_strict_json(run_dir, capsys):
    base = ["recommend", "--run", str(run_dir), "-k", "3", "--json", "--features"]
    for features, said in (('{"age": 1e308}', "far outside the values the model was trained on"),
                           ('{"age": 1e999}', "age must be a finite number"),
                           ('{"age": NaN}', "holds NaN, which is not a number"),
                           ('{"age": -Infinity}', "holds -Infinity, which is not a number"),
                           ('{"age": true}', "age is a number, not a yes/no value"),
                           ('{"age": ' + "9" * 400 + "}", "a number of 400 digits"),
                           ('{"age": ' + "9" * 5000 + "}", "a number of 5000 digits"),
                           ('{"age": ' + "[" * 100_000 + "]" * 100_000 + "}", "characters long (at most"),
                           ("[" * 5000 + "]" * 5000, "nested too deeply"),
                           ('{"age": [[[24]]]}', "'age' in --features is a list"),
                           ('[24]', "must be a JSON object of feature: value, not a list"),
                           ('"age"', "must be a JSON object of feature: value, not a text")):
        code, out, err = _cli(capsys, *base, features)
        assert code == 2, (features[:40], err)
        assert said in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (features[:40], err)
        assert said in _strict(out)["error"]


def test_cli_whatif_outside_the_range_warns_and_prints_strict_json(run_dir, capsys):
    code, out, err = _cli(capsys, "recommend", "--run", str(run_dir), "-k", "3", "--json", "--features",
                          '{"age": -5}')
    assert code == 0, err
    doc = _strict(out)
    assert len(doc["items"]) == 3 and all(isinstance(it["score"], float) for it in doc["items"])
    assert doc["warnings"] and doc["warnings"][0].startswith("age = -5 is outside the range seen in training")
    assert "warning: age = -5 is outside the range seen in training" in err


def test_cli_train_refuses_more_processes_than_the_machine_can_run(tmp_path, capsys, monkeypatch):
    from mtlrec.training.launch import process_limit
    limit, what = process_limit("cpu")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert limit == cores and what == f"{cores} CPU core{'s' if cores != 1 else ''}"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"data": {"paths": ["nothing.csv"]}, "tasks": [], "train": {"device": "cpu"}}))
    n = cores + 62
    code, out, err = _cli(capsys, "train", "--nproc", str(n), "--config", str(cfg), "--json",
                          "--out", str(tmp_path / "run"))
    assert code == 2, err
    assert f"--nproc {n} asks for {n} training processes, but this machine can run {cores}" in err, err
    assert "Fix:" in err and "Traceback" not in err
    assert _strict(out)["status"] == "failed"
    assert not (tmp_path / "run").exists()            # refused before any folder or process
    # on CUDA the limit is the number of GPUs
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert process_limit("cuda") == (1, "1 GPU")
