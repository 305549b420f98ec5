"""``python -m mtlrec prepare`` and preparation of the shipped / real data sets."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from mtlrec.__main__ import main as cli_main
from mtlrec.dataset import PreparedDataset


def test_prepare_cli_on_the_sample_data(tmp_path, sample_data_dir, capsys):
    cfg = tmp_path / "prep.json"
    cfg.write_text(json.dumps({"split": "cold_item", "cold_item_frac": 0.1,
                               "derived_labels": [{"name": "loved", "source": "rating", "op": ">=",
                                                   "threshold": 5}]}))
    out = tmp_path / "ds"
    assert cli_main(["prepare", str(sample_data_dir), "--out", str(out), "--config", str(cfg), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["report"]
    assert rep["users"] == 1000 and rep["items"] == 800 and rep["split"] == "cold_item"
    ds = PreparedDataset.load(out)
    assert sum(ds.n_rows(s) for s in ds.splits) == 60_000
    assert {"click", "like", "rating", "watch_fraction", "loved"} <= {lab.name for lab in ds.labels}
    assert len(ds.cold_items) == 80
    assert not set(ds.cold_items.tolist()) & set(ds.rows["train"]["item_index"].tolist())
    assert ds.item_info.loc[0, "title"] == "The Harbor and the Letters"
    assert {f.name for f in ds.fields} >= {"user_id", "item_id", "gender", "occupation", "age", "year"}


def test_prepare_cli_bad_options_exit_2_without_traceback(tmp_path, sample_data_dir):
    # a real process: no traceback reaches the user
    cfg = tmp_path / "prep.json"
    cfg.write_text(json.dumps({"split": "sideways"}))
    proc = subprocess.run([sys.executable, "-m", "mtlrec", "prepare", str(sample_data_dir), "--out",
                           str(tmp_path / "x"), "--config", str(cfg)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "split" in proc.stderr and "prep.json" in proc.stderr


def test_prepare_cli_bad_data_exit_2(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("user_id,item_id,rating\n")
    assert cli_main(["prepare", str(empty), "--out", str(tmp_path / "y"), "--json"]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert "empty.csv" in err
    assert not (tmp_path / "y").exists()


def test_prepare_movielens_temporal(shared_datasets):
    from mtlrec.data.readers import load_data
    from mtlrec.data.suggest import suggest_spec
    from mtlrec.prep import PrepConfig, prepare

    raw = load_data([shared_datasets / "ml-latest-small"])
    spec = suggest_spec(raw)
    cfg = PrepConfig(split="temporal",
                     derived_labels=[{"name": "like", "source": "rating", "op": ">=", "threshold": 4}])
    ds = prepare(raw, spec, cfg)
    assert ds.n_rows("test") == 610 and ds.n_rows("valid") == 610      # every user has >= 20 ratings
    assert ds.n_rows("train") == 100836 - 1220
    ratings = raw.interactions
    # the test row of each user is the user's latest rating
    last = ratings.sort_values("timestamp", kind="stable").groupby("userId").tail(1)
    r = ds.rows["test"]
    test_ts = dict(zip(ds.user_ids[r["user_index"]], ds.item_ids[r["item_index"]]))
    latest = last.groupby("userId")["timestamp"].max()
    for uid in list(test_ts)[:50]:
        item = test_ts[uid]
        t = ratings[(ratings["userId"] == int(uid)) & (ratings["movieId"] == int(item))]["timestamp"].iloc[0]
        assert t == latest[int(uid)]
    g = ds.field("genres")          # suggested as a multi-valued item feature
    assert g.kind == "multihot" and "Drama" in ds.meta["vocabularies"]["genres"]
    assert ds.item_table["genres"].shape == (len(ds.item_ids), g.dim)
    like = r["label:like"]
    assert set(np.unique(like)) == {0.0, 1.0}
