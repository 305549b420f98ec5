"""Prepared datasets stored as one memory-mappable .npy per array (issue 16, part 3): format
"mtlrec-dataset/3" round trips every array kind, loads as read-only memory maps that DeviceData
wraps on CPU without a copy, older arrays.npz folders still load, and a missing or cut-short
array file is named."""
from __future__ import annotations

import json
import mmap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from _fixtures_train import make_dataset
from mtlrec.dataset import FORMAT, DatasetFileError, FeatureField, LabelField, PreparedDataset
from mtlrec.errors import DataError

ODD = ["views/day", "a.b", "x y", "<b>x</b>", "naïve", "../../etc", "L" * 200]


def _dataset() -> PreparedDataset:
    """Every array kind: categorical (int32 in memory), numeric (float64), dense, context fields,
    labels of each type, row ids, sampled flags, event times, odd names and non-ASCII ids."""
    rng = np.random.default_rng(1)
    n_users, n_items = 7, 5
    fields = [FeatureField("user_id", "categorical", "user", vocab_size=n_users + 1),
              FeatureField("item_id", "categorical", "item", vocab_size=n_items + 1),
              FeatureField("views/day", "numeric", "user"),
              FeatureField("a.b", "categorical", "item", vocab_size=3),
              FeatureField("x y", "dense", "item", dim=4),
              FeatureField("<b>x</b>", "categorical", "context", vocab_size=5),
              FeatureField("naïve", "numeric", "context"),
              FeatureField("../../etc", "dense", "context", dim=2)]
    labels = [LabelField("click", "binary"), LabelField("stars", "regression"),
              LabelField("g/enres", "multilabel", ["a", "b", "c"])]
    rows = {}
    for split, n in (("train", 30), ("valid", 8), ("test", 9)):
        rows[split] = {"user_index": rng.integers(0, n_users, n).astype(np.int32),
                       "item_index": rng.integers(0, n_items, n),
                       "<b>x</b>": rng.integers(0, 5, n).astype(np.int16),
                       "naïve": rng.normal(size=n),                                  # float64
                       "../../etc": rng.normal(size=(n, 2)),
                       "label:click": rng.integers(0, 2, n).astype(np.int8),
                       "label:stars": rng.normal(size=n),
                       "label:g/enres": (rng.random((n, 3)) < 0.5).astype(np.float32),
                       "row_id": np.arange(n, dtype=np.int64),
                       "sampled": rng.random(n) < 0.3,
                       "event_time": rng.normal(size=n) * 1e9,
                       "L" * 200: rng.normal(size=n).astype(np.float16)}            # no field: kept as is
    user_table = {"user_id": np.arange(1, n_users + 1, dtype=np.int32),
                  "views/day": rng.normal(size=n_users)}
    item_table = {"item_id": np.arange(1, n_items + 1), "a.b": rng.integers(0, 3, n_items).astype(np.uint8),
                  "x y": rng.normal(size=(n_items, 4))}
    return PreparedDataset(fields, labels, rows, user_table, item_table,
                           user_ids=["ü1", "u 2", "u/3", "<u4>", "5", "日本", ""],
                           item_ids=["i0", "i.1", "i2", "i\u00e93", "i4"],
                           meta={"note": "x", "context_defaults": {"<b>x</b>": 1, "naïve": 0.0}})


def _stored_dtype(where: str, a: np.ndarray):
    """The dtype a saved array must have: DeviceData's for fields and labels, else its own."""
    cat = {"user_id", "item_id", "a.b", "<b>x</b>"}
    flt = {"views/day", "x y", "naïve", "../../etc"}
    name = where.split("/", 2)[-1] if where.startswith("rows/") else where.split("/", 1)[-1]
    if name in cat or name in ("user_index", "item_index"):
        return np.dtype(np.int64)
    if name in flt or name.startswith("label:"):
        return np.dtype(np.float32)
    return a.dtype


def _all_arrays(ds: PreparedDataset) -> dict[str, np.ndarray]:
    out = {f"rows/{s}/{k}": v for s, cols in ds.rows.items() for k, v in cols.items()}
    out.update({f"user_table/{k}": v for k, v in ds.user_table.items()})
    out.update({f"item_table/{k}": v for k, v in ds.item_table.items()})
    out["user_ids"], out["item_ids"] = ds.user_ids, ds.item_ids
    return out


