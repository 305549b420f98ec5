"""Behaviour history as input (issue 24): built without leakage, encoded by every architecture,
served through the recommendation cache with the same numbers as the full forward."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mtlrec.config import RunConfig
from mtlrec.data.raw import RawData
from mtlrec.data.roles import DataSpec
from mtlrec.errors import DataError, TrainingError
from mtlrec.models import ARCHITECTURES, build_model
from mtlrec.prep import prepare
from mtlrec.prep.history import FIELD, PAD, VALUE, add_history, with_history
from mtlrec.tasks import tasks_from_config

ARCHS = sorted(ARCHITECTURES)
TASKS = [{"name": "click", "type": "binary", "label": "click"},
         {"name": "rating", "type": "regression", "label": "rating"}]


def interactions(n_users=25, n_items=30, per_user=12, seed=0, with_time=True) -> pd.DataFrame:
    """Each (user, item) pair at most once; times distinct within a user, some shared across users."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        items = rng.choice(n_items, per_user, replace=False)
        times = np.sort(rng.choice(1000, per_user, replace=False))
        for i, t in zip(items, times):
            r = int(rng.integers(1, 6))
            rows.append({"user": f"u{u}", "item": f"i{i}", "rating": r, "click": int(r >= 3), "ts": int(t)})
    df = pd.DataFrame(rows)
    return df if with_time else df.drop(columns="ts")


def prepared(split="random", with_time=True, negative_ratio=0, **kw):
    df = interactions(with_time=with_time, **kw)
    spec = DataSpec(user_id="user", item_id="item", timestamp="ts" if with_time else None,
                    labels={"click": "binary", "rating": "regression"})
    return df, prepare(RawData(df), spec, {"split": split, "negative_ratio": negative_ratio, "seed": 1})


def entries(ds):
    """(user, item code) -> (time, split) of every observed row (each pair occurs once)."""
    out = {}
    for split, r in ds.rows.items():
        obs = ~np.asarray(r.get("sampled", np.zeros(len(r["user_index"]), bool)), bool)
        codes = np.asarray(ds.item_table["item_id"])[np.asarray(r["item_index"])]
        t = np.asarray(r["event_time"]) if "event_time" in r else np.zeros(len(codes))
        for u, c, tt in zip(np.asarray(r["user_index"])[obs], codes[obs], t[obs]):
            out[(int(u), int(c))] = (float(tt), split)
    return out


@pytest.mark.parametrize("split", ["random", "temporal"])
def test_no_row_sees_an_interaction_at_or_after_its_own_time(split):
    _, ds = prepared(split)
    h = with_history(ds, {"length": 8, "encoder": "mean"})
    known = entries(h)
    seen = 0
    for s, r in h.rows.items():
        for u, t, hist in zip(r["user_index"], r["event_time"], r[FIELD]):
            for c in hist[hist != PAD]:
                when, where = known[(int(u), int(c))]
                assert when < t, (s, int(u), int(c), when, t)
                if split == "random":
                    assert where == "train", "a random split's history holds training interactions only"
                seen += 1
    assert seen > 500          # the check looked at real histories


def test_test_rows_of_a_random_split_never_see_test_or_valid_interactions():
    _, ds = prepared("random")
    h = with_history(ds, {"length": 50, "encoder": "attention"})
    known = entries(h)
    for s in ("valid", "test"):
        r = h.rows[s]
        for u, hist in zip(r["user_index"], r[FIELD]):
            assert all(known[(int(u), int(c))][1] == "train" for c in hist[hist != PAD])
    # what recommendations use: the user's training interactions, the most recent last
    train = h.rows["train"]
    u = int(train["user_index"][0])
    mine = np.asarray(train["event_time"])[np.asarray(train["user_index"]) == u]
    codes = np.asarray(h.item_table["item_id"])[np.asarray(train["item_index"])[np.asarray(train["user_index"]) == u]]
    expected = codes[np.argsort(mine, kind="stable")][-50:]
    got = h.user_table[FIELD][u]
    assert got[got != PAD].tolist() == expected.tolist()


def test_history_is_the_last_n_in_time_order_with_the_ratings_given():
    df, ds = prepared("temporal")
    h = with_history(ds, {"length": 3, "encoder": "mean"})
    r = h.rows["test"]                       # a temporal split: each user's last interaction
    u = int(r["user_index"][0])
    user = h.user_ids[u]
    mine = df[df.user == user].sort_values("ts")
    item_codes = {h.item_ids[i]: int(c) for i, c in enumerate(h.item_table["item_id"])}
    assert r[FIELD][0].tolist() == [item_codes[i] for i in mine.item.iloc[-4:-1]]
    meta = h.meta["history"]
    ratings = np.asarray(r[VALUE][0]) * meta["value_std"] + meta["value_mean"]
    assert np.round(ratings).astype(int).tolist() == mine.rating.iloc[-4:-1].tolist()
    assert meta["value_label"] == "rating" and meta["pool"] == "all splits"


