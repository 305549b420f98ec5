"""The prepared, model-ready dataset: the contract between data preparation and models.

Layout (normalised, so that recommendation and cold start are cheap):

* ``fields``: the model's input features. Each is categorical (integer codes,
  0 = unknown bucket), numeric (one standardised float), dense (a float vector,
  e.g. a text embedding) or multihot (float32 0/1 per class of a multi-valued column such as
  genres, ``meta["vocabularies"][name]`` names the classes; a row with no class is all zeros). Each has an owner: ``user`` fields live in ``user_table``
  (one row per user), ``item`` fields in ``item_table`` (one row per catalogue item),
  ``context`` fields in the interaction rows. ``user_id``/``item_id`` are ordinary
  categorical fields owned by user/item (their code is 0 for ids unseen in training,
  e.g. held-out cold-start items).
* ``labels``: one array per label, per split (binary 0/1 and regression as float32
  of shape [n]; multi-label and distribution float32 of shape [n, K]).
* ``rows[split]``: ``user_index`` / ``item_index`` (row in the user / item table,
  -1 when the data has no users / items), the context fields, ``label:<name>``
  arrays, and optionally ``sampled`` (bool, True for sampled negatives; valid and test keep those
  of preparation, the train split holds one draw, and training replaces it every epoch:
  `DeviceData.start_epoch`, ``meta["negatives"]``; a user/item-owned label that negatives take
  from its table is also kept as ``user_table`` / ``item_table`` entry ``label:<name>``) and ``row_id``
  (int64: the row's 0-based position in the interactions as read; -1 for sampled negatives;
  see :meth:`PreparedDataset.row_ids`). Datasets prepared before row ids existed have none.
  Data with a timestamp also keeps ``event_time`` (float64 seconds; a sampled negative has its
  source row's) for time-respecting cross-validation.
* ``meta["row_sources"]``: which file each range of row ids came from, a list of
  ``{"file", "first_row_id", "rows"}`` (plus ``"split"`` for one file per split, whose rows are
  numbered in the concatenation train, valid, test); see :meth:`PreparedDataset.row_source`.

Saved (format ``mtlrec-dataset/3``) as a folder: ``dataset.json`` (fields, labels, splits, meta
and ``"arrays"``, an index ``{"a0": ["rows", "train", "user_index"], "a1": ["user_table",
"age"], "a2": ["user_ids"], ...}`` saying what each stored array is, so that any column name
survives), ``arrays/a0.npy``, ``arrays/a1.npy``, ... (one ``.npy`` file per array, without
pickle; the raw ids as fixed-width unicode), and optionally ``items.parquet``/``users.parquet``
with the raw display columns. Arrays are stored in the dtype `DeviceData` uses (int64 for
categorical codes and ``user_index``/``item_index``, float32 for numeric/dense fields and
labels; other arrays as they are), and `PreparedDataset.load` opens them as read-only memory
maps: a process reads only the rows it touches, and `DeviceData` on CPU wraps them without a
copy. Each ``.npy`` is written under a temporary name and renamed; ``dataset.json`` is written
last. Older folders (formats 1 and 2: one ``arrays.npz``, read whole) still load.
"""
from __future__ import annotations

import json
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtlrec.diskio import on_full_disk, write_atomic, write_text
from mtlrec.errors import DataError

FIELD_KINDS = ("categorical", "numeric", "dense", "multihot", "history")
SPLITS = ("train", "valid", "test")
FORMAT = "mtlrec-dataset/3"
READABLE_FORMATS = {"mtlrec-dataset/1": 1, "mtlrec-dataset/2": 2, FORMAT: 3}
ARRAYS_DIR = "arrays"                 # format 3: one <key>.npy per array
_KEY = re.compile(r"a[0-9]{1,9}")     # the stored keys (a0, a1, ...): never a path
_NOT_WRITABLE = "The given NumPy array is not writable"   # torch's warning for a read-only memmap


