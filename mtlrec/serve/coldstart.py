"""Cold-start evaluation: per-task test metrics on items never seen in training vs seen ones.

With the item cold-start split of preparation (``prep.split = "cold_item"``), a share of the
catalogue is held out of training entirely; ``dataset.meta["cold_items"]`` lists those
item-table rows. Their item-id embedding is the untrained unknown bucket, so a model can only
tell them apart through their other features -- above all their text, when language-model
features are on.

* `row_groups(ds, split)`: row indices of a split on cold items and on warm items.
* `evaluate_cold_warm(model, ds)`: ``{task: {"metric", "higher_is_better", "cold": {...},
  "warm": {...}}}`` with every metric of `mtlrec.metrics.evaluate_task` and the row counts.
* `compare_text_features(config)`: trains the same run config with text features on and off
  and returns ``{task: {"metric", "higher_is_better", "cold": {"with_text", "without_text",
  "n"}, "warm": {...}}}`` side by side (`comparison_rows` flattens it for a table).
"""
from __future__ import annotations

import copy
import math
import time
from typing import Any, Callable

import numpy as np

GROUPS = ("cold", "warm")


def row_groups(ds, split: str = "test", *, include_sampled: bool = True) -> dict[str, np.ndarray]:
    """Row indices of ``split`` whose item is cold (held out of training) / warm.

    Sampled negatives are kept unless ``include_sampled`` is False (they carry the negatives
    of implicit-feedback labels)."""
    rows = ds.rows[split]
    n = ds.n_rows(split)
    if "item_index" not in rows:
        return {"cold": np.zeros(0, dtype=np.int64), "warm": np.arange(n, dtype=np.int64)}
    items = np.asarray(rows["item_index"])
    cold_mask = np.isin(items, ds.cold_items)
    keep = np.ones(n, dtype=bool)
    if not include_sampled and "sampled" in rows:
        keep &= ~np.asarray(rows["sampled"], dtype=bool)
    return {"cold": np.flatnonzero(cold_mask & keep), "warm": np.flatnonzero(~cold_mask & keep)}


