"""The outlier rule in validation: zero-inflated columns (Census capital gains) are not called
outliers en masse, a true extreme still is; a rating far off its scale (50 on 1-5) is named."""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtlrec.data import load_census, load_data, suggest_spec, validate
from mtlrec.data.raw import RawData
from mtlrec.data.roles import DataSpec
from test_data_validation import check, csv_text, good_interactions, put, write

ZERO_INFLATED = ("wage_per_hour", "capital_gains", "capital_losses", "stock_dividends")


def _outliers(report, col: str) -> list:
    return [w for w in report.warnings if w.column == col and "outlier" in w.what]


def test_census_zero_inflated_columns_are_not_outliers_but_a_true_extreme_is(shared_datasets):
    raw, spec = load_census(shared_datasets / "census-income-kdd")
    df = raw.interactions
    gains = df["capital_gains"].to_numpy(float)
    assert (gains != 0).sum() == 3722 and (gains == 0).mean() > 0.95       # 96 % zeros
    report = validate(raw, spec)
    # today's main flags 3612 of the 3722 non-zero capital gains (97 %) and advises removing them
    for col in ZERO_INFLATED:
        assert not _outliers(report, col), [str(w) for w in _outliers(report, col)]
    assert not [w for w in report.warnings if "outlier" in w.what]
    # a real extreme in the same column is still named, with its row
    df.loc[9, "capital_gains"] = 1e12
    hits = _outliers(validate(raw, spec), "capital_gains")
    assert len(hits) == 1 and hits[0].rows == [10] and "extreme outlier" in hits[0].what
    assert "96% of the column is 0" in hits[0].what and "clip / winsorise" in hits[0].fix


def test_zero_inflated_column_flags_only_the_extreme(tmp_path):
    rng = np.random.default_rng(0)
    n = 2000
    income = np.where(rng.random(n) < 0.95, 0.0, np.round(rng.lognormal(8, 1.2, n)))
    income[1234] = 5e11                      # a unit error
    df = pd.DataFrame({"user_id": np.arange(n) % 50, "item_id": np.arange(n) % 70,
                       "click": rng.integers(0, 2, n), "income": income})
    raw = RawData(interactions=df, sources={"interactions": "events.csv"})
    spec = DataSpec(user_id="user_id", item_id="item_id", labels={"click": "binary"},
                    numeric={"income": "context"})
    hits = _outliers(validate(raw, spec), "income")
    assert len(hits) == 1 and hits[0].rows == [1235] and hits[0].file == "events.csv"


def test_a_rating_far_off_its_scale_is_named_with_file_column_rows_and_fix(tmp_path):
    paths = write(tmp_path, {"interactions.csv": csv_text(put(good_interactions(200), 17, "rating", 50))})
    _, _, report = check(paths)
    hits = [w for w in report.warnings if w.column == "rating" and "scale" in w.what]
    assert len(hits) == 1, [str(w) for w in report.warnings]
    w = hits[0]
    assert w.file == "interactions.csv" and w.rows == [17]
    assert "far outside the rating scale 1-5" in w.what and "50" in w.what and "correct them" in w.fix


def test_movielens_half_star_scale_flags_50_and_nothing_else(shared_datasets):
    raw = load_data([shared_datasets / "ml-latest-small"])
    spec = suggest_spec(raw)
    assert not [w for w in validate(raw, spec).warnings if "scale" in w.what]
    raw.interactions.loc[[16, 40_000], "rating"] = [50.0, 45.0]
    hits = [w for w in validate(raw, spec).warnings if "scale" in w.what]
    assert len(hits) == 1 and hits[0].rows == [17, 40001] and hits[0].file == "ratings.csv"
    assert "0.5-5 (in steps of 0.5)" in hits[0].what


def test_continuous_and_long_tailed_labels_have_no_scale(tmp_path):
    rng = np.random.default_rng(2)
    n = 3000
    df = pd.DataFrame({"user_id": np.arange(n) % 40, "item_id": np.arange(n) % 90,
                       "watch": rng.random(n), "plays": rng.geometric(0.3, n) - 1})
    df.loc[5, "watch"] = 7.0
    raw = RawData(interactions=df, sources={"interactions": "events.csv"})
    spec = DataSpec(user_id="user_id", item_id="item_id", labels={"watch": "regression", "plays": "regression"})
    assert not [w for w in validate(raw, spec).warnings if "scale" in w.what]
