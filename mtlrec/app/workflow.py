"""Glue between the dashboard and the library (no streamlit here).

Loads the sample workspace, turns the role editor's table into a `DataSpec` and back,
builds run configurations from the app's state and describes the device, so that the
pages stay thin and the same logic is testable without a browser.
"""
from __future__ import annotations

from dataclasses import fields as dc_fields
from pathlib import Path

from mtlrec.config import DEFAULT_ARCH, train_defaults
from mtlrec.tasks import clean_tasks
from typing import Any

from mtlrec.errors import DataError

ROOT = Path(__file__).resolve().parents[2]     # the repository: mtlrec/app/workflow.py -> .
SAMPLE_DIR = ROOT / "sample_data"
TABLES = ("interactions", "users", "items")
TABLE_OWNER = {"interactions": "context", "users": "user", "items": "item"}

# the ready configuration of the sample workspace (small enough to train in seconds on a CPU): the
# recommended chain (issue 22) -- every sample row is an exposure, so "interact" (observed = 1, sampled
# negatives = 0) is learned over the entire space and click, like and rating given it; click comes first
# (the main task: early stopping and the first figures), lists rank by p(interact ∧ click)
SAMPLE_TASKS = [
    {"name": "click", "type": "binary", "label": "click", "weight": 1.0, "metric": "auc", "given": "interact"},
    {"name": "like", "type": "binary", "label": "like", "weight": 1.0, "metric": "auc", "given": "interact"},
    {"name": "rating", "type": "regression", "label": "rating", "weight": 0.5, "metric": "rmse", "given": "interact"},
    {"name": "interact", "type": "binary", "label": "interact", "weight": 1.0, "metric": "auc"},
]
DEFAULT_MODEL = {"arch": DEFAULT_ARCH}       # one default architecture: the config's (mtlrec.config)
# the training settings a new workspace starts from: the library's own defaults (TrainConfig),
# never a second set of numbers
DEFAULT_TRAIN = train_defaults(("epochs", "batch_size", "lr", "l2", "embedding_l2", "weighting", "device",
                                "baselines", "seed"))


def describe_device(pref: str = "auto") -> str:
    """The device training will use, in words: "GPU: <name>", "Apple GPU (MPS)" or "CPU"."""
    import torch
    try:
        from mtlrec.device import pick_device
        dev = torch.device(pick_device(pref))
    except ImportError:  # pragma: no cover - device module missing
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(dev)}"
    if dev.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"


# ---------------------------------------------------------------------------- roles <-> table
def roles_table(raw, spec):
    """One row per column of every table: column, table, role (ROLE_NAMES), owner, example."""
    import pandas as pd
    roles = spec.roles() if spec is not None else {}
    owners = {}
    if spec is not None:
        from mtlrec.data.roles import FEATURE_KINDS
        for kind in FEATURE_KINDS:
            owners.update(getattr(spec, kind))
    rows, seen = [], set()
    for table in TABLES:
        df = getattr(raw, table, None)
        if df is None:
            continue
        for col in df.columns:
            col = str(col)
            if col in seen:           # id columns repeat in users/items tables
                continue
            seen.add(col)
            ex = df[col].dropna()
            example = str(ex.iloc[0])[:60] if len(ex) else ""
            rows.append({"column": col, "table": table, "role": roles.get(col, "ignore"),
                         "owner": owners.get(col, TABLE_OWNER[table]), "example": example})
    return pd.DataFrame(rows, columns=["column", "table", "role", "owner", "example"])


