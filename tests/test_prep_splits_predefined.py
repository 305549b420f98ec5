"""Predefined splits (issue 12 §3): a train / valid / test column, one file per split, the MovieLens
100K ``u1.base`` / ``u1.test`` pair, and the ``row_id`` every prepared row keeps."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtlrec.__main__ import main as cli_main
from mtlrec.config import RunConfig
from mtlrec.data.raw import RawData
from mtlrec.data.readers import load_data, reading_notes
from mtlrec.data.splits import load_split_files
from mtlrec.data.roles import DataSpec
from mtlrec.data.suggest import split_columns, suggest_spec
from mtlrec.dataset import PreparedDataset
from mtlrec.errors import DataError
from mtlrec.prep import PrepConfig, prepare
from mtlrec.prep.splits import with_predefined_split
from mtlrec.training.pipeline import build_dataset, load_raw

from _fixtures_ml100k import write_ml100k_split

SPEC = DataSpec(user_id="user", item_id="item", labels={"click": "binary", "rating": "regression"},
                categorical={"device": "context"})


def _raw(inter: pd.DataFrame, items: pd.DataFrame | None = None) -> RawData:
    sources = {"interactions": "events.csv", **({"items": "items.csv"} if items is not None else {})}
    return RawData(interactions=inter, items=items, sources=sources, format="csv")


def _events(n_users: int = 30, per_user: int = 10, seed: int = 0) -> pd.DataFrame:
    """Every user meets ``per_user`` distinct items; a click, a rating and a device per row."""
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n_users), per_user)
    i = np.concatenate([rng.choice(40, per_user, replace=False) for _ in range(n_users)])
    n = len(u)
    return pd.DataFrame({"user": [f"u{k}" for k in u], "item": [f"i{k}" for k in i],
                         "click": rng.integers(0, 2, n), "rating": rng.integers(1, 6, n).astype(float),
                         "device": rng.choice(["web", "app"], n)})


def _with_fold(df: pd.DataFrame, seed: int = 1) -> tuple[pd.DataFrame, dict[str, set[int]]]:
    """A 'fold' column in mixed spellings; returns the row positions of each split."""
    rng = np.random.default_rng(seed)
    which = rng.choice(["train", "valid", "test"], len(df), p=[0.7, 0.1, 0.2])
    spellings = {"train": ["train", "Train", "TRAINING"], "valid": ["valid", "Validation", "val", "dev"],
                 "test": ["test", " Test "]}
    df = df.copy()
    df["fold"] = [spellings[w][k % len(spellings[w])] for k, w in enumerate(which)]
    return df, {s: set(np.flatnonzero(which == s).tolist()) for s in ("train", "valid", "test")}


def _ids(ds: PreparedDataset, split: str) -> set[int]:
    return set(ds.row_ids(split).tolist())


# ---------------------------------------------------------------------------- a split column
def test_split_column_gives_exactly_the_requested_rows_and_is_no_feature():
    inter, want = _with_fold(_events())
    raw = _raw(inter)
    assert split_columns(raw) == ["fold"]
    spec = suggest_spec(raw)
    assert "fold" not in spec.columns()          # suggested as the split, not as a categorical feature
    ds = prepare(raw, SPEC, PrepConfig(split="column", split_column="fold"))
    for s in ("train", "valid", "test"):
        assert _ids(ds, s) == want[s], s
    assert "fold" not in {f.name for f in ds.fields} and "fold" not in {lab.name for lab in ds.labels}
    assert ds.meta["report"]["predefined_split"]["rows"] == {s: len(want[s]) for s in want}
    # marked as a feature by hand: still not a feature, and the report says so
    spec_fold = DataSpec.from_dict({**SPEC.to_dict(), "categorical": {"device": "context", "fold": "context"}})
    ds2 = prepare(raw, spec_fold, PrepConfig(split="column", split_column="fold"))
    assert "fold" not in {f.name for f in ds2.fields}
    assert any("fold" in n for n in ds2.meta["report"]["notes"])
    # the empty split_column takes the one column that holds a split
    ds3 = prepare(raw, SPEC, PrepConfig(split="column"))
    assert _ids(ds3, "test") == want["test"]


def test_without_valid_rows_valid_is_carved_from_train_seeded_and_reported():
    inter = _events()
    rng = np.random.default_rng(3)
    which = rng.choice(["train", "test"], len(inter), p=[0.8, 0.2])
    inter["split"] = which
    raw = _raw(inter)
    cfg = PrepConfig(split="column", split_column="split", valid_frac=0.25, seed=7)
    ds = prepare(raw, SPEC, cfg)
    train_rows = set(np.flatnonzero(which == "train").tolist())
    assert _ids(ds, "test") == set(np.flatnonzero(which == "test").tolist())
    assert _ids(ds, "valid") | _ids(ds, "train") == train_rows and not _ids(ds, "valid") & _ids(ds, "train")
    assert len(_ids(ds, "valid")) == round(0.25 * len(train_rows))
    rep = ds.meta["report"]
    assert rep["predefined_split"]["valid_carved"] == len(_ids(ds, "valid"))
    assert any("no valid rows" in n and "became valid" in n for n in rep["notes"])
    assert _ids(prepare(raw, SPEC, cfg), "valid") == _ids(ds, "valid")        # seeded


@pytest.mark.parametrize("bad, shown", [("holdout", "'holdout'"), ("2", "'2'"), (None, "(missing)")])
def test_an_unknown_split_value_names_the_column_the_row_and_the_values(bad, shown):
    inter, _ = _with_fold(_events())
    inter["fold"] = inter["fold"].astype(object)
    inter.loc[[6, 11], "fold"] = bad
    # a column of split names with gaps is still offered as the split (and never a feature)
    assert split_columns(_raw(inter)) == (["fold"] if bad is None else [])
    with pytest.raises(DataError) as ei:
        prepare(_raw(inter), SPEC, PrepConfig(split="column", split_column="fold"))
    e = ei.value
    msg = str(e)
    assert e.column == "fold" and e.file == "events.csv"
    assert e.rows[:2] == [7, 12]                                  # 1-based data rows of the file
    assert "row_id 6" in msg and shown in msg and "2 rows" in msg
    assert "train" in e.fix and "valid" in e.fix and "test" in e.fix
    if bad == "2":
        assert "0/1/2" in e.fix                                  # numbers are not read as splits


def test_a_missing_split_column_and_no_test_rows_are_clear_errors():
    inter, _ = _with_fold(_events())
    with pytest.raises(DataError, match="not a column of the interactions") as ei:
        prepare(_raw(inter), SPEC, PrepConfig(split="column", split_column="phase"))
    assert ei.value.column == "phase"
    inter["fold"] = np.where(inter["fold"].str.strip().str.lower() == "test", "train", inter["fold"])
    with pytest.raises(DataError, match="no test rows") as ei:
        prepare(_raw(inter), SPEC, PrepConfig(split="column", split_column="fold"))
    assert ei.value.column == "fold"


def test_test_rows_whose_user_has_no_training_row_are_a_warning_with_count_and_row_ids():
    inter, _ = _with_fold(_events())
    inter["fold"] = "train"
    cold = inter.index[inter["user"].isin(["u3", "u4"])]
    inter.loc[cold, "fold"] = "test"
    inter.loc[inter.index[:5], "fold"] = "test"                 # u0: warm test rows
    ds = prepare(_raw(inter), SPEC, PrepConfig(split="column", split_column="fold"))
    rep = ds.meta["report"]
    unseen = rep["unseen_in_train"]["test"]
    assert unseen["user_rows"] == len(cold) == 20 and unseen["rows"] == 25
    assert unseen["user_row_ids"] == sorted(cold.tolist())[:20]
    warn = [w for w in rep["prep_warnings"] if "user that is not in the training rows" in w]
    assert len(warn) == 1 and "20 of the 25 test rows" in warn[0] and str(int(cold[0])) in warn[0]
    assert warn[0] in rep["warnings"]


def test_duplicates_are_looked_for_within_each_split_and_a_pair_in_two_splits_is_a_warning():
    inter, want = _with_fold(_events())
    t = min(want["test"])
    extra = inter.loc[[t]].assign(fold="train")                   # the same pair in train and in test
    inter = pd.concat([inter, extra], ignore_index=True)
    ds = prepare(_raw(inter), SPEC, PrepConfig(split="column", split_column="fold"))
    assert t in _ids(ds, "test") and len(inter) - 1 in _ids(ds, "train")     # neither row dropped
    rep = ds.meta["report"]
    assert rep["duplicates"]["pairs_in_several_splits"] == 1 and "duplicate" not in rep["dropped_rows"]
    assert any("1 (user, item) pair occurs in more than one split" in w for w in rep["prep_warnings"])


# ---------------------------------------------------------------------------- one file per split
def _write_split_files(d: Path) -> dict[str, pd.DataFrame]:
    inter, _ = _with_fold(_events(seed=4))
    inter = inter.drop(columns="fold")
    parts = {"train": inter.iloc[:200], "valid": inter.iloc[200:230], "test": inter.iloc[230:]}
    d.mkdir(parents=True, exist_ok=True)
    for name, df in parts.items():
        df.to_csv(d / f"{name}.csv", index=False)
    pd.DataFrame({"item": [f"i{k}" for k in range(40)], "brand": [f"b{k % 4}" for k in range(40)]}) \
        .to_csv(d / "items.csv", index=False)
    return parts


def test_split_files_give_exactly_their_rows(tmp_path):
    parts = _write_split_files(tmp_path / "data")
    (tmp_path / "config.json").write_text(json.dumps({
        "data": {"splits": {"train": "data/train.csv", "validation": "data/valid.csv", "test": "data/test.csv"},
                 "paths": ["data/items.csv"],
                 "roles": {"user_id": "user", "item_id": "item", "labels": {"click": "binary"},
                           "categorical": {"brand": "item"}}},
        "tasks": [{"name": "click", "type": "binary", "label": "click"}]}))
    cfg = RunConfig.load(tmp_path / "config.json")
    raw, _spec = load_raw(cfg)
    assert raw.items is not None and len(raw.interactions) == 300
    ds = build_dataset(cfg)
    assert ds.meta["prep"]["split"] == "column"
    assert _ids(ds, "train") == set(range(200)) and _ids(ds, "valid") == set(range(200, 230))
    assert _ids(ds, "test") == set(range(230, 300))
    assert ds.row_source(231) == ("test.csv", 1) and ds.row_source(5) == ("train.csv", 5)
    assert [p["file"] for p in ds.meta["row_sources"]] == ["train.csv", "valid.csv", "test.csv"]
    # without a valid file, valid comes out of train
    raw2 = load_split_files({"train": tmp_path / "data/train.csv", "test": tmp_path / "data/test.csv"})
    ds2 = prepare(raw2, DataSpec(user_id="user", item_id="item", labels={"click": "binary"}),
                  PrepConfig.from_dict(with_predefined_split({}, raw2)))
    assert _ids(ds2, "valid") and _ids(ds2, "valid") | _ids(ds2, "train") == set(range(200))
    assert _ids(ds2, "test") == set(range(200, 270))


def test_split_files_whose_columns_differ_are_refused_naming_file_and_columns(tmp_path):
    parts = _write_split_files(tmp_path)
    parts["test"].drop(columns="rating").assign(score=1).to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(DataError) as ei:
        load_split_files({"train": tmp_path / "train.csv", "test": tmp_path / "test.csv"})
    e = ei.value
    assert e.file == "test.csv" and "missing rating" in str(e) and "extra score" in str(e)
    assert "train.csv" in str(e)
    with pytest.raises(DataError, match="lack a test file"):
        RunConfig.from_dict({"data": {"splits": {"train": "train.csv"}}})


# ---------------------------------------------------------------------------- MovieLens u1.base / u1.test
def test_movielens_u1_base_and_u1_test_load_as_a_predefined_split(tmp_path):
    d = tmp_path / "ml-100k"
    n_base, n_test = write_ml100k_split(d)
    for paths in ([d / "u1.base", d / "u1.test"], [d], [d / "u1.base", d / "u1.test", d / "u.item", d / "u.user"]):
        raw = load_data(paths)
        assert raw.format == "ml-100k" and len(raw.interactions) == n_base + n_test
        assert [p["file"] for p in raw.meta["split_files"]] == ["u1.base", "u1.test"]
    assert raw.items is not None and raw.users is not None
    assert any("u1.base = train" in n and "u1.test = test" in n for n in reading_notes(raw))
    spec = suggest_spec(raw)
    assert (spec.user_id, spec.item_id, spec.labels.get("rating")) == ("user_id", "item_id", "regression")
    assert "split" not in spec.columns()
    ds = prepare(raw, spec, PrepConfig.from_dict(with_predefined_split({}, raw)))
    assert _ids(ds, "test") == set(range(n_base, n_base + n_test))
    assert _ids(ds, "train") | _ids(ds, "valid") == set(range(n_base))
    assert ds.n_rows("valid") > 0 and ds.row_source(n_base) == ("u1.test", 0)
    # ... and through data.splits of a run config, u.item / u.user from the folder
    cfg = RunConfig.from_dict({"data": {"splits": {"train": "ml-100k/u1.base", "test": "ml-100k/u1.test"},
                                        "paths": ["ml-100k"]},
                               "tasks": [{"name": "rating", "type": "regression", "label": "rating"}]},
                              base_dir=tmp_path)
    ds2 = build_dataset(cfg)
    assert _ids(ds2, "test") == set(range(n_base, n_base + n_test)) and ds2.has_items


def test_one_half_of_a_movielens_split_or_several_splits_are_clear_errors(tmp_path):
    d = tmp_path / "ml"
    write_ml100k_split(d, side=False)
    with pytest.raises(DataError, match="u1.test is missing") as ei:
        load_data([d / "u1.base"])
    assert "u1.test" in ei.value.fix
    (d / "u2.base").write_bytes((d / "u1.base").read_bytes())
    (d / "u2.test").write_bytes((d / "u1.test").read_bytes())
    with pytest.raises(DataError, match="2 ready-made MovieLens 100K splits") as ei:
        load_data([d])
    assert "u1.base and u1.test" in ei.value.fix
    # beside u.data (all the ratings) the ready-made splits are skipped, as before
    (d / "u.data").write_bytes((d / "u1.base").read_bytes() + (d / "u1.test").read_bytes())
    raw = load_data([d])
    assert raw.sources["interactions"] == "u.data" and "split_files" not in raw.meta


# ---------------------------------------------------------------------------- row ids
def test_row_ids_of_dropped_rows_are_reported_and_negatives_have_row_id_minus_one():
    inter = _events()
    inter.loc[[4, 9], "rating"] = np.nan                          # missing labels
    dup = inter.loc[[3, 17]].copy()                               # repeated pairs at the end: the earlier rows go
    inter = pd.concat([inter, dup], ignore_index=True)
    items = pd.DataFrame({"item": [f"i{k}" for k in range(40) if k != int(inter.loc[20, "item"][1:])]})
    gone = inter.index[inter["item"] == inter.loc[20, "item"]].tolist()
    ds = prepare(_raw(inter, items), SPEC, PrepConfig(negative_ratio=1, negative_label="click"))
    dropped = ds.meta["report"]["dropped_rows"]
    assert dropped["unknown_item"] == {"count": len(gone), "row_ids": sorted(gone)}
    assert dropped["missing_label"]["row_ids"] == [r for r in (4, 9) if r not in gone]
    assert dropped["duplicate"]["row_ids"] == [r for r in (3, 17) if r not in gone]
    kept = set().union(*(set(ds.row_ids(s)[~ds.rows[s]["sampled"]].tolist()) for s in ds.splits))
    assert kept == set(range(len(inter))) - set(gone) - {4, 9, 3, 17}
    for s in ds.splits:
        assert (ds.row_ids(s)[ds.rows[s]["sampled"]] == -1).all()


def test_row_ids_are_saved_and_a_dataset_without_them_still_loads(tmp_path):
    inter, want = _with_fold(_events())
    ds = prepare(_raw(inter), SPEC, PrepConfig(split="column", split_column="fold"))
    ds.save(tmp_path / "new")
    again = PreparedDataset.load(tmp_path / "new")
    assert _ids(again, "test") == want["test"]
    for s in ds.splits:                       # a dataset prepared before row ids existed
        ds.rows[s].pop("row_id")
    ds.save(tmp_path / "old")
    old = PreparedDataset.load(tmp_path / "old")
    assert old.row_ids("test") is None and old.n_rows("test") == len(want["test"])


# ---------------------------------------------------------------------------- command line and exports
def test_cli_prepare_split_column(tmp_path, capsys):
    inter, want = _with_fold(_events())
    inter.to_csv(tmp_path / "events.csv", index=False)
    out = tmp_path / "ds"
    assert cli_main(["prepare", str(tmp_path / "events.csv"), "--out", str(out), "--split", "column",
                     "--split-column", "fold", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["report"]
    assert rep["split"] == "column" and rep["rows"]["test"] == len(want["test"])
    assert _ids(PreparedDataset.load(out), "valid") == want["valid"]
    inter.loc[2, "fold"] = "later"
    inter.to_csv(tmp_path / "events.csv", index=False)
    assert cli_main(["prepare", str(tmp_path / "events.csv"), "--out", str(out), "--split-column", "fold"]) == 2
    err = capsys.readouterr().err
    assert "fold" in err and "'later'" in err and "row_id 2" in err


def test_test_predictions_export_carries_row_ids(tmp_path):
    from mtlrec.runs.report import predictions_csv
    from mtlrec.training.pipeline import run_training
    d = tmp_path / "ml"
    n_base, n_test = write_ml100k_split(d, side=False)
    cfg = RunConfig.from_dict({
        "data": {"paths": ["ml/u1.base", "ml/u1.test"]},
        "tasks": [{"name": "rating", "type": "regression", "label": "rating"}],
        "model": {"arch": "shared_bottom"},
        "train": {"epochs": 1, "batch_size": 256, "device": "cpu", "ranking_k": 0, "threads": 1}}, base_dir=tmp_path)
    res = run_training(cfg, tmp_path / "run")
    assert res.status == "finished"
    import io
    frame = pd.read_csv(io.BytesIO(predictions_csv(tmp_path / "run")), encoding="utf-8-sig")
    assert list(frame.columns[:3]) == ["row_id", "user_id", "item_id"]
    assert set(frame["row_id"]) == set(range(n_base, n_base + n_test))
    assert {"rating", "rating_pred"} <= set(frame.columns) and frame["rating_pred"].notna().all()
