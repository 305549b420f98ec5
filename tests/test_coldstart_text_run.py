"""Cold-start evaluation and a run with language-model text features, end to end.

One small slice of the shipped sample data (users 1-200, items 1-250) is prepared once with
the item cold-start split and MiniLM item texts, and trained with and without text
(`compare_text_features`, 3 epochs each).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TASKS = ("click", "like", "rating")


def _config(paths, epochs=3):
    return {
        "name": "cs-test",
        "data": {"paths": [str(p) for p in paths],
                 "roles": {"user_id": "user_id", "item_id": "item_id", "timestamp": "timestamp",
                           "labels": {"click": "binary", "like": "binary", "rating": "regression"},
                           "categorical": {"gender": "user", "occupation": "user"},
                           "numeric": {"age": "user", "year": "item"},
                           "text": {"title": "item", "genres": "item", "description": "item"}},
                 "prep": {"split": "cold_item", "cold_item_frac": 0.25}},
        "tasks": [{"name": t} for t in TASKS],
        "model": {"arch": "shared_bottom", "shared_dims": [32], "tower_dims": [16]},
        "train": {"epochs": epochs, "batch_size": 256, "lr": 0.003, "device": "cpu", "seed": 0,
                  "early_stopping": {"task": "like", "patience": 0}},
        "text": {"enabled": True, "columns": ["title", "genres", "description"]},
    }


@pytest.fixture(scope="module")
def small_data(tmp_path_factory, sample_data_dir):
    import pandas as pd
    d = tmp_path_factory.mktemp("cs_data")
    inter = pd.read_csv(sample_data_dir / "interactions.csv")
    inter = inter[(inter.user_id <= 200) & (inter.item_id <= 250)]
    users = pd.read_csv(sample_data_dir / "users.csv")
    items = pd.read_csv(sample_data_dir / "items.csv")
    inter.to_csv(d / "interactions.csv", index=False)
    users[users.user_id <= 200].to_csv(d / "users.csv", index=False)
    items[items.item_id <= 250].to_csv(d / "items.csv", index=False)
    return [d / "interactions.csv", d / "users.csv", d / "items.csv"]


@pytest.fixture(scope="module")
def compared(small_data, tmp_path_factory):
    from mtlrec.serve.coldstart import compare_text_features
    from mtlrec.training.pipeline import run_training
    runs_root = tmp_path_factory.mktemp("cs_runs")
    run_dirs = {}

    def train(cfg, dataset):
        run_dirs[cfg.name] = runs_root / cfg.name
        return run_training(cfg, run_dirs[cfg.name], dataset=dataset)

    stages = []
    res = compare_text_features(_config(small_data), train=train,
                                progress=lambda s, info: stages.append((s, info.get("variant"))))
    return res, run_dirs, stages


def test_comparison_is_side_by_side_per_task_on_cold_and_warm_items(compared):
    from mtlrec.serve.coldstart import comparison_rows
    res, _, stages = compared
    assert set(k for k in res if not k.startswith("_")) == set(TASKS)
    for t in TASKS:
        e = res[t]
        assert e["metric"] == ("rmse" if t == "rating" else "auc")
        assert e["higher_is_better"] is (t != "rating")
        for g in ("cold", "warm"):
            assert e[g]["n"] > 50, (t, g, e[g])
            for variant in ("with_text", "without_text"):
                v = e[g][variant]
                assert v is not None and math.isfinite(v)
                if t != "rating":
                    assert 0.0 <= v <= 1.0
    # same rows in both runs: the text run differs only by its text field
    runs = res["_runs"]
    assert runs["with_text"]["text_fields"] == ["item_text"]
    assert runs["without_text"]["text_fields"] == []
    assert res["_split"]["n_cold_items"] > 0
    assert ("train", "with_text") in stages and ("train", "without_text") in stages
    rows = comparison_rows(res)
    assert len(rows) == 2 * len(TASKS)
    assert {r["better"] for r in rows} <= {"with text", "without text", "same"}


def test_cold_rows_are_on_items_never_seen_in_training(compared):
    from mtlrec.serve.coldstart import row_groups
    from mtlrec.runs.load import load_run
    _, run_dirs, _ = compared
    run = load_run(run_dirs["cs-test-with-text"])
    ds = run.dataset
    cold = set(ds.cold_items.tolist())
    assert cold
    assert not cold & set(ds.rows["train"]["item_index"].tolist())
    g = row_groups(ds, "test")
    items = ds.rows["test"]["item_index"]
    assert set(items[g["cold"]].tolist()) <= cold
    assert not set(items[g["warm"]].tolist()) & cold
    assert len(g["cold"]) + len(g["warm"]) == ds.n_rows("test")


def test_cold_items_get_distinct_inputs_only_through_text(compared):
    """Unseen items share the unknown id bucket; with text their inputs (and scores) still differ."""
    import torch
    from mtlrec.runs.load import load_run
    _, run_dirs, _ = compared
    with_text = load_run(run_dirs["cs-test-with-text"])
    without = load_run(run_dirs["cs-test-without-text"])
    cold = with_text.dataset.cold_items[:20]
    for run in (with_text, without):
        data = run.dataset.to_device("cpu")
        feats = data.candidates(0, cold)
        with torch.no_grad():
            x = run.model.embed(feats).numpy()
        groups = run.model.input_groups()
        ids = x[:, groups["item id"]]
        assert np.allclose(ids, ids[0]), "cold items should all map to the unknown id bucket"
        if run is with_text:
            txt = x[:, groups["item text"]]
            assert np.unique(txt.round(5), axis=0).shape[0] == len(cold)
    # the text run scores cold items differently from one another (not only by year)
    from mtlrec.serve.recommend import score_items
    p = score_items(with_text, 0)["like"][cold]
    assert np.unique(np.round(p, 6)).size == len(cold)


def test_run_with_text_trains_recommends_and_explains(compared):
    from mtlrec.explain import explain_recommendation
    from mtlrec.serve.recommend import recommend
    from mtlrec.runs.load import load_run
    _, run_dirs, _ = compared
    run = load_run(run_dirs["cs-test-with-text"])
    assert run.metrics.get("status") == "finished"
    assert any(f.kind == "dense" and f.group == "item text" for f in run.dataset.fields)
    user = run.dataset.user_ids[3]
    recs = recommend(run, user, k=5)
    assert len(recs) == 5
    seen = set(run.dataset.item_ids[run.dataset.interacted_items(run.dataset.user_index(user))].tolist())
    assert not {str(r["item"]) for r in recs} & seen
    ex = explain_recommendation(run, user, recs[0]["item"], background=20)
    for t in TASKS:
        contrib = ex["tasks"][t]["contributions"]
        assert "item text" in contrib and math.isfinite(contrib["item text"])
        # SHAP additivity: base value + contributions = the model's output
        assert ex["tasks"][t]["base_value"] + sum(contrib.values()) == pytest.approx(
            ex["tasks"][t]["output"], abs=1e-3)


def test_compare_refuses_data_without_text_or_cold_items(small_data):
    from mtlrec.serve.coldstart import compare_text_features, without_text
    from mtlrec.config import RunConfig
    from mtlrec.errors import DataError
    from mtlrec.training.pipeline import build_dataset
    cfg = RunConfig.from_dict(_config(small_data))
    cfg.text.enabled = False
    cfg.data.prep = {"split": "random"}
    ds = build_dataset(cfg)
    with pytest.raises(DataError, match="no text features"):
        compare_text_features(cfg, dataset=ds, train=lambda c, d: pytest.fail("must not train"))
    fake_text = without_text(ds)     # no dense fields either way; random split has no cold items
    assert not len(fake_text.cold_items)