def spec_from_roles(table, multilabel_sep: str = "|"):
    """A DataSpec from the (edited) roles table; a DataError says what to change."""
    from mtlrec.data.roles import MULTI_VALUED, DataSpec
    kw: dict[str, Any] = {"labels": {}, "categorical": {}, "numeric": {}, "text": {}, "multivalued": {},
                          "multilabel_sep": multilabel_sep}
    singles: dict[str, list[str]] = {"user_id": [], "item_id": [], "timestamp": []}
    for rec in table.to_dict("records"):
        col, role = str(rec["column"]), str(rec.get("role") or "ignore")
        owner = rec.get("owner") or TABLE_OWNER.get(rec.get("table"), "context")
        if role in singles:
            singles[role].append(col)
        elif role.startswith("label:"):
            kw["labels"][col] = role.split(":", 1)[1]
        elif role in ("categorical", "numeric"):
            kw[role][col] = owner
        elif role in ("text", MULTI_VALUED):     # describes a user or an item
            kw["text" if role == "text" else "multivalued"][col] = owner if owner in ("user", "item") else "item"
        elif role != "ignore":
            raise DataError(f"unknown role '{role}'", column=col, fix="pick a role from the list")
    for role, cols in singles.items():
        if len(cols) > 1:
            raise DataError(f"{len(cols)} columns have the role {role} ({', '.join(cols)})",
                            column=cols[1], fix=f"give the role {role} to one column only")
        kw[role] = cols[0] if cols else None
    for role in ("user_id", "item_id"):
        if kw[role] is None:
            raise DataError(f"no column has the role {role}",
                            fix=f"set the role of the column that identifies the {role.split('_')[0]} to {role}")
    if not kw["labels"]:
        raise DataError("no column is a label, so there is nothing to learn",
                        fix="give at least one column a label role (label:binary for click/like, "
                            "label:regression for ratings)")
    return DataSpec(**kw)


# ---------------------------------------------------------------------------- statistics
def interaction_counts(raw, spec) -> dict:
    """Interactions per user and per item (pandas Series of counts)."""
    df = raw.interactions
    out = {}
    if spec.user_id in df:
        out["user"] = df[spec.user_id].value_counts()
    if spec.item_id in df:
        out["item"] = df[spec.item_id].value_counts()
    return out


def data_statistics(raw, spec) -> dict:
    """What the Data page's Statistics section shows of the loaded data and roles: the summary, the
    counts, the density, the figures (label balance, interactions per user / item and a histogram of
    each regression label, binned here: a figure carries its bars, not every row) and the numeric
    transforms' hints. Pages cache it per loaded data and roles (it reads every row)."""
    from mtlrec.data.summary import summarize
    from mtlrec.errors import DataError
    from mtlrec.figures import charts as viz
    from mtlrec.prep import transforms as prep_transforms
    try:
        summary = summarize(raw, spec)
    except DataError:
        summary = {}
    counts = interaction_counts(raw, spec)
    figs = {"balance": viz.label_balance_fig(raw.interactions, spec.labels)}
    for who, color in (("user", viz.PALETTE[0]), ("item", viz.PALETTE[1])):
        if who in counts:
            figs[who] = viz.count_hist_fig(counts[who].values, who, color)
    for col, t in spec.labels.items():
        if t == "regression" and col in raw.interactions:
            figs[f"hist:{col}"] = viz.value_hist_fig(raw.interactions[col].dropna().values, col)
    n_users = int(counts["user"].size) if "user" in counts else 0
    n_items = int(counts["item"].size) if "item" in counts else 0
    n = len(raw.interactions)
    return {"summary": summary, "figs": figs, "n": n, "users": n_users, "items": n_items,
            "density": n / max(1, n_users * n_items), "transform_hints": prep_transforms.suggestions(raw, spec)}


# ---------------------------------------------------------------------------- tasks
def default_tasks(spec, max_tasks: int = 3) -> list[dict]:
    """One task per label of the spec (at most ``max_tasks``), binary labels first."""
    from mtlrec.tasks import DEFAULT_METRIC
    order = {"binary": 0, "regression": 1, "multilabel": 2}
    labels = sorted(spec.labels.items(), key=lambda kv: order.get(kv[1], 9))
    return [{"name": col, "type": t, "label": col, "weight": 1.0, "metric": DEFAULT_METRIC[t]}
            for col, t in labels[:max_tasks]]


