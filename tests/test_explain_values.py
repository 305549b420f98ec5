"""Explanations a stakeholder can read: the pair's values (original scale, decoded categories,
text), the task's own units (probability, rating), learned id profiles (support, similar items),
sensitive-feature flags and the plain sentence."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from _fixtures_train import TASKS, make_dataset, with_label_stats
from mtlrec.dataset import FeatureField, LabelField, PreparedDataset

OCCUPATIONS = ["student", "engineer", "artist"]
AGE_MEAN, AGE_STD = 38.0, 12.0


def _dataset():
    """The training fixture plus what preparation keeps: numeric mean/std, category vocabularies,
    an item text embedding with its source column."""
    ds = with_label_stats(make_dataset(n_rows=1500))
    n_items = len(ds.item_ids)
    rng = np.random.default_rng(1)
    ds.fields.append(FeatureField("item_text", "dense", "item", "item text", dim=4))
    ds.item_table["item_text"] = rng.normal(size=(n_items, 4)).astype(np.float32)
    ds.item_info["description"] = [f"A story about toys and friends, part {j} of a long saga" for j in range(n_items)]
    report = dict(ds.meta.get("report", {}))
    report["stats"] = {"age": {"kind": "numeric", "fill": AGE_MEAN, "mean": AGE_MEAN, "std": AGE_STD},
                       "occupation": {"kind": "categorical", "vocab_size": 4, "fill": "(missing)",
                                      "top": list(OCCUPATIONS)}}
    report["text"] = {"item_text": {"columns": ["description"]}}
    ds.meta = {**ds.meta, "report": report, "vocabularies": {"occupation": list(OCCUPATIONS)}}
    return ds


def _train(d, ds, tasks, **model):
    from mtlrec.config import RunConfig
    from mtlrec.runs.load import load_run
    from mtlrec.training.pipeline import run_training
    cfg = RunConfig.from_dict({"tasks": tasks, "model": {"arch": "shared_bottom", "shared_dims": [16],
                                                         "tower_dims": [8], "embedding_dim": 8, **model},
                               "train": {"epochs": 1, "batch_size": 512, "device": "cpu", "seed": 0}})
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = run_training(cfg, run_dir=d, dataset=ds)
    finally:
        torch.set_num_threads(n)
    assert res.status == "finished"
    return load_run(d)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("explain_values") / "run", _dataset(), TASKS)


@pytest.fixture(scope="module")
def res(run):
    from mtlrec.explain.api import explain_recommendation
    return explain_recommendation(run, "u3", "i7", background=30)


def test_values_are_those_of_the_pair_on_the_original_scale(run, res):
    ds = run.dataset
    u, i = ds.user_index("u3"), ds.item_index("i7")
    f = res["features"]
    # decoded by hand from the prepared data
    age = float(ds.user_table["age"][u]) * AGE_STD + AGE_MEAN
    assert f["age"]["text"].startswith("age = ")
    assert abs(float(f["age"]["text"].split("= ")[1]) - age) < 0.05 * max(1.0, abs(age) / 10)
    occ = OCCUPATIONS[int(ds.user_table["occupation"][u]) - 1]
    assert f["occupation"]["text"] == f"occupation = {occ}"
    assert f["user id"]["text"] == "user id = u3" and f["item id"]["text"] == "item id = i7"
    assert f["item text"]["text"].startswith("item text: A story about toys") and "…" in f["item text"]["text"]
    # ids: what the model learned from their training history
    tr = ds.rows["train"]
    assert f["item id"]["support"] == int((tr["item_index"] == i).sum())
    assert f["user id"]["support"] == int((tr["user_index"] == u).sum())
    assert len(f["item id"]["similar"]) == 5 and all(s["item"] != "i7" for s in f["item id"]["similar"])
    assert all(s["title"].startswith("Movie ") for s in f["item id"]["similar"])
    # every contribution row carries its value
    for t in res["tasks"].values():
        assert {r["group"] for r in t["rows"]} == set(t["contributions"])
        assert all(r["feature"] == f[r["group"]]["text"] for r in t["rows"])


def test_probability_view_is_monotone_in_the_logit_view_and_adds_up(res):
    for name in ("click", "like", "genres"):
        t = res["tasks"][name]
        p = t["probability"]
        assert abs(p["base_value"] + sum(p["contributions"].values()) - t["prediction"]) < 1e-5, name
        assert abs(p["output"] - t["prediction"]) < 1e-5
        # each bar has the sign of its logit contribution, and the path is the sigmoid of the logit path
        z = t["base_value"]
        q = p["base_value"]
        assert abs(q - 1 / (1 + math.exp(-z))) < 1e-6
        for g in p["order"]:
            assert p["contributions"][g] * t["contributions"][g] >= 0
            z += t["contributions"][g]
            q += p["contributions"][g]
            assert abs(q - 1 / (1 + math.exp(-z))) < 1e-6
    # a multi-label task: one class, never a mean over classes
    g = res["tasks"]["genres"]
    assert g["class"] in g["class_probabilities"] and abs(g["prediction"] - g["class_probabilities"][g["class"]]) < 1e-6


def test_probability_view_of_large_contributions():
    from mtlrec.explain.values import probability_view
    v = probability_view(-1.0, {"a": 3.0, "b": -0.5, "c": 0.2})
    assert v["order"] == ["a", "b", "c"]
    assert abs(v["base_value"] + sum(v["contributions"].values()) - 1 / (1 + math.exp(-1.7))) < 1e-9
    assert v["contributions"]["a"] > 0 > v["contributions"]["b"]


def test_regression_bars_add_up_to_the_predicted_rating(res):
    t = res["tasks"]["rating"]
    assert t["space"] == "label" and "probability" not in t
    assert abs(t["base_value"] + sum(t["contributions"].values()) - t["prediction"]) < 1e-3
    m = t["model_space"]                        # the logit view of a regression task: standardised output
    assert abs(m["base_value"] + sum(m["contributions"].values()) - m["output"]) < 1e-3
    assert abs(m["output"] * t["standardisation"]["std"] + t["standardisation"]["mean"] - t["prediction"]) < 1e-3


def test_similar_items_are_the_nearest_learned_embeddings(tmp_path):
    from mtlrec.explain.values import similar_items
    run = _train(tmp_path / "run", make_dataset(n_users=10, n_items=8, n_rows=300), TASKS[:1])
    emb = run.model.input.embedding_rows("item_id")            # code c = item index c - 1 here
    target = torch.zeros(emb.shape[1])
    target[0] = 1.0
    rows = torch.randn(emb.shape, generator=torch.Generator().manual_seed(0))
    rows[:, :2] = 0.0                                      # everything else orthogonal-ish to the target...
    rows[1] = target                                       # i0 (code 1)
    rows[4] = 2.0 * target + 0.1 * torch.eye(emb.shape[1])[1]   # i3: almost the same direction, other length
    rows[6] = target + torch.eye(emb.shape[1])[1]               # i5: 45 degrees away
    rows[3] = -target                                      # i2: the opposite
    with torch.no_grad():
        emb.copy_(rows)
    near = similar_items(run, "i0", k=3)
    assert [n["item"] for n in near[:2]] == ["i3", "i5"]
    assert abs(near[1]["similarity"] - math.sqrt(0.5)) < 1e-4
    assert "i2" not in [n["item"] for n in similar_items(run, "i0", k=6)]   # the opposite comes last
    assert similar_items(run, "i0", k=7)[-1]["item"] == "i2"
    assert all("title" in n for n in near)


def test_sensitive_name_patterns():
    from mtlrec.explain.values import SENSITIVE_PATTERNS, sensitive_kind
    assert len(SENSITIVE_PATTERNS) >= 6
    for name in ("zip", "zipcode", "user_zip_code", "postcode", "Gender", "sex", "age", "user_age", "BirthYear",
                 "country", "city", "ethnicity", "religion", "nationality", "marital_status", "region"):
        assert sensitive_kind(name), name
    for name in ("occupation", "page", "agent", "usage", "item_id", "genre", "stage", "price"):
        assert sensitive_kind(name) is None, name


def test_sensitive_flag_fires_for_a_model_that_reads_only_a_zip_code(tmp_path):
    """Users' clicks depend only on their zip code, the only input: the explanation is all zip."""
    from mtlrec.explain.api import explain_recommendation
    rng = np.random.default_rng(0)
    n_users, n_items, n = 30, 10, 1200
    zip_code = rng.integers(1, 4, n_users)
    ui, ii = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    click = (rng.random(n) < np.where(zip_code[ui] == 1, 0.9, 0.1)).astype(np.float32)
    parts = {"train": slice(0, 1000), "valid": slice(1000, 1100), "test": slice(1100, n)}
    rows = {s: {"user_index": ui[p].astype(np.int64), "item_index": ii[p].astype(np.int64),
                "label:click": click[p]} for s, p in parts.items()}
    ds = PreparedDataset([FeatureField("zip", "categorical", "user", vocab_size=4)], [LabelField("click", "binary")],
                         rows, {"zip": zip_code.astype(np.int64)}, {},
                         user_ids=[f"u{j}" for j in range(n_users)], item_ids=[f"i{j}" for j in range(n_items)],
                         meta={"context_defaults": {}, "vocabularies": {"zip": ["10115", "80331", "20095"]}})
    run = _train(tmp_path / "run", ds, [{"name": "click", "type": "binary"}])
    res = explain_recommendation(run, "u0", "i0", background=20)
    flags = [s for s in res["sensitive"] if s["group"] == "zip"]
    assert flags and flags[0]["flagged"] and flags[0]["share"] > 0.99
    assert "protected attribute" in flags[0]["note"]
    assert res["features"]["zip"]["text"] == f"zip = {['10115', '80331', '20095'][zip_code[0] - 1]}"


