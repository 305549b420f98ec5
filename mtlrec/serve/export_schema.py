"""The sidecar of an exported model: what each input is, how a service encodes raw values into it,
and what each output means (`mtlrec.serve.export_model` writes the model beside it).

The exported model takes the *encoded* inputs mtlrec's own model takes (`mtlrec.dataset.DeviceData`
batches), one tensor per input, batch first: categorical codes (int64; 0 = unknown), standardised
numbers (float32), multi-hot rows (float32 0/1 per class), text vectors (float32) and, for a run with
a behaviour history, the history's item codes (int64, -1 = padding) and their standardised values.
It returns one tensor of *logits* per task, in task order (see `output_schema` for how each becomes
a probability or a value on the label's scale).

`sidecar_document(run, ...)` is the JSON document; `encode_records(doc, records)` encodes raw
records ({feature: raw value}) with nothing but that document -- the reference for a service's own
encoder, written with numpy only.
"""
from __future__ import annotations

import math

import numpy as np

SIDECAR_FORMAT = "mtlrec-exported-model/1"
DTYPES = {"categorical": "int64", "numeric": "float32", "dense": "float32", "multihot": "float32",
          "history": "int64"}


def input_key(feature: str) -> str:
    """The exported input's name of a feature key (``history:value`` -> ``history_value``: ONNX and
    most serving stacks want plain identifiers)."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in feature)


def feature_keys(fields) -> list[str]:
    """The model's inputs in order: every field, and after a history field its values."""
    out = []
    for f in fields:
        out.append(f.name)
        if f.kind == "history":
            out.append(f.name + ":value")
    return out


# ---- what each input is and how it is encoded ---------------------------------------------------
def _stats(ds) -> dict:
    return ((ds.meta or {}).get("report") or {}).get("stats") or {}


def _id_vocabulary(ds, f) -> list | None:
    """The raw id of every code 1..vocab_size-1 of ``user_id`` / ``item_id`` (code k is entry k-1)."""
    ids, table = (ds.user_ids, ds.user_table) if f.owner == "user" else (ds.item_ids, ds.item_table)
    if f.name not in table or not len(ids):
        return None
    vocab: list = [None] * (int(f.vocab_size) - 1)
    for raw, code in zip(ids.tolist(), np.asarray(table[f.name]).tolist()):
        if 0 < code <= len(vocab) and vocab[code - 1] is None:
            vocab[code - 1] = str(raw)
    return vocab


def _categorical(ds, f) -> dict:
    st = _stats(ds).get(f.name) or {}
    vocab = (ds.meta.get("vocabularies") or {}).get(f.name)
    if vocab is None and f.name in ("user_id", "item_id"):
        vocab = _id_vocabulary(ds, f)
    return {"vocabulary": None if vocab is None else [None if v is None else str(v) for v in vocab],
            "code": "1 + the value's position in 'vocabulary' (compared as text; an integer-valued number "
                    "as an integer, 3.0 -> '3'); 0 for a value not in it (unknown)" if vocab is not None else
                    "the codes as stored in the run (no vocabulary recorded); 0 = unknown",
            "missing": st.get("fill"), "vocab_size": int(f.vocab_size)}


def _numeric(ds, f) -> dict:
    st = _stats(ds).get(f.name) or {}
    mean, std = st.get("mean"), st.get("std")
    if mean is None or std is None or not float(std) > 0:
        mean, std = 0.0, 1.0
    return {"transform": st.get("transform"), "missing": st.get("fill"), "mean": float(mean), "std": float(std),
            "formula": "(transform(x) - mean) / std; a missing x is 'missing' first; transform: none, "
                       "clip to [lower, upper] or log1p, as given"}


def _multihot(ds, f) -> dict:
    classes = (ds.meta.get("vocabularies") or {}).get(f.name) or _stats(ds).get(f.name, {}).get("classes")
    sep = ((ds.meta.get("spec") or {}).get("multilabel_sep")) or "|"
    return {"classes": classes, "separator": sep,
            "formula": "1.0 in the column of each class the value names (split on 'separator', blanks "
                       "stripped), else 0.0; a missing value or one without a known class: all zeros"}


