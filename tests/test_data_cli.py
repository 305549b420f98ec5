"""`python -m mtlrec data check` as a user runs it (real subprocesses, kept few)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mtlrec.__main__ import main as cli_main

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtlrec", "data", "check", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_ml_latest_small_json(shared_datasets):
    p = run_cli(str(shared_datasets / "ml-latest-small"), "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)  # exactly one JSON object on stdout
    assert (d["rows"], d["users"], d["items"]) == (100836, 610, 9724)
    assert d["roles"]["rating"] == "label:regression" and d["roles"]["genres"] == "multi-valued"
    assert d["roles"]["userId"] == "user_id" and d["roles"]["movieId"] == "item_id"
    assert 0.98 < d["sparsity"] < 0.99 and isinstance(d["warnings"], list)
    assert abs(d["labels"]["rating"]["mean"] - 3.5016) < 1e-3


def test_census_json(shared_datasets):
    p = run_cli(str(shared_datasets / "census-income-kdd"), "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["rows"] == 99762 and d["users"] is None and d["items"] is None
    assert d["labels"]["income_50k"]["positives"] == 6186
    assert d["labels"]["never_married"]["positives"] == 43143
    assert d["roles"]["income_50k"] == "label:binary" and "marital_stat" not in d["roles"]


def test_bad_file_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "ratings.csv"
    bad.write_text("userId,movieId,rating\n" + "".join(f"{u},{u % 7},{u % 5}\n" for u in range(30))
                   + "3,4,four stars\n")
    p = run_cli(str(bad))
    assert p.returncode == 2
    assert "Traceback" not in p.stdout + p.stderr
    assert "ratings.csv" in p.stderr and "column 'rating'" in p.stderr and "rows 31" in p.stderr
    p = run_cli(str(tmp_path / "nowhere.csv"), "--json")
    assert p.returncode == 2 and json.loads(p.stdout)["error"].startswith(str(tmp_path / "nowhere.csv"))


def test_human_readable_summary(tmp_path, capsys):
    rows = "".join(f"{u % 9},{u % 13},{u % 2},{u % 5 + 1}\n" for u in range(60))
    (tmp_path / "interactions.csv").write_text("user_id,item_id,click,rating\n" + rows)
    assert cli_main(["data", "check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Rows: 60" in out and "Users: 9" in out and "Items: 13" in out
    assert "click (binary): positive rate 0.500" in out
    assert "rating" in out and "label:regression" in out
