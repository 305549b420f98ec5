"""What if: score and explain a *hypothetical* user -- an existing user with some features
changed, or a new user known only by features (user cold start).

Edits are given in RAW terms, as in the data: a numeric feature on its original scale
(``{"age": 24}``), a categorical one by its category name (``{"occupation": "student"}``).
They are encoded as the prepared dataset encodes them (`mtlrec.prep`): numeric values are
transformed as preparation did (clip / winsorise / log1p, when the column has one) and standardised
with the training mean/std recorded in ``dataset.meta["report"]["stats"]``;
category names map to the codes the run was trained with (read back from the raw display
columns ``dataset.user_info``/``item_info`` next to the coded tables; without those, the
categories are known by their codes, "1", "2", ...). A new user's id has the unknown code 0,
and its features not given take a default (`default_values`: the training fill value, what
preparation puts in for a missing value, or the most frequent category) -- never unsaid: every
result lists each value with where it came from and how a default was chosen (``"filled"``,
`filled_values`).

Nothing is written and nothing is changed: the hypothetical rows are new tensors built from
copies; ``run.dataset``, its device tensors and the model are only read. Every result carries
``"hypothetical": True`` and the edits.

Item edits: structured item features (categorical / numeric) of the explained item can be
edited too (``item_edits``). Editing an item's *text* is not supported: it would need the
run's text encoder at hand; the item text embedding stays the item's own.

History edits (a run with a behaviour-history input): `history_scores` / `history_change` score the user
with one item removed from their history or one added as the most recent (with the rating given), through
`mtlrec.serve.recommend.score_items` itself -- the edited history is the request's history input, so the
item-side cache stays as it is and the dataset's arrays are only read. A feature what-if keeps the user's
own history (a new user's is empty).

Scores are the ones of `mtlrec.serve.recommend` (per task and the fused score, `fused_terms`) from
one batched pass over the catalogue; ranks count the items the list would show (the user's
seen items left out, as `recommend` does; a new user has seen nothing).
"""
from __future__ import annotations

import math

import numpy as np

from mtlrec.errors import DataError
from mtlrec.prep.transforms import forward, undo
from mtlrec.serve.history import (edit_history, has_history_input, history_entries, history_features, item_name,
                                  user_history)
from mtlrec.serve.recommend import (class_names, fused_terms, item_columns, item_index, item_support, plain,
                                    score_items, task_values, user_index)
from mtlrec.serve.whatif_input import as_number, range_warning, scale_problem

SHOWN_VALUES = 10


# ---------------------------------------------------------------------------------------------
# the raw <-> encoded map of each user / item feature
# ---------------------------------------------------------------------------------------------
def _stats(ds) -> dict:
    return ((ds.meta or {}).get("report") or {}).get("stats") or {}


def _table(ds, owner: str) -> dict:
    return ds.user_table if owner == "user" else ds.item_table


def _info(ds, owner: str):
    return ds.user_info if owner == "user" else ds.item_info


def editable_fields(run, owner: str = "user") -> list:
    """The user (or item) features a what-if can change: categorical and numeric, ids excluded."""
    return [f for f in run.dataset.fields if f.owner == owner and f.kind in ("categorical", "numeric")
            and f.name not in ("user_id", "item_id")]


def categories(run, name: str, owner: str = "user") -> dict[str, int]:
    """{category name: code} of a categorical feature, most common in the table first.

    Names come from the raw column next to the coded table; without it the codes themselves
    ("1", "2", ...) name the categories. Code 0 (unseen in training) is never offered."""
    ds = run.dataset
    cache = getattr(run, "_cache", None)
    key = ("whatif_categories", owner, name)
    if isinstance(cache, dict) and key in cache:
        return cache[key]
    codes = np.asarray(_table(ds, owner)[name]).astype(np.int64)
    info = _info(ds, owner)
    out: dict[str, int] = {}
    if info is not None and name in getattr(info, "columns", []) and len(info) == len(codes):
        import pandas as pd
        raw = pd.Series(info[name]).reset_index(drop=True)
        fill = (_stats(ds).get(name) or {}).get("fill")
        raw_s = [(_raw_name(v) if not _missing(v) else (fill or "(missing)")) for v in raw]
        counts: dict[tuple[str, int], int] = {}
        for r, c in zip(raw_s, codes):
            if c > 0:
                counts[(r, int(c))] = counts.get((r, int(c)), 0) + 1
        for (r, c), _n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][1])):
            out.setdefault(r, c)
    if not out:
        top = (_stats(ds).get(name) or {}).get("top") or []
        present = np.unique(codes[codes > 0])
        by_count = sorted(present.tolist(), key=lambda c: -int((codes == c).sum()))
        for c in by_count:
            out[str(top[c - 1]) if 0 < c <= len(top) else str(c)] = int(c)
    if isinstance(cache, dict):
        cache[key] = out
    return out