# the recommended chain's settings, chosen by measurement (bench/ranking.py on ml-latest-small, docs/benchmarks.md):
# ESMM with 4 popularity-weighted negatives per observed row ranked like 1.46x popularity (NDCG@10);
# MMoE with the same chain 1.22x, with uniform negatives ESMM 1.08x and MMoE 0.98x
CHAIN_NEGATIVE_RATIO = 4       # sampled negatives per observed row
CHAIN_NEGATIVE_SAMPLING = "popularity"   # item probability ∝ count^0.75 (mtlrec.prep.negatives)
CHAIN_ARCH = "esmm"            # entire-space towers (mtlrec/models/esmm.py)
CHAIN_PREP = {"negative_ratio": CHAIN_NEGATIVE_RATIO, "negative_sampling": CHAIN_NEGATIVE_SAMPLING,
              "negative_label": "interact"}
AUX_TASK_WEIGHT = 0.2          # an item-property task (genres) kept as an auxiliary task (0.1-0.3 advised)


def _like_threshold(values) -> tuple[float, str]:
    """(threshold, how it was chosen) of "like" on a rating scale: 4 on a 1–5 (or 0.5–5) scale, else
    the 80th percentile of the ratings, rounded."""
    import numpy as np
    import pandas as pd
    v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    if lo >= 0 and hi == 5:
        return 4.0, "4 on the 1–5 scale"
    q = float(np.nanquantile(v, 0.8))
    t = float(round(q)) if hi - lo > 2 else round(q, 2)
    return t, f"{t:g}, the 80th percentile of the ratings rounded (the scale is {lo:g}–{hi:g}, not 1–5)"


def recommended_chain(spec, raw, prep=None) -> dict | None:
    """The recommended task set for a ratings dataset (user, item and a regression label): interact
    (observed = 1, sampled negatives = 0) + like (rating ≥ 4) given interact + rating given interact.
    ``{"prep": changes to PrepConfig (`CHAIN_PREP`: negative_ratio, negative_sampling, negative_label
    "interact"; derived_labels with like), "model": the architecture (`CHAIN_ARCH`), "tasks": [task dicts], "title": the task set in words, "optional": [a multilabel task such as genres at weight
    `AUX_TASK_WEIGHT`, offered off], "note": how like was defined}``; None without user, item or rating.
    ``prep``: the current PrepConfig, whose other derived labels are kept."""
    from mtlrec.tasks import DEFAULT_METRIC
    rating = next((c for c, t in spec.labels.items() if t == "regression"), None)
    if not (spec.user_id and spec.item_id and rating and rating in raw.interactions.columns):
        return None
    threshold, how = _like_threshold(raw.interactions[rating])
    binary = [c for c, t in spec.labels.items() if t == "binary"]
    columns = {str(c) for df in (raw.interactions, raw.users, raw.items) if df is not None for c in df.columns}
    like = "like" if "like" in binary or "like" not in columns else f"like_{rating}"
    derived = [dict(d) for d in getattr(prep, "derived_labels", None) or [] if d.get("name") != like]
    if like not in binary:
        derived.append({"name": like, "source": rating, "op": ">=", "threshold": threshold})
    rating_weight = next(t["weight"] for t in SAMPLE_TASKS if t["type"] == "regression")

    def task(name, ttype, label, weight, given=""):
        return {"name": name, "type": ttype, "label": label, "weight": weight, "metric": DEFAULT_METRIC[ttype],
                **({"given": given} if given else {})}
    tasks = [task("interact", "binary", "interact", 1.0), task("like", "binary", like, 1.0, "interact"),
             task(rating, "regression", rating, rating_weight, "interact")]
    optional = [task(c, "multilabel", c, AUX_TASK_WEIGHT) for c, t in spec.labels.items() if t == "multilabel"][:1]
    note = (f"like = {rating} ≥ {threshold:g} ({how})" if like not in binary else
            f"like is the data's own '{like}' label")
    title = f"interact + like ({rating} ≥ {threshold:g}) given interact" if like not in binary else \
        "interact + like given interact"
    return {"prep": {**CHAIN_PREP, "derived_labels": derived}, "model": {"arch": CHAIN_ARCH}, "tasks": tasks, "optional": optional, "note": note,
            "title": f"{title} + {rating} given interact"}