class DatasetFileError(DataError):
    """A file of a saved dataset folder that is missing or damaged. ``name`` is its path inside
    the folder (e.g. ``arrays/a3.npy``), ``file`` the full path."""

    def __init__(self, what: str, *, name: str, file: str, fix: str | None = None):
        self.name = name
        super().__init__(what, file=file, fix=fix or "prepare the data again (python -m mtlrec prepare, "
                                                     "or the Data page) and save it anew")


def format_version(doc, directory) -> int:
    """The format (1, 2 or 3) of a saved dataset, from its ``dataset.json`` (``doc``); a
    `DatasetFileError` that names the format when this version of mtlrec cannot read it (a folder
    written by a newer mtlrec, or a damaged dataset.json) -- not a complaint about whichever array
    file an older format would have."""
    fmt = doc.get("format") if isinstance(doc, dict) else None
    if isinstance(fmt, str) and fmt in READABLE_FORMATS:
        return READABLE_FORMATS[fmt]
    shown = "does not say its format" if fmt is None else f"is in the format '{str(fmt)[:60]}'"
    raise DatasetFileError(f"dataset.json {shown}, which this version of mtlrec cannot read (it reads "
                           f"{', '.join(READABLE_FORMATS)})", name="dataset.json",
                           file=str(Path(directory) / "dataset.json"),
                           fix="open it with the mtlrec version that wrote it, or prepare the data again with this one")


@dataclass
class FeatureField:
    name: str                 # key in the feature dict, e.g. "user_id", "age", "item_text"
    kind: str                 # "categorical" | "numeric" | "dense" | "multihot" | "history"
    owner: str                # "user" | "item" | "context"
    group: str = ""           # display group for explanations ("user id", "item text", ...)
    vocab_size: int = 0       # categorical: number of codes including 0 = unknown
    dim: int = 1              # dense: vector length; multihot: number of classes; history: its length;
                              # numeric: 1

    def __post_init__(self) -> None:
        if self.kind not in FIELD_KINDS:
            raise ValueError(f"field '{self.name}': kind must be one of {FIELD_KINDS}")
        if not self.group:
            self.group = self.name.replace("_", " ")


