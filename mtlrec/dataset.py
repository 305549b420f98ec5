"""The prepared, model-ready dataset: the contract between data preparation and models.

Layout (normalised, so that recommendation and cold start are cheap):

* ``fields``: the model's input features. Each is categorical (integer codes,
  0 = unknown bucket), numeric (one standardised float) or dense (a float vector,
  e.g. a text embedding). Each has an owner: ``user`` fields live in ``user_table``
  (one row per user), ``item`` fields in ``item_table`` (one row per catalogue item),
  ``context`` fields in the interaction rows. ``user_id``/``item_id`` are ordinary
  categorical fields owned by user/item (their code is 0 for ids unseen in training,
  e.g. held-out cold-start items).
* ``labels``: one array per label, per split (binary 0/1 and regression as float32
  of shape [n]; multi-label float32 of shape [n, K]).
* ``rows[split]``: ``user_index`` / ``item_index`` (row in the user / item table,
  -1 when the data has no users / items), the context fields, ``label:<name>``
  arrays, and optionally ``sampled`` (bool, True for sampled negatives) and ``row_id``
  (int64: the row's 0-based position in the interactions as read; -1 for sampled negatives;
  see :meth:`PreparedDataset.row_ids`). Datasets prepared before row ids existed have none.
  Data with a timestamp also keeps ``event_time`` (float64 seconds; a sampled negative has its
  source row's) for time-respecting cross-validation.
* ``meta["row_sources"]``: which file each range of row ids came from, a list of
  ``{"file", "first_row_id", "rows"}`` (plus ``"split"`` for one file per split, whose rows are
  numbered in the concatenation train, valid, test); see :meth:`PreparedDataset.row_source`.

Saved as ``dataset.json`` + ``arrays.npz`` (+ ``items.parquet``/``users.parquet`` with
the raw display columns); never pickle.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FIELD_KINDS = ("categorical", "numeric", "dense")
SPLITS = ("train", "valid", "test")


@dataclass
class FeatureField:
    name: str                 # key in the feature dict, e.g. "user_id", "age", "item_text"
    kind: str                 # "categorical" | "numeric" | "dense"
    owner: str                # "user" | "item" | "context"
    group: str = ""           # display group for explanations ("user id", "item text", ...)
    vocab_size: int = 0       # categorical: number of codes including 0 = unknown
    dim: int = 1              # dense: vector length; numeric: 1

    def __post_init__(self) -> None:
        if self.kind not in FIELD_KINDS:
            raise ValueError(f"field '{self.name}': kind must be one of {FIELD_KINDS}")
        if not self.group:
            self.group = self.name.replace("_", " ")


@dataclass
class LabelField:
    name: str                 # label name (a column, or a derived label such as "like")
    task_type: str            # "binary" | "regression" | "multilabel"
    classes: list[str] = field(default_factory=list)   # multilabel class names


class PreparedDataset:
    def __init__(self, fields: list[FeatureField], labels: list[LabelField],
                 rows: dict[str, dict[str, np.ndarray]],
                 user_table: dict[str, np.ndarray] | None = None,
                 item_table: dict[str, np.ndarray] | None = None,
                 user_ids: np.ndarray | None = None, item_ids: np.ndarray | None = None,
                 meta: dict[str, Any] | None = None,
                 item_info=None, user_info=None):
        self.fields = list(fields)
        self.labels = list(labels)
        self.rows = rows
        self.user_table = user_table or {}
        self.item_table = item_table or {}
        # raw ids (as strings) of the user / item table rows
        self.user_ids = np.asarray(user_ids if user_ids is not None else [], dtype=str)
        self.item_ids = np.asarray(item_ids if item_ids is not None else [], dtype=str)
        # free-form: spec, prep config, prep report, cold_items, context_defaults, ...
        self.meta = meta or {}
        # optional pandas DataFrames of raw display columns (title, genres, ...), row i = table row i
        self.item_info = item_info
        self.user_info = user_info
        self._user_pos: dict[str, int] | None = None
        self._item_pos: dict[str, int] | None = None

    # ---- lookups -------------------------------------------------------------------
    @property
    def splits(self) -> list[str]:
        return list(self.rows)

    def n_rows(self, split: str) -> int:
        r = self.rows[split]
        return len(next(iter(r.values()))) if r else 0

    def field(self, name: str) -> FeatureField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def label(self, name: str) -> LabelField:
        for lab in self.labels:
            if lab.name == name:
                return lab
        raise KeyError(name)

    @property
    def has_users(self) -> bool:
        return len(self.user_ids) > 0

    @property
    def has_items(self) -> bool:
        return len(self.item_ids) > 0

    def user_index(self, raw_id) -> int:
        if self._user_pos is None:
            self._user_pos = {u: i for i, u in enumerate(self.user_ids)}
        try:
            return self._user_pos[str(raw_id)]
        except KeyError:
            raise KeyError(f"unknown user id '{raw_id}'") from None

    def item_index(self, raw_id) -> int:
        if self._item_pos is None:
            self._item_pos = {u: i for i, u in enumerate(self.item_ids)}
        try:
            return self._item_pos[str(raw_id)]
        except KeyError:
            raise KeyError(f"unknown item id '{raw_id}'") from None

    def interacted_items(self, user_index: int, splits=("train", "valid", "test")) -> np.ndarray:
        """Item indices the user really interacted with (sampled negatives excluded)."""
        out = []
        for s in splits:
            if s not in self.rows:
                continue
            r = self.rows[s]
            m = r["user_index"] == user_index
            if "sampled" in r:
                m &= ~r["sampled"]
            out.append(r["item_index"][m])
        return np.unique(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)

    def row_ids(self, split: str) -> np.ndarray | None:
        """The source row of each row of ``split`` (0-based position in the interactions as read;
        -1 for sampled negatives), or None for a dataset prepared before row ids were kept."""
        r = self.rows.get(split) or {}
        v = r.get("row_id")
        return None if v is None else np.asarray(v, dtype=np.int64)

    def row_source(self, row_id: int) -> tuple[str, int]:
        """(file, 0-based row in that file) of a row id (``meta["row_sources"]``)."""
        rid = int(row_id)
        if rid < 0:
            raise KeyError(f"row_id {rid} is a sampled negative: it has no source row")
        for src in self.meta.get("row_sources") or []:
            first = int(src.get("first_row_id", 0))
            if first <= rid < first + int(src.get("rows", 0)):
                return str(src.get("file")), rid - first
        raise KeyError(f"row_id {rid} is in no source file of this dataset")

    @property
    def cold_items(self) -> np.ndarray:
        """Item indices held out of training by an item cold-start split (may be empty)."""
        return np.asarray(self.meta.get("cold_items", []), dtype=np.int64)

    # ---- tensors -------------------------------------------------------------------
    def to_device(self, device="cpu") -> "DeviceData":
        return DeviceData(self, device)

    # ---- persistence ---------------------------------------------------------------
    def save(self, directory) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        # Arrays are stored under positional keys (a0, a1, ...) with a JSON index of what each
        # one is, so that any column name survives (slashes, dots, spaces, markup, non-ASCII).
        arrays: dict[str, np.ndarray] = {}
        index: list[list[str]] = []

        def put(*where: str, value) -> None:
            arrays[f"a{len(index)}"] = value
            index.append(list(where))

        for split, cols in self.rows.items():
            for k, v in cols.items():
                put("rows", split, k, value=v)
        for k, v in self.user_table.items():
            put("user_table", k, value=v)
        for k, v in self.item_table.items():
            put("item_table", k, value=v)
        put("user_ids", value=self.user_ids)
        put("item_ids", value=self.item_ids)
        np.savez(d / "arrays.npz", **arrays)
        doc = {"format": "mtlrec-dataset/2",
               "arrays": {k: w for k, w in zip(arrays, index)},
               "fields": [asdict(f) for f in self.fields],
               "labels": [asdict(lab) for lab in self.labels],
               "splits": self.splits,
               "meta": _jsonable(self.meta)}
        (d / "dataset.json").write_text(json.dumps(doc, indent=2))
        if self.item_info is not None:
            self.item_info.to_parquet(d / "items.parquet", index=False)
        if self.user_info is not None:
            self.user_info.to_parquet(d / "users.parquet", index=False)
        return d

    @classmethod
    def load(cls, directory) -> "PreparedDataset":
        d = Path(directory)
        doc = json.loads((d / "dataset.json").read_text())
        rows: dict[str, dict[str, np.ndarray]] = {s: {} for s in doc["splits"]}
        user_table: dict[str, np.ndarray] = {}
        item_table: dict[str, np.ndarray] = {}
        user_ids = item_ids = None
        index = doc.get("arrays")         # format 2: positional keys + index; format 1: "rows/<split>/<name>"
        with np.load(d / "arrays.npz", allow_pickle=False) as z:
            for key in z.files:
                where = index.get(key) if index is not None else _old_key(key)
                if not where:
                    continue
                if where[0] == "rows" and len(where) == 3:
                    rows.setdefault(where[1], {})[where[2]] = z[key]
                elif where[0] == "user_table" and len(where) == 2:
                    user_table[where[1]] = z[key]
                elif where[0] == "item_table" and len(where) == 2:
                    item_table[where[1]] = z[key]
                elif where[0] == "user_ids":
                    user_ids = z[key]
                elif where[0] == "item_ids":
                    item_ids = z[key]
        item_info = user_info = None
        if (d / "items.parquet").exists() or (d / "users.parquet").exists():
            import pandas as pd
            if (d / "items.parquet").exists():
                item_info = pd.read_parquet(d / "items.parquet")
            if (d / "users.parquet").exists():
                user_info = pd.read_parquet(d / "users.parquet")
        return cls([FeatureField(**f) for f in doc["fields"]],
                   [LabelField(**lab) for lab in doc["labels"]],
                   rows, user_table, item_table, user_ids, item_ids, doc.get("meta", {}),
                   item_info, user_info)


def _old_key(key: str) -> list[str]:
    """Where an array of a format-1 ``arrays.npz`` goes (names may hold '/': split from the left)."""
    if key.startswith("rows/"):
        return key.split("/", 2)
    if key.startswith(("user_table/", "item_table/")):
        return key.split("/", 1)
    return [key]


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


class DeviceData:
    """All arrays of a PreparedDataset as torch tensors on one device.

    Batches are made by indexing (``batch(split, idx)``), not with a DataLoader:
    user/item fields are gathered from their tables through ``user_index``/``item_index``.
    """

    def __init__(self, ds: PreparedDataset, device="cpu"):
        import torch
        self.ds = ds
        self.device = torch.device(device)
        dev = self.device

        def t(a: np.ndarray, kind: str):
            if kind == "categorical" or a.dtype.kind in "iu":
                return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.long, device=dev)
            return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=dev)

        self.user_table = {f.name: t(ds.user_table[f.name], f.kind) for f in ds.fields if f.owner == "user"}
        self.item_table = {f.name: t(ds.item_table[f.name], f.kind) for f in ds.fields if f.owner == "item"}
        self.rows: dict[str, dict[str, "torch.Tensor"]] = {}
        for split, cols in ds.rows.items():
            r = {}
            for f in ds.fields:
                if f.owner == "context":
                    r[f.name] = t(cols[f.name], f.kind)
            for k in ("user_index", "item_index"):
                if k in cols:
                    r[k] = torch.as_tensor(cols[k], dtype=torch.long, device=dev)
            for lab in ds.labels:
                r["label:" + lab.name] = torch.as_tensor(cols["label:" + lab.name], dtype=torch.float32, device=dev)
            self.rows[split] = r

    def n_rows(self, split: str) -> int:
        return self.ds.n_rows(split)

    def batch(self, split: str, idx=None):
        """Features and labels of rows ``idx`` (a LongTensor on this device; None = all)."""
        r = self.rows[split]
        take = (lambda a: a) if idx is None else (lambda a: a[idx])
        feats = {}
        if self.user_table:
            ui = take(r["user_index"])
            for k, tab in self.user_table.items():
                feats[k] = tab[ui]
        if self.item_table:
            ii = take(r["item_index"])
            for k, tab in self.item_table.items():
                feats[k] = tab[ii]
        for f in self.ds.fields:
            if f.owner == "context":
                feats[f.name] = take(r[f.name])
        labels = {lab.name: take(r["label:" + lab.name]) for lab in self.ds.labels}
        return feats, labels

    def candidates(self, user_index: int, item_indices=None):
        """Features for one user against every catalogue item (or ``item_indices``).

        Context fields take their defaults (``meta['context_defaults']``: the most frequent
        code / 0.0 for standardised numerics)."""
        import torch
        if item_indices is None:
            n = len(self.ds.item_ids)
            ii = torch.arange(n, device=self.device)
        else:
            ii = torch.as_tensor(item_indices, dtype=torch.long, device=self.device)
            n = len(ii)
        feats = {k: tab[ii] for k, tab in self.item_table.items()}
        for k, tab in self.user_table.items():
            v = tab[user_index]
            feats[k] = v.expand(n, *v.shape) if v.dim() else v.repeat(n)
        defaults = self.ds.meta.get("context_defaults", {})
        for f in self.ds.fields:
            if f.owner == "context":
                d = defaults.get(f.name, 0)
                if f.kind == "categorical":
                    feats[f.name] = torch.full((n,), int(d), dtype=torch.long, device=self.device)
                elif f.kind == "numeric":
                    feats[f.name] = torch.full((n,), float(d), dtype=torch.float32, device=self.device)
                else:
                    vec = torch.as_tensor(np.asarray(d if d else np.zeros(f.dim)), dtype=torch.float32,
                                          device=self.device)
                    feats[f.name] = vec.expand(n, f.dim)
        return feats
