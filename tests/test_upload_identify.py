"""Uploads of every listed layout, as single files under their own or other names: each file is
identified by its content (MovieLens 100K/1M, RecBole headers) or its id columns, and an upload
that cannot be sorted says which tables were found, what is missing and how to fix it.

All files are written here, in the exact layouts of the public datasets.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtlrec.data import load_uploaded, suggest_spec, validate
from mtlrec.data.files import UPLOAD_EXTENSIONS
from mtlrec.data.readers import load_data, reading_notes
from mtlrec.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def ml100k_files(n_users: int = 12, n_items: int = 9, n_ratings: int = 80) -> dict[str, bytes]:
    """MovieLens 100K layout: u.data (TAB: user item rating timestamp), u.item ('|', Latin-1,
    id|title|release date|video release date|IMDb URL|19 genre flags), u.user ('|':
    id|age|gender|occupation|zip), and the side files u.genre, u.occupation, u.info."""
    rng = np.random.default_rng(0)
    pairs = rng.choice(n_users * n_items, size=n_ratings, replace=False)
    data = "".join(f"{p // n_items + 1}\t{p % n_items + 1}\t{rng.integers(1, 6)}\t{874_724_710 + 37 * k}\n"
                   for k, p in enumerate(pairs))
    items = []
    for i in range(1, n_items + 1):
        flags = ["0"] * 19
        flags[1 + i % 18] = "1"
        flags[8] = "1" if i % 2 else "0"              # Drama
        items.append("|".join([str(i), f"Café Noir {i} (1995)", "01-Jan-1995", "",
                               f"http://us.imdb.com/M/title-exact?Caf%E9%20{i}"] + flags))
    users = "".join(f"{u}|{18 + u}|{'MF'[u % 2]}|{['writer', 'artist', 'student'][u % 3]}|{1000 * u:05d}\n"
                    for u in range(1, n_users + 1))
    return {"u.data": data.encode(), "u.item": ("\n".join(items) + "\n").encode("latin-1"),
            "u.user": users.encode(), "u.genre": b"unknown|0\nAction|1\nAdventure|2\n",
            "u.occupation": b"administrator\nartist\nwriter\n", "u.info": b"12 users\n9 items\n80 ratings\n"}


def zipped(files: dict[str, bytes], folder: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(folder + name, data)
    return buf.getvalue()


def test_uploader_accepts_every_listed_extension():
    """Every file of the layouts docs/data-formats.md lists can be picked in the uploader (its type list)."""
    names = ["u.data", "u.item", "u.user", "u.genre", "u.occupation", "u.info", "ratings.dat", "movies.dat",
             "ml-100k.inter", "ml-100k.user", "ml-100k.item", "interactions.csv", "ratings.tsv", "export.txt",
             "items.parquet", "items.pq", "ml-100k.zip", "census-income.data.gz", "census-income.test",
             "columns.txt"]
    for name in names:
        assert Path(name).suffix.lstrip(".") in UPLOAD_EXTENSIONS, name
    page = (ROOT / "pages" / "data.py").read_text()
    assert "type=list(UPLOAD_EXTENSIONS)" in page          # the page uses the library's one list


def test_movielens_100k_uploaded_file_by_file():
    files = ml100k_files()
    raw = load_uploaded(list(files.items()))
    assert raw.format == "ml-100k"
    assert raw.sources == {"interactions": "u.data", "users": "u.user", "items": "u.item"}
    assert raw.interactions.shape == (80, 4) and raw.users.shape == (12, 5)
    assert raw.items.loc[0, "title"] == "Café Noir 1 (1995)"            # Latin-1 decoded
    assert raw.items.loc[0, "genres"] == "Adventure|Drama"
    assert set(raw.meta["ignored"]) == {"u.genre", "u.occupation", "u.info"}
    notes = reading_notes(raw)
    assert "u.data → interactions (MovieLens 100K ratings: u.data layout)" in notes
    assert any(n.startswith("u.genre ignored:") for n in notes)
    spec = suggest_spec(raw)
    assert (spec.user_id, spec.item_id, spec.timestamp) == ("user_id", "item_id", "timestamp")
    assert validate(raw, spec).rows == 80


def test_movielens_100k_under_other_names_and_as_zip():
    files = ml100k_files()
    renamed = load_uploaded([("ratings_export.txt", files["u.data"]), ("films.txt", files["u.item"]),
                             ("people.tsv", files["u.user"])])
    assert renamed.format == "ml-100k"
    assert renamed.sources == {"interactions": "ratings_export.txt", "users": "people.tsv", "items": "films.txt"}
    assert renamed.meta["layouts"]["items"] == "MovieLens 100K movies: u.item layout"
    # the downloaded folder zipped, ready-made splits and README included
    extra = {"u1.base": files["u.data"], "u1.test": files["u.data"], "ua.test": files["u.data"],
             "README": b"MovieLens 100K", "allbut.pl": b"#!/usr/bin/perl\n"}
    raw = load_uploaded([("ml-100k.zip", zipped({**files, **extra}, "ml-100k/"))])
    assert raw.format == "ml-100k" and raw.sources == {"interactions": "u.data", "users": "u.user", "items": "u.item"}
    pd.testing.assert_frame_equal(raw.items, load_uploaded(list(files.items())).items)


def test_movielens_1m_dat_files_by_content(tmp_path):
    ratings = "".join(f"{u}::{i}::{(u + i) % 5 + 1}::{978_300_760 + i}\n" for u in range(1, 6) for i in range(1, 8))
    movies = "".join(f"{i}::Film {i} à (2000)::Drama|{'Comedy' if i % 2 else 'War'}\n" for i in range(1, 8))
    users = "".join(f"{u}::{'MF'[u % 2]}::25::{u}::0{u}123\n" for u in range(1, 6))
    tags = "".join(f"{u}::{u + 1}::funny tag::{1_100_000_000 + u}\n" for u in range(1, 4))   # MovieLens 10M
    raw = load_uploaded([("r.dat", ratings.encode()), ("m.dat", movies.encode("latin-1")),
                         ("u.dat", users.encode()), ("tags.dat", tags.encode())])
    assert raw.format == "ml-1m"
    assert raw.sources == {"interactions": "r.dat", "users": "u.dat", "items": "m.dat"}
    assert raw.interactions.shape == (35, 4) and raw.items.loc[0, "title"] == "Film 1 à (2000)"
    assert "tags.dat" in raw.meta["ignored"]
    # the usual names from a folder still work
    for name, text in (("ratings.dat", ratings), ("movies.dat", movies), ("users.dat", users)):
        (tmp_path / name).write_bytes(text.encode("latin-1"))
    assert load_data(tmp_path).sources == {"interactions": "ratings.dat", "users": "users.dat", "items": "movies.dat"}


def test_recbole_atomic_files_uploaded_and_renamed():
    inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
        f"{u}\t{i}\t{(u + i) % 5 + 1}\t{1000 + u * 10 + i}\n" for u in range(1, 5) for i in range(1, 7))
    user = "user_id:token\tage:token\tgender:token\n" + "".join(f"{u}\t{20 + u}\t{'MF'[u % 2]}\n" for u in range(1, 5))
    item = "item_id:token\tmovie_title:token_seq\tclass:token_seq\n" + "".join(
        f"{i}\tThe Movie {i}\tAction Drama\n" for i in range(1, 7))
    raw = load_uploaded([("ml-100k.inter", inter.encode()), ("ml-100k.user", user.encode()),
                         ("ml-100k.item", item.encode())])
    assert raw.format == "recbole" and raw.items.loc[0, "class"] == "Action|Drama"
    assert raw.sources == {"interactions": "ml-100k.inter", "users": "ml-100k.user", "items": "ml-100k.item"}
    # the same atomic files saved as .txt: the name:type header says RecBole, the id columns say which table
    raw = load_uploaded([("a.txt", inter.encode()), ("b.txt", user.encode()), ("c.txt", item.encode())])
    assert raw.format == "recbole" and raw.sources == {"interactions": "a.txt", "users": "b.txt", "items": "c.txt"}
    assert raw.meta["recbole_types"]["interactions"]["rating"] == "float"


def test_generic_tables_under_odd_names_sorted_by_their_id_columns():
    inter = pd.DataFrame({"customer_id": [1, 2, 3, 1], "sku": [10, 11, 10, 12], "click": [0, 1, 1, 0]})
    users = pd.DataFrame({"customer_id": [1, 2, 3], "age": [31, 45, 27]})
    items = pd.DataFrame({"sku": [10, 11, 12], "title": ["Kettle", "Mug", "Teapot"]})
    buf = io.BytesIO()
    items.to_parquet(buf)
    raw = load_uploaded([("export_2024-05.csv", inter.to_csv(index=False).encode()),
                         ("crm dump.tsv", users.to_csv(index=False, sep="\t").encode()),
                         ("shop.parquet", buf.getvalue())])
    assert raw.sources == {"interactions": "export_2024-05.csv", "users": "crm dump.tsv", "items": "shop.parquet"}
    assert raw.format == "mixed" and list(raw.items["title"]) == ["Kettle", "Mug", "Teapot"]
    notes = reading_notes(raw)
    assert "export_2024-05.csv → interactions (recognised by its id columns customer_id, sku)" in notes
    assert "crm dump.tsv → users (recognised by its id column customer_id)" in notes
    # a headerless file in the u.data layout is read as one whatever its name
    one = load_uploaded([("interactions.tsv", b"1\t10\t4\t881250949\n2\t11\t5\t881250950\n")])
    assert list(one.interactions.columns) == ["user_id", "item_id", "rating", "timestamp"]


def test_missing_interactions_says_what_was_found_and_how_to_fix():
    files = ml100k_files()
    with pytest.raises(DataError) as ei:
        load_uploaded([("u.item", files["u.item"]), ("u.user", files["u.user"]), ("u.genre", files["u.genre"])])
    e = ei.value
    assert "no interactions table" in e.what
    assert "u.item → items" in e.what and "u.user → users" in e.what and "missing: interactions" in e.what
    assert "u.data" in e.fix and "zip" in e.fix
    assert "cannot tell" not in str(e)                 # the old, misleading message


def test_unidentifiable_file_lists_the_tables_found():
    inter = b"user_id,item_id,click\n1,2,0\n2,3,1\n"
    with pytest.raises(DataError) as ei:
        load_uploaded([("interactions.csv", inter), ("notes.csv", b"a,b\n1,2\n")])
    e = ei.value
    assert e.file == "notes.csv" and "cannot tell which table" in e.what
    assert "(a, b)" in e.what and "interactions.csv → interactions" in e.what
    assert "interactions.csv" in e.fix and "zip" in e.fix
    with pytest.raises(DataError) as ei:                # two unknown files and no interactions
        load_uploaded([("x.csv", b"a,b\n1,2\n"), ("y.csv", b"c,d\n1,2\n"), ("items.csv", b"item_id,t\n1,a\n")])
    assert "items.csv → items" in ei.value.what and "missing: interactions" in ei.value.what
    with pytest.raises(DataError) as ei:                # two files claim the same table
        load_uploaded([("clicks.csv", inter), ("more.csv", inter)])
    assert "two files look like the interactions table" in ei.value.what and "clicks.csv" in ei.value.what
    with pytest.raises(DataError) as ei:                # only side files
        load_uploaded([("u.genre", b"unknown|0\n"), ("u.info", b"943 users\n")])
    assert "no data table" in ei.value.what and "u.genre" in ei.value.what and "u.data" in ei.value.fix


def test_uploaded_workspace_reads_movielens_100k_files():
    from mtlrec.app.workflow import uploaded_workspace
    ws = uploaded_workspace(list(ml100k_files().items()))
    assert ws["raw"].format == "ml-100k" and ws["spec"].labels["rating"] == "regression"
    assert {t["label"] for t in ws["tasks"]} == {"rating"}             # genres: an item feature
    assert ws["spec"].multivalued == {"genres": "item"}
