"""Item content as input by default (issue 22 item 5): a multi-valued column (genres) is a multihot
feature whose embedding is the mean of its values' embeddings; MovieLens uploads get genres as a
feature (not a label), an item date as a year, and a title turns the text features on."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mtlrec.data.readers import load_data
from mtlrec.data.roles import DataSpec
from mtlrec.data.suggest import suggest_spec
from mtlrec.dataset import FeatureField
from mtlrec.models.base import FeatureInput

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance"]


def test_mean_pooled_embedding_by_hand():
    """Three items: two genres -> the mean of their two rows, one genre -> its row, none -> zeros."""
    fi = FeatureInput([FeatureField("genres", "multihot", "item", dim=3)], embedding_dim=4)
    table = torch.arange(12, dtype=torch.float32).reshape(3, 4)    # class k's row: 4k .. 4k+3
    with torch.no_grad():
        fi.multihot_rows("genres").copy_(table)
    m = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    x = fi({"genres": m}).detach().numpy()
    assert x.tolist() == [[4.0, 5.0, 6.0, 7.0], [4.0, 5.0, 6.0, 7.0], [0.0, 0.0, 0.0, 0.0]]
    assert fi.out_dim == 4 and fi.input_groups() == {"genres": [0, 1, 2, 3]}


def _write_latest(d, n_users: int = 40, n_items: int = 50, per_user: int = 12):
    """A MovieLens latest layout (movies.csv with '|'-joined genres, ratings.csv) whose ratings
    follow the genres; item 0 has no genre ("(no genres listed)" as MovieLens writes it)."""
    rng = np.random.default_rng(0)
    genres = ["|".join(sorted(rng.choice(GENRES, rng.integers(1, 3), replace=False))) for _ in range(n_items)]
    genres[0] = "(no genres listed)"
    d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"movieId": np.arange(1, n_items + 1),
                  "title": [f"Film {i} ({1980 + i % 30})" for i in range(n_items)],
                  "genres": genres}).to_csv(d / "movies.csv", index=False)
    likes = rng.choice(GENRES, n_users)
    rows = []
    for u in range(n_users):
        for k, i in enumerate(rng.choice(n_items, per_user, replace=False)):
            r = 4.5 if likes[u] in genres[i] else 2.0
            rows.append((u + 1, i + 1, r, 1_500_000_000 + 100 * u + k))
    pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(d / "ratings.csv", index=False)
    return d


@pytest.fixture(scope="module")
def latest_run(tmp_path_factory):
    """A 1-epoch MMoE run over a generated MovieLens-latest folder with the suggested roles, saved
    and loaded back from its folder."""
    from mtlrec.config import RunConfig
    from mtlrec.runs.load import load_run
    from mtlrec.training.pipeline import run_training
    d = _write_latest(tmp_path_factory.mktemp("latest") / "ml")
    cfg = RunConfig.from_dict({
        "data": {"paths": [str(d)], "prep": {"min_multivalued_items": 1}},
        "tasks": [{"name": "rating", "type": "regression", "label": "rating"}],
        "model": {"arch": "mmoe", "n_experts": 2, "expert_dims": [8], "tower_dims": [4], "embedding_dim": 4},
        "train": {"epochs": 1, "batch_size": 256, "device": "cpu", "seed": 0, "baselines": False}})
    run_dir = tmp_path_factory.mktemp("run")
    assert run_training(cfg, run_dir=run_dir).status == "finished"
    return load_run(run_dir)


def test_genres_train_as_a_feature_and_the_item_cache_equals_the_full_forward(latest_run):
    from mtlrec.serve import recommend as rec
    ds = latest_run.dataset
    f = ds.field("genres")
    assert (f.kind, f.owner, f.group) == ("multihot", "item", "genres")
    assert "genres" not in [lab.name for lab in ds.labels]
    assert sorted(ds.meta["vocabularies"]["genres"]) == sorted(GENRES + ["(no genres listed)"])
    assert ds.item_table["genres"].sum(axis=1).max() == 2
    # the mean of a trained table: two items with different genres score differently
    assert float(latest_run.model.input.multihot_rows("genres").detach().abs().sum()) > 0
    assert rec.item_split(latest_run) is not None
    for u in (0, 5, 17):
        fast, full = rec.score_items(latest_run, u), rec.score_items(latest_run, u, fast=False)
        assert max(float(np.abs(fast[k] - full[k]).max()) for k in fast) <= 1e-5


def test_explanation_shows_the_genres_group(latest_run):
    from mtlrec.explain.api import explain_recommendation
    ds = latest_run.dataset
    item = next(i for i in range(len(ds.item_ids)) if ds.item_table["genres"][i].sum() == 2)
    out = explain_recommendation(latest_run, ds.user_ids[0], ds.item_ids[item], background=5)
    assert "genres" in out["features"]
    names = [ds.meta["vocabularies"]["genres"][k] for k in np.flatnonzero(ds.item_table["genres"][item])]
    assert out["features"]["genres"]["text"] == "genres = " + ", ".join(names)
    r = out["tasks"]["rating"]
    assert set(r["contributions"]) == {"user id", "item id", "genres"}
    # the waterfall adds up, with the genres' share in it
    assert round(r["base_value"] + sum(r["contributions"].values()) - r["output"], 4) == 0
    row = next(x for x in r["rows"] if x["group"] == "genres")
    assert row["feature"] == out["features"]["genres"]["text"]


def test_suggestion_on_movielens_latest_makes_genres_a_feature(shared_datasets):
    from mtlrec.app.workflow import default_text
    raw = load_data(shared_datasets / "ml-latest-small")
    spec = suggest_spec(raw)
    assert spec.multivalued == {"genres": "item"} and "genres" not in spec.labels
    assert spec.roles()["genres"] == "multi-valued" and spec.multilabel_sep == "|"
    assert spec.text == {"title": "item"}
    assert default_text(spec) == {"enabled": False, "columns": []}      # MTLREC_TEXT_FEATURES=0 (conftest)


def test_a_title_turns_the_text_features_on_by_default(monkeypatch):
    from mtlrec.app.workflow import default_text
    monkeypatch.delenv("MTLREC_TEXT_FEATURES", raising=False)
    assert default_text(DataSpec(user_id="u", item_id="i", text={"title": "item"})) == \
        {"enabled": True, "columns": ["title"]}
    assert default_text(DataSpec(user_id="u", item_id="i"))["enabled"] is False


def test_ml100k_release_date_becomes_the_year(tmp_path):
    """u.item's release date (01-Jan-1995 ...) is suggested as a numeric item feature, prepared
    as the year; its genres (19 flags) are a multihot feature."""
    from mtlrec.prep import PrepConfig, prepare
    rng = np.random.default_rng(1)
    n_items, n_users = 30, 20
    flags = lambda i: "|".join("1" if g in (i % 19, (i * 7) % 19) else "0" for g in range(19))   # noqa: E731
    (tmp_path / "u.item").write_text("".join(
        f"{i}|Movie {i} (19{70 + i})|0{1 + i % 9}-Jan-19{70 + i}||http://x/{i}|{flags(i)}\n"
        for i in range(1, n_items + 1)), encoding="latin-1")
    (tmp_path / "u.data").write_text("".join(
        f"{u}\t{i}\t{rng.integers(1, 6)}\t{880_000_000 + 10 * u + k}\n" for u in range(1, n_users + 1)
        for k, i in enumerate(rng.choice(np.arange(1, n_items + 1), 10, replace=False))))
    raw = load_data(tmp_path)
    spec = suggest_spec(raw)
    date_col = next(c for c in raw.items.columns if "release" in c and "video" not in c)
    assert spec.numeric.get(date_col) == "item" and spec.multivalued == {"genres": "item"}
    assert "genres" not in spec.labels
    ds = prepare(raw, spec, PrepConfig())
    st = ds.meta["report"]["stats"][date_col]
    years = np.asarray(ds.item_table[date_col]) * st["std"] + st["mean"]
    pos = ds.item_index("12")
    assert round(float(years[pos])) == 1982
    assert ds.field("genres").kind == "multihot" and ds.item_table["genres"][pos].sum() == 2


def test_the_role_round_trips_through_the_role_table_and_json():
    from mtlrec.app.workflow import roles_table, spec_from_roles

    class Raw:
        interactions = pd.DataFrame({"user": [1], "item": [2], "rating": [4.0]})
        users = None
        items = pd.DataFrame({"item": [2], "genres": ["Action|Comedy"]})
    spec = DataSpec(user_id="user", item_id="item", labels={"rating": "regression"},
                    multivalued={"genres": "item"})
    table = roles_table(Raw, spec)
    assert table.set_index("column").loc["genres", "role"] == "multi-valued"
    assert spec_from_roles(table) == spec
    assert DataSpec.from_json(spec.to_json()) == spec
    assert DataSpec.from_dict({"user_id": "user"}).multivalued == {}        # older workspaces
