"""Sampled negatives (issue 22): drawn anew each epoch, never a user's own item of any split, valid/test
fixed by the seed, uniform or popularity-weighted, and a heavy user's shortfall reported."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtlrec.data.raw import RawData
from mtlrec.data.roles import DataSpec
from mtlrec.prep import PrepConfig, prepare

SPEC = DataSpec(user_id="user", item_id="item", timestamp="ts")


def _raw(inter) -> RawData:
    return RawData(interactions=inter, users=None, items=None, sources={"interactions": "interactions.csv"},
                   format="csv")


def _skewed(n_users=120, n_items=80, per_user=6, seed=0) -> pd.DataFrame:
    """Implicit feedback whose item popularity falls steeply with the item number (Zipf-like)."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1) ** 1.2
    rows = []
    for u in range(n_users):
        for k, i in enumerate(rng.choice(n_items, per_user, replace=False, p=p / p.sum())):
            rows.append((f"u{u}", f"i{i}", 1_600_000_000 + 1000 * u + k))
    return pd.DataFrame(rows, columns=["user", "item", "ts"])


def _pairs(users, items) -> set:
    return set(zip(np.asarray(users).tolist(), np.asarray(items).tolist()))


def _observed(ds) -> set:
    out = set()
    for r in ds.rows.values():
        m = ~r["sampled"]
        out |= _pairs(r["user_index"][m], r["item_index"][m])
    return out


def _epoch_negatives(data, epoch, seed=0) -> list:
    """(user, item) of the training negatives ``data.start_epoch`` puts in place for ``epoch``."""
    n = data.start_epoch(epoch, seed=seed)
    n_obs = int((~data.ds.rows["train"]["sampled"]).sum())
    r = data.rows["train"]
    assert len(r["item_index"]) == n
    assert (r["label:interaction"][n_obs:] == 0).all() and (r["label:interaction"][:n_obs] == 1).all()
    return list(zip(r["user_index"][n_obs:].tolist(), r["item_index"][n_obs:].tolist()))


@pytest.fixture(scope="module")
def skewed_ds():
    return prepare(_raw(_skewed()), SPEC, PrepConfig(negative_ratio=2, seed=4))


def test_negatives_never_contain_a_users_items_of_any_split_in_any_epoch(skewed_ds):
    ds = skewed_ds
    observed = _observed(ds)
    evaluation = set()
    for s in ("valid", "test"):
        r = ds.rows[s]
        neg = _pairs(r["user_index"][r["sampled"]], r["item_index"][r["sampled"]])
        assert neg and not neg & observed, f"a {s} negative is one of the user's own items"
        evaluation |= neg
    data = ds.to_device("cpu")
    for epoch in (1, 2):
        neg = _epoch_negatives(data, epoch)
        assert len(set(neg)) == len(neg), "a pair sampled twice in one epoch"
        assert not set(neg) & observed, "a training negative is one of the user's own items (train, valid or test)"
        assert not set(neg) & evaluation, "a training negative repeats a valid/test negative"


def test_each_epoch_draws_fresh_negatives_and_a_rerun_draws_the_same(skewed_ds):
    first = skewed_ds.to_device("cpu")
    e1, e2 = _epoch_negatives(first, 1), _epoch_negatives(first, 2)
    assert len(e1) > 500 and len(set(e1) & set(e2)) < len(e1) // 2, "epoch 2 trained on epoch 1's negatives"
    again = skewed_ds.to_device("cpu")     # a rerun (or a resumed run, a second data-parallel rank)
    assert _epoch_negatives(again, 2) == e2 and _epoch_negatives(again, 1) == e1
    assert _epoch_negatives(again, 1, seed=1) != e1      # another training seed, another draw


def test_the_trainer_draws_the_negatives_of_each_epoch(skewed_ds):
    from mtlrec.config import RunConfig
    from mtlrec.training.build import build_model_for, build_tasks
    from mtlrec.training.trainer import Trainer
    cfg = RunConfig.from_dict({"tasks": [{"name": "interaction", "type": "binary", "label": "interaction"}],
                               "model": {"arch": "shared_bottom", "shared_dims": [16], "tower_dims": [8],
                                         "embedding_dim": 8},
                               "train": {"epochs": 2, "batch_size": 512, "device": "cpu", "seed": 3}})
    tasks = build_tasks(cfg, skewed_ds)
    data = skewed_ds.to_device("cpu")
    res = Trainer(build_model_for(cfg, skewed_ds, tasks), tasks, cfg.train).fit(data, evaluate_test=False)
    assert res.epochs_run == 2
    n_obs = int((~skewed_ds.rows["train"]["sampled"]).sum())
    trained = list(zip(data.rows["train"]["user_index"][n_obs:].tolist(),
                       data.rows["train"]["item_index"][n_obs:].tolist()))
    assert trained == _epoch_negatives(skewed_ds.to_device("cpu"), 2, seed=3)
    prepared = skewed_ds.rows["train"]
    assert trained != list(zip(prepared["user_index"][prepared["sampled"]].tolist(),
                               prepared["item_index"][prepared["sampled"]].tolist()))


def test_valid_and_test_negatives_are_fixed_by_the_seed_whatever_the_training_method(skewed_ds):
    pop = prepare(_raw(_skewed()), SPEC, PrepConfig(negative_ratio=2, seed=4, negative_sampling="popularity"))
    other = prepare(_raw(_skewed()), SPEC, PrepConfig(negative_ratio=2, seed=5))
    for s in ("valid", "test"):
        a, b, c = skewed_ds.rows[s], pop.rows[s], other.rows[s]
        assert a["sampled"].sum() > 0
        for key in ("user_index", "item_index", "sampled"):
            np.testing.assert_array_equal(a[key], b[key])
        assert not np.array_equal(a["item_index"][a["sampled"]], c["item_index"][c["sampled"]])