def available_labels(spec, dataset=None, prep=None) -> dict[str, str]:
    """Label name -> task type: from the prepared dataset when there is one, else the labels
    preparation will give (the spec's, the derived labels of ``prep``: `mtlrec.prep.pipeline.label_types`)."""
    if dataset is not None:
        return {lab.name: lab.task_type for lab in dataset.labels}
    if spec is None:
        return {}
    from mtlrec.prep.pipeline import label_types
    return label_types(spec, prep)


def interest_choices(spec, raw=None, prep=None) -> dict:
    """What the Data page offers for user-level interest mining (`mtlrec.prep.interest`):
    ``{"attributes": [item columns with classes], "positives": [binary labels, "" = every interaction],
    "positive": the default (a derived or given "like", else the first binary label, else ""),
    "window": the default, "chosen": {attribute: its interest label of ``prep``}}``."""
    from mtlrec.prep.interest import DEFAULT_WINDOW, attribute_columns, label_name
    if spec is None or not (spec.user_id and spec.item_id):
        return {"attributes": [], "positives": [""], "positive": "", "window": DEFAULT_WINDOW, "chosen": {}}
    current = list(getattr(prep, "interest_labels", None) or [])
    types = available_labels(spec, None, prep)
    binary = [n for n, t in types.items() if t == "binary"]
    positive = "like" if "like" in binary else (binary[0] if binary else "")
    chosen = {d["attribute"]: d for d in current}
    window = current[0]["window"] if current else DEFAULT_WINDOW
    return {"attributes": attribute_columns(spec, raw), "positives": [""] + binary,
            "positive": current[0]["positive"] if current else positive, "window": window, "chosen": chosen,
            "names": {a: label_name(a) for a in attribute_columns(spec, raw)}}


def metrics_for(task_type: str) -> list[str]:
    from mtlrec.metrics import METRICS
    return [n for n, i in METRICS.items() if task_type in i.task_types and i.selectable]


def architectures() -> list[str]:
    from mtlrec.models import ARCHITECTURES
    return list(ARCHITECTURES)


# ---------------------------------------------------------------------------- prep config
def prep_fields(config) -> list[dict]:
    """The PrepConfig's fields as {name, type, value} for a generic options form."""
    out = []
    for f in dc_fields(config):
        v = getattr(config, f.name)
        out.append({"name": f.name, "value": v, "type": type(v).__name__})
    return out


def split_column_choice(raw, prep) -> dict:
    """What the preprocessing form offers for a predefined split: ``candidates`` (interactions
    columns holding train / valid / test, best first), ``columns`` (every interactions column) and
    ``column`` (the one to preselect: the options' split_column, else the first candidate)."""
    from mtlrec.data.suggest import split_columns
    cands = split_columns(raw) if raw is not None else []
    cols = [str(c) for c in raw.interactions.columns] if raw is not None else []
    chosen = getattr(prep, "split_column", "") or ""
    if chosen not in cols:
        chosen = cands[0] if cands else ""
    return {"candidates": cands, "columns": cols, "column": chosen}


def split_method_label(method: str, column: str = "") -> str:
    """How the form names a split method ("column" says which column)."""
    if method == "column":
        return f"column: use the split in column '{column}'" if column else "column: a train / valid / test column"
    return method


def preparation_messages(report: dict | None) -> dict:
    """The parts of a preparation report a person reads: ``warnings`` (found by preparation, e.g. test
    rows whose user has no training row, or negatives a heavy user could not get), ``notes`` (e.g. valid carved from train) and ``dropped``
    (one line per reason: how many rows cleaning dropped and their first row_ids)."""
    report = report or {}
    dropped = []
    words = {"missing_label": "a missing label", "missing_timestamp": "a missing timestamp",
             "duplicate": "a repeated (user, item) pair", "unknown_item": "an item not in the items table",
             "unknown_user": "a user not in the users table"}
    for reason, d in (report.get("dropped_rows") or {}).items():
        more = ", ..." if d.get("count", 0) > len(d.get("row_ids", [])) else ""
        dropped.append(f"{d.get('count', 0)} rows dropped for {words.get(reason, reason.replace('_', ' '))} "
                       f"(row_id {', '.join(map(str, d.get('row_ids', [])))}{more})")
    from mtlrec.prep.negatives import shortfall_text
    short = shortfall_text(report.get("negatives"))
    return {"warnings": list(report.get("prep_warnings") or []) + ([short] if short else []),
            "notes": list(report.get("notes") or []), "dropped": dropped}