@dataclass
class LabelField:
    name: str                 # label name (a column, or a derived label such as "like")
    task_type: str            # "binary" | "regression" | "multilabel" | "distribution"
    classes: list[str] = field(default_factory=list)   # multilabel / distribution class names


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
        """Write the dataset to ``directory`` in format 3 (see the module docstring). Every file is
        written through a temporary one (`mtlrec.diskio.write_atomic`), ``dataset.json`` last; a full
        disk raises `DiskFullError` naming the folder and leaves no temporary file behind."""
        d = Path(directory)
        with on_full_disk(d, outer=True):         # named as the dataset's folder, not its arrays/
            return self._save(d)

    def _save(self, d: Path) -> Path:
        ad = d / ARRAYS_DIR
        ad.mkdir(parents=True, exist_ok=True)
        # Arrays are stored under positional keys (a0, a1, ...) with a JSON index of what each
        # one is, so that any column name survives (slashes, dots, spaces, markup, non-ASCII).
        index: dict[str, list[str]] = {}

        def put(*where: str, value) -> None:
            key = f"a{len(index)}"
            _save_npy(ad / f"{key}.npy", value)
            index[key] = list(where)

        by_name = {f.name: f for f in self.fields}
        label_keys = {"label:" + lab.name for lab in self.labels}
        for split, cols in self.rows.items():
            for k, v in cols.items():
                f = by_name.get(k)
                if k in ("user_index", "item_index"):
                    v = _as_dtype(v, np.int64)
                elif k in label_keys:
                    v = _as_dtype(v, np.float32)
                elif f is not None and f.owner == "context":
                    v = _as_dtype(v, _field_dtype(f, v))
                put("rows", split, k, value=v)
        for owner, table in (("user", self.user_table), ("item", self.item_table)):
            for k, v in table.items():
                f = by_name.get(k)
                if f is not None and f.owner == owner:
                    v = _as_dtype(v, _field_dtype(f, v))
                put(f"{owner}_table", k, value=v)
        put("user_ids", value=np.asarray(self.user_ids, dtype=str))
        put("item_ids", value=np.asarray(self.item_ids, dtype=str))
        for name, info in (("items.parquet", self.item_info), ("users.parquet", self.user_info)):
            if info is not None:
                write_atomic(d / name, lambda fh, df=info: df.to_parquet(fh, index=False))
        doc = {"format": FORMAT,
               "arrays": index,
               "fields": [asdict(f) for f in self.fields],
               "labels": [asdict(lab) for lab in self.labels],
               "splits": self.splits,
               "meta": _jsonable(self.meta)}
        write_text(d / "dataset.json", json.dumps(doc, indent=2))   # last: the folder is complete from here on
        # what an earlier save into this folder left: an older format's arrays.npz, surplus .npy
        (d / "arrays.npz").unlink(missing_ok=True)
        for p in ad.glob("a*.npy"):
            if _KEY.fullmatch(p.stem) and p.stem not in index:
                p.unlink(missing_ok=True)
        return d

    @classmethod
    def load(cls, directory, mmap: bool = True) -> "PreparedDataset":
        """The dataset saved in ``directory``. Format 3: each array is a read-only memory map
        (``mmap=False``: read into memory); formats 1 and 2 (``arrays.npz``): read whole.
        A missing or damaged array file raises `DatasetFileError` naming it."""
        d = Path(directory)
        doc = json.loads((d / "dataset.json").read_text())
        rows: dict[str, dict[str, np.ndarray]] = {s: {} for s in doc["splits"]}
        user_table: dict[str, np.ndarray] = {}
        item_table: dict[str, np.ndarray] = {}
        ids: dict[str, np.ndarray] = {}

        def place(where, value) -> None:
            if not where:
                return
            if where[0] == "rows" and len(where) == 3:
                rows.setdefault(where[1], {})[where[2]] = value
            elif where[0] == "user_table" and len(where) == 2:
                user_table[where[1]] = value
            elif where[0] == "item_table" and len(where) == 2:
                item_table[where[1]] = value
            elif where[0] in ("user_ids", "item_ids"):
                ids[where[0]] = value

        index = doc.get("arrays")         # format 2/3: positional keys + index; format 1: "rows/<split>/<name>"
        if format_version(doc, d) == 3:
            if not isinstance(index, dict):
                raise DatasetFileError("dataset.json is damaged: it lacks the index of the arrays",
                                       name="dataset.json", file=str(d / "dataset.json"))
            for key, where in index.items():
                place(where, _load_npy(d, key, where, mmap))
        else:
            with np.load(d / "arrays.npz", allow_pickle=False) as z:
                for key in z.files:
                    place(index.get(key) if index is not None else _old_key(key), z[key])
        item_info = user_info = None
        if (d / "items.parquet").exists() or (d / "users.parquet").exists():
            import pandas as pd
            if (d / "items.parquet").exists():
                item_info = pd.read_parquet(d / "items.parquet")
            if (d / "users.parquet").exists():
                user_info = pd.read_parquet(d / "users.parquet")
        return cls([FeatureField(**f) for f in doc["fields"]],
                   [LabelField(**lab) for lab in doc["labels"]],
                   rows, user_table, item_table, ids.get("user_ids"), ids.get("item_ids"), doc.get("meta", {}),
                   item_info, user_info)