def _missing(v) -> bool:
    try:
        import pandas as pd
        return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
    except ImportError:  # pragma: no cover
        return v is None


def _raw_name(v) -> str:
    """A raw category as the encoder names it (integer-valued floats as integers)."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, np.generic):
        v = v.item()
    return str(v)


def numeric_scale(run, name: str) -> tuple[float, float]:
    """(mean, std) that standardised numeric feature ``name`` (1, 0 -> stored as is, when not recorded)."""
    st = _stats(run.dataset).get(name) or {}
    mean, std = st.get("mean"), st.get("std")
    if mean is None or std is None or not float(std) > 0:
        return 0.0, 1.0
    return float(mean), float(std)


def _transform(run, name: str) -> dict | None:
    """The clip / winsorise / log1p preparation fitted for numeric feature ``name`` (None: none, or a
    run prepared before transforms existed)."""
    return (_stats(run.dataset).get(name) or {}).get("transform")


def training_range(run, name: str, owner: str = "user") -> tuple[float, float] | None:
    """(lowest, highest) standardised value of numeric feature ``name`` among the run's users
    (items): what the model was trained on; None when the table holds no finite value."""
    cache = getattr(run, "_cache", None)
    key = ("whatif_range", owner, name)
    if isinstance(cache, dict) and key in cache:
        return cache[key]
    z = np.asarray(_table(run.dataset, owner)[name], dtype=np.float64).ravel()
    z = z[np.isfinite(z)]
    out = (float(z.min()), float(z.max())) if len(z) else None
    if isinstance(cache, dict):
        cache[key] = out
    return out


def _raw(run, name: str, z: float) -> float:
    """A standardised value of numeric feature ``name`` back on its original scale."""
    mean, std = numeric_scale(run, name)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(undo(np.float64(z * std + mean), _transform(run, name)))


def raw_training_range(run, name: str, owner: str = "user") -> tuple[float, float] | None:
    """`training_range` of numeric feature ``name`` on its original scale (years, not standard deviations)."""
    rng = training_range(run, name, owner)
    return None if rng is None else (_raw(run, name, rng[0]), _raw(run, name, rng[1]))


def edit_warnings(run, edits: dict | None, owner: str = "user") -> list[str]:
    """One warning per numeric edit outside the range of values seen in training (the model
    extrapolates there); the edits are valid (`encode_value` took them)."""
    numeric = {f.name for f in editable_fields(run, owner) if f.kind == "numeric"}
    out = []
    for name, value in (edits or {}).items():
        w = range_warning(name, float(value), raw_training_range(run, name, owner)) if name in numeric else None
        if w:
            out.append(w)
    return out


def _field(run, name: str, owner: str):
    fields = editable_fields(run, owner)
    for f in fields:
        if f.name == name:
            return f
    known = ", ".join(f.name for f in fields) or "none"
    if name in ("user_id", "item_id"):
        fix = "give an existing user with --user (or none for a new user); the id itself is not a feature to edit"
    else:
        fix = f"the {owner} features this run knows are: {known}"
    text = ((run.dataset.meta or {}).get("spec") or {}).get("text") or {}
    if name in text or name.endswith("_text"):
        fix = ("editing a text is not supported (the new text would need the run's text encoder); "
               + fix)
    raise DataError(f"this run has no {owner} feature '{name}'", fix=fix)


def encode_value(run, name: str, value, owner: str = "user"):
    """The model-ready value of one raw feature value (a code, or a standardised number).

    A numeric value must be a finite number (not a yes/no value) not far outside the values the
    model was trained on (`mtlrec.serve.whatif_input.scale_problem`); else a `DataError` says so, with the
    training range."""
    f = _field(run, name, owner)
    if f.kind == "numeric":
        v = as_number(value, name, _fmt(current_values(run, None, owner).get(name)))
        mean, std = numeric_scale(run, name)
        z = (forward(v, _transform(run, name), name) - mean) / std
        problem = scale_problem(name, value, z, training_range(run, name, owner), lambda x: _raw(run, name, x))
        if problem is not None:
            raise problem
        return z
    cats = categories(run, name, owner)
    key = _raw_name(value) if not isinstance(value, str) else value
    if key in cats:
        return cats[key]
    low = {k.lower(): k for k in cats}
    if isinstance(key, str) and key.strip().lower() in low:
        return cats[low[key.strip().lower()]]
    shown = ", ".join(list(cats)[:SHOWN_VALUES]) + (f" ... ({len(cats)} in all)" if len(cats) > SHOWN_VALUES else "")
    raise DataError(f"'{value}' is not a value of {name} seen in training", column=name,
                    fix=f"use one of: {shown or 'no value is known'}")


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def current_values(run, user=None, owner: str = "user", index: int | None = None) -> dict:
    """{feature: raw value} of an existing user (or item at ``index``), or of a new user (the
    training fill values: what preparation puts in for a missing value)."""
    ds = run.dataset
    tab = _table(ds, owner)
    if owner == "user" and user is not None:
        index = user_index(run, user)
    out = {}
    for f in editable_fields(run, owner):
        if index is None:
            out[f.name] = _default_raw(run, f, owner)
            continue
        v = tab[f.name][index]
        if f.kind == "numeric":
            mean, std = numeric_scale(run, f.name)
            raw = float(undo(float(v) * std + mean, _transform(run, f.name)))
            out[f.name] = round(raw, 6)      # the raw value, without float noise
        else:
            names = {c: n for n, c in categories(run, f.name, owner).items()}
            out[f.name] = names.get(int(v), "(unseen in training)")
    return out


def _default_raw(run, f, owner):
    return default_values(run, owner)[f.name]["value"]


def default_values(run, owner: str = "user") -> dict:
    """{feature: {"value": raw value, "how": how it was chosen}} -- what a new user (or an item
    feature not given) is filled with: a numeric feature the training fill value (the median,
    mean or zero preparation puts in for a missing value; else the training mean), a categorical
    one the training fill category where it is a category seen in training, else the most
    frequent one among the run's users (items). ``how`` says which, with the share of a category."""
    cache = getattr(run, "_cache", None)
    key = ("whatif_defaults", owner)
    if isinstance(cache, dict) and key in cache:
        return cache[key]
    out = {f.name: _default(run, f, owner) for f in editable_fields(run, owner)}
    if isinstance(cache, dict):
        cache[key] = out
    return out