def _dense(ds, f) -> dict:
    text = (((ds.meta or {}).get("report") or {}).get("text") or {}).get(f.name) or {}
    return {"text_model": text.get("model"), "columns": text.get("columns"), "dim": int(f.dim),
            "formula": "the text encoder's vector of the user's / item's text columns joined as sentences "
                       "(mtlrec.prep.text_features.table_texts); a catalogue item's vector is stored in the "
                       "run's dataset/ folder"}


def _history(ds, f) -> dict:
    h = (ds.meta or {}).get("history") or {}
    return {"length": int(f.dim), "padding": -1, "items": "the item_id input's vocabulary",
            "formula": "the item_id codes of the user's last 'length' interactions before the scored one, "
                       "oldest first, padded with -1 at the front"}, \
           {"label": h.get("value_label") or None, "mean": float(h.get("value_mean") or 0.0),
            "std": float(h.get("value_std") or 1.0),
            "formula": "(the label value of each history item - mean) / std, 0.0 on padding (and for every "
                       "entry when 'label' is null)"}


MEANING = {
    "categorical": "the {owner}'s {name} as a code",
    "numeric": "the {owner}'s {name}, standardised",
    "multihot": "the {owner}'s {name}, one 0/1 column per class",
    "dense": "the {owner}'s text vector",
    "history": "the user's behaviour history: item codes",
}


def input_schema(ds, fields) -> list[dict]:
    """One entry per exported input, in the model's order: name, feature, kind, owner, dtype,
    shape (``"batch"`` first), meaning and encoding."""
    build = {"categorical": _categorical, "numeric": _numeric, "multihot": _multihot, "dense": _dense}
    out = []
    for f in fields:
        shape = ["batch"] if f.kind in ("categorical", "numeric") else ["batch", int(f.dim)]
        owner = "interaction" if f.owner == "context" else f.owner
        entry = {"name": input_key(f.name), "feature": f.name, "kind": f.kind, "owner": f.owner,
                 "dtype": DTYPES[f.kind], "shape": shape,
                 "meaning": (f"the {owner} id as a code" if f.name == f"{owner}_id" else
                             MEANING[f.kind].format(owner=owner, name=f.name.replace("_", " ")))}
        if f.kind == "history":
            codes, values = _history(ds, f)
            out.append({**entry, "encoding": codes})
            out.append({**entry, "name": input_key(f.name + ":value"), "feature": f.name + ":value",
                        "kind": "history_value", "dtype": "float32",
                        "meaning": "the value of each history item (e.g. its rating), standardised",
                        "encoding": values})
            continue
        out.append({**entry, "encoding": build[f.kind](ds, f)})
    return out


PREDICTION = {
    "binary": "sigmoid(logit): the probability",
    "multilabel": "sigmoid(logit) per class: each class's probability",
    "distribution": "softmax(logits) over the classes: shares summing to 1",
    "regression": "logit * target_std + target_mean: the value on the label's scale",
}


def output_schema(tasks, ds=None) -> list[dict]:
    """One entry per task, in output order: the logits and how they become predictions (and the
    class of each column, for a task with one output per class)."""
    out = []
    for t in tasks:
        entry = {"name": input_key(t.name), "task": t.name, "type": t.type, "label": t.label,
                 "dtype": "float32", "shape": ["batch"] if t.n_outputs == 1 and t.type not in
                 ("multilabel", "distribution") else ["batch", int(t.n_outputs)],
                 "output": "logits", "prediction": PREDICTION[t.type]}
        if len(entry["shape"]) == 2 and ds is not None:
            entry["classes"] = _classes(ds, t.label)
        if t.type == "regression":
            entry.update(target_mean=float(t.target_mean), target_std=float(t.target_std))
        if t.given:
            entry.update(given=t.given, chain=(
                f"conditional: p({t.name} | {t.given}); the probability over every row is the product "
                f"along the chain, p({t.given}) * p({t.name} | {t.given})"))
        out.append(entry)
    return out


def _classes(ds, label: str):
    try:
        return list(ds.label(label).classes)
    except KeyError:
        return None


