"""Regression labels too large to train on (issue 21, item 20): 1e30 ratings passed validation,
then training failed with "target_std must be a finite number > 0" and a numpy overflow warning
on stderr. Validation now says what is wrong with the data, where, and how to fix it."""
from __future__ import annotations

import json

import pytest

from _fixtures_cli import write_cli_case
from mtlrec.errors import DataError


def _with_huge_ratings(d, value: str = "1e30", every: int = 50):
    cfg = write_cli_case(d, n_rows=600)
    lines = (d / "interactions.csv").read_text().splitlines()
    for k in range(1, len(lines), every):
        f = lines[k].split(",")
        f[3] = value
        lines[k] = ",".join(f)
    (d / "interactions.csv").write_text("\n".join(lines) + "\n")
    return cfg


def test_huge_ratings_are_a_data_error_naming_the_rows(tmp_path):
    from mtlrec.data import load_data, suggest_spec, validate
    _with_huge_ratings(tmp_path)
    raw = load_data([tmp_path / "interactions.csv"])
    spec = suggest_spec(raw)
    spec.labels = {"click": "binary", "rating": "regression"}
    with pytest.raises(DataError) as ei:
        validate(raw, spec)
    e = ei.value
    assert e.file == "interactions.csv" and e.column == "rating" and e.rows[:3] == [1, 51, 101]
    assert "too large to train on" in e.what and "1e+30" in e.what and "rescale" in e.fix


def test_train_stops_before_training_with_the_data_message_and_no_overflow(tmp_path, capfd):
    from mtlrec.__main__ import main
    cfg = _with_huge_ratings(tmp_path / "data")
    code = main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--json"])
    out, err = capfd.readouterr()
    assert code == 2
    res = json.loads(out)
    assert res["status"] == "failed" and "too large to train on" in res["error"] and "column 'rating'" in res["error"]
    assert "target_std" not in err and "overflow" not in err and "RuntimeWarning" not in err
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["status"] == "failed" and "too large to train on" in status["error"]


def test_large_but_trainable_ratings_still_train_without_warnings(tmp_path, capfd):
    from mtlrec.__main__ import main
    cfg = _with_huge_ratings(tmp_path / "data", value="1e12", every=3)     # big, and below the limit
    code = main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--json"])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert "overflow" not in err and "RuntimeWarning" not in err