def test_popularity_sampling_favours_popular_items(skewed_ds):
    pop = prepare(_raw(_skewed()), SPEC, PrepConfig(negative_ratio=2, seed=4, negative_sampling="popularity"))
    assert pop.meta["report"]["negatives"]["method"] == "popularity"
    top = {pop.item_index(f"i{k}") for k in range(5)}          # the five most popular items

    def share_on_top(ds):
        items = [i for e in (1, 2) for _, i in _epoch_negatives(ds.to_device("cpu"), e)]
        return sum(i in top for i in items) / len(items)
    uniform, popular = share_on_top(skewed_ds), share_on_top(pop)
    # measured: about 0.03 and 0.13 (the popular items are also the ones users met most often)
    assert popular > 2.5 * uniform and popular > 0.08


def test_bad_sampling_method_is_refused_by_name():
    with pytest.raises(ValueError, match="negative_sampling must be one of .*uniform.*popularity"):
        PrepConfig(negative_sampling="often")


def test_shortfall_of_a_heavy_user_is_counted_and_said_in_words():
    from mtlrec.app.workflow import preparation_messages
    # u0 met 9 of the 10 items: one free item is left for the 2 * 9 negatives asked for
    rows = [("u0", f"i{k}", k) for k in range(9)] + [(f"u{j}", f"i{j % 10}", 100 + j) for j in range(1, 60)]
    ds = prepare(_raw(pd.DataFrame(rows, columns=["user", "item", "ts"])), SPEC, PrepConfig(negative_ratio=2, seed=0))
    sf = ds.meta["report"]["negatives"]["shortfall"]
    assert sf["requested"] == 2 * 68 and sf["users"] == 1
    assert sf["requested"] - sf["drawn"] == 17            # u0 got its one free item, once
    assert sf["share"] == pytest.approx(17 / 136, abs=1e-3)
    said = [w for w in preparation_messages(ds.meta["report"])["warnings"] if "could not be drawn" in w]
    assert said == ["12.5 % of requested negatives could not be drawn: 1 heavy user has too few unseen items "
                    "(119 of 136 drawn). Lower prep.negative_ratio to ask for fewer."]
    fine = prepare(_raw(_skewed()), SPEC, PrepConfig(negative_ratio=1, seed=0))
    assert fine.meta["report"]["negatives"]["shortfall"]["users"] == 0
    assert not [w for w in preparation_messages(fine.meta["report"])["warnings"] if "could not be drawn" in w]


def test_a_run_with_a_heavy_user_reports_the_shortfall_and_its_saved_dataset_draws_the_same(tmp_path):
    from mtlrec.config import RunConfig
    from mtlrec.dataset import PreparedDataset
    from mtlrec.runs.report import report_html
    from mtlrec.training.pipeline import run_training
    heavy = pd.DataFrame([("heavy", f"i{k}", k) for k in range(75)], columns=["user", "item", "ts"])
    ds = prepare(_raw(pd.concat([_skewed(), heavy], ignore_index=True)), SPEC, PrepConfig(negative_ratio=2, seed=1))
    sf = ds.meta["report"]["negatives"]["shortfall"]
    assert sf["users"] == 1 and sf["requested"] - sf["drawn"] >= 140      # 150 asked of 5 free items
    cfg = RunConfig.from_dict({"tasks": [{"name": "interaction", "type": "binary", "label": "interaction"}],
                               "model": {"arch": "shared_bottom", "shared_dims": [16], "tower_dims": [8],
                                         "embedding_dim": 8},
                               "train": {"epochs": 1, "batch_size": 512, "device": "cpu", "seed": 0,
                                         "ranking_k": 0, "cv_folds": 2, "dynamics_every": 0}})
    res = run_training(cfg, tmp_path / "run", dataset=ds)
    assert res.status == "finished" and len(res.metrics["cv"]["folds"]) == 2
    html = report_html(tmp_path / "run", explain=False)
    assert "% of requested negatives could not be drawn: 1 heavy user has too few unseen items" in html
    assert "2 per observed row, uniform" in html
    back = PreparedDataset.load(tmp_path / "run" / "dataset")         # memory-mapped
    assert _epoch_negatives(back.to_device("cpu"), 3) == _epoch_negatives(ds.to_device("cpu"), 3)


def test_a_resumed_run_trains_on_the_same_negatives_as_the_uninterrupted_one(tmp_path, skewed_ds):
    import threading

    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import run_training
    from mtlrec.training.resume import resume_run
    cfg = RunConfig.from_dict({"tasks": [{"name": "interaction", "type": "binary", "label": "interaction"}],
                               "model": {"arch": "shared_bottom", "shared_dims": [16], "tower_dims": [8],
                                         "embedding_dim": 8},
                               "train": {"epochs": 2, "batch_size": 512, "device": "cpu", "seed": 0,
                                         "ranking_k": 0, "dynamics_every": 0, "early_stopping": {"patience": 10}}})
    whole = run_training(cfg, tmp_path / "whole", dataset=skewed_ds)
    stop = threading.Event()
    cut = run_training(cfg, tmp_path / "cut", dataset=skewed_ds, stop_event=stop,
                       on_epoch=lambda rec, history: stop.set())
    assert cut.status == "cancelled"
    resumed = resume_run(tmp_path / "cut")            # reads the saved (memory-mapped) dataset
    assert resumed.status == "finished"
    assert [e["epoch"] for e in resumed.history.epochs] == [1, 2]
    assert whole.metrics["best_epoch"] == resumed.metrics["best_epoch"] == 2     # the weights after epoch 2
    # other negatives would move other item embeddings (by ~lr = 1e-3 a step): the weights tell the draws apart
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) < 1e-5
