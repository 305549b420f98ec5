"""Labels that are a property of the item or of the user, not of the interaction (issue 12 §5)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtlrec.data.label_dependence import dependence_message, label_dependence
from mtlrec.data.raw import RawData
from mtlrec.data.roles import DataSpec


def _frame(seed: int = 0, n_users: int = 40, n_items: int = 30, n_rows: int = 1200):
    """Interactions carrying an item-constant label (the clicked movie's genres, written in either
    order), a user-constant one (a premium user), a real interaction label (click), a rating that
    varies, and a label that is the same everywhere."""
    rng = np.random.default_rng(seed)
    u = rng.integers(0, n_users, n_rows)
    i = rng.integers(0, n_items, n_rows)
    genres = np.array(["Comedy|Drama", "Action", "Horror|Action", "Drama"])[np.arange(n_items) % 4]
    g = genres[i]
    flip = rng.random(n_rows) < 0.5      # "Comedy|Drama" and "Drama|Comedy" are the same set
    g = np.where(flip & (g == "Comedy|Drama"), "Drama|Comedy", g)
    plan = np.arange(n_users) % 2                                 # 1 = a premium user
    click = (rng.random(n_rows) < 0.3).astype(int)
    return pd.DataFrame({"user_id": u, "item_id": i, "genres": g, "plan": plan[u], "click": click,
                         "rating": rng.integers(1, 6, n_rows), "one": 1})


SPEC = DataSpec(user_id="user_id", item_id="item_id",
                labels={"genres": "multilabel", "plan": "binary", "click": "binary", "rating": "regression",
                        "one": "binary"})


def test_item_user_and_interaction_labels_are_told_apart():
    dep = label_dependence(RawData(_frame()), SPEC)
    assert dep == {"genres": "item", "plan": "user", "click": None, "rating": None, "one": None}


def test_a_few_disagreeing_rows_are_tolerated_but_not_many():
    df = _frame()
    noisy = df.copy()
    noisy.loc[noisy.index[:3], "genres"] = "Western"            # 3 of 1,200 rows: still the item's genres
    assert label_dependence(RawData(noisy), SPEC)["genres"] == "item"
    noisy.loc[noisy.index[:120], "genres"] = "Western"          # 10% of the rows: no longer a property
    assert label_dependence(RawData(noisy), SPEC)["genres"] is None


def test_items_with_a_single_row_prove_nothing():
    df = _frame(n_items=5000, n_rows=1200)                     # most rows are the only one of their item
    assert label_dependence(RawData(df), SPEC)["genres"] is None


def test_a_label_of_the_items_table_is_the_items():
    df = _frame()
    items = pd.DataFrame({"item_id": np.arange(30), "genres": df.groupby("item_id")["genres"].first()})
    raw = RawData(df.drop(columns=["genres"]), items=items)
    assert label_dependence(raw, SPEC, labels=["genres"]) == {"genres": "item"}


def test_prepared_sample_genres_are_an_item_property():
    from mtlrec.prep import PrepConfig, prepare
    df = _frame()
    spec = DataSpec(user_id="user_id", item_id="item_id",
                    labels={"genres": "multilabel", "click": "binary", "plan": "binary"})
    ds = prepare(RawData(df.drop(columns=["rating", "one"])), spec, PrepConfig(valid_frac=0.1, test_frac=0.1))
    assert label_dependence(ds) == {"genres": "item", "click": None, "plan": "user"}


def test_the_message_names_the_task_and_the_fix():
    msg = dependence_message("genres", "item")
    assert "item classification" in msg and "not a prediction of the user's interest" in msg
    assert "artefact" in msg and "drop the task" in msg and "low loss weight" in msg
    assert "user classification" in dependence_message("plan", "user", label="plan_label")
    assert dependence_message(None, "item", label="genres").startswith("label 'genres': ")


def test_a_run_records_the_warning_for_an_item_property_task(tmp_path):
    import json

    from _fixtures_train import TASKS, make_dataset
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import run_training
    ds = make_dataset(n_users=30, n_items=20, n_rows=900)
    item_genres = (np.random.default_rng(1).random((20, 4)) < 0.4).astype(np.float32)
    for rows in ds.rows.values():                         # genres of the item itself, on every row
        rows["label:genres"] = item_genres[rows["item_index"]]
    cfg = RunConfig.from_dict({"tasks": TASKS, "model": {"arch": "shared_bottom"},
                               "train": {"epochs": 1, "batch_size": 256, "device": "cpu", "ranking_k": 0}})
    res = run_training(cfg, tmp_path / "run", dataset=ds)
    assert res.status == "finished"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["degenerate_tasks"] == {"genres": "item"}
    flagged = [w for w in metrics["warnings"] if "item classification" in w]
    assert len(flagged) == 1 and flagged[0].startswith("task 'genres'")
    assert json.loads((tmp_path / "run" / "status.json").read_text())["warnings"] == metrics["warnings"]


def test_data_check_names_item_genres_written_on_the_interactions(capsys, tmp_path):
    """(The sample's genres live in its items table: they are suggested as a multi-valued item
    feature, not a label. Genres written on every interaction stay a label, and data check names
    them as an item property.)"""
    import json

    from mtlrec.__main__ import main
    _frame()[["user_id", "item_id", "genres", "click"]].to_csv(tmp_path / "interactions.csv", index=False)
    sample = str(tmp_path / "interactions.csv")
    capsys.readouterr()
    assert main(["data", "check", sample, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label_dependence"] == {"genres": "item"}
    assert main(["data", "check", sample]) == 0
    notes = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("note: ")]
    assert len(notes) == 1 and "label 'genres'" in notes[0] and "item classification" in notes[0]
