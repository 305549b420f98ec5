"""Explanations by history items: which of the user's own past items made a recommendation.

For one (user, item) pair, `explain_history` attributes each task's output -- the logit of a binary
task (a chained one's in the entire space, as lists rank it), the predicted value on the label scale
of a regression task, the logit of the pair's most likely class of a multilabel task -- and the fused
score of `mtlrec.serve.recommend` to the individual items of the user's behaviour history
(`mtlrec.prep.history`).

Methods
-------
* ``"ablation"`` (the default): item j's contribution is the output with the full history minus
  the output with item j removed and the others kept. One batched forward pass of N + 2 rows (the
  full history, each item left out, the empty history): exact, deterministic, a few milliseconds,
  and *the very number* the what-if "remove this item from the history" shows
  (`mtlrec.serve.whatif.history_change`). It answers the question a user asks ("would I still get
  this without Casablanca?"). Its contributions need not add up to full minus empty: items that
  say the same thing share the credit neither way.
* ``"shapley"``: Shapley values with the history items as players, estimated by ``samples``
  seeded random permutations (each adds the items one by one to the empty history). They add up
  to (full - empty history) exactly, and share the credit of redundant items; they cost
  ``samples · (n + 1)`` rows and are estimates. Offered for comparison; not the default because
  the ablation is exact, cheap and matches the what-if.

Attention weights (encoder "attention", DIN): the softmax weights of this candidate over the
history items are returned beside the contributions. They are *not* attributions: a weight says
how much of the pooled history vector comes from an item, not how much the item moved the score
(a heavily weighted item can push the score either way, or hardly at all).

`history_sentence` says it in words: "Recommended mainly because user 1 rated The Maltese Falcon 5★
(+0.031) and Notorious 4★ (+0.012), held back by having rated Plan 9 1★ (-0.004)".
`history_reasons` gives the top history reason of each item of a recommendation list (one batched
ablation for all of them). A run without a history input gives None.
"""
from __future__ import annotations

import time

import numpy as np

from mtlrec.errors import DataError
from mtlrec.prep.history import FIELD, PAD, VALUE
from mtlrec.serve.history import has_history_input, history_entries, user_history, value_label
from mtlrec.serve.recommend import fused_terms, item_index, user_index

METHODS = ("ablation", "shapley")
DEFAULT_SAMPLES = 64
MATERIAL_SHARE = 0.25        # as `mtlrec.explain.sentence`: a reason is named when >= 1/4 of the largest
ATTENTION_NOTE = ("Attention weights say how much of the pooled history vector comes from each item for this "
                  "candidate; they are not attributions: an item with a large weight can move the score "
                  "either way, or hardly at all. The contributions say how much each item moves it.")
NO_HISTORY = "this run has no history input"


# ---------------------------------------------------------------------------------------------
# outputs of many histories of one user against items
# ---------------------------------------------------------------------------------------------
def _feats(run, u: int, items: np.ndarray, codes: np.ndarray, values: np.ndarray) -> dict:
    """The model features of user ``u`` against ``items`` [r] with the histories ``codes`` / ``values`` [r, N]."""
    import torch
    data = run.device_data()
    feats = dict(data.candidates(int(u), np.asarray(items, np.int64)))
    feats[FIELD] = torch.as_tensor(np.asarray(codes, np.int64), device=data.device)
    feats[VALUE] = torch.as_tensor(np.asarray(values, np.float32), device=data.device)
    return feats


def _outputs(run, feats: dict, classes: dict, weights=None) -> tuple[dict, np.ndarray | None]:
    """({task: explained output [r]}, fused score [r] or None): logits (binary: entire space;
    multilabel: of ``classes[task]``), label-scale values (regression) -- as the waterfalls explain them."""
    import torch

    from mtlrec.chain import entire_space_logit, scored
    model = run.model
    if any(m.training for m in model.modules()):
        model.eval()
    with torch.inference_mode():
        out = model(feats)
        preds = {n: p.double().cpu().numpy() for n, p in scored(run.tasks, out, [t.name for t in run.tasks]).items()}
        res = {}
        for t in run.tasks:
            if t.type == "binary":
                res[t.name] = entire_space_logit(t, run.tasks, out).double().cpu().numpy().reshape(-1)
            elif t.type == "regression":
                res[t.name] = preds[t.name].reshape(-1)
            else:
                res[t.name] = out[t.name].double().cpu().numpy()[:, classes[t.name]]
    fusable = [t for t in run.tasks if t.type in ("binary", "regression")]
    return res, (fused_terms(run, preds, weights)[0] if fusable else None)


