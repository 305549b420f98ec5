"""A corpus of bad files, written here, for every problem validation must name.

Each case gives a DataError that names the file and (where the problem has one) the
column or the 1-based data rows; the same files through the CLI exit with status 2
and print no traceback.
"""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from mtlrec.__main__ import main as cli_main
from mtlrec.data import DataSpec, load_data, load_uploaded, suggest_spec, validate
from mtlrec.errors import DataError

N = 40


def good_interactions(n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    i = np.arange(n)
    rating = rng.integers(1, 6, n)
    return pd.DataFrame({
        "user_id": i % 8 + 1, "item_id": i % 11 + 1, "timestamp": 1_600_000_000 + 3600 * i,
        "click": (rng.random(n) < 0.5).astype(int), "like": (rating >= 4).astype(int), "rating": rating,
    })


def good_users() -> pd.DataFrame:
    return pd.DataFrame({"user_id": range(1, 9), "age": [21, 35, 44, 52, 19, 61, 33, 28],
                         "gender": list("FMFMFMFM")})


def good_items() -> pd.DataFrame:
    return pd.DataFrame({"item_id": range(1, 12), "title": [f"Movie {k}" for k in range(1, 12)],
                         "genres": ["Drama|Comedy", "Action", "Action|Sci-Fi", "Drama", "Comedy", "Horror",
                                    "Drama|Romance", "Comedy|Romance", "Action|Thriller", "Thriller", "Drama"]})


def put(df: pd.DataFrame, row: int, col: str, value) -> pd.DataFrame:
    """Set the cell of 1-based data row ``row`` (as the user counts rows in a spreadsheet)."""
    df = df.astype({col: object})
    df.loc[row - 1, col] = value
    return df


def csv_text(df: pd.DataFrame, sep: str = ",") -> str:
    return df.to_csv(index=False, sep=sep)


def write(tmp_path, files: dict) -> list:
    paths = []
    for name, content in files.items():
        p = tmp_path / name
        p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        paths.append(p)
    return paths


def check(paths, spec: DataSpec | None = None, **kw):
    raw = load_data(paths)
    spec = spec or suggest_spec(raw)
    return raw, spec, validate(raw, spec, **kw)


GARBLED = bytes(np.random.default_rng(3).integers(0x80, 0x100, 3000, dtype=np.uint8))  # no NUL, not UTF-8
BINARY = bytes(np.random.default_rng(4).integers(0, 256, 3000, dtype=np.uint8))

# case id -> (files, spec or None (suggested), validate kwargs, expected file, expected column, expected rows,
#             words in the message, also through the CLI)
CORPUS = {
    "empty file": ({"interactions.csv": ""}, None, {}, "interactions.csv", None, None, "empty", True),
    "only blank lines": ({"interactions.csv": "\n\n  \n"}, None, {}, "interactions.csv", None, None, "empty", True),
    "header but no rows": ({"interactions.csv": "user_id,item_id,click\n"}, None, {}, "interactions.csv", None, None,
                           "no data rows", True),
    "binary bytes": ({"interactions.csv": BINARY}, None, {}, "interactions.csv", None, None, "not a text table", True),
    "garbled bytes": ({"interactions.csv": GARBLED}, None, {}, "interactions.csv", None, None, "not a text table", True),
    "excel workbook": ({"ratings.csv": b"PK\x03\x04" + b"\x14\x00" * 200}, None, {}, "ratings.csv", None, None,
                       "Excel", True),
    "damaged parquet": ({"interactions.parquet": b"PAR1 this is not parquet at all"}, None, {},
                        "interactions.parquet", None, None, "Parquet", True),
    "wrong delimiter": ({"interactions.csv": csv_text(good_interactions(), sep=":")}, None, {}, "interactions.csv",
                        "user_id:item_id:timestamp:click:like:rating", None, "one column", True),
    "header field without a name": ({"interactions.csv": csv_text(good_interactions()).replace("click", "", 1)},
                                    None, {}, "interactions.csv", None, None, "no name", True),
    "header line missing": ({"interactions.csv": csv_text(good_interactions()).split("\n", 1)[1]}, None, {},
                            "interactions.csv", None, None, "header line is missing", True),
    "duplicate column names": ({"interactions.csv": csv_text(good_interactions()).replace("like", "click", 1)},
                               None, {}, "interactions.csv", "click", None, "2 times", True),
    "ragged row": ({"interactions.csv": csv_text(good_interactions()).replace("\n", "\n9,9,9,9,9,9,9,9\n", 3)
                    .replace("\n9,9,9,9,9,9,9,9\n", "\n", 2)}, None, {}, "interactions.csv", None, [3],
                   "fields", True),
    "role names a missing column": ({"interactions.csv": csv_text(good_interactions())},
                                    DataSpec(user_id="user_id", item_id="item_id", labels={"clicked": "binary"}), {},
                                    "interactions.csv", "clicked", None, "Available columns", False),
    "missing user id": ({"interactions.csv": csv_text(put(good_interactions(), 5, "user_id", None))}, None, {},
                        "interactions.csv", "user_id", [5], "no user id", True),
    "missing item id in items table": ({"interactions.csv": csv_text(good_interactions()),
                                        "items.csv": csv_text(put(good_items(), 4, "item_id", None))}, None, {},
                                       "items.csv", "item_id", [4], "no item id", True),
    "duplicate item ids in items table": ({"interactions.csv": csv_text(good_interactions()),
                                           "items.csv": csv_text(put(good_items(), 6, "item_id", 2))}, None, {},
                                          "items.csv", "item_id", [6], "more than once", True),
    "text in a regression label": ({"interactions.csv": csv_text(put(good_interactions(), 7, "rating", "four"))},
                                   None, {}, "interactions.csv", "rating", [7], "'four'", True),
    "text in a numeric feature": ({"interactions.csv": csv_text(good_interactions()),
                                   "users.csv": csv_text(put(good_users(), 3, "age", "thirty"))}, None, {},
                                  "users.csv", "age", [3], "'thirty'", True),
    "binary label outside 0/1": ({"interactions.csv": csv_text(put(good_interactions(), 9, "click", "maybe"))},
                                 None, {}, "interactions.csv", "click", [9], "'maybe'", True),
    "binary label with a 2": ({"interactions.csv": csv_text(put(good_interactions(), 12, "like", 2))},
                              None, {}, "interactions.csv", "like", [12], "0/1", True),
    "single-class binary label": ({"interactions.csv": csv_text(good_interactions().assign(click=1))}, None, {},
                                  "interactions.csv", "click", None, "single class", True),
    "single-value regression label": ({"interactions.csv": csv_text(good_interactions().assign(rating=3))},
                                      DataSpec(user_id="user_id", item_id="item_id", labels={"rating": "regression"}),
                                      {}, "interactions.csv", "rating", None, "single value", False),
    "single-class multi-label": ({"interactions.csv": csv_text(good_interactions()),
                                  "items.csv": csv_text(good_items().assign(genres="Drama"))},
                                 DataSpec(user_id="user_id", item_id="item_id", labels={"genres": "multilabel"}), {},
                                 "items.csv", "genres", None, "single class", False),
    "inf in a numeric feature": ({"interactions.csv": csv_text(good_interactions()),
                                  "users.csv": csv_text(put(good_users(), 2, "age", "inf"))}, None, {},
                                 "users.csv", "age", [2], "infinite", True),
    "NaN in a numeric feature (strict)": ({"interactions.csv": csv_text(good_interactions()),
                                           "users.csv": csv_text(put(good_users(), 8, "age", "NaN"))}, None,
                                          {"missing_numeric": "error"}, "users.csv", "age", [8], "missing", False),
    "numeric feature all NaN": ({"interactions.csv": csv_text(good_interactions().assign(dwell=np.nan))},
                                DataSpec(user_id="user_id", item_id="item_id", labels={"click": "binary"},
                                         numeric={"dwell": "context"}), {}, "interactions.csv", "dwell", None,
                                "no values", False),
    "items missing from the items table": ({"interactions.csv": csv_text(good_interactions()),
                                            "items.csv": csv_text(good_items().iloc[:9])}, None,
                                           {"missing_items": "error"}, "interactions.csv", "item_id", [10, 11],
                                           "not in the items table", False),
    "unparseable timestamp": ({"interactions.csv": csv_text(
        put(good_interactions().assign(timestamp=pd.date_range("2024-01-01", periods=N, freq="h").astype(str)),
            14, "timestamp", "yesterday"))}, None, {}, "interactions.csv", "timestamp", [14], "'yesterday'", True),
    "missing timestamp": ({"interactions.csv": csv_text(put(good_interactions(), 2, "timestamp", None))}, None, {},
                          "interactions.csv", "timestamp", [2], "no timestamp", True),
    "too few rows": ({"interactions.csv": csv_text(good_interactions(12))}, None, {}, "interactions.csv", None, None,
                     "only 12 interaction rows", True),
    "too few users": ({"interactions.csv": csv_text(good_interactions().assign(user_id=7))}, None, {},
                      "interactions.csv", "user_id", None, "only 1 distinct user", True),
}


@pytest.mark.parametrize("case", list(CORPUS))
def test_bad_file_gives_a_data_error_naming_file_and_place(case, tmp_path):
    files, spec, kw, file, column, rows, words, _ = CORPUS[case]
    paths = write(tmp_path, files)
    with pytest.raises(DataError) as ei:
        check(paths, spec, **kw)
    err = ei.value
    msg = str(err)
    assert err.file is not None and file in err.file and file in msg
    if column is not None:
        assert err.column == column and f"column '{column}'" in msg
    if rows is not None:
        assert err.rows[: len(rows)] == rows
        assert f"rows {rows[0]}" in msg
    assert words.lower() in msg.lower()
    assert err.fix, "every DataError says how to fix it"


@pytest.mark.parametrize("case", [c for c, v in CORPUS.items() if v[-1]])
def test_cli_exits_2_without_traceback_on_bad_files(case, tmp_path, capsys):
    files, _, _, file, column, _, _, _ = CORPUS[case]
    paths = write(tmp_path, files)
    rc = cli_main(["data", "check", *map(str, paths), "--json"])
    out, err = capsys.readouterr()
    assert rc == 2
    assert "Traceback" not in out + err
    payload = json.loads(out)
    assert set(payload) == {"error"} and file in payload["error"]
    if column:
        assert column in payload["error"]


def test_missing_items_drop_keep_or_error(tmp_path):
    paths = write(tmp_path, {"interactions.csv": csv_text(good_interactions()),
                             "items.csv": csv_text(good_items().iloc[:9])})
    missing = int((good_interactions()["item_id"] > 9).sum())
    raw, spec, rep = check(paths)  # default: drop
    assert rep.missing_items == missing and rep.dropped_rows == missing
    assert rep.rows == N - missing and len(rep.raw.interactions) == N - missing
    assert not rep.raw.interactions["item_id"].isin([10, 11]).any()
    assert len(raw.interactions) == N  # the input is left as it was
    assert any("not in the items table" in str(w) and "dropped" in str(w) for w in rep.warnings)
    rep = validate(raw, spec, missing_items="keep")
    assert rep.dropped_rows == 0 and rep.rows == N and rep.missing_items == missing
    with pytest.raises(DataError, match=f"{missing} interaction rows"):
        validate(raw, spec, missing_items="error")


def test_clean_data_passes_with_counts(tmp_path):
    paths = write(tmp_path, {"interactions.csv": csv_text(good_interactions()),
                             "users.csv": csv_text(good_users()), "items.csv": csv_text(good_items())})
    raw, spec, rep = check(paths)
    assert rep.warnings == [] and rep.rows == N and rep.users == 8 and rep.items == 11
    d = rep.to_dict()
    assert d["rows"] == N and d["warnings"] == [] and json.dumps(d)


def test_numeric_missing_values_are_imputed_with_a_warning(tmp_path):
    paths = write(tmp_path, {"interactions.csv": csv_text(good_interactions()),
                             "users.csv": csv_text(put(good_users(), 8, "age", None))})
    _, spec, rep = check(paths)
    assert spec.numeric == {"age": "user"}
    w = [w for w in rep.warnings if w.column == "age"]
    assert w and w[0].rows == [8] and "median" in w[0].what


def test_leakage_warnings(tmp_path):
    df = good_interactions()
    df["score_x2"] = df["rating"] * 2 + 0.01 * np.arange(N) % 2      # nearly equals the rating label
    df["liked_flag"] = np.where(df["like"] == 1, "yes", "no")         # the like label, re-encoded
    df["noise"] = np.random.default_rng(0).normal(size=N)
    paths = write(tmp_path, {"interactions.csv": csv_text(df)})
    raw = load_data(paths)
    spec = DataSpec(user_id="user_id", item_id="item_id", labels={"like": "binary", "rating": "regression"},
                    numeric={"score_x2": "context", "noise": "context"}, categorical={"liked_flag": "context"})
    rep = validate(raw, spec)
    leaks = {(w.column, w.what.split("label '")[1].split("'")[0]) for w in rep.warnings if "leakage" in w.what}
    assert ("score_x2", "rating") in leaks and ("liked_flag", "like") in leaks
    assert ("score_x2", "like") in leaks  # like = rating >= 4 is a threshold of the feature
    assert not any(c == "noise" for c, _ in leaks)


def test_user_feature_leaking_through_the_join(tmp_path):
    inter = good_interactions()
    inter["click"] = (inter["user_id"] % 2).astype(int)       # each user always / never clicks
    users = good_users().assign(segment=lambda d: np.where(d["user_id"] % 2 == 1, "odd", "even"))
    paths = write(tmp_path, {"interactions.csv": csv_text(inter), "users.csv": csv_text(users)})
    raw = load_data(paths)
    spec = DataSpec(user_id="user_id", item_id="item_id", labels={"click": "binary"},
                    categorical={"segment": "user"})
    rep = validate(raw, spec)
    assert any(w.column == "segment" and "leakage" in w.what and w.file == "users.csv" for w in rep.warnings)


def test_other_warnings_missing_share_constant_duplicates(tmp_path):
    df = good_interactions()
    df["device"] = ["phone" if k % 4 == 0 else None for k in range(N)]   # 75 % missing
    df["country"] = "FR"                                                   # constant
    df = pd.concat([df, df.iloc[[3, 4]]], ignore_index=True)               # two repeated pairs
    paths = write(tmp_path, {"interactions.csv": csv_text(df)})
    raw = load_data(paths)
    spec = DataSpec(user_id="user_id", item_id="item_id", labels={"click": "binary"},
                    categorical={"device": "context", "country": "context"})
    rep = validate(raw, spec)
    by_col = {w.column: w for w in rep.warnings}
    assert "missing" in by_col["device"].what
    assert "single value" in by_col["country"].what
    assert rep.duplicate_interactions == 2
    dup = [w for w in rep.warnings if "repeat" in w.what]
    assert dup and dup[0].rows == [N + 1, N + 2]


def test_uploaded_zip_limits(tmp_path, monkeypatch):
    import io
    from mtlrec.data import limits
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k in range(limits.MAX_FILES + 1):
            zf.writestr(f"part{k}.csv", "a,b\n1,2\n")
    with pytest.raises(DataError, match="holds 65 files") as ei:
        load_uploaded([("many.zip", buf.getvalue())])
    assert ei.value.file == "many.zip"
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", 1000)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("interactions.csv", "user_id,item_id,click\n" + "1,2,0\n" * 1000)
    with pytest.raises(DataError, match="size limit") as ei:
        load_uploaded([("big.zip", buf.getvalue())])
    assert "interactions.csv" in str(ei.value)
    with pytest.raises(DataError, match="not a readable zip"):
        load_uploaded([("broken.zip", b"PK\x03\x04 nothing else")])