def test_non_sensitive_groups_are_not_flagged(res):
    assert not any(s["group"] in ("occupation", "user id", "item id", "item text") for s in res["sensitive"])
    age = [s for s in res["sensitive"] if s["group"] == "age"]
    assert age and age[0]["kind"] == "age"
    assert age[0]["flagged"] == (age[0]["share"] >= 0.2)


def test_sentence_names_the_strongest_reason_with_its_value(res):
    from mtlrec.explain.sentence import sentence, signed
    c = res["fused"]["contributions"]
    total = res["fused"]["score"] - res["fused"]["base_value"]
    side = [g for g in c if (c[g] > 0) == (total >= 0)] or list(c)
    strongest = max(side, key=lambda g: abs(c[g]))
    info = res["features"][strongest]
    f = info["fields"][0]
    if f["field"] in ("user_id", "item_id"):
        assert "learned profile" in res["sentence"] and f"{info['support']} training interaction" in res["sentence"]
    elif f["kind"] == "numeric":
        assert info["text"].split("= ")[1] in res["sentence"]
    elif f["kind"] == "dense":
        assert "A story about toys" in res["sentence"]
    else:
        assert str(f["value"]) in res["sentence"]
    assert f"({signed(c[strongest])})" in res["sentence"]
    assert sentence(res) == res["sentence"]          # deterministic