# ---------------------------------------------------------------------------- workspaces
def sample_workspace(sample_dir=None) -> dict:
    """The shipped sample with a ready configuration: raw data, spec, prep config, tasks, model, train.

    Everything a first-time visitor needs to start training right away."""
    from mtlrec.data.readers import load_data
    from mtlrec.data.suggest import suggest_spec
    from mtlrec.prep import PrepConfig

    folder = Path(sample_dir) if sample_dir else SAMPLE_DIR
    from mtlrec.prep.pipeline import label_types
    raw = load_data([folder])
    spec = suggest_spec(raw)
    prep = PrepConfig(**CHAIN_PREP)
    labels = label_types(spec, prep)
    tasks = [dict(t) for t in SAMPLE_TASKS if labels.get(t["label"]) == t["type"]]
    model = {"arch": CHAIN_ARCH}
    if len(tasks) != len(SAMPLE_TASKS):         # not the shipped sample's columns: no chain
        prep, tasks, model = PrepConfig(), default_tasks(spec), dict(DEFAULT_MODEL)
    return {"raw": raw, "spec": spec, "prep": prep, "tasks": tasks, "model": model,
            "train": dict(DEFAULT_TRAIN), "text": {"enabled": False, "columns": []},
            "source": "sample data (movies)"}


def uploaded_workspace(files: list[tuple[str, bytes]]) -> dict:
    """Raw data and suggested roles from uploaded files; raises DataError for bad files.

    The files may be any of the layouts docs/data-formats.md lists, one by one or zipped: each is identified
    by its content (e.g. MovieLens 100K u.data / u.item / u.user under any name), then its name, then
    its id columns; ``mtlrec.data.readers.reading_notes(ws["raw"])`` says how each was read."""
    from mtlrec.data.readers import load_uploaded
    from mtlrec.data.suggest import suggest_spec
    from mtlrec.prep import PrepConfig

    from mtlrec.prep.splits import with_predefined_split
    raw = load_uploaded(files)
    spec = suggest_spec(raw)
    prep = PrepConfig.from_dict(with_predefined_split({}, raw))   # e.g. u1.base + u1.test: their split
    return {"raw": raw, "spec": spec, "prep": prep, "tasks": default_tasks(spec),
            "model": dict(DEFAULT_MODEL), "train": dict(DEFAULT_TRAIN), "text": default_text(spec),
            "source": ", ".join(name for name, _ in files)}


# ---------------------------------------------------------------------------- preparation
# MTLREC_TEXT_FEATURES=0 keeps the language-model features off in new uploads (tests that do not
# need the language model; a machine without it)
TEXT_DEFAULT_ENV = "MTLREC_TEXT_FEATURES"


def default_text(spec) -> dict:
    """The text settings of a new upload: the language-model features on, over the spec's text
    columns of the items/users (a title, a description), when it has any; off otherwise, or when
    the environment variable ``MTLREC_TEXT_FEATURES`` is 0. The model is the offline one of
    `mtlrec.serve.text` (nothing is downloaded)."""
    import os
    cols = [c for c, o in (spec.text if spec is not None else {}).items() if o in ("user", "item")]
    on = bool(cols) and os.environ.get(TEXT_DEFAULT_ENV, "1").strip().lower() not in ("0", "off", "false", "no")
    return {"enabled": on, "columns": cols if on else []}


