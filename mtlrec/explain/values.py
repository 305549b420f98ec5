"""What an explanation's feature groups *are* for one (user, item) pair, in words.

* `feature_values` -- per feature group, the pair's value as a person reads it:
  ``"occupation = student"``, ``"age = 24"`` (numeric features on the original scale:
  the standardisation is undone with the training mean/std that preparation keeps in
  ``meta["report"]["stats"]``, and a log1p transform with it; a clipped value shows its bound),
  categorical codes decoded to their categories
  (``meta["vocabularies"]``, else the ten most frequent of the stats, else the raw
  user/item table), ``"item text: first words..."`` for text embeddings, and ids with what
  the model learned from them (the id's training interactions; for items, the most similar
  items by the learned embedding, `similar_items`).
* `probability_view` -- a logit waterfall in probability units (see its docstring).
* `sensitive_flags` -- feature groups that look like protected attributes or proxies of
  them (`SENSITIVE_PATTERNS`) and carry a large share of the explanation (`SENSITIVE_SHARE`);
  `sensitive_check` -- the check in words: which groups were checked, at what share, flagged or not.
"""
from __future__ import annotations

import math
import re

import numpy as np

from mtlrec.prep.transforms import undo

# Column-name patterns of protected attributes and their common proxies (matched on the
# field's name split into words, case-insensitive: "user_age", "zipcode", "BirthYear").
# A match says only that the name *looks* sensitive; the flag fires when the group also
# carries a large share of the explanation.
SENSITIVE_PATTERNS: dict[str, str] = {
    "gender / sex": r"\b(gender\w*|sex|sexes)\b",
    "age": r"\b(age|ages|birth\w*|dob|yob)\b",
    "location (proxy for ethnicity, income)": r"\b(zip\w*|post ?codes?|postal\w*|location\w*|city|cities|"
                                              r"country|countries|region\w*)\b",
    "race / ethnicity": r"\b(race|races|racial|ethnic\w*)\b",
    "religion": r"\b(religio\w*)\b",
    "nationality": r"\b(nationalit\w*)\b",
    "marital status": r"\b(marital\w*)\b",
}
# A sensitive-looking group is flagged when its share of the explanation, |phi_g| / sum_g |phi_g|
# of any task (or of the fused score), is at least this: one group of five equally strong ones.
SENSITIVE_SHARE = 0.20
SENSITIVE_NOTE = ("The model relies on a protected attribute or a proxy of one for this recommendation. "
                  "Check whether that is acceptable for your use (law, policy, fairness towards the groups "
                  "it separates) before acting on it.")
TEXT_WORDS = 8
ID_FIELDS = ("user_id", "item_id")


def _words(name: str) -> str:
    """'BirthYear' / 'user_zip-code' -> 'birth year' / 'user zip code'."""
    s = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(name))
    return " ".join(re.split(r"[^A-Za-z0-9]+", s)).lower().strip()


def sensitive_kind(name: str) -> str | None:
    """Which `SENSITIVE_PATTERNS` entry a column name matches (None: none)."""
    words = _words(name)
    for kind, pat in SENSITIVE_PATTERNS.items():
        if re.search(pat, words):
            return kind
    return None


def _fmt_number(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if abs(v - round(v)) < 1e-6 * max(1.0, abs(v)):
        return str(int(round(v)))
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:,.0f}"


# ---------------------------------------------------------------------------------------------
# support and similar items
# ---------------------------------------------------------------------------------------------
def user_support(run) -> np.ndarray:
    """Per user index, the number of real (not sampled) training rows of the user (cached on the run)."""
    cache = getattr(run, "_cache", None)
    if isinstance(cache, dict) and "user_support" in cache:
        return cache["user_support"]
    ds = run.dataset
    n = len(ds.user_ids)
    rows = ds.rows.get("train") or {}
    if "user_index" not in rows:
        support = np.zeros(n, dtype=np.int64)
    else:
        users = np.asarray(rows["user_index"], dtype=np.int64)
        m = users >= 0
        if "sampled" in rows:
            m &= ~np.asarray(rows["sampled"], dtype=bool)
        support = np.bincount(users[m], minlength=n)[:n].astype(np.int64)
    if isinstance(cache, dict):
        cache["user_support"] = support
    return support