def test_prepared_data_decodes_to_the_raw_values():
    """Through real preparation: category codes decode to the raw categories (the vocabulary is
    kept, even beyond the ten most frequent) and standardised numbers to the raw numbers."""
    from mtlrec.data.raw import RawData
    from mtlrec.data.roles import DataSpec
    from mtlrec.explain.values import _category, _number
    from mtlrec.prep import PrepConfig, prepare
    rng = np.random.default_rng(3)
    n_users, n_items = 40, 12
    u = np.repeat(np.arange(n_users), 6)
    inter = pd.DataFrame({"user": u, "item": rng.integers(0, n_items, len(u)), "click": rng.integers(0, 2, len(u))})
    cities = [f"city {k}" for k in range(14)]                      # more than the ten kept in the report
    users = pd.DataFrame({"user": np.arange(n_users), "age": rng.integers(18, 70, n_users).astype(float),
                          "home": [cities[k % 14] for k in range(n_users)]})
    spec = DataSpec(user_id="user", item_id="item", labels={"click": "binary"},
                    categorical={"home": "user"}, numeric={"age": "user"})
    raw = RawData(interactions=inter, users=users, items=None,
                  sources={"interactions": "interactions.csv", "users": "users.csv"}, format="csv")
    ds = prepare(raw, spec, PrepConfig(valid_frac=0, test_frac=0))
    assert len(ds.meta["vocabularies"]["home"]) == 14
    for uid in ("0", "13", "27"):
        k = ds.user_index(uid)
        row = users[users["user"] == int(uid)].iloc[0]
        assert _category(ds, "home", int(ds.user_table["home"][k]), "user", k) == row["home"]
        assert abs(_number(ds, "age", float(ds.user_table["age"][k]))[0] - row["age"]) < 1e-3


def test_waterfall_bars_are_labelled_with_values_as_text():
    from mtlrec.figures.explain import waterfall_figure
    fig = waterfall_figure({"base_value": 0.1, "output": 0.5, "contributions": {"a": 0.3, "b": 0.1}},
                           features={"a": {"text": "title = <b>Big</b>"}, "b": {"text": "age = 24"}})
    x = list(fig.data[0].x)
    assert x[1] == "title = &lt;b&gt;Big&lt;/b&gt;" and x[2] == "age = 24"
    # the probability view keeps its path's order
    fig = waterfall_figure({"base_value": 0.1, "output": 0.5, "contributions": {"a": 0.1, "b": 0.3},
                            "order": ["a", "b"]})
    assert list(fig.data[0].x)[1:3] == ["a", "b"]