def predict_rows(model, ds, split: str, idx: np.ndarray | None = None, *, device=None,
                 batch_size: int = 8192, data=None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(predictions, labels) per task label for rows ``idx`` of ``split`` (None = all rows).

    Predictions are ``task.predict(logits)``: probabilities or regression values."""
    import torch

    if data is None:
        if device is None:
            try:
                device = next(model.parameters()).device
            except StopIteration:
                device = "cpu"
        data = ds.to_device(device)
    dev = data.device
    if idx is None:
        idx = np.arange(ds.n_rows(split))
    idx = np.asarray(idx, dtype=np.int64)
    preds: dict[str, list] = {t.name: [] for t in model.tasks}
    labels: dict[str, list] = {t.name: [] for t in model.tasks}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for s in range(0, len(idx), batch_size):
                b = torch.as_tensor(idx[s:s + batch_size], dtype=torch.long, device=dev)
                feats, labs = data.batch(split, b)
                out = model(feats)
                for t in model.tasks:
                    preds[t.name].append(t.predict(out[t.name]).float().cpu().numpy())
                    labels[t.name].append(labs[t.label].float().cpu().numpy())
    finally:
        model.train(was_training)

    def cat(parts, t):
        if parts:
            return np.concatenate(parts)
        shape = (0, t.n_outputs) if t.type in ("multilabel", "distribution") else (0,)
        return np.zeros(shape, dtype=np.float32)

    return ({t.name: cat(preds[t.name], t) for t in model.tasks},
            {t.name: cat(labels[t.name], t) for t in model.tasks})


def evaluate_cold_warm(model, ds, tasks=None, split: str = "test", *, device=None,
                       batch_size: int = 8192, include_sampled: bool = True) -> dict[str, dict]:
    """Per-task metrics on the rows of cold items and of warm items of ``split``.

    Returns ``{task: {"metric": name, "higher_is_better": bool, "cold": {metric: value, ...,
    "n": rows}, "warm": {...}}}``. A group without rows has NaN metrics and ``n == 0``;
    a dataset without an item cold-start split has only warm rows."""
    from mtlrec.metrics import evaluate_task

    tasks = list(tasks) if tasks is not None else list(model.tasks)
    groups = row_groups(ds, split, include_sampled=include_sampled)
    out: dict[str, dict] = {t.name: {"metric": t.metric, "higher_is_better": bool(t.higher_is_better)}
                            for t in tasks}
    for g in GROUPS:
        idx = groups[g]
        preds, labels = predict_rows(model, ds, split, idx, device=device, batch_size=batch_size)
        for t in tasks:
            m = evaluate_task(t, labels[t.name], preds[t.name])
            m["n"] = int(len(idx))
            if t.type == "binary" and len(idx):
                m["positives"] = int(labels[t.name].sum())
            out[t.name][g] = m
    return out


def cold_start_summary(model, ds, tasks=None, split: str = "test", **kw) -> dict[str, Any]:
    """A JSON-ready block for a run's metrics.json: the cold/warm metrics and the split sizes."""
    return {"split": split, "n_cold_items": int(len(ds.cold_items)),
            "tasks": evaluate_cold_warm(model, ds, tasks, split, **kw)}


# ---- with vs without text --------------------------------------------------------------

def _as_config(config):
    from mtlrec.config import RunConfig
    if isinstance(config, RunConfig):
        return config.copy()
    if isinstance(config, dict):
        return RunConfig.from_dict(copy.deepcopy(config))
    return RunConfig.load(config)


def text_variants(config, *, columns=None, model: str | None = None,
                  split: str | None = "cold_item") -> dict[str, Any]:
    """Two RunConfigs, identical but for the text section: ``{"with_text", "without_text"}``.

    ``columns`` default to the config's text columns, else the spec's text columns.
    ``split`` (the prep split; None keeps the config's) defaults to the item cold-start split."""
    base = _as_config(config)
    if split is not None:
        base.data.prep = dict(base.data.prep or {}, split=split)
    roles = dict(base.data.roles or {})
    cols = list(columns or base.text.columns or list((roles.get("text") or {}).keys()))
    on, off = base.copy(), base.copy()
    on.text.enabled, on.text.columns = True, cols
    if model:
        on.text.model = model
    off.text.enabled, off.text.columns = False, []
    for c, name in ((on, "with-text"), (off, "without-text")):
        c.name = f"{base.name or 'coldstart'}-{name}"
    return {"with_text": on, "without_text": off}


def without_text(ds):
    """The same PreparedDataset without its dense text fields (identical rows and splits)."""
    from mtlrec.dataset import PreparedDataset
    fields = [f for f in ds.fields if f.kind != "dense"]
    keep = {f.name for f in fields}
    meta = dict(ds.meta)
    keep |= {k for k in (*ds.user_table, *ds.item_table) if k.startswith("label:")}   # labels of negatives
    return PreparedDataset(fields, ds.labels, ds.rows,
                           {k: v for k, v in ds.user_table.items() if k in keep},
                           {k: v for k, v in ds.item_table.items() if k in keep},
                           ds.user_ids, ds.item_ids, meta, ds.item_info, ds.user_info)


def with_id_dropout(ds, rate: float, seed: int = 0):
    """Training data where a share ``rate`` of the training rows sees its item as unknown.

    Those rows point to copies of their items whose item-id code is 0 (the unknown bucket that
    held-out items get), with all other item features (text included) kept. The unknown bucket
    is then trained, and the model learns to rely on the item's features when the id says
    nothing -- the usual remedy for cold start ("id dropout"). Only the training split changes (its
    sampled negatives stay the prepared draw: not redrawn per epoch, as the copies are no items of
    their own); evaluate on the original dataset. Returns ``ds`` itself when ``rate`` is 0."""
    from mtlrec.dataset import PreparedDataset
    if not rate or "item_id" not in ds.item_table or not len(ds.item_ids):
        return ds
    rng = np.random.default_rng(seed)
    n_items = len(ds.item_ids)
    train = dict(ds.rows["train"])
    pick = rng.random(len(train["item_index"])) < float(rate)
    train["item_index"] = np.where(pick, train["item_index"] + n_items, train["item_index"])
    item_table = {k: np.concatenate([v, np.zeros_like(v) if k == "item_id" else v])
                  for k, v in ds.item_table.items()}
    rows = dict(ds.rows)
    rows["train"] = train
    ids = np.concatenate([ds.item_ids, np.char.add(ds.item_ids.astype(str), "#unknown-id")])
    meta = dict(ds.meta)
    if isinstance(meta.get("negatives"), dict):   # the copies are no items to sample: keep the prepared draw
        meta["negatives"] = {**meta["negatives"], "per_epoch": False}
    return PreparedDataset(ds.fields, ds.labels, rows, ds.user_table, item_table, ds.user_ids, ids,
                           meta, None, None)


def _default_train(cfg, dataset, **kw):
    from mtlrec.training.pipeline import run_training
    return run_training(cfg, dataset=dataset, **kw)


def compare_text_features(config, *, columns=None, model: str | None = None, split: str | None = "cold_item",
                          dataset=None, train: Callable | None = None, id_dropout: float = 0.0,
                          progress: Callable[[str, dict], None] | None = None,
                          eval_split: str = "test", **train_kw) -> dict[str, dict]:
    """Train ``config`` twice -- language-model text features on, then off -- and compare.

    The data is prepared once, with text (``dataset`` may be given: a PreparedDataset with
    dense text fields); the run without text uses the same rows with the text fields removed,
    so both runs see exactly the same split and cold items. ``train(cfg, dataset, **train_kw)
    -> run`` (with ``model`` and ``dataset``) defaults to `mtlrec.training.pipeline.run_training`.
    ``progress(stage, info)`` is called around each step. ``id_dropout`` > 0 trains both runs on
    `with_id_dropout` data (the same share of rows for both); metrics are on the original rows.
    (A run folder that ``train`` writes then holds that augmented data, with extra "#unknown-id"
    item copies: keep id_dropout at 0 for runs meant for recommendation.)

    Returns ``{task: {"metric", "higher_is_better", "cold": {"with_text": v, "without_text": v,
    "n": rows}, "warm": {...}}}`` plus ``"_runs"`` (full metric dicts per variant, seconds,
    run folders, cold item count). `comparison_rows` turns it into table rows."""
    from mtlrec.errors import DataError
    train = train or _default_train
    variants = text_variants(config, columns=columns, model=model, split=split)
    if dataset is None:
        if progress:
            progress("prepare", {"variant": "with_text"})
        from mtlrec.training.pipeline import build_dataset
        dataset = build_dataset(variants["with_text"])
    if not any(f.kind == "dense" for f in dataset.fields):
        raise DataError("the prepared data has no text features to compare",
                        fix="give at least one item or user column the role 'text' (e.g. title, description)")
    if not len(dataset.cold_items):
        raise DataError("the prepared data has no cold-start items",
                        fix="prepare it with the item cold-start split (prep split 'cold_item')")
    datasets = {"with_text": dataset, "without_text": without_text(dataset)}
    results: dict[str, dict] = {}
    runs: dict[str, dict] = {}
    for name, cfg in variants.items():
        if progress:
            progress("train", {"variant": name})
        t0 = time.perf_counter()
        run = train(cfg, with_id_dropout(datasets[name], id_dropout, seed=cfg.train.seed), **train_kw)
        secs = time.perf_counter() - t0
        res = evaluate_cold_warm(run.model, datasets[name], split=eval_split)
        results[name] = res
        rm = getattr(run, "metrics", None) or {}
        runs[name] = {"seconds": round(secs, 2), "run_dir": str(getattr(run, "run_dir", "") or ""),
                      "best_epoch": rm.get("best_epoch"), "metrics": res, "id_dropout": id_dropout,
                      "text_fields": [f.name for f in datasets[name].fields if f.kind == "dense"]}
        if progress:
            progress("trained", {"variant": name, "seconds": secs})
    out = side_by_side(results["with_text"], results["without_text"])
    out["_runs"] = runs
    out["_split"] = {"split": eval_split, "n_cold_items": int(len(dataset.cold_items)),
                     "n_items": int(len(dataset.item_ids))}
    return out


def side_by_side(with_text: dict, without_text: dict) -> dict[str, dict]:
    """Merge two `evaluate_cold_warm` results on each task's own metric."""
    out: dict[str, dict] = {}
    for task, a in with_text.items():
        b = without_text.get(task)
        if b is None:
            continue
        metric = a["metric"]
        entry = {"metric": metric, "higher_is_better": a["higher_is_better"]}
        for g in GROUPS:
            entry[g] = {"with_text": _f(a[g].get(metric)), "without_text": _f(b[g].get(metric)),
                        "n": int(a[g].get("n", 0))}
        out[task] = entry
    return out


def comparison_rows(result: dict[str, dict]) -> list[dict]:
    """Flat rows for a table: task, metric, items, with text, without text, difference, better."""
    rows = []
    for task, e in result.items():
        if task.startswith("_"):
            continue
        for g in GROUPS:
            w, wo = e[g]["with_text"], e[g]["without_text"]
            diff = (w - wo) if (w is not None and wo is not None) else None
            better = None
            if diff is not None and not math.isnan(diff):
                gain = diff if e["higher_is_better"] else -diff
                better = "with text" if gain > 0 else ("without text" if gain < 0 else "same")
            rows.append({"task": task, "metric": e["metric"], "items": g, "rows": e[g]["n"],
                         "with text": w, "without text": wo, "difference": diff, "better": better})
    return rows


def _f(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None