def _default(run, f, owner) -> dict:
    st = _stats(run.dataset).get(f.name) or {}
    prep = (run.dataset.meta or {}).get("prep") or {}
    tf = st.get("transform")            # the fill and mean are on the transformed scale
    if f.kind == "numeric":
        if st.get("fill") is None:
            return {"value": float(undo(numeric_scale(run, f.name)[0], tf)), "how": "the training mean"}
        how = {"median": "the training median", "mean": "the training mean",
               "zero": "zero"}.get(prep.get("missing_numeric"))
        fill = "what preparation puts in for a missing value"
        return {"value": float(undo(float(st["fill"]), tf)), "how": f"{how}, {fill}" if how else fill}
    cats = categories(run, f.name, owner)
    fill = st.get("fill")
    if fill is not None and str(fill) in cats:
        value = str(fill)
        how = "the most frequent value in training" if prep.get("missing_categorical") == "most_frequent" \
            else "the category preparation puts in for a missing value"
    else:
        value = next(iter(cats), None)
        how = "the most frequent value"
    if value is None:
        return {"value": None, "how": "no category is known"}
    codes = np.asarray(_table(run.dataset, owner)[f.name]).astype(np.int64)
    n, total = int((codes == cats[value]).sum()), int((codes > 0).sum())
    return {"value": value, "how": f"{how}: {n:,} of {total:,} {owner}s, {n / max(1, total):.0%}"}