def _units(run, classes: dict) -> dict:
    from mtlrec.serve.recommend import class_names
    out = {}
    for t in run.tasks:
        if t.type == "binary":
            out[t.name] = "logit (log-odds)"
        elif t.type == "regression":
            out[t.name] = f"{t.label} (label units)"
        else:
            out[t.name] = f"logit of class '{class_names(run, t)[classes[t.name]]}'"
    return out


def _classes(run, u: int, i: int, codes, values) -> dict:
    """The class of each multilabel task to explain: the pair's most likely."""
    import torch
    multi = [t for t in run.tasks if t.type == "multilabel"]
    out: dict = {}
    if multi:
        feats = _feats(run, u, np.array([i]), codes[None], values[None])
        with torch.inference_mode():
            logits = run.model(feats)
        out.update({t.name: int(torch.argmax(logits[t.name][0])) for t in multi})
    return out


# ---------------------------------------------------------------------------------------------
# the two methods: rows of present/absent history positions, and what they give each position
# ---------------------------------------------------------------------------------------------
def _ablation_masks(n: int) -> np.ndarray:
    """[n + 2, n] present-masks: the full history, each item left out in turn, the empty history."""
    return np.vstack([np.ones((1, n), bool), ~np.eye(n, dtype=bool), np.zeros((1, n), bool)])


