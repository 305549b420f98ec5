"""What a recommendation card shows about an item: its title and its text/feature columns,
never a column whose role is "ignore" (e.g. the IMDb URL of MovieLens 100K's u.item)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtlrec.data.raw import RawData
from mtlrec.data.roles import DataSpec
from mtlrec.prep import PrepConfig, prepare

URL = "http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)"


def _movies_like_ml100k():
    """Interactions plus an items table laid out like MovieLens 100K's u.item (with its IMDb URL)."""
    rng = np.random.default_rng(0)
    n_users, n_items = 20, 12
    u = np.repeat(np.arange(n_users), 6)
    i = np.concatenate([rng.choice(n_items, 6, replace=False) for _ in range(n_users)])
    inter = pd.DataFrame({"user_id": u, "item_id": i, "rating": rng.integers(1, 6, len(u)).astype(float)})
    items = pd.DataFrame({"item_id": np.arange(n_items),
                          "title": [f"Film {k} (1995)" for k in range(n_items)],
                          "release_date": ["01-Jan-1995"] * n_items,
                          "imdb_url": [URL.replace("Toy", f"Toy{k}") for k in range(n_items)],
                          "description": [f"A story about {k} friends." for k in range(n_items)],
                          "genres": ["Comedy|Drama" if k % 2 else "Action" for k in range(n_items)]})
    raw = RawData(interactions=inter, items=items, sources={"interactions": "u.data", "items": "u.item"},
                  format="ml-100k")
    # release_date and imdb_url keep the role "ignore" (not in the spec)
    spec = DataSpec(user_id="user_id", item_id="item_id", labels={"rating": "regression"},
                    categorical={"genres": "item"}, text={"title": "item", "description": "item"})
    return raw, spec


def _recs(ds, items):
    return [{"item": str(it), "score": 0.5 - 0.01 * k, "tasks": {"rating": 3.5}} for k, it in enumerate(items)]


def test_cards_show_title_and_feature_columns_never_ignored_ones():
    from mtlrec.serve.recommend import item_columns
    from mtlrec.app.workflow import effective_spec, rec_frame
    raw, spec = _movies_like_ml100k()
    # language-model features off (the default): the text columns stay known as text
    ds = prepare(raw, effective_spec(spec, {"enabled": False, "columns": []}), PrepConfig(valid_frac=0.2, test_frac=0.2))
    assert "imdb_url" in ds.item_info.columns          # the raw display table still has it ...
    title, shown = item_columns(ds)
    assert title == "title" and "imdb_url" not in shown and "release_date" not in shown
    assert shown[:1] == ["description"] and "genres" in shown
    frame = rec_frame(_recs(ds, ds.item_ids[:5]), ds)  # ... the cards do not
    for row in frame.to_dict("records"):
        assert row["title"].startswith("Film ")
        assert "imdb" not in row["text"] and "http" not in row["text"] and "1995" not in row["text"]
        assert "A story about" in row["text"]


def test_recommend_records_carry_no_ignored_columns(tmp_path):
    from mtlrec.config import RunConfig
    from mtlrec.serve.recommend import recommend
    from mtlrec.runs.load import load_run
    from mtlrec.training.pipeline import run_training
    raw, spec = _movies_like_ml100k()
    ds = prepare(raw, spec, PrepConfig(valid_frac=0.2, test_frac=0.2))
    cfg = RunConfig.from_dict({"tasks": [{"name": "rating", "type": "regression"}],
                               "model": {"arch": "shared_bottom", "embedding_dim": 4},
                               "train": {"epochs": 1, "device": "cpu", "ranking_k": 0}})
    run_training(cfg, run_dir=tmp_path / "run", dataset=ds)
    recs = recommend(load_run(tmp_path / "run"), ds.user_ids[0], k=3)
    assert recs and all("imdb_url" not in r and "release_date" not in r for r in recs)
    assert all(r["title"].startswith("Film ") and "description" in r for r in recs)


def test_without_a_recorded_spec_only_the_title_is_shown():
    from _fixtures_train import make_dataset
    from mtlrec.app.workflow import rec_frame
    ds = make_dataset(n_users=5, n_items=4, n_rows=40)
    ds.item_info["homepage"] = "http://example.com"
    frame = rec_frame(_recs(ds, ds.item_ids[:2]), ds)
    assert list(frame["title"]) == ["Movie 0", "Movie 1"] and list(frame["text"]) == ["", ""]