def test_a_first_interaction_has_an_empty_history_and_the_model_still_scores_it():
    _, ds = prepared("temporal")
    h = with_history(ds, {"length": 5, "encoder": "attention"})
    r = h.rows["train"]
    first = np.flatnonzero((np.asarray(r[FIELD]) == PAD).all(axis=1))
    assert len(first) >= 20                   # every user's first interaction
    tasks = tasks_from_config(TASKS, h)
    for arch in ARCHS:
        model = build_model(arch, h.fields, tasks, history_encoder="attention").eval()
        feats, _ = h.to_device().batch("train", torch.as_tensor(first[:7]))
        out = model(feats)
        assert all(torch.isfinite(v).all() for v in out.values())
        cols = model.input.field_columns()[FIELD]
        assert float(model.embed(feats)[:, cols].detach().abs().max()) == 0.0      # empty history: a zero block


def test_without_timestamps_a_row_sees_the_users_other_training_interactions():
    _, ds = prepared("random", with_time=False)
    h = with_history(ds, {"length": 50, "encoder": "mean"})
    r = h.rows["train"]
    codes = np.asarray(h.item_table["item_id"])[np.asarray(r["item_index"])]
    users = np.asarray(r["user_index"])
    for k in range(0, len(users), 17):
        hist = set(r[FIELD][k][r[FIELD][k] != PAD].tolist())
        others = set(codes[(users == users[k])].tolist()) - {int(codes[k])}
        assert hist == others
    assert h.meta["history"]["by_time"] is False


def test_sampled_negatives_are_never_history_and_carry_their_source_rows_history():
    _, ds = prepared("temporal", negative_ratio=2)
    h = with_history(ds, {"length": 10, "encoder": "attention"})
    known = entries(h)
    for s, r in h.rows.items():
        sampled = np.asarray(r["sampled"], bool)
        assert sampled.any()
        for u, hist in zip(r["user_index"], r[FIELD]):
            assert all((int(u), int(c)) in known for c in hist[hist != PAD])   # observed pairs only
        # a negative has its source row's user and time, hence the same history as that row
        key = {(int(u), float(t)): tuple(x) for u, t, x, smp in
               zip(r["user_index"], r["event_time"], r[FIELD], sampled) if not smp}
        for u, t, x in zip(np.asarray(r["user_index"])[sampled], np.asarray(r["event_time"])[sampled],
                           np.asarray(r[FIELD])[sampled]):
            assert key[(int(u), float(t))] == tuple(x)
    # the per-epoch negatives of training take their source row's history too
    data = h.to_device()
    n = data.start_epoch(1)
    feats, _ = data.batch("train")
    assert feats[FIELD].shape == (n, 10)


def test_with_history_leaves_the_prepared_dataset_alone():
    _, ds = prepared("random")
    fields = [f.name for f in ds.fields]
    h = with_history(ds, {"length": 4, "encoder": "mean"})
    assert FIELD in [f.name for f in h.fields] and [f.name for f in ds.fields] == fields
    assert FIELD not in ds.rows["train"] and "history" not in ds.meta
    assert with_history(h, {"length": 4, "encoder": "attention"}) is h        # same arrays, other encoder
    assert FIELD not in [f.name for f in with_history(h, None).fields]
    assert with_history(h, {"length": 6, "encoder": "mean"}).rows["test"][FIELD].shape[1] == 6


def test_the_history_needs_item_and_user_ids():
    _, ds = prepared("random")
    ds.item_table.pop("item_id")
    with pytest.raises(DataError, match="user and item ids"):
        add_history(ds, 5)


@pytest.mark.parametrize("bad, words", [({"length": 0}, "between 1 and 200"),
                                        ({"length": "ten"}, "whole number"),
                                        ({"encoder": "lstm"}, "one of \\['mean', 'attention'\\]"),
                                        ({"size": 3}, "unknown key"), (12, "must be an object")])
def test_a_bad_history_setting_says_what_is_allowed(bad, words):
    cfg = RunConfig.from_dict({"tasks": TASKS, "model": {"arch": "mmoe", "history": bad}})
    with pytest.raises(TrainingError, match=words):
        cfg.validate()


def test_the_config_passes_the_encoder_to_the_architecture_only_with_a_history():
    cfg = RunConfig.from_dict({"tasks": TASKS, "model": {"arch": "ple", "history": {"length": 7, "encoder": "mean"}}})
    assert cfg.history == {"length": 7, "encoder": "mean"} and cfg.hparams == {"history_encoder": "mean"}
    assert RunConfig.from_dict({"tasks": TASKS, "model": {"arch": "ple"}}).hparams == {}
    _, ds = prepared("random")
    tasks = tasks_from_config(TASKS, ds)
    assert "history_encoder" not in build_model("mmoe", ds.fields, tasks, history_encoder="mean").hparams