def item_titles(ds) -> list[str] | None:
    """The title of every item (by item index) from a title-like column of ``ds.item_info``, or None."""
    from mtlrec.serve.recommend import item_columns
    info = getattr(ds, "item_info", None)
    if info is None or len(info) != len(ds.item_ids):
        return None
    title, _ = item_columns(ds)
    if not title:
        return None
    return ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            for v in info[title].astype(object).tolist()]


def similar_items(run, item, k: int = 5) -> list[dict]:
    """The ``k`` items whose learned item-id embedding is closest (cosine) to ``item``'s:
    ``[{"item", "title" (when the items have a title column), "similarity", "support"}]``,
    most similar first. Empty when the model has no item-id embedding or the item was
    unseen in training (its id code is 0: no learned profile)."""
    import torch

    from mtlrec.explain.inputs import lookup
    from mtlrec.serve.recommend import item_support
    ds = run.dataset
    i = lookup(ds, "item", item)
    codes = np.asarray(ds.item_table.get("item_id", []), dtype=np.int64)
    if len(codes) != len(ds.item_ids) or codes[i] <= 0:
        return []
    try:
        with torch.no_grad():
            emb = run.model.input.embedding_rows("item_id").detach().double().cpu().numpy()
    except (KeyError, AttributeError):
        return []
    ok = (codes > 0) & (codes < len(emb))
    ok[i] = False
    cand = np.flatnonzero(ok)
    if not len(cand):
        return []
    v = emb[codes[i]]
    m = emb[codes[cand]]
    denom = np.linalg.norm(m, axis=1) * np.linalg.norm(v)
    sim = np.where(denom > 0, m @ v / np.where(denom > 0, denom, 1.0), 0.0)
    order = np.lexsort((cand, -np.round(sim, 12)))[: int(k)]      # ties: lower item index first
    titles = item_titles(ds)
    support = item_support(run)
    out = []
    for j in order:
        idx = int(cand[j])
        rec = {"item": str(ds.item_ids[idx]), "similarity": float(sim[j]), "support": int(support[idx])}
        if titles is not None:
            rec["title"] = titles[idx]
        out.append(rec)
    return out


# ---------------------------------------------------------------------------------------------
# values of the pair
# ---------------------------------------------------------------------------------------------
def _category(ds, name: str, code: int, owner: str, index: int) -> str:
    if code <= 0:
        return "unknown (a category not seen in training)"
    vocab = (ds.meta.get("vocabularies") or {}).get(name)
    if vocab is None:
        vocab = ((ds.meta.get("report") or {}).get("stats") or {}).get(name, {}).get("top")
    if vocab is not None and code - 1 < len(vocab):
        return str(vocab[code - 1])
    info = ds.user_info if owner == "user" else ds.item_info if owner == "item" else None
    if info is not None and name in getattr(info, "columns", []) and 0 <= index < len(info):
        v = info[name].iloc[index]
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            return str(v)
    return f"category #{code}"


def _classes(ds, name: str, row) -> str:
    """The classes of a multihot row (e.g. "Action, Comedy"), or "none" for an empty one."""
    vocab = (ds.meta.get("vocabularies") or {}).get(name) or []
    on = [int(k) for k in np.flatnonzero(np.asarray(row, dtype=float).reshape(-1) > 0)]
    names = [str(vocab[k]) if k < len(vocab) else f"class #{k + 1}" for k in on]
    return ", ".join(names) if names else "none (no known value)"


def _number(ds, name: str, x: float) -> tuple[float, bool]:
    """(value on the original scale, whether the standardisation could be undone)."""
    st = ((ds.meta.get("report") or {}).get("stats") or {}).get(name)
    if st and "mean" in st and "std" in st:
        return float(undo(float(x) * float(st["std"]) + float(st["mean"]), st.get("transform"))), True
    return float(x), False


