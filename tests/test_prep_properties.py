"""Preparation: the properties issue 2 asks for, and the cleaning steps a user would notice."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtlrec.data.raw import RawData
from mtlrec.data.roles import DataSpec
from mtlrec.dataset import PreparedDataset
from mtlrec.errors import DataError
from mtlrec.prep import PrepConfig, prepare


def _raw(inter, users=None, items=None) -> RawData:
    sources = {"interactions": "interactions.csv"}
    if users is not None:
        sources["users"] = "users.csv"
    if items is not None:
        sources["items"] = "items.csv"
    return RawData(interactions=inter, users=users, items=items, sources=sources, format="csv")


def _implicit(n_users=60, n_items=100, per_user=12, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        its = rng.choice(n_items, size=per_user, replace=False)
        for k, i in enumerate(its):
            rows.append((f"u{u}", f"i{i}", 1_600_000_000 + u * 1000 + k))
    return pd.DataFrame(rows, columns=["user", "item", "ts"])


def _explicit(n_users=80, n_items=50, per_user=15, seed=1):
    """Users with an age, items with a brand and price, rows with rating and device."""
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n_users), per_user)
    i = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    n = len(u)
    inter = pd.DataFrame({"user": u, "item": i, "ts": 1_600_000_000 + rng.integers(0, 10**7, n),
                          "rating": rng.integers(1, 6, n), "click": rng.integers(0, 2, n),
                          "device": rng.choice(["web", "app", "tv"], n),
                          "dwell": rng.normal(30, 10, n)})
    users = pd.DataFrame({"user": np.arange(n_users), "age": rng.integers(18, 70, n_users).astype(float),
                          "country": rng.choice(["DE", "FR", "US"], n_users)})
    items = pd.DataFrame({"item": np.arange(n_items), "brand": [f"b{k % 7}" for k in range(n_items)],
                          "price": rng.gamma(2, 10, n_items),
                          "genres": [["A|B", "B", "C|A", "D"][k % 4] for k in range(n_items)],
                          "title": [f"Item number {k}" for k in range(n_items)]})
    spec = DataSpec(user_id="user", item_id="item", timestamp="ts",
                    labels={"rating": "regression", "click": "binary", "genres": "multilabel"},
                    categorical={"device": "context", "country": "user", "brand": "item"},
                    numeric={"dwell": "context", "age": "user", "price": "item"},
                    text={"title": "item"})
    return inter, users, items, spec


def _pairs(ds: PreparedDataset, split: str, sampled: bool | None = None) -> set[tuple[int, int]]:
    r = ds.rows[split]
    m = np.ones(len(r["user_index"]), bool)
    if sampled is not None and "sampled" in r:
        m = r["sampled"] == sampled
    return set(zip(r["user_index"][m].tolist(), r["item_index"][m].tolist()))


# ---- the three properties of issue 2 ------------------------------------------------------------
@pytest.mark.parametrize("split", ["random", "temporal", "cold_item"])
def test_no_sampled_negative_is_a_known_positive(split):
    inter = _implicit()
    spec = DataSpec(user_id="user", item_id="item", timestamp="ts")
    ds = prepare(_raw(inter), spec, PrepConfig(negative_ratio=3, split=split, seed=3))
    # implicit data: an "interaction" label is created, 1 on observed rows, 0 on sampled ones
    assert [lab.name for lab in ds.labels] == ["interaction"]
    known = {(ds.user_index(u), ds.item_index(i)) for u, i in zip(inter["user"], inter["item"])}
    n_sampled = 0
    seen_sampled = set()
    for s in ds.splits:
        r = ds.rows[s]
        y = r["label:interaction"]
        assert (y[r["sampled"]] == 0).all() and (y[~r["sampled"]] == 1).all()
        sampled = list(zip(r["user_index"][r["sampled"]].tolist(), r["item_index"][r["sampled"]].tolist()))
        assert not (set(sampled) & known), "a sampled negative is a pair the user interacted with"
        assert not (set(sampled) & seen_sampled)
        assert len(set(sampled)) == len(sampled)          # no pair sampled twice
        seen_sampled |= set(sampled)
        n_sampled += len(sampled)
    neg = ds.meta["report"]["negatives"]
    assert sum(neg["sampled"].values()) == n_sampled
    assert n_sampled + neg["unfilled"] == 3 * len(inter)
    if split != "cold_item":     # held-out rows draw from the few held-out items only and may run short
        assert neg["unfilled"] == 0


def test_negatives_of_a_user_who_saw_almost_everything_are_still_never_positives():
    # u0 interacted with 9 of 10 items: only one free item remains for 3 * 9 requested negatives
    rows = [("u0", f"i{k}", k) for k in range(9)] + [(f"u{j}", f"i{j % 10}", 100 + j) for j in range(1, 40)]
    inter = pd.DataFrame(rows, columns=["user", "item", "ts"])
    ds = prepare(_raw(inter), DataSpec(user_id="user", item_id="item", timestamp="ts"),
                 PrepConfig(negative_ratio=3, seed=0))
    u0 = ds.user_index("u0")
    free = ds.item_index("i9")
    for s in ds.splits:
        r = ds.rows[s]
        m = r["sampled"] & (r["user_index"] == u0)
        assert set(r["item_index"][m].tolist()) <= {free}
    assert ds.meta["report"]["negatives"]["unfilled"] > 0


def test_cold_item_split_keeps_held_out_items_out_of_training():
    inter, users, items, spec = _explicit()
    cfg = PrepConfig(split="cold_item", cold_item_frac=0.2, negative_ratio=1, seed=5)
    ds = prepare(_raw(inter, users, items), spec, cfg)
    cold = set(ds.cold_items.tolist())
    assert len(cold) == 10                                   # 20% of 50 items
    assert not cold & set(ds.rows["train"]["item_index"].tolist()), "a held-out item appears in training"
    # their rows all went to valid/test, split between the two
    cold_valid, cold_test = set(ds.meta["cold_items_valid"]), set(ds.meta["cold_items_test"])
    assert cold_valid and cold_test and not cold_valid & cold_test and cold_valid | cold_test == cold
    assert set(ds.rows["valid"]["item_index"].tolist()) & cold <= cold_valid
    assert set(ds.rows["test"]["item_index"].tolist()) & cold <= cold_test
    n_cold_rows = int(inter["item"].isin([int(ds.item_ids[i]) for i in cold]).sum())
    in_eval = sum(int(np.isin(ds.rows[s]["item_index"][~ds.rows[s]["sampled"]], list(cold)).sum())
                  for s in ("valid", "test"))
    assert in_eval == n_cold_rows
    # the model knows nothing about them: id code 0 (unknown), no item id embedding of their own
    assert (ds.item_table["item_id"][list(cold)] == 0).all()
    warm = sorted(set(range(len(ds.item_ids))) - cold)
    assert (ds.item_table["item_id"][warm] > 0).all()
    assert ds.field("item_id").vocab_size == len(warm) + 1


def test_statistics_are_fitted_on_training_rows_only():
    inter, users, items, spec = _explicit()
    # make the held-out / evaluation data extreme: if they leaked into the statistics, it would show
    ds0 = prepare(_raw(inter, users, items), spec, PrepConfig(split="cold_item", seed=5))
    cold_ids = [int(ds0.item_ids[i]) for i in ds0.cold_items]
    items = items.copy()
    is_cold = items["item"].isin(cold_ids)
    items.loc[is_cold, "price"] = 1e6
    items.loc[is_cold, "brand"] = "only-on-held-out-items"
    items.loc[is_cold, "genres"] = "Z"                    # a class that exists only on held-out items
    ds = prepare(_raw(inter, users, items), spec, PrepConfig(split="cold_item", seed=5))
    assert set(ds.cold_items.tolist()) == set(ds0.cold_items.tolist())
    st = ds.meta["report"]["stats"]
    warm_prices = items.loc[~is_cold, "price"].to_numpy()
    assert st["price"]["mean"] == pytest.approx(warm_prices.mean())
    assert st["price"]["std"] == pytest.approx(warm_prices.std())
    train_items = np.unique(ds.rows["train"]["item_index"])
    assert ds.item_table["price"][train_items].mean() == pytest.approx(0.0, abs=1e-5)
    cold = ds.cold_items
    assert (ds.item_table["brand"][cold] == 0).all()      # unseen category -> unknown bucket
    assert (ds.item_table["brand"][train_items] > 0).all()
    assert "Z" not in ds.label("genres").classes
    # context numeric: mean/std of the training rows, not of all rows
    r = ds.rows["train"]
    assert r["dwell"].mean() == pytest.approx(0.0, abs=1e-4)
    assert r["dwell"].std() == pytest.approx(1.0, abs=1e-3)
    # user statistics come from users that have training rows
    train_users = np.unique(r["user_index"])
    ages = users.set_index("user").loc[[int(ds.user_ids[k]) for k in train_users], "age"]
    assert st["age"]["mean"] == pytest.approx(ages.mean())


def test_median_fill_uses_the_training_median():
    inter, users, items, spec = _explicit()
    inter = inter.copy()
    ds0 = prepare(_raw(inter, users, items), spec, PrepConfig(seed=2))
    # put a missing dwell on one test row, and huge dwell values on all other test rows
    test_pairs = list(zip(ds0.rows["test"]["user_index"], ds0.rows["test"]["item_index"]))
    key = {(ds0.user_index(u), ds0.item_index(i)): k for k, (u, i) in enumerate(zip(inter["user"], inter["item"]))}
    test_rows = [key[(int(u), int(i))] for u, i in test_pairs]
    inter.loc[test_rows, "dwell"] = 1e5
    inter.loc[test_rows[0], "dwell"] = np.nan
    ds = prepare(_raw(inter, users, items), spec, PrepConfig(seed=2))
    train_dwell = inter.drop(index=test_rows)
    train_dwell = train_dwell[~train_dwell.index.isin(
        [key[(int(u), int(i))] for u, i in zip(ds.rows["valid"]["user_index"], ds.rows["valid"]["item_index"])])]
    st = ds.meta["report"]["stats"]["dwell"]
    assert st["fill"] == pytest.approx(train_dwell["dwell"].median())
    assert st["mean"] == pytest.approx(train_dwell["dwell"].mean())
    assert ds.meta["report"]["imputed"]["dwell"] == 1
    r = ds.rows["test"]
    first = np.flatnonzero((r["user_index"] == test_pairs[0][0]) & (r["item_index"] == test_pairs[0][1]))[0]
    assert r["dwell"][first] == pytest.approx((st["fill"] - st["mean"]) / st["std"], rel=1e-5)


# ---- cleaning ------------------------------------------------------------------------------------
FILLER = [f"g{k}" for k in range(20)]      # more users, so that the data is large enough to split


def _dups():
    inter = pd.DataFrame({"user": ["a", "a", "a", "b", "b", "c", "c", "d", "d", "e", "e", "f"] + FILLER,
                          "item": ["x", "x", "y", "x", "z", "y", "z", "x", "y", "z", "x", "y"] + ["w"] * 20,
                          "ts": [3, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1] + [1] * 20,
                          "rating": [5.0, 1.0, 3.0, 2.0, 4.0, 3.0, 1.0, 5.0, 2.0, 4.0, 3.0, 2.0] + [3.0] * 20,
                          "click": [0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1] + [0, 1] * 10})
    spec = DataSpec(user_id="user", item_id="item", timestamp="ts",
                    labels={"rating": "regression", "click": "binary"})
    return inter, spec


@pytest.mark.parametrize("policy,rating,click", [("last", 5.0, 0.0), ("first", 1.0, 1.0), ("mean", 3.0, 1.0)])
def test_duplicate_interactions(policy, rating, click):
    inter, spec = _dups()   # (a, x) twice: ts 3 -> rating 5 click 0; ts 1 -> rating 1 click 1
    ds = prepare(_raw(inter), spec, PrepConfig(duplicates=policy, valid_frac=0, test_frac=0))
    r = ds.rows["train"]
    m = (r["user_index"] == ds.user_index("a")) & (r["item_index"] == ds.item_index("x"))
    assert m.sum() == 1
    assert r["label:rating"][m][0] == rating and r["label:click"][m][0] == click
    assert ds.n_rows("train") == len(inter) - 1
    assert ds.meta["report"]["duplicates"]["rows_removed"] == 1


def test_missing_label_rows_are_dropped_and_counted():
    inter, spec = _dups()
    inter = inter.copy()
    inter.loc[[2, 5], "rating"] = np.nan
    ds = prepare(_raw(inter), spec, PrepConfig(valid_frac=0, test_frac=0))
    assert ds.meta["report"]["dropped_missing_label"] == {"rating": 2}
    assert ds.n_rows("train") == len(inter) - 1 - 2
    assert not np.isnan(ds.rows["train"]["label:rating"]).any()


@pytest.mark.parametrize("how,expect", [("median", 35.0), ("mean", 40.0), ("zero", 0.0)])
def test_missing_numeric_fill(how, expect):
    inter, spec = _dups()
    ages = [20.0, 30.0, np.nan, 40.0, 90.0, 20.0] + [35.0, 45.0] * 10      # median 35, mean 40
    users = pd.DataFrame({"user": list("abcdef") + FILLER, "age": ages})
    spec.numeric = {"age": "user"}
    ds = prepare(_raw(inter, users=users), spec,
                 PrepConfig(missing_numeric=how, standardize=False, valid_frac=0, test_frac=0))
    assert ds.user_table["age"][ds.user_index("c")] == pytest.approx(expect)
    assert ds.meta["report"]["imputed"] == {"age": 1}


@pytest.mark.parametrize("how", ["unknown", "most_frequent"])
def test_missing_and_unseen_categories(how):
    inter, spec = _dups()
    inter = inter.copy()
    inter["device"] = ["web", "web", "app", None, "web", "app", "web", "tv", "web", "app", "web", "web"] + \
        ["web", "app"] * 10
    spec.categorical = {"device": "context"}
    ds = prepare(_raw(inter), spec, PrepConfig(missing_categorical=how, valid_frac=0, test_frac=0))
    st = ds.meta["report"]["stats"]["device"]
    codes = ds.rows["train"]["device"]
    r = ds.rows["train"]
    row_b = (r["user_index"] == ds.user_index("b")) & (r["item_index"] == ds.item_index("x"))
    if how == "unknown":
        assert st["fill"] == "(missing)"
        assert codes[row_b][0] not in (0, 1)       # its own category, not web (the most frequent)
    else:
        assert st["fill"] == "web"
        assert codes[row_b][0] == 1                # most frequent = code 1
    assert (codes > 0).all()                       # every training value has a code


def test_unseen_category_gets_the_unknown_code():
    inter, users, items, spec = _explicit()
    inter = inter.copy()
    ds0 = prepare(_raw(inter, users, items), spec, PrepConfig(seed=4))
    key = {(ds0.user_index(u), ds0.item_index(i)): k for k, (u, i) in enumerate(zip(inter["user"], inter["item"]))}
    test_rows = [key[(int(u), int(i))] for u, i in zip(ds0.rows["test"]["user_index"], ds0.rows["test"]["item_index"])]
    inter.loc[test_rows, "device"] = "smart-fridge"            # only ever seen in test
    ds = prepare(_raw(inter, users, items), spec, PrepConfig(seed=4))
    assert (ds.rows["test"]["device"] == 0).all()
    assert (ds.rows["train"]["device"] > 0).all()
    assert ds.field("device").vocab_size == 4                   # unknown + web/app/tv
    assert ds.meta["report"]["unseen_codes"]["device"] == len(test_rows)
    assert ds.meta["context_defaults"]["device"] in (1, 2, 3)


def test_derived_label():
    inter, spec = _dups()
    cfg = PrepConfig(derived_labels=[{"name": "like", "source": "rating", "op": ">=", "threshold": 4}],
                     valid_frac=0, test_frac=0)
    ds = prepare(_raw(inter), spec, cfg)
    lab = ds.label("like")
    assert lab.task_type == "binary"
    r = ds.rows["train"]
    np.testing.assert_array_equal(r["label:like"], (r["label:rating"] >= 4).astype(np.float32))
    with pytest.raises(DataError, match="single class"):
        prepare(_raw(inter), spec, PrepConfig(derived_labels=[{"name": "like", "source": "rating", "op": ">",
                                                               "threshold": 10}]))
    with pytest.raises(DataError, match="stars"):
        prepare(_raw(inter), spec, PrepConfig(derived_labels=[{"name": "like", "source": "stars", "op": ">",
                                                               "threshold": 1}]))


# ---- splits --------------------------------------------------------------------------------------
def test_random_split_shapes_and_disjoint():
    inter, users, items, spec = _explicit()
    ds = prepare(_raw(inter, users, items), spec, PrepConfig(split="random", valid_frac=0.1, test_frac=0.2))
    n = len(inter)
    assert ds.n_rows("train") + ds.n_rows("valid") + ds.n_rows("test") == n
    assert ds.n_rows("test") == round(0.2 * n) and ds.n_rows("valid") == round(0.1 * n)
    p = {s: _pairs(ds, s) for s in ds.splits}
    assert not p["train"] & p["valid"] and not p["train"] & p["test"] and not p["valid"] & p["test"]
    for s in ds.splits:
        r = ds.rows[s]
        assert r["label:genres"].shape == (ds.n_rows(s), len(ds.label("genres").classes))
        assert r["label:genres"].dtype == np.float32


def test_temporal_split_leaves_the_last_interactions_out():
    inter, users, items, spec = _explicit(n_users=30, per_user=6)
    inter = inter.copy()
    # user 0 has only two rows: they stay in training
    inter = inter[~((inter["user"] == 0) & (inter.groupby("user").cumcount() >= 2))].reset_index(drop=True)
    ds = prepare(_raw(inter, users, items), spec, PrepConfig(split="temporal"))
    assert ds.n_rows("test") == 29 and ds.n_rows("valid") == 29
    assert ds.n_rows("train") == len(inter) - 58
    for u, g in inter.groupby("user"):
        ui = ds.user_index(u)
        g = g.sort_values("ts")
        last, second = ds.item_index(g["item"].iloc[-1]), ds.item_index(g["item"].iloc[-2])
        if len(g) < 3:
            assert ui not in ds.rows["test"]["user_index"] and ui not in ds.rows["valid"]["user_index"]
            continue
        assert ds.rows["test"]["item_index"][ds.rows["test"]["user_index"] == ui].tolist() == [last]
        assert ds.rows["valid"]["item_index"][ds.rows["valid"]["user_index"] == ui].tolist() == [second]


def test_split_needs_the_right_columns():
    inter, spec = _dups()
    no_ts = DataSpec(user_id="user", item_id="item", labels={"rating": "regression"})
    with pytest.raises(DataError, match="timestamp"):
        prepare(_raw(inter), no_ts, PrepConfig(split="temporal"))
    no_items = DataSpec(user_id="user", labels={"rating": "regression"})
    with pytest.raises(DataError, match="item id"):
        prepare(_raw(inter), no_items, PrepConfig(split="cold_item"))
    with pytest.raises(DataError, match="negative sampling"):
        prepare(_raw(inter), no_items, PrepConfig(negative_ratio=1))


def test_table_without_ids_is_prepared_as_context_only():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.integers(18, 90, 200), "job": rng.choice(["a", "b", "c"], 200),
                       "income": rng.integers(0, 2, 200), "married": rng.integers(0, 2, 200)})
    spec = DataSpec(labels={"income": "binary", "married": "binary"}, categorical={"job": "user"},
                    numeric={"age": "context"})
    ds = prepare(_raw(df), spec, PrepConfig())
    assert not ds.has_users and not ds.has_items
    assert {f.name: f.owner for f in ds.fields} == {"job": "context", "age": "context"}
    assert (ds.rows["train"]["user_index"] == -1).all()
    feats, labels = ds.to_device("cpu").batch("train")
    assert set(feats) == {"job", "age"} and set(labels) == {"income", "married"}


# ---- text features, progress, persistence ---------------------------------------------------------
class _FakeEncoder:
    model_name = "fake-encoder"

    def __init__(self):
        self.calls = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return np.array([[len(t), t.count("1"), 1.0] for t in texts], dtype=np.float32)


def test_text_features_encode_each_item_once():
    inter, users, items, spec = _explicit()
    items = items.copy()
    items.loc[3, "title"] = items.loc[4, "title"]          # two items share a text
    encoder = _FakeEncoder()
    stages = []
    ds = prepare(_raw(inter, users, items), spec, PrepConfig(), text_encoder=encoder,
                 progress=lambda s, f: stages.append((s, f)))
    assert len(encoder.calls) == 1
    assert len(encoder.calls[0]) == len(items) - 1         # distinct texts only
    f = ds.field("item_text")
    assert (f.kind, f.owner, f.group, f.dim) == ("dense", "item", "item text", 3)
    vec = ds.item_table["item_text"]
    assert vec.shape == (len(ds.item_ids), 3) and vec.dtype == np.float32
    k = ds.item_index(7)
    assert vec[k][0] == len("Item number 7.")      # one text per item: its title
    np.testing.assert_array_equal(vec[ds.item_index(3)], vec[ds.item_index(4)])
    assert ds.meta["report"]["text"]["item_text"]["model"] == "fake-encoder"
    fractions = [fr for _, fr in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"validate", "split", "text", "done"} <= {s for s, _ in stages}


def test_save_load_round_trip(tmp_path):
    inter, users, items, spec = _explicit()
    ds = prepare(_raw(inter, users, items), spec, PrepConfig(split="cold_item", negative_ratio=1),
                 text_encoder=_FakeEncoder())
    ds.save(tmp_path / "ds")
    back = PreparedDataset.load(tmp_path / "ds")
    assert [vars(f) for f in back.fields] == [vars(f) for f in ds.fields]
    assert [vars(lab) for lab in back.labels] == [vars(lab) for lab in ds.labels]
    for s in ds.splits:
        assert set(back.rows[s]) == set(ds.rows[s])
        for k, v in ds.rows[s].items():
            np.testing.assert_array_equal(back.rows[s][k], v)
    for k, v in ds.item_table.items():
        np.testing.assert_array_equal(back.item_table[k], v)
    for k, v in ds.user_table.items():
        np.testing.assert_array_equal(back.user_table[k], v)
    np.testing.assert_array_equal(back.item_ids, ds.item_ids)
    np.testing.assert_array_equal(back.cold_items, ds.cold_items)
    assert back.meta["prep"] == PrepConfig(split="cold_item", negative_ratio=1).to_dict()
    assert back.meta["spec"] == spec.to_dict()
    assert back.item_info["title"].tolist() == ds.item_info["title"].tolist()
    assert back.item_info["item"].tolist() == [str(i) for i in items["item"]]
    # tensors for the model work from the loaded copy
    feats, labels = back.to_device("cpu").batch("train")
    assert feats["item_text"].shape[1] == 3 and labels["genres"].shape[1] == len(back.label("genres").classes)


def test_prep_config_round_trip_and_bad_values():
    cfg = PrepConfig(split="temporal", negative_ratio=2,
                     derived_labels=[{"name": "like", "source": "rating", "op": ">=", "threshold": 4}])
    assert PrepConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="split"):
        PrepConfig(split="sideways")
    with pytest.raises(ValueError, match="unknown prep option"):
        PrepConfig.from_dict({"splitt": "random"})
    with pytest.raises(ValueError, match="op"):
        PrepConfig(derived_labels=[{"name": "x", "source": "rating", "op": "~", "threshold": 1}])


@pytest.mark.parametrize("cfg", [{"split": "random"},
                                 {"split": "temporal", "negative_ratio": 1.5, "duplicates": "mean",
                                  "derived_labels": [{"name": "long", "source": "dwell", "op": ">=",
                                                      "threshold": 30}]}])
def test_release_input_gives_the_same_dataset_and_frees_the_interactions(cfg):
    inter, users, items, spec = _explicit()
    inter = pd.concat([inter, inter.iloc[:40]], ignore_index=True)       # some duplicate pairs
    kept = _raw(inter.copy(), users, items)
    ds_a = prepare(kept, spec, cfg)
    assert list(kept.interactions.columns) == list(inter.columns)          # untouched by default
    released = _raw(inter.copy(), users, items)
    ds_b = prepare(released, spec, cfg, release_input=True)
    assert len(released.interactions.columns) == 0                         # every column was let go
    for split in ds_a.rows:
        assert list(ds_a.rows[split]) == list(ds_b.rows[split])
        for key, arr in ds_a.rows[split].items():
            other = ds_b.rows[split][key]
            assert arr.dtype == other.dtype and np.array_equal(arr, other, equal_nan=arr.dtype.kind == "f"), key
    for a, b in ((ds_a.user_table, ds_b.user_table), (ds_a.item_table, ds_b.item_table)):
        assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    rep_a = {k: v for k, v in ds_a.meta["report"].items() if k != "timing_s"}
    rep_b = {k: v for k, v in ds_b.meta["report"].items() if k != "timing_s"}
    assert rep_a == rep_b