def test_attention_depends_on_the_candidate_and_mean_does_not():
    _, ds = prepared("temporal")
    h = with_history(ds, {"length": 6, "encoder": "attention"})
    tasks = tasks_from_config(TASKS, h)
    data = h.to_device()
    user = int(np.flatnonzero((h.user_table[FIELD] != PAD).sum(axis=1) >= 4)[0])
    for enc, varies in (("attention", True), ("mean", False)):
        torch.manual_seed(0)
        model = build_model("mmoe", h.fields, tasks, history_encoder=enc).eval()
        with torch.no_grad():
            model.input.embedding.weight.normal_()
            block = model.embed(data.candidates(user))[:, model.input.field_columns()[FIELD]]
        spread = float((block - block[:1]).abs().max())
        assert (spread > 1e-3) == varies, (enc, spread)


@pytest.mark.parametrize("encoder", ["mean", "attention"])
@pytest.mark.parametrize("arch", ARCHS)
def test_the_recommendation_cache_gives_the_full_forwards_scores(arch, encoder):
    from mtlrec.runs.load import Run
    from mtlrec.serve import recommend as rec
    from mtlrec.serve.catalogue import item_split, score_tile
    _, ds = prepared("temporal", n_items=40)
    h = with_history(ds, {"length": 6, "encoder": encoder})
    tasks = tasks_from_config(TASKS, h)
    torch.manual_seed(1)
    model = build_model(arch, h.fields, tasks, history_encoder=encoder, embedding_dim=6).eval()
    with torch.no_grad():                       # values far from the start, so that every part matters
        model.input.embedding.weight.normal_()
        for p in model.input.history_value:
            p.normal_()
    run = Run(config=None, dataset=h, model=model, history=None, metrics={}, run_dir=None, tasks=tasks)
    for u in (0, 5, 11):
        fast, full = rec.score_items(run, u), rec.score_items(run, u, fast=False)
        for t in fast:
            assert np.abs(fast[t] - full[t]).max() <= 1e-5, (arch, encoder, u, t)
    data = run.device_data()
    users = np.array([2, 9, 14])
    with torch.inference_mode():
        tile = score_tile(model, data, item_split(model, data), users, 3, 31, tasks)
        ref = score_tile(model, data, None, users, 3, 31, tasks)
    for t in tile:
        assert np.abs(tile[t] - ref[t]).max() <= 1e-5, (arch, encoder, t)


def test_a_run_with_history_trains_saves_and_recommends_from_its_folder(tmp_path):
    from mtlrec.runs.load import load_run
    from mtlrec.serve import recommend as rec
    from mtlrec.training.pipeline import run_training
    _, ds = prepared("temporal")
    cfg = RunConfig.from_dict({"tasks": TASKS, "model": {"arch": "mmoe", "history": {"length": 5}},
                               "train": {"epochs": 1, "batch_size": 64, "ranking_k": 5}})
    res = run_training(cfg, tmp_path / "run", dataset=ds)
    assert res.status == "finished" and FIELD not in ds.rows["train"]        # the app's dataset untouched
    assert res.metrics["ranking"]["click"]["recall@5"] >= 0
    run = load_run(tmp_path / "run")
    assert run.model.input.history_names == [FIELD] and run.model.input.history_encoder == "attention"
    assert run.dataset.user_table[FIELD].shape == (len(run.dataset.user_ids), 5)
    fast, full = rec.score_items(run, 3), rec.score_items(run, 3, fast=False)
    assert max(np.abs(fast[t] - full[t]).max() for t in fast) <= 1e-5
    top = rec.recommend(run, run.dataset.user_ids[3], k=4)
    assert len(top) == 4


def test_a_what_if_uses_the_users_own_history_and_a_new_user_has_none():
    from mtlrec.runs.load import Run
    from mtlrec.serve import recommend as rec
    from mtlrec.serve import whatif
    _, ds = prepared("temporal", n_items=40)
    h = with_history(ds, {"length": 6, "encoder": "attention"})
    tasks = tasks_from_config(TASKS, h)
    torch.manual_seed(2)
    model = build_model("mmoe", h.fields, tasks, history_encoder="attention").eval()
    with torch.no_grad():
        model.input.embedding.weight.normal_()
    run = Run(config=None, dataset=h, model=model, history=None, metrics={}, run_dir=None, tasks=tasks)
    for u in (3, 8):
        same = whatif.whatif_scores(run, h.user_ids[u], exclude_seen=False)["preds"]
        real = rec.score_items(run, u)
        assert max(np.abs(same[t] - real[t]).max() for t in real) <= 1e-5      # no edit: the real scores
    feats = whatif.candidate_features(run, None)
    assert (feats[FIELD] == PAD).all() and (feats[VALUE] == 0).all()