def _text(ds, name: str, owner: str, index: int) -> str | None:
    """The first words of the pair's text behind dense field ``name`` (None: not kept)."""
    rep = ((ds.meta.get("report") or {}).get("text") or {}).get(name) or {}
    info = ds.item_info if owner == "item" else ds.user_info if owner == "user" else None
    cols = [c for c in rep.get("columns") or [] if info is not None and c in info.columns]
    if not cols or not (0 <= index < len(info)):
        return None
    parts = [str(info[c].iloc[index]) for c in cols
             if info[c].iloc[index] is not None and not (isinstance(info[c].iloc[index], float)
                                                         and math.isnan(info[c].iloc[index]))]
    words = " ".join(parts).split()
    if not words:
        return None
    return " ".join(words[:TEXT_WORDS]) + ("…" if len(words) > TEXT_WORDS else "")


def _field_value(run, f, u: int, i: int, feats: dict) -> dict:
    """One field's value for the pair: {"field", "owner", "kind", "text", "value", ...}."""
    ds = run.dataset
    index = u if f.owner == "user" else i if f.owner == "item" else -1
    raw = feats[f.name][0].detach().cpu().numpy() if f.name in feats else None
    label = f.name.replace("_", " ")
    out = {"field": f.name, "owner": f.owner, "kind": f.kind}
    if f.name in ID_FIELDS:
        who = f.owner
        raw_id = str((ds.user_ids if who == "user" else ds.item_ids)[index])
        code = int(raw) if raw is not None else 0
        support = int((user_support(run) if who == "user" else _item_support(run))[index])
        out.update(value=raw_id, support=support, learned=code > 0,
                   text=f"{who} id = {raw_id}")
        if who == "item" and code > 0:
            out["similar"] = similar_items(run, raw_id, k=5)
        return out
    if f.kind == "history":
        return {**out, **_history_value(run, feats)}
    if f.kind == "categorical":
        v = _category(ds, f.name, int(raw), f.owner, index)
        out.update(value=v, code=int(raw), text=f"{label} = {v}")
    elif f.kind == "numeric":
        v, ok = _number(ds, f.name, float(raw))
        out.update(value=v, standardised=float(raw), original_scale=ok, text=f"{label} = {_fmt_number(v)}"
                   + ("" if ok else " (standardised)"))
    elif f.kind == "multihot":
        v = _classes(ds, f.name, raw)
        out.update(value=v, text=f"{label} = {v}")
    else:
        words = _text(ds, f.name, f.owner, index)
        name = label if label.endswith("text") else f"{label} (text)"
        out.update(value=words, text=f"{name}: {words}" if words else f"{name}: text embedding")
    if f.owner == "context":
        out["text"] += " (the most frequent value: recommendations score without context)"
    return out


def _history_value(run, feats: dict, shown: int = 3) -> dict:
    """The pair's behaviour history in words: "the user's last 20 items (most recent: Casablanca 5★,
    Notorious 4★, ...)", or "the user's history is empty"."""
    from mtlrec.prep.history import FIELD, VALUE
    from mtlrec.serve.history import history_entries
    codes = feats[FIELD][0].detach().cpu().numpy()
    values = feats[VALUE][0].detach().cpu().numpy() if VALUE in feats else np.zeros(len(codes), np.float32)
    entries = history_entries(run, codes, values)[::-1]          # most recent first
    if not entries:
        return {"value": [], "n_items": 0, "text": "the user's history is empty (no earlier interactions)"}
    names = [f"{e['name']} {e['value_text']}".strip() for e in entries[:shown]]
    more = ", ..." if len(entries) > shown else ""
    n = len(entries)
    return {"value": [e["item"] for e in entries], "n_items": n,
            "text": f"the user's last {n} item{'s' if n != 1 else ''} (most recent: {', '.join(names)}{more})"}


def _item_support(run):
    from mtlrec.serve.recommend import item_support
    return item_support(run)