def filled_values(run, user=None, edits: dict | None = None, owner: str = "user") -> dict:
    """Every feature value of the hypothetical user, and where it came from:
    ``{feature: {"value", "source": "given" | "default" | "data", "how"}}`` -- "given" in ``edits``,
    "data" the existing user's own value, "default" filled in for a new user (`default_values`:
    ``how`` says how it was chosen). Nothing is filled in unsaid."""
    edits = dict(edits or {})
    now = current_values(run, user, owner)
    defaults = default_values(run, owner) if user is None else {}
    out = {}
    for name, value in now.items():
        if name in edits:
            out[name] = {"value": edits[name], "source": "given", "how": "given"}
        elif user is None:
            out[name] = {"value": value, "source": "default", "how": defaults[name]["how"]}
        else:
            out[name] = {"value": value, "source": "data", "how": f"user {user}'s own value"}
    return out


# ---------------------------------------------------------------------------------------------
# the hypothetical rows
# ---------------------------------------------------------------------------------------------
def _check_edits(run, edits, owner: str) -> dict:
    if edits is None:
        return {}
    if not isinstance(edits, dict):
        raise DataError(f"the {owner} feature edits must be a mapping feature -> value, not {type(edits).__name__}",
                        fix='write them as JSON, e.g. {"age": 24, "occupation": "student"}')
    return {str(k): encode_value(run, str(k), v, owner) for k, v in edits.items()}


def user_row(run, user=None, edits: dict | None = None) -> dict:
    """{user field: tensor} of the hypothetical user (new tensors; the tables are not touched)."""
    import torch
    ds = run.dataset
    enc = _check_edits(run, edits, "user")
    u = None if user is None else user_index(run, user)
    row = {}
    for f in ds.fields:
        if f.owner != "user":
            continue
        if u is not None:
            v = np.array(ds.user_table[f.name][u], copy=True)
        elif f.name == "user_id":
            v = np.int64(0)                                 # the unknown code: a user the model never saw
        elif f.kind in ("dense", "multihot"):               # no text, no known values
            v = np.zeros(f.dim, np.float32)
        else:
            raw = _default_raw(run, f, "user")
            v = encode_value(run, f.name, raw, "user") if raw is not None else (0 if f.kind == "categorical" else 0.0)
        if f.name in enc:
            v = enc[f.name]
        kind = torch.long if f.kind == "categorical" else torch.float32
        row[f.name] = torch.as_tensor(np.asarray(v), dtype=kind)
    return row


def candidate_features(run, user=None, edits: dict | None = None, item=None, item_edits: dict | None = None):
    """Model features of the hypothetical user against every catalogue item (one batch), as
    `DeviceData.candidates` builds them for a real user; with ``item_edits`` the item ``item``
    carries the edited structured features. New tensors only."""
    import torch
    data = run.device_data()
    dev = data.device
    n = len(run.dataset.item_ids)
    feats = {k: tab.clone() for k, tab in data.item_table.items()}
    ienc = _check_edits(run, item_edits, "item")
    if ienc:
        if item is None:
            raise DataError("item feature edits need the item they apply to", fix="give the item id as well")
        i = item_index(run, item)
        for name, v in ienc.items():
            feats[name][i] = torch.as_tensor(v, dtype=feats[name].dtype)
    for k, v in user_row(run, user, edits).items():
        v = v.to(dev)
        feats[k] = v.expand(n, *v.shape).clone() if v.dim() else v.repeat(n)
    base = data.candidates(0, [0])              # context fields at their defaults, as `recommend` scores
    for f in run.dataset.fields:
        if f.owner == "context" and f.kind != "history":
            c = base[f.name]
            feats[f.name] = c.expand(n, *c.shape[1:]).clone()
    if has_history_input(run):                  # the user's own history (a new user's is empty)
        for k, v in history_features(run, *user_history(run, user), device=dev).items():
            feats[k] = v.expand(n, -1).clone()
    return feats


# ---------------------------------------------------------------------------------------------
# scores
# ---------------------------------------------------------------------------------------------
def _predict(run, feats) -> dict:
    """{task: prediction}, chained binary tasks in the entire space, as `mtlrec.serve.recommend` scores."""
    import torch

    from mtlrec.chain import scored
    model = run.model
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = model(feats)
            return {n: p.float().cpu().numpy() for n, p in scored(run.tasks, out, [t.name for t in run.tasks]).items()}
    finally:
        model.train(was_training)


