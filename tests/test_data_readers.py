"""Readers and role suggestion on the formats users bring (files written here) and on the real datasets."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtlrec.data import (DataSpec, load_census, load_data, load_uploaded, suggest_spec, summarize, validate)
from mtlrec.errors import DataError

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def table(n: int = 30) -> pd.DataFrame:
    i = np.arange(n)
    return pd.DataFrame({"userId": i % 6 + 1, "movieId": i % 9 + 1, "rating": (i % 5) + 1.0,
                         "title": [f"Amélie {k}" for k in i], "timestamp": 1_500_000_000 + i})


@pytest.mark.parametrize("sep", [",", "\t", ";", "|"])
def test_delimiter_is_detected(sep, tmp_path):
    p = tmp_path / "ratings.txt"
    p.write_text(table().to_csv(index=False, sep=sep), encoding="utf-8")
    raw = load_data(p)
    assert list(raw.interactions.columns) == ["userId", "movieId", "rating", "title", "timestamp"]
    assert raw.interactions.shape == (30, 5) and raw.interactions["title"].iloc[0] == "Amélie 0"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "latin-1", "cp1252"])
def test_encodings(encoding, tmp_path):
    p = tmp_path / "interactions.csv"
    df = table()
    if encoding == "cp1252":
        df["title"] = df["title"] + " ’n’ €"   # curly quote and euro sign of Windows exports
    p.write_bytes(df.to_csv(index=False).encode(encoding))
    raw = load_data(p)
    assert raw.interactions["title"].tolist() == df["title"].tolist()
    assert raw.interactions.columns[0] == "userId"          # no BOM glued to the first name
    assert raw.interactions["title"].iloc[3].startswith("Amélie 3")  # accents decoded right


def test_parquet_and_folder_of_generic_tables(tmp_path):
    inter = table()
    inter.to_parquet(tmp_path / "interactions.parquet")
    pd.DataFrame({"movieId": range(1, 10), "genres": ["Drama|Comedy", "Action"] * 4 + ["Drama"]}).to_csv(
        tmp_path / "items.csv", index=False)
    pd.DataFrame({"userId": range(1, 7), "age": [20, 30, 40, 50, 60, 70]}).to_csv(tmp_path / "users.csv", index=False)
    (tmp_path / "README.txt").write_text("not data")
    raw = load_data(tmp_path)
    assert raw.format == "mixed"
    assert raw.sources == {"interactions": "interactions.parquet", "items": "items.csv", "users": "users.csv"}
    pd.testing.assert_frame_equal(raw.interactions, inter, check_dtype=False)
    spec = suggest_spec(raw)
    assert (spec.user_id, spec.item_id, spec.timestamp) == ("userId", "movieId", "timestamp")
    assert spec.labels == {"rating": "regression"} and spec.multivalued == {"genres": "item"}
    assert spec.numeric == {"age": "user"}
    # the same files as a list of paths, and as an uploaded zip
    again = load_data(sorted(tmp_path.glob("*")))
    assert again.sources == raw.sources
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in tmp_path.iterdir():
            zf.write(f, f"export/{f.name}")
    up = load_uploaded([("export.zip", buf.getvalue())])
    assert up.sources == raw.sources and len(up.interactions) == 30


def test_pandas_index_column_is_dropped(tmp_path):
    p = tmp_path / "interactions.csv"
    table().to_csv(p)  # index=True: the header starts with an empty name
    raw = load_data(p)
    assert list(raw.interactions.columns) == list(table().columns)


def test_trailing_delimiter_and_crlf(tmp_path):
    p = tmp_path / "interactions.tsv"
    p.write_bytes(b"user_id\titem_id\tclick\t\r\n1\t2\t0\t\r\n2\t3\t1\t\r\n")
    df = load_data(p).interactions
    assert list(df.columns) == ["user_id", "item_id", "click"] and df["click"].tolist() == [0, 1]
    p.write_bytes(b"user_id\titem_id\tclick\t\n1\t2\t0\t\n2\t3\t1\tx\n")
    with pytest.raises(DataError, match="column 4 of the header has no name") as ei:
        load_data(p)
    assert ei.value.rows == [2]


def test_semicolon_file_with_decimal_commas(tmp_path):
    p = tmp_path / "ratings.csv"
    p.write_text("user;item;rating\n1;10;3,5\n2;11;4\n3;12;-0,5\n")
    df = load_data(p).interactions
    assert df["rating"].tolist() == [3.5, 4.0, -0.5]


def test_implicit_feedback_without_labels_is_usable(tmp_path):
    p = tmp_path / "events.csv"
    p.write_text("user_id,item_id\n" + "".join(f"{k % 7},{k % 5}\n" for k in range(40)))
    raw = load_data(p)
    spec = suggest_spec(raw)
    assert spec.labels == {} and (spec.user_id, spec.item_id) == ("user_id", "item_id")
    rep = validate(raw, spec)
    assert rep.rows == 40 and any("implicit feedback" in w.what for w in rep.warnings)
    with pytest.raises(DataError, match="nothing to learn"):
        validate(raw, DataSpec(user_id="user_id"))


def test_unclassifiable_second_file(tmp_path):
    (tmp_path / "interactions.csv").write_text(table().to_csv(index=False))
    (tmp_path / "stuff.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="cannot tell which table") as ei:
        load_data(tmp_path)
    assert ei.value.file == "stuff.csv"


def write_ml100k(folder: Path) -> None:
    rows = [(u, i, (u * i) % 5 + 1, 880_000_000 + u * 100 + i) for u in range(1, 6) for i in range(1, 8)]
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    items = []
    for i in range(1, 8):
        flags = ["0"] * 19
        flags[1 + i % 3] = "1"      # Action / Adventure / Animation
        flags[8] = "1" if i % 2 else "0"  # Drama
        items.append("|".join([str(i), f"Café Film {i} (1995)", "01-Jan-1995", "", f"http://imdb/{i}"] + flags))
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (folder / "u.user").write_text("".join(f"{u}|{20 + u}|{'MF'[u % 2]}|{['writer', 'artist'][u % 2]}|0{u}000\n"
                                           for u in range(1, 6)))
    (folder / "u.genre").write_text("unknown|0\n")


def test_movielens_100k(tmp_path):
    write_ml100k(tmp_path)
    raw = load_data(tmp_path)
    assert raw.format == "ml-100k" and raw.interactions.shape == (35, 4)
    assert raw.items.loc[0, "title"] == "Café Film 1 (1995)"
    assert raw.items.loc[0, "genres"] == "Adventure|Drama" and raw.items.loc[1, "genres"] == "Animation"
    assert "video_release_date" not in raw.items  # an empty column is dropped
    spec = suggest_spec(raw)
    assert (spec.user_id, spec.item_id, spec.timestamp) == ("user_id", "item_id", "timestamp")
    assert spec.labels == {"rating": "regression"} and spec.multivalued == {"genres": "item"}
    assert spec.text == {"title": "item"}
    assert spec.categorical == {"gender": "user", "occupation": "user", "zip_code": "user"}
    assert spec.numeric == {"age": "user"}
    assert "imdb_url" not in spec.roles() and "release_date" not in spec.roles()
    assert validate(raw, spec).rows == 35


def test_movielens_1m_dat_files(tmp_path):
    (tmp_path / "ratings.dat").write_text("".join(f"{u}::{i}::{(u + i) % 5 + 1}::{978300760 + i}\n"
                                                  for u in range(1, 5) for i in range(1, 8)))
    (tmp_path / "movies.dat").write_bytes("".join(f"{i}::Film {i} à (2000)::Drama|{'Comedy' if i % 2 else 'War'}\n"
                                                  for i in range(1, 8)).encode("latin-1"))
    (tmp_path / "users.dat").write_text("".join(f"{u}::{'MF'[u % 2]}::25::{u}::0{u}123\n" for u in range(1, 5)))
    raw = load_data(tmp_path)
    assert raw.format == "ml-1m" and raw.interactions.shape == (28, 4)
    assert raw.items.loc[0, "title"] == "Film 1 à (2000)"
    spec = suggest_spec(raw)
    assert spec.labels == {"rating": "regression"} and spec.text == {"title": "item"}
    assert spec.multivalued == {"genres": "item"}
    assert spec.categorical["gender"] == "user" and spec.categorical["zip_code"] == "user"


def test_movielens_latest_tags_become_tagged_signal(tmp_path):
    pd.DataFrame({"userId": [1, 1, 2, 2, 3] * 6, "movieId": list(range(1, 31)), "rating": [4.0, 3.5] * 15,
                  "timestamp": range(30)}).to_csv(tmp_path / "ratings.csv", index=False)
    pd.DataFrame({"movieId": range(1, 31), "title": [f"M{k}" for k in range(1, 31)],
                  "genres": ["Drama|Comedy"] * 30}).to_csv(tmp_path / "movies.csv", index=False)
    pd.DataFrame({"userId": [1, 1, 2, 9], "movieId": [1, 1, 3, 5], "tag": ["fun", "cute", "dark", "x"],
                  "timestamp": [1, 2, 3, 4]}).to_csv(tmp_path / "tags.csv", index=False)
    raw = load_data(tmp_path)
    assert raw.format == "movielens" and raw.sources["tags"] == "tags.csv"
    assert raw.interactions["tagged"].tolist()[:4] == [1, 0, 1, 0] and raw.interactions["tagged"].sum() == 2
    assert len(raw.extra["tags"]) == 4 and raw.meta["tagged_pairs_without_rating"] == 1
    assert suggest_spec(raw).labels["tagged"] == "binary"


def test_recbole_atomic_files(tmp_path):
    inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
        f"u{u}\ti{i}\t{(u + i) % 5 + 1}\t{1000 + u * 10 + i}\n" for u in range(4) for i in range(6))
    item = "item_id:token\tmovie_title:token_seq\tgenre:token_seq\tvec:float_seq\n" + "".join(
        f"i{i}\tThe Movie {i}\tAction {'Drama' if i % 2 else 'Comedy'}\t0.1 0.2\n" for i in range(6))
    (tmp_path / "ml.inter").write_text(inter)
    (tmp_path / "ml.item").write_text(item)
    raw = load_data(tmp_path)
    assert raw.format == "recbole" and raw.sources == {"interactions": "ml.inter", "items": "ml.item"}
    assert raw.interactions["user_id"].iloc[0] == "u0" and raw.interactions["rating"].dtype == "float64"
    assert raw.items.loc[1, "genre"] == "Action|Drama"
    assert raw.meta["recbole_types"]["items"]["genre"] == "token_seq"
    spec = suggest_spec(raw)
    assert spec.labels == {"rating": "regression"} and spec.multivalued == {"genre": "item"}
    assert spec.text == {"movie_title": "item"} and raw.items.loc[2, "movie_title"] == "The Movie 2"
    assert spec.multilabel_sep == "|" and "vec" not in spec.roles()
    (tmp_path / "ml.inter").write_text("user_id\titem_id\n1\t2\n")
    with pytest.raises(DataError, match="no ':type'") as ei:
        load_data(tmp_path)
    assert ei.value.file == "ml.inter"


def test_shipped_sample_roles():
    if not (SAMPLE / "interactions.csv").exists():
        pytest.skip("sample_data not generated yet")
    raw = load_data(SAMPLE)
    spec = suggest_spec(raw)
    assert (spec.user_id, spec.item_id, spec.timestamp) == ("user_id", "item_id", "timestamp")
    assert spec.labels == {"click": "binary", "like": "binary", "rating": "regression",
                           "watch_fraction": "regression"}
    assert spec.multivalued == {"genres": "item"}
    assert spec.categorical == {"gender": "user", "occupation": "user"}
    assert spec.numeric == {"age": "user", "year": "item"}
    assert spec.text == {"title": "item", "description": "item"}
    assert DataSpec.from_json(spec.to_json()) == spec


def test_ml_latest_small(shared_datasets):
    raw = load_data(shared_datasets / "ml-latest-small")
    spec = suggest_spec(raw)
    assert spec.labels["rating"] == "regression" and spec.multivalued == {"genres": "item"}
    assert spec.text == {"title": "item"}
    s = summarize(raw, spec)
    assert (s["rows"], s["users"], s["items"], s["catalog_items"]) == (100836, 610, 9724, 9742)
    assert "genres" not in s["labels"] and s["roles"]["genres"] == "multi-valued"
    assert s["labels"]["rating"]["histogram"]["values"][0] == 0.5


def test_census_through_public_api(shared_datasets):
    raw, spec = load_census(shared_datasets / "census-income-kdd")
    df = raw.interactions
    assert df.shape == (99762, 41)
    assert spec.labels == {"income_50k": "binary", "never_married": "binary"}
    assert spec.user_id is None and spec.item_id is None
    assert int(df["income_50k"].sum()) == 6186 and int(df["never_married"].sum()) == 43143
    assert "marital_stat" not in df and "instance_weight" not in df  # no label leak, no sampling weight
    assert set(spec.roles()) == set(df.columns)
    assert spec.numeric["age"] == "context" and spec.categorical["education"] == "context"
    rep = validate(raw, spec)
    assert rep.rows == 99762 and rep.users is None and not any("leakage" in w.what for w in rep.warnings)
    assert suggest_spec(load_data(shared_datasets / "census-income-kdd")) == spec


def test_reader_level_failures_name_the_file(tmp_path):
    (tmp_path / "census-income.test.gz").write_bytes(b"38, Private, 6\n")
    with pytest.raises(DataError, match="columns.txt") as ei:
        load_data(tmp_path / "census-income.test.gz")
    assert ei.value.file == "census-income.test.gz"
    d = tmp_path / "rb"
    d.mkdir()
    (d / "x.inter").write_text("user_id:token\titem_id:token\trating:float\nu1\ti1\tgood\n")
    with pytest.raises(DataError) as ei:
        load_data(d)
    assert ei.value.file == "x.inter"
    with pytest.raises(DataError, match="no such file"):
        load_data(tmp_path / "missing.csv")


def test_uploaded_files_movielens_and_utf16():
    ratings = "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{(u + i) % 5 + 1}.0,{u * 100 + i}\n"
                                                             for u in range(1, 6) for i in range(1, 6))
    movies = "movieId,title,genres\n" + "".join(f"{i},Film {i},Drama|{'War' if i % 2 else 'Comedy'}\n"
                                                for i in range(1, 6))
    raw = load_uploaded([("ratings.csv", ratings.encode()), ("movies.csv", movies.encode())])
    assert raw.format == "movielens" and len(raw.interactions) == 25 and len(raw.items) == 5
    assert raw.sources == {"interactions": "ratings.csv", "items": "movies.csv"}
    # Excel's "Unicode text": UTF-16 with a BOM, tab separated
    raw = load_uploaded([("export.txt", ratings.replace(",", "\t").encode("utf-16"))])
    assert list(raw.interactions.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert raw.interactions["rating"].iloc[0] == 3.0


@pytest.mark.parametrize("space", [" ", "\t", "\xa0", "\u2003", "\u3000", "\u202f"])
def test_text_values_are_stripped_of_any_white_space_and_empty_ones_are_missing(space):
    from mtlrec.data.tables import read_table
    text = f"user,item,device\n1,1,web{space}\n2,2,{space}app\n3,3,tv\n4,4,\"\"\n".encode()
    df = read_table("interactions.csv", text)
    assert df["device"].iloc[:3].tolist() == ["web", "app", "tv"] and pd.isna(df["device"].iloc[3])
    clean = read_table("interactions.csv", b"user,item,device\n1,1,web\n2,2,a b\n")
    assert clean["device"].tolist() == ["web", "a b"]