def feature_values(run, user, item, feats: dict | None = None) -> dict:
    """Per feature group (the explanation's groups), the pair's values in words:
    ``{group: {"text": "occupation = student; ...", "fields": [per-field dicts], "sensitive": kind|None,
    "support"/"similar" for ids}}``. ``feats``: the pair's features (`row_inputs`), else looked up."""
    from mtlrec.explain.inputs import lookup, row_inputs
    ds = run.dataset
    u, i = lookup(ds, "user", user), lookup(ds, "item", item)
    if feats is None:
        feats, _ = row_inputs(run, user, item)
    groups: dict[str, list] = {}
    for f in ds.fields:
        groups.setdefault(f.group or f.name, []).append(f)
    out = {}
    for g, fields in groups.items():
        vals = [_field_value(run, f, u, i, feats) for f in fields]
        rec = {"text": "; ".join(v["text"] for v in vals), "fields": vals, "sensitive": _group_kind(fields)}
        if len(vals) == 1 and vals[0]["field"] in ID_FIELDS:
            for key in ("support", "similar", "learned"):
                if key in vals[0]:
                    rec[key] = vals[0].pop(key) if key == "similar" else vals[0][key]
        out[g] = rec
    return out


def _group_kind(fields) -> str | None:
    """The `SENSITIVE_PATTERNS` kind of a group's first sensitive-looking field (ids never are)."""
    return next((k for k in (sensitive_kind(f.name) for f in fields if f.name not in ID_FIELDS) if k), None)


def group_sensitivity(run) -> dict:
    """Per feature group, whether its fields look sensitive, without a pair's values:
    ``{group: {"sensitive": kind | None, "fields": [{"field": name}]}}`` (what `sensitive_flags` reads)."""
    groups: dict[str, list] = {}
    for f in run.dataset.fields:
        groups.setdefault(f.group or f.name, []).append(f)
    return {g: {"sensitive": _group_kind(fields), "fields": [{"field": f.name} for f in fields]}
            for g, fields in groups.items()}


def reason(group: str, info: dict | None, titles: int = 2) -> str:
    """The group as a reason in words: "this user's occupation is student", "the item's learned
    profile (120 training interactions; similar to X and Y)"."""
    if not info or not info.get("fields"):
        return group
    fields = info["fields"]
    f = fields[0]
    whose = {"user": "this user's", "item": "the item's", "context": "the"}[f["owner"]]
    if len(fields) == 1 and f["field"] in ID_FIELDS:
        if not f.get("learned", True):
            return f"the {f['owner']}'s id (unseen in training: no learned profile)"
        n = int(f.get("support", 0))
        bits = [f"{n:,} training interaction{'s' if n != 1 else ''}"]
        sim = [s.get("title") or s["item"] for s in (info.get("similar") or [])[:titles]]
        if sim:
            bits.append("similar to " + " and ".join(sim))
        return f"{whose} learned profile ({'; '.join(bits)})"
    parts = []
    for f in fields:
        name = f["field"].replace("_", " ")
        if f["kind"] == "history":
            parts.append(f["text"].replace("the user's", "this user's", 1))
        elif f["kind"] == "dense":
            parts.append(f"{whose} text" + (f" ('{f['value']}')" if f.get("value") else ""))
        elif f["kind"] == "numeric":
            parts.append(f"{whose} {name} is {_fmt_number(f['value'])}"
                         + ("" if f.get("original_scale", True) else " (standardised)"))
        else:
            parts.append(f"{whose} {name} is {f['value']}")
    return " and ".join(parts)