def _is_mapped(a: np.ndarray) -> bool:
    b = a
    while b is not None:
        if isinstance(b, (np.memmap, mmap.mmap)):
            return True
        b = getattr(b, "base", None)
    return False


def test_round_trip_of_every_array_kind_in_the_dtype_device_data_uses(tmp_path):
    ds = _dataset()
    d = ds.save(tmp_path / "ds")
    doc = json.loads((d / "dataset.json").read_text())
    assert doc["format"] == FORMAT == "mtlrec-dataset/3"
    assert not (d / "arrays.npz").exists()
    assert sorted(p.name for p in (d / "arrays").iterdir()) == sorted(f"{k}.npy" for k in doc["arrays"])
    back = PreparedDataset.load(d)
    want, got = _all_arrays(ds), _all_arrays(back)
    assert set(got) == set(want)
    for where, a in want.items():
        b = got[where]
        assert b.dtype == _stored_dtype(where, a), where
        assert b.shape == a.shape, where
        np.testing.assert_array_equal(b, a.astype(b.dtype), err_msg=where)
    assert list(back.user_ids) == ["ü1", "u 2", "u/3", "<u4>", "5", "日本", ""]
    assert back.item_index("i\u00e93") == 3 and back.user_index("日本") == 5
    assert back.meta == ds.meta and [f.name for f in back.fields] == [f.name for f in ds.fields]
    # every .npy reads without pickle
    for key in doc["arrays"]:
        np.load(d / "arrays" / f"{key}.npy", allow_pickle=False)
    # the batches are the same as from the dataset in memory
    idx = torch.arange(6)
    f1, l1 = ds.to_device("cpu").batch("valid", idx)
    f2, l2 = back.to_device("cpu").batch("valid", idx)
    for k in f1:
        assert f1[k].dtype == f2[k].dtype and torch.equal(f1[k], f2[k]), k
    for k in l1:
        assert torch.equal(l1[k], l2[k]), k


def test_loaded_arrays_are_read_only_memory_maps(tmp_path):
    ds = _dataset()
    ds.save(tmp_path / "ds")
    back = PreparedDataset.load(tmp_path / "ds")
    for where, a in _all_arrays(back).items():
        assert _is_mapped(a), where
        assert not a.flags.writeable, where
    with pytest.raises(ValueError):
        back.rows["train"]["label:click"][0] = 1.0
    mem = PreparedDataset.load(tmp_path / "ds", mmap=False)
    assert not _is_mapped(mem.rows["train"]["user_index"])
    np.testing.assert_array_equal(mem.rows["train"]["user_index"], back.rows["train"]["user_index"])


def test_device_data_on_cpu_shares_memory_with_the_maps_and_does_not_warn(tmp_path):
    ds = _dataset()
    ds.save(tmp_path / "ds")
    back = PreparedDataset.load(tmp_path / "ds")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # torch's "not writable" warning is not shown
        data = back.to_device("cpu")
    pairs = [(data.rows["train"]["user_index"], back.rows["train"]["user_index"]),
             (data.rows["train"]["<b>x</b>"], back.rows["train"]["<b>x</b>"]),
             (data.rows["test"]["label:g/enres"], back.rows["test"]["label:g/enres"]),
             (data.user_table["views/day"], back.user_table["views/day"]),
             (data.item_table["x y"], back.item_table["x y"])]
    for t, a in pairs:
        assert t.data_ptr() == a.ctypes.data
        assert np.shares_memory(t.numpy(), a)
    # a batch is a gathered copy, not a view of the read-only maps
    feats, labels = data.batch("train", torch.tensor([0, 2, 4]))
    assert feats["views/day"].data_ptr() != data.user_table["views/day"].data_ptr()
    feats["views/day"].add_(1.0)                          # the caller's own copy: writable
    np.testing.assert_array_equal(data.user_table["views/day"].numpy(), back.user_table["views/day"])


