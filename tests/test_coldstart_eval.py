"""Cold/warm evaluation pieces on a tiny hand-made dataset (no training, no text model)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mtlrec.dataset import FeatureField, LabelField, PreparedDataset


def _tiny(n_items=6, cold=(4, 5)):
    rng = np.random.default_rng(0)
    fields = [FeatureField("user_id", "categorical", "user", "user id", vocab_size=4),
              FeatureField("item_id", "categorical", "item", "item id", vocab_size=n_items - len(cold) + 1),
              FeatureField("item_text", "dense", "item", "item text", dim=3)]
    labels = [LabelField("like", "binary"), LabelField("rating", "regression")]
    item_codes = np.array([i + 1 if i not in cold else 0 for i in range(n_items)])
    item_table = {"item_id": item_codes, "item_text": rng.normal(size=(n_items, 3)).astype(np.float32)}
    user_table = {"user_id": np.array([1, 2, 3])}

    def rows(items, users):
        items, users = np.asarray(items), np.asarray(users)
        return {"user_index": users, "item_index": items,
                "label:like": (items % 2).astype(np.float32),
                "label:rating": (1.0 + items).astype(np.float32)}
    warm = [i for i in range(n_items) if i not in cold]
    r = {"train": rows(warm * 3, [0, 1, 2] * len(warm)),
         "valid": rows([0, 4, 1], [0, 1, 2]),
         "test": rows([0, 1, 2, 3, 4, 5, 4, 5], [0, 1, 2, 0, 1, 2, 0, 1])}
    return PreparedDataset(fields, labels, r, user_table, item_table,
                           np.array(["u1", "u2", "u3"]), np.array([f"i{i}" for i in range(n_items)]),
                           {"cold_items": list(cold)})


def test_row_groups_split_test_rows_by_cold_items():
    from mtlrec.serve.coldstart import row_groups
    ds = _tiny()
    g = row_groups(ds, "test")
    assert g["cold"].tolist() == [4, 5, 6, 7]
    assert g["warm"].tolist() == [0, 1, 2, 3]


def test_evaluate_cold_warm_scores_each_group_with_its_own_rows():
    import torch
    from mtlrec.serve.coldstart import evaluate_cold_warm
    from mtlrec.models import build_model
    from mtlrec.tasks import TaskSpec
    ds = _tiny()
    tasks = [TaskSpec("like", "binary"), TaskSpec("rating", "regression")]
    torch.manual_seed(0)
    model = build_model("shared_bottom", ds.fields, tasks)
    res = evaluate_cold_warm(model, ds)
    assert res["like"]["metric"] == "auc" and res["like"]["higher_is_better"] is True
    assert res["rating"]["metric"] == "rmse" and res["rating"]["higher_is_better"] is False
    assert res["like"]["cold"]["n"] == 4 and res["like"]["warm"]["n"] == 4
    # the cold group's labels: items 4, 5, 4, 5 -> like 0, 1, 0, 1
    assert res["like"]["cold"]["positives"] == 2
    # rmse of each group computed on that group's rows only
    from mtlrec.serve.coldstart import predict_rows
    preds, labels = predict_rows(model, ds, "test", np.array([4, 5, 6, 7]))
    rmse = float(np.sqrt(np.mean((preds["rating"] - labels["rating"]) ** 2)))
    assert res["rating"]["cold"]["rmse"] == pytest.approx(rmse, rel=1e-5)
    np.testing.assert_array_equal(labels["rating"], [5.0, 6.0, 5.0, 6.0])


def test_side_by_side_and_rows_say_which_is_better_per_direction():
    from mtlrec.serve.coldstart import comparison_rows, side_by_side
    a = {"like": {"metric": "auc", "higher_is_better": True, "cold": {"auc": 0.70, "n": 10},
                  "warm": {"auc": 0.80, "n": 20}},
         "rating": {"metric": "rmse", "higher_is_better": False, "cold": {"rmse": 1.1, "n": 10},
                    "warm": {"rmse": float("nan"), "n": 0}}}
    b = {"like": {"metric": "auc", "higher_is_better": True, "cold": {"auc": 0.60, "n": 10},
                  "warm": {"auc": 0.85, "n": 20}},
         "rating": {"metric": "rmse", "higher_is_better": False, "cold": {"rmse": 1.3, "n": 10},
                    "warm": {"rmse": 0.9, "n": 0}}}
    s = side_by_side(a, b)
    assert s["like"]["cold"] == {"with_text": 0.70, "without_text": 0.60, "n": 10}
    assert s["rating"]["warm"]["with_text"] is None          # NaN becomes None (JSON-safe)
    rows = {(r["task"], r["items"]): r for r in comparison_rows(s)}
    assert rows[("like", "cold")]["better"] == "with text"
    assert rows[("like", "warm")]["better"] == "without text"
    assert rows[("rating", "cold")]["better"] == "with text"   # lower rmse wins
    assert math.isclose(rows[("rating", "cold")]["difference"], -0.2)
    assert rows[("rating", "warm")]["better"] is None


def test_id_dropout_copies_items_with_unknown_id_in_training_rows_only():
    from mtlrec.serve.coldstart import with_id_dropout
    ds = _tiny()
    assert with_id_dropout(ds, 0.0) is ds
    aug = with_id_dropout(ds, 0.5, seed=1)
    n = len(ds.item_ids)
    tr = aug.rows["train"]["item_index"]
    moved = tr >= n
    assert 0 < moved.sum() < len(tr)
    # a moved row sees the same item, except that its id is the unknown bucket
    orig = ds.rows["train"]["item_index"]
    np.testing.assert_array_equal(tr[moved] - n, orig[moved])
    assert (aug.item_table["item_id"][tr[moved]] == 0).all()
    np.testing.assert_array_equal(aug.item_table["item_text"][tr[moved]], ds.item_table["item_text"][orig[moved]])
    # valid/test untouched; the original dataset untouched
    for s in ("valid", "test"):
        np.testing.assert_array_equal(aug.rows[s]["item_index"], ds.rows[s]["item_index"])
    assert (ds.rows["train"]["item_index"] < n).all() and len(ds.item_table["item_id"]) == n