# ---------------------------------------------------------------------------------------------
# units and flags
# ---------------------------------------------------------------------------------------------
def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def probability_view(base_logit: float, contributions: dict) -> dict:
    """A logit waterfall in probability units, still additive.

    The groups are taken in the order the waterfall draws them (largest |logit contribution|
    first); the cumulative logit sums ``base, base + phi_1, base + phi_1 + phi_2, ...`` are
    mapped through the sigmoid, and each group's bar is the step it makes in probability:
    ``sigmoid(base + phi_1 + ... + phi_k) - sigmoid(base + ... + phi_(k-1))``. The bars add
    up to ``sigmoid(output) - sigmoid(base)`` exactly, keep their signs, and the view is a
    monotone map of the logit view; a group's probability bar depends on its place in the
    order (the sigmoid is not linear), so the order is part of the result."""
    order = [g for g, _ in sorted(contributions.items(), key=lambda kv: -abs(kv[1]))]
    z = float(base_logit)
    p = _sigmoid(z)
    base_p = p
    out = {}
    for g in order:
        z += float(contributions[g])
        q = _sigmoid(z)
        out[g] = q - p
        p = q
    return {"space": "probability", "unit": "probability", "base_value": base_p, "output": p,
            "contributions": out, "order": order,
            "note": "cumulative logit sums (largest |contribution| first) mapped through the sigmoid: each bar "
                    "is the rise in probability its group adds at its place in that order; the bars add up "
                    "to the predicted probability"}


def sensitive_flags(features: dict, tasks: dict, fused: dict | None = None,
                    threshold: float = SENSITIVE_SHARE) -> list[dict]:
    """The sensitive-looking groups (`SENSITIVE_PATTERNS`) with their largest share of the
    explanation (``|phi_g| / sum |phi|`` over the tasks and the fused score); ``flagged`` when
    the share is at least ``threshold``. Flagged first, then by share."""
    views = {name: r["contributions"] for name, r in tasks.items()}
    if fused:
        views["fused score"] = fused["contributions"]
    out = []
    for g, info in features.items():
        kind = info.get("sensitive")
        if not kind:
            continue
        best, where = 0.0, None
        for name, c in views.items():
            total = sum(abs(v) for v in c.values())
            if g in c and total > 0 and abs(c[g]) / total > best:
                best, where = abs(c[g]) / total, name
        out.append({"group": g, "kind": kind, "share": best, "where": where, "flagged": best >= threshold,
                    "fields": [f["field"] for f in info["fields"]],
                    "note": SENSITIVE_NOTE if best >= threshold else ""})
    out.sort(key=lambda r: (not r["flagged"], -r["share"]))
    return out


def _share(s: float) -> str:
    """A share of the explanation as the check states it: 35%, 4.2%, 0.03%."""
    if s >= 0.095:
        return f"{s:.0%}"
    if s >= 0.0095:
        return f"{s:.1%}"
    return f"{100 * s:.1g}%" if s > 0 else "0%"


def sensitive_check(flags: list[dict], threshold: float = SENSITIVE_SHARE) -> dict:
    """What the sensitive-feature check looked at and found, also when nothing is flagged:
    ``{"checked": [group], "looked_for": [kind of SENSITIVE_PATTERNS], "threshold", "flagged": [group],
    "text"}`` (``flags``: `sensitive_flags`'s list). The text names every checked group with its
    share and says whether it reached ``threshold``."""
    looked_for = list(SENSITIVE_PATTERNS)
    out = {"checked": [f["group"] for f in flags], "looked_for": looked_for, "threshold": float(threshold),
           "flagged": [f["group"] for f in flags if f["flagged"]]}
    bar = _share(threshold)
    if not flags:
        out["text"] = ("Sensitive-feature check: no feature group's name looks like a protected attribute or a "
                       f"common proxy (looked for: {', '.join(looked_for)}), so nothing was flagged.")
        return out

    def one(f) -> str:
        where = f" ({f['where']})" if f.get("where") else ""
        return f"{f['group']} ({f['kind']}) at {_share(f['share'])}{where}"

    hot = [one(f) for f in flags if f["flagged"]]
    cold = [one(f) for f in flags if not f["flagged"]]
    parts = []
    if hot:
        parts.append(f"{'; '.join(hot)} reach{'es' if len(hot) == 1 else ''} the {bar} that flags a group")
    if cold:
        verb = "is" if len(cold) == 1 else "are"
        parts.append(f"{'; '.join(cold)} {verb} below {'it' if hot else f'the {bar} that flags a group'}")
    out["text"] = ("Sensitive-feature check (share of the explanation, the largest over the tasks and the fused "
                   "score): " + "; ".join(parts) + ".")
    return out
