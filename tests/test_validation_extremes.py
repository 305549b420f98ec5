"""Extreme numbers are named in validation, not left to fail training with misleading advice."""
from __future__ import annotations

import pytest

from mtlrec.__main__ import main as cli_main
from mtlrec.errors import DataError
from test_data_validation import check, csv_text, good_interactions, good_users, put, write


@pytest.mark.parametrize("value", ["1e300", "-1e308", "3.5e38"])
def test_a_rating_beyond_float32_is_an_error_naming_the_row(tmp_path, value, capsys):
    paths = write(tmp_path, {"interactions.csv": csv_text(put(good_interactions(), 6, "rating", value))})
    with pytest.raises(DataError) as ei:
        check(paths)
    e = ei.value
    assert e.file == "interactions.csv" and e.column == "rating" and e.rows == [6]
    assert "too large" in e.what and e.fix
    assert cli_main(["data", "check", str(tmp_path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_an_extreme_outlier_is_a_warning_naming_the_row(tmp_path):
    paths = write(tmp_path, {"interactions.csv": csv_text(good_interactions()),
                             "users.csv": csv_text(put(good_users(), 4, "age", 4.2e9))})
    _, _, report = check(paths)
    hits = [w for w in report.warnings if w.column == "age"]
    assert hits and "extreme outlier" in hits[0].what and hits[0].rows == [4] and hits[0].file == "users.csv"
    assert "1 value is an extreme outlier" in hits[0].what          # not "1 values are"


def test_ordinary_spread_is_not_flagged(tmp_path):
    paths = write(tmp_path, {"interactions.csv": csv_text(good_interactions()),
                             "users.csv": csv_text(good_users())})
    _, _, report = check(paths)
    assert not [w for w in report.warnings if "outlier" in w.what]