def sidecar_document(run, fmt: str, model_file: str, fields) -> dict:
    """The JSON sidecar of an exported model of ``run`` (a `mtlrec.runs.load.Run`)."""
    ds = run.dataset
    spec = (ds.meta or {}).get("spec") or {}
    return {
        "format": SIDECAR_FORMAT, "model_format": fmt, "model_file": model_file,
        "run": {"name": run.run_dir.name if run.run_dir else None, "arch": run.model.arch,
                "hparams": dict(run.model.hparams)},
        "inputs": input_schema(ds, fields),
        "outputs": output_schema(run.tasks, ds),
        "raw_columns": {"user_id": spec.get("user_id"), "item_id": spec.get("item_id")},
        "notes": ["every input is batch first; the batch size is free",
                  "outputs are logits, one per task in 'outputs' order (see 'prediction')",
                  "an unknown category or id is code 0: the model's unknown bucket"],
    }


# ---- encoding raw records with the sidecar alone -------------------------------------------------
def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _as_text(v) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v.item() if isinstance(v, np.generic) else v)


def _encode_categorical(enc: dict, values) -> np.ndarray:
    vocab = enc["vocabulary"]
    if vocab is None:
        return np.asarray([0 if _missing(v) else int(v) for v in values], np.int64)
    lut = {v: k + 1 for k, v in enumerate(vocab) if v is not None}
    miss = enc.get("missing")
    return np.asarray([lut.get(_as_text(miss), 0) if _missing(v) else lut.get(_as_text(v), 0) for v in values],
                      np.int64)


def _encode_numeric(enc: dict, values) -> np.ndarray:
    x = np.asarray([np.nan if _missing(v) else float(v) for v in values], np.float64)
    if enc.get("missing") is not None:
        x = np.where(np.isnan(x), float(enc["missing"]), x)
    tf = enc.get("transform") or {}
    if tf.get("method") == "log1p":
        x = np.log1p(x)
    elif tf.get("method") in ("clip", "winsorise"):
        x = np.clip(x, tf.get("lower"), tf.get("upper"))
    return ((x - enc["mean"]) / enc["std"]).astype(np.float32)


def _encode_multihot(enc: dict, values) -> np.ndarray:
    pos = {c: k for k, c in enumerate(enc["classes"] or [])}
    out = np.zeros((len(values), len(pos)), np.float32)
    for i, v in enumerate(values):
        parts = v if isinstance(v, (list, tuple)) else ([] if _missing(v) else str(v).split(enc["separator"]))
        for p in parts:
            k = pos.get(str(p).strip())
            if k is not None:
                out[i, k] = 1.0
    return out


def _encode_history(items_enc: dict, length: int, values) -> np.ndarray:
    out = np.full((len(values), length), -1, np.int64)
    for i, v in enumerate(values):
        codes = _encode_categorical(items_enc, list(v or []))[-length:]
        if len(codes):
            out[i, length - len(codes):] = codes
    return out


def _encode_history_values(enc: dict, length: int, values) -> np.ndarray:
    out = np.zeros((len(values), length), np.float32)
    if not enc.get("label"):
        return out
    for i, v in enumerate(values):
        v = [float(x) for x in (v or [])][-length:]
        if v:
            out[i, length - len(v):] = (np.asarray(v) - enc["mean"]) / enc["std"]
    return out


def encode_records(doc: dict, records: list[dict]) -> dict[str, np.ndarray]:
    """{input name: array} of raw records, with the sidecar ``doc`` alone. A record holds raw values
    by feature name (``{"user_id": "u7", "age": 31, "genres": "Action|Drama", "history": ["m3", "m9"],
    "history:value": [4, 5]}``); a feature left out counts as missing (a text vector: zeros)."""
    by_feature = {i["feature"]: i for i in doc["inputs"]}
    out = {}
    for spec in doc["inputs"]:
        values = [r.get(spec["feature"]) for r in records]
        kind, enc = spec["kind"], spec["encoding"]
        if kind == "categorical":
            out[spec["name"]] = _encode_categorical(enc, values)
        elif kind == "numeric":
            out[spec["name"]] = _encode_numeric(enc, values)
        elif kind == "multihot":
            out[spec["name"]] = _encode_multihot(enc, values)
        elif kind == "history":
            out[spec["name"]] = _encode_history(by_feature["item_id"]["encoding"], enc["length"], values)
        elif kind == "history_value":
            out[spec["name"]] = _encode_history_values(enc, spec["shape"][1], values)
        else:
            dim = spec["shape"][1]
            out[spec["name"]] = np.asarray([np.zeros(dim) if v is None else v for v in values],
                                           np.float32).reshape(len(values), dim)
    return out
