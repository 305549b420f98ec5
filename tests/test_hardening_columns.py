"""Any column name survives a run folder (issue 10): slashes, dots, spaces, markup, non-ASCII, long names."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from _fixtures_train import make_dataset
from mtlrec.dataset import FeatureField, PreparedDataset

NAMES = ["views/day", "a.b", "x y", "**bold**", "<b>x</b>", "naïve", "L" * 200]


def _weird_dataset() -> PreparedDataset:
    ds = make_dataset(n_rows=300)
    rng = np.random.default_rng(0)
    for i, name in enumerate(NAMES):
        owner = ("context", "user", "item")[i % 3]
        ds.fields.append(FeatureField(name, "numeric", owner))
        if owner == "context":
            for split, cols in ds.rows.items():
                cols[name] = rng.normal(size=ds.n_rows(split)).astype(np.float32)
        else:
            table = ds.user_table if owner == "user" else ds.item_table
            table[name] = rng.normal(size=len(ds.user_ids if owner == "user" else ds.item_ids)).astype(np.float32)
    return ds


def test_save_and_load_keep_every_column_name(tmp_path):
    ds = _weird_dataset()
    ds.save(tmp_path / "d")
    back = PreparedDataset.load(tmp_path / "d")
    assert [f.name for f in back.fields] == [f.name for f in ds.fields]
    for split in ds.rows:
        assert set(back.rows[split]) == set(ds.rows[split])
        for k in ds.rows[split]:
            np.testing.assert_array_equal(back.rows[split][k], ds.rows[split][k])
    assert set(back.user_table) == set(ds.user_table) and set(back.item_table) == set(ds.item_table)
    assert list(back.user_ids) == list(ds.user_ids)
    back.to_device("cpu").batch("train", np.arange(5))      # every field finds its array


def test_folders_of_the_old_format_still_load(tmp_path):
    """Format 1 stored "rows/<split>/<name>" keys; names with '/' now load too."""
    ds = _weird_dataset()
    d = tmp_path / "old"
    ds.save(d)
    doc = json.loads((d / "dataset.json").read_text())
    arrays = {"/".join(where): np.load(d / "arrays" / f"{key}.npy") for key, where in doc.pop("arrays").items()}
    doc["format"] = "mtlrec-dataset/1"
    np.savez(d / "arrays.npz", **arrays)
    (d / "dataset.json").write_text(json.dumps(doc))
    back = PreparedDataset.load(d)
    assert "views/day" in back.rows["train"] or "views/day" in back.user_table or "views/day" in back.item_table
    back.to_device("cpu").batch("valid", np.arange(5))


def test_train_recommend_explain_with_hostile_column_names(tmp_path, capsys):
    from mtlrec.__main__ import main
    rng = np.random.default_rng(0)
    n = 500
    header = ["user_id", "item_id", "click"] + [f'"{c}"' if "," in c else c for c in NAMES]
    lines = [",".join(header)]
    for _ in range(n):
        vals = [str(rng.integers(1, 30)), str(rng.integers(1, 25)), str(int(rng.random() < 0.4))]
        vals += [f"{rng.normal():.3f}" if i % 2 == 0 else str(rng.choice(["p", "q", "r"])) for i in range(len(NAMES))]
        lines.append(",".join(vals))
    (tmp_path / "inter.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    roles = {"user_id": "user_id", "item_id": "item_id", "labels": {"click": "binary"},
             "numeric": {c: "context" for i, c in enumerate(NAMES) if i % 2 == 0},
             "categorical": {c: "context" for i, c in enumerate(NAMES) if i % 2 == 1}}
    cfg = {"data": {"paths": ["inter.csv"], "roles": roles},
           "tasks": [{"name": "click", "type": "binary", "label": "click"}], "model": {"arch": "shared_bottom"},
           "train": {"epochs": 1, "batch_size": 128, "device": "cpu", "ranking_k": 0, "threads": 1}}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    run = tmp_path / "run"

    def cli(*args):
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        assert code == 0, err
        return json.loads(out)

    assert cli("train", "--config", str(tmp_path / "cfg.json"), "--out", str(run), "--json", "--quiet")["status"] == "finished"
    rec = cli("recommend", "--run", str(run), "--user", "1", "--k", "3", "--json", "--include-seen")
    assert len(rec["items"]) == 3
    ex = cli("explain", "--run", str(run), "--user", "1", "--item", rec["items"][0]["item"], "--json",
             "--background", "20")
    groups = set(ex["tasks"]["click"]["contributions"])
    assert {"views/day", "**bold**", "<b>x</b>", "naïve", "L" * 200} <= groups
    doc = json.loads((run / "dataset" / "dataset.json").read_text())
    assert doc["format"] == "mtlrec-dataset/3" and not Path(run / "dataset" / "arrays.npz").exists()
    assert all(Path(run / "dataset" / "arrays" / f"{k}.npy").is_file() for k in doc["arrays"])