def test_an_old_format_2_folder_still_loads(tmp_path):
    """Format 2 (until issue 16): positional keys a0, a1, ... in one arrays.npz + the JSON index."""
    ds = _dataset()
    d = tmp_path / "old"
    d.mkdir()
    arrays, index = {}, {}
    for where_s, a in _all_arrays(ds).items():
        key = f"a{len(index)}"
        where = (where_s.split("/", 2) if where_s.startswith("rows/")
                 else where_s.split("/", 1) if where_s.startswith(("user_table/", "item_table/")) else [where_s])
        arrays[key], index[key] = a, where
    np.savez(d / "arrays.npz", **arrays)
    doc = {"format": "mtlrec-dataset/2", "arrays": index,
           "fields": [f.__dict__ for f in ds.fields], "labels": [lab.__dict__ for lab in ds.labels],
           "splits": ds.splits, "meta": ds.meta}
    (d / "dataset.json").write_text(json.dumps(doc))
    back = PreparedDataset.load(d)
    for where, a in _all_arrays(ds).items():
        b = _all_arrays(back)[where]
        assert b.dtype == a.dtype and np.array_equal(b, a), where     # exactly as stored
    back.to_device("cpu").batch("valid", torch.arange(4))
    # saved again: format 3, and the npz is gone
    back.save(d)
    assert json.loads((d / "dataset.json").read_text())["format"] == FORMAT
    assert not (d / "arrays.npz").exists()
    again = PreparedDataset.load(d)
    np.testing.assert_array_equal(again.rows["test"]["naïve"], ds.rows["test"]["naïve"].astype(np.float32))


def test_saving_over_a_loaded_dataset_keeps_the_old_maps_readable(tmp_path):
    """Each .npy is replaced by a rename: a process that has the old file mapped keeps its data."""
    ds = make_dataset(n_rows=300)
    ds.save(tmp_path / "ds")
    back = PreparedDataset.load(tmp_path / "ds")
    before = np.array(back.rows["train"]["label:click"])
    ds.rows["train"]["label:click"] = 1.0 - ds.rows["train"]["label:click"]
    ds.save(tmp_path / "ds")
    np.testing.assert_array_equal(back.rows["train"]["label:click"], before)
    np.testing.assert_array_equal(PreparedDataset.load(tmp_path / "ds").rows["train"]["label:click"], 1.0 - before)
    assert not list((tmp_path / "ds" / "arrays").glob(".*"))      # no temporary files left


def _key_of(d: Path, where: list[str]) -> str:
    doc = json.loads((d / "dataset.json").read_text())
    return next(k for k, w in doc["arrays"].items() if w == where)


@pytest.mark.parametrize("damage", ["missing", "truncated", "header only", "garbage"])
def test_a_missing_or_damaged_array_file_is_named(tmp_path, damage):
    ds = make_dataset(n_rows=300)
    d = ds.save(tmp_path / "ds")
    key = _key_of(d, ["rows", "train", "label:click"])
    p = d / "arrays" / f"{key}.npy"
    if damage == "missing":
        p.unlink()
    elif damage == "truncated":
        p.write_bytes(p.read_bytes()[: int(p.stat().st_size * 0.7)])
    elif damage == "header only":
        p.write_bytes(p.read_bytes()[:40])
    else:
        p.write_bytes(b"not a numpy file at all")
    with pytest.raises(DatasetFileError) as ei:
        PreparedDataset.load(d)
    e = ei.value
    assert isinstance(e, DataError) and e.name == f"arrays/{key}.npy" and e.file == str(p) and e.fix
    assert f"arrays/{key}.npy" in str(e) and "rows/train/label:click" in str(e)
    assert ("missing" if damage == "missing" else "damaged") in str(e)


def test_an_index_entry_that_is_not_an_array_name_is_refused(tmp_path):
    """dataset.json may come from an imported zip: its keys never become paths."""
    ds = make_dataset(n_rows=300)
    d = ds.save(tmp_path / "ds")
    doc = json.loads((d / "dataset.json").read_text())
    doc["arrays"]["../../secret"] = ["rows", "train", "x"]
    (d / "dataset.json").write_text(json.dumps(doc))
    with pytest.raises(DatasetFileError, match="dataset.json"):
        PreparedDataset.load(d)