def array_files(directory) -> list[str]:
    """The array files of a saved dataset folder, relative to it: ``arrays/a0.npy``, ... for
    format 3 (from its index, whether present or not), ``["arrays.npz"]`` for older folders
    (and for a folder whose ``dataset.json`` cannot be read)."""
    d = Path(directory)
    try:
        doc = json.loads((d / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return ["arrays.npz"]
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return ["arrays.npz"]
    index = doc.get("arrays")
    return [f"{ARRAYS_DIR}/{k}.npy" for k in (index if isinstance(index, dict) else {}) if _KEY.fullmatch(str(k))]


def _field_dtype(f: FeatureField, a: np.ndarray):
    """The dtype `DeviceData` gives field ``f``'s array ``a`` (int64 or float32)."""
    return np.int64 if f.kind == "categorical" or np.asarray(a).dtype.kind in "iu" else np.float32


def _as_dtype(a, dtype) -> np.ndarray:
    a = np.asarray(a)
    return a if a.dtype == dtype else a.astype(dtype)


def _save_npy(path: Path, a) -> None:
    """``a`` as ``path`` (a .npy without pickle), written under a temporary name and renamed, so
    that a process that has the old file memory-mapped keeps reading the old one."""
    a = np.asarray(a)
    if a.dtype.hasobject:
        raise TypeError(f"{path.name}: an array of Python objects cannot be stored without pickle")
    write_atomic(path, lambda fh: np.save(fh, np.ascontiguousarray(a), allow_pickle=False))


def _load_npy(d: Path, key, where, mmap: bool) -> np.ndarray:
    what = "/".join(str(w) for w in where) if isinstance(where, list) else "?"
    if not _KEY.fullmatch(str(key)):
        raise DatasetFileError(f"dataset.json is damaged: '{str(key)[:40]}' is not the name of a stored array",
                               name="dataset.json", file=str(d / "dataset.json"))
    name = f"{ARRAYS_DIR}/{key}.npy"
    path = d / ARRAYS_DIR / f"{key}.npy"
    if not path.is_file():
        raise DatasetFileError(f"{name} is missing; it holds the prepared data ({what})", name=name, file=str(path))
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - a damaged file can raise almost anything; name it
        first = (str(e).strip().splitlines() or [e.__class__.__name__])[0][:200]
        raise DatasetFileError(f"{name} is damaged or cut short ({first}); it holds the prepared data ({what})",
                               name=name, file=str(path)) from None


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


def _gather(idx):
    """``a -> a[idx]`` for the rows ``idx`` of a batch (always a copy). A 1-D integer tensor goes
    through ``index_select``: the same values as ``a[idx]``, without advanced indexing's general
    machinery (measured 2.5x faster for the 512-row batches of bench/throughput.py on CPU, ~2 % of
    an MMoE training step); anything else (numpy arrays, masks, an index on another device) is
    indexed as it is."""
    import torch
    if isinstance(idx, torch.Tensor) and idx.dim() == 1 and idx.dtype in (torch.int64, torch.int32):
        return lambda a: a.index_select(0, idx) if a.device == idx.device else a[idx]
    return lambda a: a[idx]


def _tensor(a, dtype, device):
    """``a`` as a tensor of ``dtype`` on ``device``. On CPU an array of that dtype already is
    wrapped without a copy -- also a read-only memory map of `PreparedDataset.load`, whose
    tensor is then read-only too: nothing may write into a `DeviceData` tensor (batches are
    gathered copies; the few callers that edit features clone first)."""
    import torch
    a = np.ascontiguousarray(a)
    if a.flags.writeable:
        base = torch.from_numpy(a)
    else:
        with warnings.catch_warnings():       # torch warns that it cannot mark the tensor read-only
            warnings.filterwarnings("ignore", message=_NOT_WRITABLE, category=UserWarning)
            base = torch.from_numpy(a)
    return base.to(device=device, dtype=dtype)


class DeviceData:
    """All arrays of a PreparedDataset as torch tensors on one device.

    Batches are made by indexing (``batch(split, idx)``), not with a DataLoader:
    user/item fields are gathered from their tables through ``user_index``/``item_index``.
    On CPU the tensors share memory with the dataset's arrays where the dtype matches (for a
    loaded dataset: its read-only memory maps), so they are never written in place.
    """

    def __init__(self, ds: PreparedDataset, device="cpu"):
        import torch
        self.ds = ds
        self.device = torch.device(device)
        dev = self.device

        def t(a: np.ndarray, kind: str):
            if kind == "categorical" or np.asarray(a).dtype.kind in "iu":
                return _tensor(a, torch.long, dev)
            return _tensor(a, torch.float32, dev)

        self.user_table = {f.name: t(ds.user_table[f.name], f.kind) for f in ds.fields if f.owner == "user"}
        self.item_table = {f.name: t(ds.item_table[f.name], f.kind) for f in ds.fields if f.owner == "item"}
        self.rows: dict[str, dict[str, "torch.Tensor"]] = {}
        for split, cols in ds.rows.items():
            r = {}
            for f in ds.fields:
                if f.owner == "context":
                    r[f.name] = t(cols[f.name], f.kind)
                if f.kind == "history":        # the value each history item was given (mtlrec.prep.history)
                    r[f.name + ":value"] = _tensor(cols[f.name + ":value"], torch.float32, dev)
            for k in ("user_index", "item_index"):
                if k in cols:
                    r[k] = _tensor(cols[k], torch.long, dev)
            for lab in ds.labels:
                r["label:" + lab.name] = _tensor(cols["label:" + lab.name], torch.float32, dev)
            if "sampled" in cols:           # regression tasks and chains leave sampled rows out (mtlrec.chain)
                r["sampled"] = torch.as_tensor(np.asarray(cols["sampled"], dtype=bool), device=dev)
            self.rows[split] = r
        self.user_history = {k: _tensor(ds.user_table[f.name + s], torch.long if not s else torch.float32, dev)
                             for f in ds.fields if f.kind == "history" for s, k in
                             (("", f.name), (":value", f.name + ":value"))}
        self._n: dict[str, int] = {}          # splits whose rows differ from the dataset's (train per epoch)
        self._epochs = None                   # the per-epoch negative sampler (False: none), built on first use

    def n_rows(self, split: str) -> int:
        return self._n[split] if split in self._n else self.ds.n_rows(split)

    def start_epoch(self, epoch: int, seed: int = 0) -> int:
        """Put the training negatives of ``epoch`` in place of the train split's sampled rows and
        return the epoch's number of training rows (which may change from epoch to epoch).

        Seeded by (preparation seed, ``seed``, ``epoch``): a resumed run and every data-parallel
        rank draw the same rows, two epochs different ones (`mtlrec.prep.negatives.EpochNegatives`).
        Without per-epoch negatives (none sampled, or a dataset prepared before they existed)
        the prepared train split stays as it is."""
        import torch
        if self._epochs is None:
            from mtlrec.prep.negatives import epoch_sampler
            self._epochs = epoch_sampler(self.ds) or False
            if self._epochs:
                obs = self._epochs.observed
                # observed rows first (as prepared): on CPU a view of the (memory-mapped) arrays; on an
                # accelerator a copy, so that the prepared draw's memory is freed
                view = self.device.type == "cpu" and (len(obs) == 0 or int(obs[-1]) == len(obs) - 1)
                ix = torch.as_tensor(obs, dtype=torch.long, device=self.device)
                self._observed = {k: t[:len(obs)] if view else t[ix] for k, t in self.rows["train"].items()}
        if not self._epochs:
            return self.n_rows("train")
        neg = self._epochs.draw(epoch, seed)
        self.rows["train"] = {k: torch.cat([t, _tensor(neg[k], t.dtype, self.device)])
                              for k, t in self._observed.items()}
        self._n["train"] = len(self._epochs.observed) + len(neg["user_index"])
        return self._n["train"]

    def batch(self, split: str, idx=None):
        """Features and labels of rows ``idx`` (a LongTensor on this device; None = all)."""
        r = self.rows[split]
        take = (lambda a: a) if idx is None else _gather(idx)
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
            if f.kind == "history":
                feats[f.name + ":value"] = take(r[f.name + ":value"])
        labels = {lab.name: take(r["label:" + lab.name]) for lab in self.ds.labels}
        if "sampled" in r:
            from mtlrec.chain import SAMPLED_KEY
            labels[SAMPLED_KEY] = take(r["sampled"])
        return feats, labels

    def user_histories(self, users) -> dict:
        """The history features (`mtlrec.prep.history`) of ``users`` as recommendations see them,
        {name: [len(users), N]} (empty without a history input)."""
        import torch
        ix = torch.as_tensor(np.asarray(users, np.int64), device=self.device)
        return {k: tab[ix] for k, tab in self.user_history.items()}

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
        for k, tab in self.user_history.items():     # the user's history as recommendations see it
            feats[k] = tab[user_index].expand(n, -1)
        for f in self.ds.fields:
            if f.owner == "context" and f.kind != "history":
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