def _ranks(score: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """1-based rank of every item in the list (seen items: 0, they are left out)."""
    s = np.asarray(score, dtype=np.float64).copy()
    if len(seen):
        s[seen] = -np.inf
    order = np.argsort(-s, kind="stable")
    rank = np.empty(len(s), dtype=np.int64)
    rank[order] = np.arange(1, len(s) + 1)
    if len(seen):
        rank[seen] = 0
    return rank


def whatif_scores(run, user=None, edits: dict | None = None, *, item=None, item_edits: dict | None = None,
                  weights: dict | None = None, exclude_seen: bool = True) -> dict:
    """Scores of the hypothetical user against every item.

    ``{"hypothetical": True, "user", "new_user", "edits", "item_edits", "features": {feature: raw value},
    "filled": {feature: {"value", "source", "how"}} (`filled_values`), "defaults": [features left at a default],
    "preds": {task: array [n_items(, K)]}, "score": fused array, "by_task": {task: a_t * s_t array},
    "weights": {task: a_t}, "rank": int array (1 = top of the list; 0 = seen, left out), "seen": item indices,
    "warnings": [one per edited number outside the training range (`edit_warnings`)]}``. Values far outside
    it, non-finite ones and yes/no values for numbers are refused (`encode_value`); scores are never NaN."""
    ds = run.dataset
    if not ds.has_items:
        raise DataError("this run's data has no item ids, so there is nothing to recommend")
    if user is None and not ds.has_users and not editable_fields(run, "user"):
        raise DataError("this run's model has no user features to describe a user with")
    feats = candidate_features(run, user, edits, item, item_edits)
    preds = _predict(run, feats)
    score, terms, a = fused_terms(run, preds, weights)
    if not np.all(np.isfinite(score)):            # never a NaN score or a rank made of NaNs
        raise DataError("the model gives no finite score for these feature values",
                        fix="give values nearer those seen in training")
    seen = ds.interacted_items(user_index(run, user)) if (user is not None and exclude_seen) \
        else np.zeros(0, dtype=np.int64)
    filled = filled_values(run, user, edits)
    return {"hypothetical": True, "user": None if user is None else str(user), "new_user": user is None,
            "edits": dict(edits or {}), "item_edits": dict(item_edits or {}), "item": None if item is None else str(item),
            "features": {k: v["value"] for k, v in filled.items()}, "filled": filled,
            "defaults": [k for k, v in filled.items() if v["source"] == "default"],
            "preds": preds, "score": score, "by_task": terms, "weights": a,
            "rank": _ranks(score, seen), "seen": seen,
            "warnings": edit_warnings(run, edits, "user") + edit_warnings(run, item_edits, "item")}


def whatif_recommend(run, user=None, edits: dict | None = None, k: int = 10, weights: dict | None = None,
                     exclude_seen: bool = True, top_classes: int = 3, scores: dict | None = None) -> dict:
    """The top ``k`` list of the hypothetical user, JSON-ready:
    ``{"hypothetical": True, "user", "new_user", "edits", "features", "filled", "defaults", "warnings",
    "items": [{item, rank, score, support,
    tasks, <item columns>}]}`` (items as `mtlrec.serve.recommend.recommend` lists them)."""
    if int(k) < 1:
        raise DataError(f"k must be at least 1, not {k}")
    s = scores or whatif_scores(run, user, edits, weights=weights, exclude_seen=exclude_seen)
    ds = run.dataset
    rank = s["rank"]
    top = np.flatnonzero((rank > 0) & (rank <= int(k)))
    top = top[np.argsort(rank[top], kind="stable")]
    title, rest = item_columns(ds)
    cols = ([title] if title else []) + rest
    info = ds.item_info if ds.item_info is not None and len(ds.item_info) == len(ds.item_ids) else None
    support = item_support(run)
    items = []
    for i in top:
        rec = {"item": str(ds.item_ids[i]), "rank": int(rank[i]), "score": float(s["score"][i]),
               "support": int(support[i]), "tasks": task_values(run, s["preds"], i, top_classes)}
        if info is not None:
            for c in cols:
                if c not in rec:
                    rec[c] = plain(info.iloc[i][c])
        items.append(rec)
    return {"hypothetical": True, "user": s["user"], "new_user": s["new_user"], "edits": s["edits"],
            "features": {k2: plain(v) for k2, v in s["features"].items()},
            "filled": {k2: {**v, "value": plain(v["value"])} for k2, v in s["filled"].items()},
            "defaults": list(s["defaults"]), "items": items, "warnings": list(s.get("warnings") or [])}


def pair_change(run, user, item, edits: dict | None = None, *, item_edits: dict | None = None,
                weights: dict | None = None) -> dict:
    """The (user, item) pair before and after the edits: per-task predictions, fused score, rank.

    ``{"hypothetical": True, "user", "item", "edits", "before": {"tasks", "score", "rank"} | None (new user),
    "after": {...}}``; a rank of 0 means the user has already seen the item (it is not in the list)."""
    i = item_index(run, item)
    after = whatif_scores(run, user, edits, item=item, item_edits=item_edits, weights=weights)

    def view(s):
        return {"tasks": task_values(run, s["preds"], i, top_classes=None), "score": float(s["score"][i]),
                "rank": int(s["rank"][i])}
    before = None if user is None else view(whatif_scores(run, user, None, weights=weights))
    return {"hypothetical": True, "user": after["user"], "new_user": after["new_user"], "item": str(item),
            "edits": after["edits"], "item_edits": after["item_edits"], "before": before, "after": view(after),
            "warnings": after["warnings"]}


# ---------------------------------------------------------------------------------------------
# the history what-if: an item removed from the user's history, or one added
# ---------------------------------------------------------------------------------------------
def history_scores(run, user, *, remove=None, add=None, rating=None, weights: dict | None = None,
                   exclude_seen: bool = True) -> dict:
    """Scores of ``user`` against every item with an edited behaviour history: less ``remove`` (an
    item id of the history) and/or with ``add`` as the most recent item, rated ``rating`` (label scale).

    Scored by `mtlrec.serve.recommend.score_items` with the edited history as the request's history
    input -- the very path of recommendations, item-side cache included (the history is per request,
    so the cache stays what it is); the dataset's arrays are only read. ``{"hypothetical": True, "user",
    "history_edit": {"remove", "add", "rating"}, "history": entries of the edited history (`history_entries`,
    oldest first), "preds", "score", "by_task", "weights", "rank", "seen", ...}`` (an added item counts as seen)."""
    u = user_index(run, user)
    codes, values = edit_history(run, user, remove=remove, add=add, rating=rating)
    preds = score_items(run, u, history=history_features(run, codes, values))
    score, terms, a = fused_terms(run, preds, weights)
    ds = run.dataset
    seen = ds.interacted_items(u) if exclude_seen else np.zeros(0, dtype=np.int64)
    if exclude_seen and add not in (None, ""):
        seen = np.union1d(seen, [item_index(run, add)]).astype(np.int64)
    return {"hypothetical": True, "user": str(user), "new_user": False, "edits": {}, "item_edits": {},
            "history_edit": {"remove": None if remove in (None, "") else str(remove),
                             "remove_name": None if remove in (None, "") else item_name(run, remove),
                             "add": None if add in (None, "") else str(add),
                             "add_name": None if add in (None, "") else item_name(run, add),
                             "rating": None if add in (None, "") or rating in (None, "") else float(rating)},
            "history": history_entries(run, codes, values), "features": {}, "filled": {}, "defaults": [],
            "preds": preds, "score": score, "by_task": terms, "weights": a, "rank": _ranks(score, seen),
            "seen": seen, "warnings": []}


def history_change(run, user, item=None, *, remove=None, add=None, rating=None, weights: dict | None = None,
                   k: int = 10, exclude_seen: bool = True) -> dict:
    """The history what-if, before and after (hypothetical: nothing is saved).

    ``{"hypothetical": True, "user", "item", "history_edit", "history": the edited history's entries,
    "before": {"tasks", "score", "rank"} | None, "after": ... | None (with ``item``: the pair), "items":
    the top ``k`` after the edit, "items_before": the top ``k`` as recommended now}``."""
    after = history_scores(run, user, remove=remove, add=add, rating=rating, weights=weights,
                           exclude_seen=exclude_seen)
    u = user_index(run, user)
    preds = score_items(run, u)
    score, terms, a = fused_terms(run, preds, weights)
    seen = run.dataset.interacted_items(u) if exclude_seen else np.zeros(0, dtype=np.int64)
    before = {**after, "history_edit": None, "preds": preds, "score": score, "by_task": terms,
              "rank": _ranks(score, seen), "seen": seen}
    out = {"hypothetical": True, "user": str(user), "item": None if item is None else str(item),
           "history_edit": after["history_edit"], "history": after["history"], "before": None, "after": None,
           "items": whatif_recommend(run, user, k=k, scores=after)["items"],
           "items_before": whatif_recommend(run, user, k=k, scores=before)["items"]}
    if item is not None:
        i = item_index(run, item)
        for key, s in (("before", before), ("after", after)):
            out[key] = {"tasks": task_values(run, s["preds"], i, top_classes=None), "score": float(s["score"][i]),
                        "rank": int(s["rank"][i])}
    return out


# ---------------------------------------------------------------------------------------------
# explanation of one hypothetical pair (the SHAP machinery of mtlrec.explain)
# ---------------------------------------------------------------------------------------------
def explain_whatif(run, user, item, edits: dict | None = None, *, item_edits: dict | None = None,
                   weights: dict | None = None, background: int = 100, explainer=None, method: str = "auto",
                   seed: int = 0, scores: dict | None = None) -> dict:
    """Why the hypothetical user would get ``item``: `mtlrec.explain.api.explain_recommendation`'s
    result (per-task waterfalls in logit / label units, the fused decomposition, the sentence)
    for the edited feature row, plus ``"hypothetical": True``, ``"new_user"``, ``"edits"``, ``"rank"``,
    ``"filled"`` / ``"defaults"`` (every value of the hypothetical user and where it came from)."""
    import time

    import torch

    from mtlrec.explain.api import fused_decomposition, make_explainer
    from mtlrec.explain.inputs import class_index, cpu_model
    from mtlrec.explain.sentence import sentence
    from mtlrec.explain.values import group_sensitivity, sensitive_check, sensitive_flags
    t0 = time.perf_counter()
    i = item_index(run, item)
    s = scores or whatif_scores(run, user, edits, item=item, item_edits=item_edits, weights=weights)
    probs = task_values(run, s["preds"], i, top_classes=None)
    pair = {"weights": s["weights"], "score": float(s["score"][i]),
            "by_task": {n: float(v[i]) for n, v in s["by_task"].items()}}
    chosen = {t.name: class_index(run, t, None, probs[t.name]) for t in run.tasks if t.type in ("multilabel", "distribution")}
    feats = candidate_features(run, user, edits, item, item_edits)
    one = {k: v[i:i + 1].cpu() for k, v in feats.items()}
    with torch.no_grad():
        x = cpu_model(run).embed(one)
    ex = explainer or make_explainer(run, background, method, seed)
    att = ex.explain(x, method=None if method == "auto" else method, classes=chosen)
    tasks_out = {}
    for j, name in enumerate(att.tasks):
        t = run.task(name)
        base, out = float(att.base_values[j]), float(att.outputs[0, j])
        phi = {g: float(att.values[0, gi, j]) for gi, g in enumerate(att.groups)}
        r = {"type": t.type}
        if t.type == "regression":
            k = t.label_scale
            r.update(space="label", unit=f"{t.label} (label units)", output_kind=f"predicted {t.label}",
                     base_value=float(t.to_label_scale(base)), output=float(t.to_label_scale(out)),
                     contributions={g: v * k for g, v in phi.items()}, prediction=probs[name])
        elif t.type == "binary":
            r.update(space="logit", unit="logit (log-odds)", output_kind="logit (log-odds)", base_value=base,
                     output=out, contributions=phi, prediction=probs[name])
        else:
            names = class_names(run, t)
            c = chosen[name]
            what = "log share" if t.type == "distribution" else "logit"
            r.update(space=what, unit=f"{what} of class '{names[c]}'", output_kind=f"{what} of class '{names[c]}'",
                     base_value=base, output=out, contributions=phi, **{"class": names[c]}, class_index=c,
                     prediction=probs[name][names[c]], class_probabilities=dict(probs[name]))
        tasks_out[name] = r
    result = {"hypothetical": True, "user": s["user"], "new_user": s["new_user"], "item": str(item),
              "edits": s["edits"], "item_edits": s["item_edits"], "filled": s["filled"], "defaults": s["defaults"],
              "space": "per task", "method": att.method,
              "background": int(len(ex.background)), "tasks": tasks_out,
              "fused": fused_decomposition(run, tasks_out, pair), "rank": int(s["rank"][i]),
              "warnings": list(s.get("warnings") or [])}
    result["sensitive"] = sensitive_flags(group_sensitivity(run), tasks_out, result["fused"])
    result["sensitive_check"] = sensitive_check(result["sensitive"])
    result["sentence"] = sentence(result)
    result["elapsed_ms"] = (time.perf_counter() - t0) * 1000.0
    return result