def text_candidates(raw, spec) -> dict[str, str]:
    """Columns usable as language-model text (column -> owner "item"/"user"): the columns with the
    role text, then string columns of the items/users tables that are categorical or multi-valued
    features (e.g. genres "as words"). Labels are never offered (their text would leak the answer)."""
    if spec is None:
        return {}
    out = {c: (o if o in ("user", "item") else "item") for c, o in spec.text.items()}
    for table, owner in (("items", "item"), ("users", "user")):
        df = getattr(raw, table, None)
        if df is None:
            continue
        for c, o in {**spec.categorical, **spec.multivalued}.items():
            if c in df.columns and c not in out and c not in spec.labels and o == owner \
                    and _is_text(df[c]) and c not in (spec.user_id, spec.item_id):
                out[c] = owner
    return out


def effective_spec(spec, text: dict | None):
    """The spec used for preparation: with language-model features on, the chosen text columns;
    off, the text roles stay as they are (no encoder runs, so they are no features; the prepared
    dataset still knows them as text, e.g. to show them on recommendation cards)."""
    from mtlrec.data.roles import DataSpec
    d = spec.to_dict()
    text = text or {}
    if text.get("enabled"):
        cols = text.get("columns") or list(spec.text)
        owners = {**spec.categorical, **spec.text}
        d["text"] = {c: (owners.get(c) if owners.get(c) in ("user", "item") else "item") for c in cols}
    return DataSpec.from_dict(d)


