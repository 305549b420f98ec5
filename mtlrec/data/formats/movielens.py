"""MovieLens: the header-less 100K files (``u.data`` tab-separated; ``u.item`` / ``u.user`` '|'-separated,
Latin-1; the 19 genre flags of u.item become one pipe-joined ``genres`` column), the '::'-separated
1M / 10M ``.dat`` files, and the ``tagged`` column that the latest / 25M ``tags.csv`` puts on the ratings."""
from __future__ import annotations

import csv
import re

import numpy as np
import pandas as pd

from mtlrec.data.files import decode_check
from mtlrec.data.limits import as_data_error
from mtlrec.data.mapped import open_data, replace_bytes
from mtlrec.data.tables import strip_strings
from mtlrec.errors import DataError

ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western"]

# layout -> (table, how it is described in messages)
LAYOUTS = {
    "ml100k-data": ("interactions", "MovieLens 100K ratings: u.data layout"),
    "ml100k-item": ("items", "MovieLens 100K movies: u.item layout"),
    "ml100k-user": ("users", "MovieLens 100K users: u.user layout"),
    "ml1m-ratings": ("interactions", "MovieLens 1M/10M ratings: '::'-separated ratings.dat layout"),
    "ml1m-movies": ("items", "MovieLens 1M/10M movies: '::'-separated movies.dat layout"),
    "ml1m-users": ("users", "MovieLens 1M users: '::'-separated users.dat layout"),
}


@as_data_error
def _read_headerless(name: str, data: bytes, sep: str, names: list[str], *, encoding: str | None = None) -> pd.DataFrame:
    data, enc = decode_check(name, data)
    try:
        with open_data(data) as fh:
            df = pd.read_csv(fh, sep=sep, header=None, names=names, encoding=encoding or enc,
                             engine="c" if len(sep) == 1 else "python", on_bad_lines="error",
                             quoting=csv.QUOTE_NONE, index_col=False)
    except pd.errors.ParserError as e:
        m = re.search(r"line (\d+)", str(e))
        raise DataError(f"the file does not have the expected {len(names)} '{sep}'-separated fields "
                        f"({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})", file=name,
                        rows=[int(m.group(1))] if m else None,
                        fix="use the original file of the dataset") from None
    if df.empty:
        raise DataError("the file has no data rows", file=name, fix="use the original file of the dataset")
    return strip_strings(df)


def _read_ml100k_data(n: str, b: bytes) -> pd.DataFrame:
    inter = _read_headerless(n, b, "\t", ["user_id", "item_id", "rating", "timestamp"])
    if inter["rating"].isna().all() or inter.shape[1] != 4:
        raise DataError("u.data must have 4 tab-separated fields: user id, item id, rating, timestamp", file=n,
                        fix="use the original u.data of MovieLens 100K")
    return inter


def _read_ml100k_item(n: str, b: bytes) -> pd.DataFrame:
    cols = ["item_id", "title", "release_date", "video_release_date", "imdb_url"] + [f"g{i}" for i in range(19)]
    raw_items = _read_headerless(n, b, "|", cols, encoding="latin-1")
    flags = raw_items[[f"g{i}" for i in range(19)]].fillna(0).to_numpy(dtype=np.int8) == 1
    genre_names = np.array(ML100K_GENRES, dtype=object)
    genres = ["|".join(genre_names[row]) for row in flags]  # 1,682 items: a short loop
    items = raw_items[["item_id", "title", "release_date", "video_release_date", "imdb_url"]].copy()
    items["genres"] = pd.Series(genres, index=items.index, dtype="str").mask(lambda s: s == "")
    return items.dropna(axis=1, how="all")


def _read_ml100k_user(n: str, b: bytes) -> pd.DataFrame:
    return _read_headerless(n, b, "|", ["user_id", "age", "gender", "occupation", "zip_code"])


def _ml1m_reader(cols: list[str]):
    """MovieLens 1M/10M: '::'-separated, Latin-1 (movie titles)."""
    def read(n: str, b: bytes) -> pd.DataFrame:
        return _read_headerless(n, replace_bytes(b, b"::", b"\t"), "\t", cols, encoding="latin-1")
    return read


LAYOUT_READERS = {
    "ml100k-data": _read_ml100k_data, "ml100k-item": _read_ml100k_item, "ml100k-user": _read_ml100k_user,
    "ml1m-ratings": _ml1m_reader(["user_id", "item_id", "rating", "timestamp"]),
    "ml1m-movies": _ml1m_reader(["item_id", "title", "genres"]),
    "ml1m-users": _ml1m_reader(["user_id", "gender", "age", "occupation", "zip_code"]),
}


def add_tagged(inter: pd.DataFrame, tags: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """MovieLens tags: a per-(user, movie) 0/1 column ``tagged`` on the ratings."""
    key = [c for c in ("userId", "movieId") if c in tags.columns and c in inter.columns]
    if len(key) != 2:
        return inter
    pairs = tags[key].drop_duplicates().assign(tagged=np.int8(1))
    merged = inter[key].merge(pairs, on=key, how="left")
    inter = inter.copy()
    inter["tagged"] = merged["tagged"].fillna(0).astype("int8").to_numpy()
    meta["tagged_pairs"] = int(len(pairs))
    meta["tagged_pairs_without_rating"] = int(len(pairs) - int(inter["tagged"].sum()))
    return inter