def _shapley_masks(n: int, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Present-masks of ``samples`` permutations (each: empty, then one more item at a time) and the orders."""
    rng = np.random.default_rng(seed)
    orders = np.stack([rng.permutation(n) for _ in range(int(samples))]) if n else np.zeros((samples, 0), int)
    masks = np.zeros((int(samples), n + 1, n), bool)
    for s, order in enumerate(orders):
        for k, j in enumerate(order):
            masks[s, k + 1:, j] = True
    return masks.reshape(-1, n), orders


def _attribute(method: str, out: np.ndarray, n: int, orders=None) -> np.ndarray:
    """Per history item, its contribution to the output ``out`` [rows] of the method's rows."""
    if method == "ablation":
        return out[0] - out[1:n + 1]
    steps = out.reshape(len(orders), n + 1)
    phi = np.zeros(n)
    for s, order in enumerate(orders):
        phi[order] += np.diff(steps[s])
    return phi / max(1, len(orders))


# ---------------------------------------------------------------------------------------------
# one pair
# ---------------------------------------------------------------------------------------------
def explain_history(run, user, item, *, weights: dict | None = None, method: str = "ablation",
                    samples: int = DEFAULT_SAMPLES, seed: int = 0, history=None) -> dict | None:
    """Each history item's contribution to each task's output and to the fused score of (user, item).

    ``{"user", "item", "method", "length", "value_label", "encoder", "units": {task: unit},
    "output": {task: value with the full history}, "without_history": {task: value with an empty one},
    "fused": {"score", "without_history"} | None, "items": [{"position", "recency" (1 = most recent),
    "item", "title", "name", "value", "value_text", "contributions": {task: c}, "fused": c | None,
    "attention": weight | None}] (most recent first), "attention_note", "note", "sentence", "elapsed_ms"}``;
    None when the run's model reads no history. ``history``: (codes, values) to explain instead of the
    user's own (a what-if's edited history)."""
    if method not in METHODS:
        raise DataError(f"unknown history attribution method '{method}'", fix=f"use one of: {', '.join(METHODS)}")
    if not has_history_input(run):
        return None
    t0 = time.perf_counter()
    u, i = user_index(run, user), item_index(run, item)
    codes, values = user_history(run, user) if history is None else (np.asarray(history[0]), np.asarray(history[1]))
    entries = history_entries(run, codes, values)
    pos = np.array([e["position"] for e in entries], np.int64)
    n = len(pos)
    classes = _classes(run, u, i, codes, values)
    orders = None
    if method == "ablation":
        masks = _ablation_masks(n)
    else:
        masks, orders = _shapley_masks(n, samples, seed)
        masks = np.vstack([np.ones((1, n), bool), masks, np.zeros((1, n), bool)])
    rows_c = np.repeat(codes[None], len(masks), 0)
    rows_v = np.repeat(values[None].astype(np.float32), len(masks), 0)
    rows_c[:, pos] = np.where(masks, codes[pos], PAD)
    rows_v[:, pos] = np.where(masks, values[pos], 0.0)
    outs, fused = _outputs(run, _feats(run, u, np.full(len(masks), i), rows_c, rows_v), classes, weights)
    inner = (lambda a: a) if method == "ablation" else (lambda a: a[1:-1])
    contrib = {t: _attribute(method, inner(o), n, orders) for t, o in outs.items()}
    fused_c = None if fused is None else _attribute(method, inner(fused), n, orders)
    att = attention_weights(run, u, i, codes, values)
    items = [{**{k: e[k] for k in ("position", "recency", "item", "title", "name", "value", "value_text")},
              "contributions": {t: float(c[k]) for t, c in contrib.items()},
              "fused": None if fused_c is None else float(fused_c[k]),
              "attention": None if att is None else float(att[e["position"]])}
             for k, e in enumerate(entries)][::-1]
    res = {"user": str(user), "item": str(item), "method": method, "length": int(len(codes)), "n_items": n,
           "value_label": value_label(run), "encoder": run.model.input.history_encoder,
           "units": _units(run, classes), "output": {t: float(o[0]) for t, o in outs.items()},
           "without_history": {t: float(o[-1]) for t, o in outs.items()},
           "fused": None if fused is None else {"score": float(fused[0]), "without_history": float(fused[-1])},
           "items": items, "attention_note": ATTENTION_NOTE if att is not None else None,
           "note": _method_note(method, samples)}
    if method == "shapley":
        res["samples"], res["seed"] = int(samples), int(seed)
    res["sentence"] = history_sentence(res)
    res["elapsed_ms"] = (time.perf_counter() - t0) * 1000.0
    return res


def _method_note(method: str, samples: int) -> str:
    if method == "ablation":
        return ("contribution of an item = the output with the whole history minus the output with that item "
                "removed (the others kept): exact, and what the what-if 'remove from history' shows")
    return (f"Shapley values over the history items, estimated from {samples} seeded random orders; "
            "they add up to the output with the whole history minus the output with none")


def attention_weights(run, u: int, i: int, codes, values) -> np.ndarray | None:
    """The DIN attention weights [N] of item ``i`` over the history (0 on padding); None for the mean encoder."""
    import torch
    inp = run.model.input
    if FIELD not in inp.attention_history:
        return None
    feats = _feats(run, u, np.array([i]), np.asarray(codes)[None], np.asarray(values)[None])
    with torch.inference_mode():
        e, mask = inp.history_items(FIELD, feats)
        q = inp.history_queries(FIELD, feats["item_id"]).unsqueeze(1)
        return inp.history_attention(q, e, mask)[0, 0].double().cpu().numpy()


# ---------------------------------------------------------------------------------------------
# in words
# ---------------------------------------------------------------------------------------------
def _said(e: dict, rated: bool) -> str:
    return f"{e['name']} {e['value_text']}".strip() if rated else e["name"]


def _signed(v: float) -> str:
    from mtlrec.explain.sentence import signed
    return signed(v)


def _view(res: dict) -> tuple[str, list]:
    """(unit words, [(entry, contribution)]): the fused score's contributions, else the first task's."""
    if res.get("fused") is not None:
        return "fused score", [(e, e["fused"]) for e in res["items"]]
    task = next(iter(res["units"]))
    return f"{task}-task", [(e, e["contributions"][task]) for e in res["items"]]


def history_sentence(res: dict | None, top: int = 2) -> str:
    """The history explanation in one sentence: the strongest material positive items, then at most
    one material negative; ties broken by recency. An empty history, or no history input, says so."""
    if res is None:
        return f"No history reasons: {NO_HISTORY}."
    who = f"user {res['user']}"
    if not res["items"]:
        return f"{who.capitalize()} has no history yet, so the history plays no part in this recommendation."
    rated = bool(res.get("value_label"))
    verb = "rated" if rated else "interacted with"
    _, pairs = _view(res)
    ref = max(abs(c) for _, c in pairs)
    if ref <= 0:
        return f"None of {who}'s {len(pairs)} history items moves this recommendation."
    keep = [(e, c) for e, c in pairs if abs(c) >= MATERIAL_SHARE * ref]
    pos = sorted([p for p in keep if p[1] > 0], key=lambda p: (-p[1], p[0]["recency"]))[:top]
    neg = sorted([p for p in keep if p[1] < 0], key=lambda p: (p[1], p[0]["recency"]))[:1]
    from mtlrec.explain.sentence import join
    held = "" if not neg else f", held back by having {verb} " + join(
        [f"{_said(e, rated)} ({_signed(c)})" for e, c in neg])
    if pos:
        return (f"Recommended mainly because {who} {verb} "
                + join([f"{_said(e, rated)} ({_signed(c)})" for e, c in pos]) + held + ".")
    return (f"Nothing in {who}'s history speaks for it; it is held back mostly by having {verb} "
            + join([f"{_said(e, rated)} ({_signed(c)})" for e, c in neg]) + ".")


def top_reason(res: dict | None) -> dict | None:
    """The strongest positive history item of an explanation (fused score, else the first task):
    ``{"item", "name", "value_text", "contribution", "text"}``; None when no item speaks for it."""
    if not res or not res["items"]:
        return None
    _, pairs = _view(res)
    best = max(pairs, key=lambda p: (p[1], -p[0]["recency"]))
    if not best[1] > 0:
        return None
    e, c = best
    rated = bool(res.get("value_label"))
    text = f"because user {res['user']} {'rated' if rated else 'interacted with'} {_said(e, rated)}"
    return {"item": e["item"], "name": e["name"], "value_text": e["value_text"], "contribution": float(c),
            "text": text}


# ---------------------------------------------------------------------------------------------
# a recommendation list: the top history reason of each item, one batched ablation
# ---------------------------------------------------------------------------------------------
def history_reasons(run, user, items, weights: dict | None = None) -> dict | None:
    """{item id: `top_reason` or None} for each of ``items`` (ids) of ``user``'s list, by ablation
    of the fused score (else the first task's output) in one forward pass of len(items) · (n + 1)
    rows; None when the run reads no history."""
    if not has_history_input(run):
        return None
    items = [str(x) for x in items]
    if not items:
        return {}
    u = user_index(run, user)
    codes, values = user_history(run, user)
    entries = history_entries(run, codes, values)
    if not entries:
        return {x: None for x in items}
    pos = np.array([e["position"] for e in entries], np.int64)
    n = len(pos)
    masks = _ablation_masks(n)[:n + 1]
    idx = np.array([item_index(run, x) for x in items], np.int64)
    rows_c = np.repeat(codes[None], n + 1, 0)
    rows_v = np.repeat(values[None].astype(np.float32), n + 1, 0)
    rows_c[:, pos] = np.where(masks, codes[pos], PAD)
    rows_v[:, pos] = np.where(masks, values[pos], 0.0)
    k = len(items)
    classes = {t.name: 0 for t in run.tasks if t.type == "multilabel"}
    outs, fused = _outputs(run, _feats(run, u, np.repeat(idx, n + 1), np.tile(rows_c, (k, 1)),
                                       np.tile(rows_v, (k, 1))), classes, weights)
    score = fused if fused is not None else next(iter(outs.values()))
    score = score.reshape(k, n + 1)
    out = {}
    for j, x in enumerate(items):
        c = score[j, 0] - score[j, 1:]
        fake = {"user": str(user), "value_label": value_label(run), "fused": {"score": 0.0},
                "items": [{**e, "fused": float(c[m])} for m, e in enumerate(entries)]}
        out[x] = top_reason(fake)
    return out


def with_history_reasons(run, user, items: list[dict], weights: dict | None = None) -> list[dict]:
    """``items`` (`mtlrec.serve.recommend.recommend`'s list) each with ``"history_reason"``: its
    `top_reason` (None when no history item speaks for it); unchanged when the run reads no history."""
    reasons = history_reasons(run, user, [it["item"] for it in items], weights)
    if reasons is None:
        return items
    return [{**it, "history_reason": reasons.get(str(it["item"]))} for it in items]