def dataset_key(spec, prep, text: dict | None, data_id: str) -> str:
    """Identity of a prepared dataset: data, roles, prep options and text settings."""
    import hashlib
    import json
    blob = json.dumps({"data": data_id, "spec": spec.to_dict(), "prep": prep.to_dict(),
                       "text": text or {}}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _is_text(series) -> bool:
    import pandas as pd
    return bool(pd.api.types.is_string_dtype(series) or series.dtype == object)


# ---------------------------------------------------------------------------- run configs
def build_run_config(*, spec, prep, tasks: list[dict], model: dict, train: dict, text: dict | None,
                     source: str | None = None, paths: list[str] | None = None, name: str | None = None):
    """A RunConfig from the app's state (the same JSON the CLI's ``train --config`` reads)."""
    from mtlrec.config import RunConfig
    text = dict(text or {})
    text_cfg = {"enabled": bool(text.get("enabled")), "columns": list(text.get("columns") or [])}
    if text.get("model"):
        text_cfg["model"] = text["model"]
    if paths is None and source and str(source).startswith("sample"):
        paths = [str(SAMPLE_DIR)]
    d = {
        "name": name or str(model.get("arch", "model")),
        "data": {"paths": list(paths or []), "roles": effective_spec(spec, text).to_dict(),
                 "prep": prep.to_dict() if hasattr(prep, "to_dict") else dict(prep or {})},
        "tasks": clean_tasks(tasks),
        "model": dict(model),
        "train": {k: v for k, v in train.items() if not k.startswith("_")},
        "text": text_cfg,
    }
    return RunConfig.from_dict(d)


# ---------------------------------------------------------------------------- results

def metrics_table(metrics: dict, split: str = "test"):
    """A tidy DataFrame (task, metric, value) of one split of metrics.json."""
    import pandas as pd
    rows = []
    for task, vals in (metrics.get(split) or {}).items():
        if isinstance(vals, dict):
            for m, v in vals.items():
                rows.append({"task": task, "metric": m, "value": v})
    return pd.DataFrame(rows, columns=["task", "metric", "value"])


def metrics_by_type(metrics: dict, tasks: list, split: str = "test") -> dict:
    """One wide table (task x metric) per task type, so a table only has its own tasks' metrics.

    ``tasks`` are the run's task dicts (name, type). Returns ``{type: DataFrame}`` in the order
    binary, regression, multilabel, distribution; values rounded to 4 decimals."""
    import pandas as pd
    table = metrics_table(metrics, split)
    types = {t["name"] if isinstance(t, dict) else t.name: t["type"] if isinstance(t, dict) else t.type
             for t in tasks}
    out = {}
    for kind in ("binary", "regression", "multilabel", "distribution"):
        names = [n for n, k in types.items() if k == kind]
        rows = table[table["task"].isin(names)]
        if rows.empty:
            continue
        wide = rows.pivot(index="task", columns="metric", values="value").reindex(
            [n for n in names if n in set(rows["task"])])
        wide = wide.dropna(axis=1, how="all")
        out[kind] = wide.apply(pd.to_numeric, errors="coerce").round(4)
    return out


# ---------------------------------------------------------------------------- recommendations
def _item_text(ds, item_index: int) -> tuple[str, str]:
    """(title, short description) of a catalogue item from the dataset's item_info: the title
    and the item's text/feature columns (`mtlrec.serve.recommend.item_columns`), never a column whose
    role is "ignore" (e.g. an IMDb URL)."""
    import pandas as pd

    from mtlrec.serve.recommend import item_columns
    info = getattr(ds, "item_info", None)
    raw_id = str(ds.item_ids[item_index]) if 0 <= item_index < len(ds.item_ids) else "?"
    if info is None or item_index < 0 or item_index >= len(info):
        return f"item {raw_id}", ""
    row = info.iloc[item_index]
    title_col, cols = item_columns(ds)
    v = row[title_col] if title_col is not None else None
    missing = v is None or v is pd.NA or (isinstance(v, float) and v != v)
    title = f"item {raw_id}" if missing else str(v)
    rest = []
    for c in cols:
        v = row[c]
        if v is None or v is pd.NA or (isinstance(v, float) and v != v):
            continue
        s = str(v)
        rest.append(s if len(s) <= 70 else s[:67] + "...")
    return title, " · ".join(rest[:3])


def rec_frame(recs: list[dict], ds):
    """The recommendation list as a DataFrame: rank, item_id, title, text, score:<task>..., fused,
    support (when the records carry it).

    ``fused`` is the record's ``score``: the fused score of `mtlrec.serve.recommend` (the one
    number the page, the CSV export, the CLI and the Explain page show); ``support`` the item's
    number of training interactions; ``text`` holds the item's text/feature columns only,
    never ignored ones; ``because`` the top history reason ("because user 1 rated Casablanca 5★") when
    the records carry one."""
    import pandas as pd
    rows = []
    for i, r in enumerate(recs, 1):
        item = str(r.get("item", r.get("item_id")))
        tasks = r.get("tasks") or {}
        try:
            idx = ds.item_index(item)
        except KeyError:
            idx = -1
        title, text = _item_text(ds, idx)
        row = {"rank": int(r.get("rank", i)), "item_id": item, "title": title, "text": text}
        for t, v in tasks.items():
            if isinstance(v, dict):      # multi-label: its most likely classes
                row[f"top:{t}"] = ", ".join(f"{c} {p:.2f}" for c, p in v.items())
            else:
                row[f"score:{t}"] = float(v)
        row["fused"] = float(r.get("score", 0.0))
        if r.get("support") is not None:
            row["support"] = int(r["support"])
        if r.get("history_reason"):      # `mtlrec.explain.history.with_history_reasons`
            row["because"] = r["history_reason"]["text"]
        rows.append(row)
    return pd.DataFrame(rows)


def user_history(ds, user_id):
    """The user's real interactions (sampled negatives excluded) with item titles and labels."""
    import numpy as np
    import pandas as pd
    u = ds.user_index(user_id)
    frames = []
    for split in ds.splits:
        r = ds.rows[split]
        m = r["user_index"] == u
        if "sampled" in r:
            m &= ~r["sampled"]
        if not m.any():
            continue
        f = {"item_index": r["item_index"][m], "split": np.full(int(m.sum()), split)}
        for lab in ds.labels:
            a = r.get("label:" + lab.name)
            if a is not None and a.ndim == 1:
                f[lab.name] = a[m]
        frames.append(pd.DataFrame(f))
    if not frames:
        return pd.DataFrame(columns=["item_id", "title"])
    df = pd.concat(frames, ignore_index=True)
    texts = [_item_text(ds, int(i)) for i in df["item_index"]]
    df.insert(0, "item_id", [str(ds.item_ids[i]) for i in df["item_index"]])
    df.insert(1, "title", [t for t, _ in texts])
    return df.drop(columns=["item_index"])
