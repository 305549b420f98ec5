"""Per numeric column transforms in preparation (none / clip / winsorise / log1p): options that
round-trip, bounds fitted on the train split only and applied to valid / test without refitting,
the report saying what was changed, the CLI, and serving (what-if) applying the run's transform."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mtlrec.__main__ import main as cli_main
from mtlrec.data.raw import RawData
from mtlrec.data.roles import DataSpec
from mtlrec.dataset import PreparedDataset
from mtlrec.errors import DataError
from mtlrec.prep import PrepConfig, prepare

N, N_TRAIN, N_VALID = 1200, 900, 150
SPEC = DataSpec(user_id="user_id", item_id="item_id", labels={"click": "binary", "rating": "regression"},
                numeric={"spend": "context", "dwell": "context", "income": "user", "age": "user"})


def _tables():
    """Interactions with a predefined split (rows 0-899 train, 900-1049 valid, the rest test), a
    zero-inflated context feature ``spend`` whose valid / test rows hold values far beyond train, a
    feature with negatives (``dwell``) and users with a zero-inflated ``income``."""
    rng = np.random.default_rng(0)
    n_users, n_items = 60, 40
    pairs = rng.choice(n_users * n_items, N, replace=False)          # distinct pairs: no duplicates
    k = np.arange(N)
    spend = np.round(rng.lognormal(3, 1, N) * (rng.random(N) < 0.4), 2)
    spend[N_TRAIN:N_TRAIN + 5] = 1e5
    spend[N_TRAIN + N_VALID:N_TRAIN + N_VALID + 10] = 1e6
    inter = pd.DataFrame({"user_id": pairs // n_items + 1, "item_id": pairs % n_items + 1,
                          "click": (rng.random(N) < 0.3 + 0.4 * (spend > 0)).astype(int),
                          "rating": rng.integers(1, 6, N), "spend": spend, "dwell": rng.normal(0, 1, N),
                          "fold": np.where(k < N_TRAIN, "train", np.where(k < N_TRAIN + N_VALID, "valid", "test"))})
    users = pd.DataFrame({"user_id": np.arange(1, n_users + 1),
                          "income": np.where(rng.random(n_users) < 0.6, 0.0, np.round(rng.lognormal(9, 1, n_users))),
                          "age": rng.integers(12, 80, n_users)})
    return inter, users


def _raw():
    inter, users = _tables()
    return RawData(interactions=inter, users=users, sources={"interactions": "events.csv", "users": "users.csv"})


def _prep(transforms, raw=None) -> PreparedDataset:
    cfg = PrepConfig(split="column", split_column="fold", numeric_transforms=transforms)
    return prepare(raw if raw is not None else _raw(), SPEC, cfg)


def _raw_values(ds, split: str, col: str) -> np.ndarray:
    """The column as given, for the rows of ``split`` (through their row ids)."""
    return _tables()[0][col].to_numpy(float)[ds.row_ids(split)]


def _model_scale(ds, split: str, col: str) -> np.ndarray:
    """The prepared values of ``split`` with the standardisation undone (the transformed values)."""
    st = ds.meta["report"]["stats"][col]
    return np.asarray(ds.rows[split][col], dtype=np.float64) * st["std"] + st["mean"]


def test_options_round_trip_and_old_configs_load():
    cfg = PrepConfig(numeric_transforms={"spend": {"method": "winsorize"}, "income": "log1p", "age": "none",
                                         "dwell": {"method": "clip", "lower": -2, "upper": "2"}})
    assert cfg.numeric_transforms == {"spend": {"method": "winsorise", "lower": 0.01, "upper": 0.99},
                                      "income": {"method": "log1p", "lower": None, "upper": None},
                                      "dwell": {"method": "clip", "lower": -2.0, "upper": 2.0}}
    assert PrepConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    old = PrepConfig().to_dict()
    del old["numeric_transforms"]                    # a config written before transforms existed
    assert PrepConfig.from_dict(old).numeric_transforms == {}
    for bad, words in (({"spend": "square"}, "method must be one of"),
                       ({"spend": {"method": "winsorise", "lower": 0.9, "upper": 0.1}}, "0 <= lower < upper <= 1"),
                       ({"spend": {"method": "clip", "lower": 5, "upper": 1}}, "lower < upper"),
                       ({"spend": {"method": "log1p", "upper": 3}}, "takes no bounds")):
        with pytest.raises(ValueError, match="spend") as ei:
            PrepConfig(numeric_transforms=bad)
        assert words in str(ei.value)


def test_winsorise_fits_the_train_quantiles_and_clips_valid_and_test_without_refitting():
    ds = _prep({"spend": {"method": "winsorise", "lower": 0.05, "upper": 0.95}})
    train = _raw_values(ds, "train", "spend")
    lo, hi = np.quantile(train, [0.05, 0.95])
    rep = ds.meta["report"]["transforms"]["spend"]
    assert (round(rep["lower"], 6), round(rep["upper"], 6)) == (round(lo, 6), round(hi, 6))
    assert ds.meta["report"]["stats"]["spend"]["transform"]["upper"] == rep["upper"]
    for split in ("train", "valid", "test"):
        raw = _raw_values(ds, split, "spend")
        got = _model_scale(ds, split, "spend")
        assert np.allclose(got, np.clip(raw, lo, hi), rtol=1e-4, atol=1e-3), split
        assert rep["rows_changed"][split] == int(((raw < lo) | (raw > hi)).sum())
    # the 1e5 / 1e6 of valid / test are held to the train bound, not refitted on their own split
    assert _raw_values(ds, "test", "spend").max() == 1e6 and np.quantile(_raw_values(ds, "test", "spend"), 0.95) > hi
    assert _model_scale(ds, "test", "spend").max() == pytest.approx(hi, rel=1e-4)
    assert rep["rows_changed"]["valid"] >= 5 and rep["rows_changed"]["test"] >= 10
    note = next(n for n in ds.meta["report"]["notes"] if n.startswith("spend:"))
    assert "winsorised to" in note and f"{rep['rows_changed']['test']:,} test rows" in note


def test_clip_to_a_given_bound_and_the_training_range():
    ds = _prep({"spend": {"method": "clip", "upper": 500}, "dwell": "clip"})
    rep = ds.meta["report"]["transforms"]
    assert (rep["spend"]["lower"], rep["spend"]["upper"]) == (0.0, 500.0) and rep["spend"]["fitted"] == ["lower"]
    train_dwell = _raw_values(ds, "train", "dwell")
    assert rep["dwell"]["lower"] == train_dwell.min() and rep["dwell"]["upper"] == train_dwell.max()
    assert rep["dwell"]["rows_changed"]["train"] == 0          # the training range changes no training row
    test = _raw_values(ds, "test", "dwell")
    outside = int(((test < train_dwell.min()) | (test > train_dwell.max())).sum())
    assert rep["dwell"]["rows_changed"]["test"] == outside
    assert _model_scale(ds, "test", "spend").max() == pytest.approx(500, rel=1e-4)


def test_log1p_of_a_user_feature_and_negative_values_are_refused():
    ds = _prep({"income": "log1p"})
    users = _tables()[1].set_index("user_id")["income"]
    st = ds.meta["report"]["stats"]["income"]
    assert st["transform"] == {"method": "log1p"}
    got = np.expm1(np.asarray(ds.user_table["income"], np.float64) * st["std"] + st["mean"])
    want = users.loc[ds.user_ids.astype(int)].to_numpy()
    assert np.allclose(got, want, rtol=1e-3, atol=0.01)
    rep = ds.meta["report"]["transforms"]["income"]
    assert rep["users_changed"] == int((want > 0).sum())           # log1p(0) = 0: the zeros are unchanged
    assert sum(rep["rows_changed"].values()) == int(sum((users.loc[ds.user_ids[ds.rows[s]["user_index"]].astype(int)]
                                                         > 0).sum() for s in ds.splits))
    with pytest.raises(DataError) as ei:
        _prep({"dwell": "log1p"})
    e = ei.value
    dwell = _tables()[0]["dwell"].to_numpy()
    assert e.file == "events.csv" and e.column == "dwell" and e.rows[:3] == (np.flatnonzero(dwell < 0)[:3] + 1).tolist()
    assert "log1p needs values >= 0" in e.what and "clip or winsorise" in e.fix


def test_a_label_or_a_column_that_is_no_numeric_feature_is_refused():
    with pytest.raises(DataError) as ei:
        _prep({"rating": "log1p"})
    assert ei.value.column == "rating" and "is a label" in ei.value.what
    with pytest.raises(DataError) as ei:
        _prep({"salary": "clip"})
    assert ei.value.column == "salary" and "not a numeric feature" in ei.value.what and "spend" in ei.value.what


def test_changed_roles_drop_the_transforms_of_columns_no_longer_numeric():
    from mtlrec.prep.transforms import for_columns
    cfg = PrepConfig(numeric_transforms={"spend": "log1p", "age": "clip"})
    spec = DataSpec.from_dict({**SPEC.to_dict(), "numeric": {"spend": "context"}, "categorical": {"age": "user"}})
    assert for_columns(cfg.numeric_transforms, spec) == {"spend": cfg.numeric_transforms["spend"]}


def test_the_fitted_transform_is_saved_with_the_dataset(tmp_path):
    ds = _prep({"spend": "winsorise", "income": "log1p"})
    back = PreparedDataset.load(ds.save(tmp_path / "ds"))
    assert back.meta["report"]["stats"]["spend"]["transform"] == ds.meta["report"]["stats"]["spend"]["transform"]
    assert back.meta["prep"]["numeric_transforms"]["income"]["method"] == "log1p"


def test_cli_prepare_takes_transforms_from_the_config_and_reports_them(tmp_path, capsys):
    inter, users = _tables()
    inter.to_csv(tmp_path / "events.csv", index=False)
    users.to_csv(tmp_path / "users.csv", index=False)
    (tmp_path / "roles.json").write_text(json.dumps(SPEC.to_dict()))
    (tmp_path / "prep.json").write_text(json.dumps({"split": "column", "split_column": "fold",
                                                     "numeric_transforms": {"spend": "winsorise"}}))
    args = ["prepare", str(tmp_path / "events.csv"), str(tmp_path / "users.csv"), "--roles",
            str(tmp_path / "roles.json"), "--config", str(tmp_path / "prep.json"), "--out", str(tmp_path / "ds")]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "note: spend: winsorised to [0, " in out and "test rows" in out
    assert cli_main(args + ["--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["report"]
    t = rep["transforms"]["spend"]
    assert t["method"] == "winsorise" and t["rows_changed"]["test"] >= 10


def test_a_run_applies_its_transform_to_what_if_values(tmp_path):
    """The run saves the fitted log1p; a raw income given to a what-if is encoded as preparation
    encoded it, and an existing user's income reads back on its own scale."""
    from mtlrec.config import RunConfig
    from mtlrec.runs.load import load_run
    from mtlrec.training.pipeline import run_training
    from mtlrec.serve.whatif import current_values, encode_value

    ds = _prep({"income": "log1p"})
    cfg = RunConfig.from_dict({"tasks": [{"name": "click", "type": "binary", "label": "click"}],
                               "model": {"arch": "shared_bottom", "shared_dims": [8], "tower_dims": [4],
                                         "embedding_dim": 4},
                               "train": {"epochs": 1, "batch_size": 512, "device": "cpu", "seed": 0}})
    assert run_training(cfg, run_dir=tmp_path / "run", dataset=ds).status == "finished"
    run = load_run(tmp_path / "run")
    income = _tables()[1].set_index("user_id")["income"]
    rich = next(int(u) for u in run.dataset.user_ids if income[int(u)] > 0)
    k = run.dataset.user_index(str(rich))
    stored = float(run.dataset.user_table["income"][k])
    assert encode_value(run, "income", float(income[rich])) == pytest.approx(stored, abs=1e-4)
    st = run.dataset.meta["report"]["stats"]["income"]
    assert abs((income[rich] - st["mean"]) / st["std"] - stored) > 1      # without the log1p it would be far off
    assert current_values(run, str(rich))["income"] == pytest.approx(income[rich], rel=1e-3)
    with pytest.raises(DataError, match="log1p"):
        encode_value(run, "income", -5)
