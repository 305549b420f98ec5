"""Negative sampling for implicit feedback, vectorised with rejection on hashed pairs.

A (user, item) pair is the key ``user * n_items + item`` (int64), hashed (multiplicative
hashing) into a boolean table. Every observed pair (any split) sets its bit; candidates are drawn
in bulk and redrawn, for a few rounds, while their bit is set -- so a sampled negative is
never a known positive (a hash collision can only reject a free pair, never accept a known
one). Accepted pairs set their bit too, so a pair is not sampled twice. Entries rejection leaves
open are filled from the user's exact free items; what then stays open is the shortfall of a heavy
user (too few unseen items for the ratio), counted and reported.

Validation and test negatives are drawn once at preparation, uniformly, seeded by the preparation
seed (so AUCs compare run to run and across sampling methods); training negatives are drawn anew
every epoch (`EpochNegatives`), "uniform" or by "popularity" (count^0.75 of the training
interactions, as word2vec).
"""
from __future__ import annotations

import numpy as np

from mtlrec.prep.splits import NAMES

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


class PairSet:
    """Hash set of int64 keys as a boolean table: ``add(keys)``, ``maybe_contains(keys)``
    (no false negatives; a few false positives, which only cost a redraw)."""

    def __init__(self, expected: int):
        self.bits_log2 = int(min(28, max(16, np.ceil(np.log2(max(expected, 1) * 8)))))
        self.shift = np.uint64(64 - self.bits_log2)
        self.table = np.zeros(1 << self.bits_log2, bool)

    def _hash(self, keys: np.ndarray) -> np.ndarray:
        return _hash(keys, self.shift)

    def add(self, keys: np.ndarray) -> None:
        self.table[self._hash(keys)] = True

    def maybe_contains(self, keys: np.ndarray) -> np.ndarray:
        return self.table[self._hash(keys)]

    def copy(self) -> "PairSet":
        out = PairSet.__new__(PairSet)
        out.bits_log2, out.shift, out.table = self.bits_log2, self.shift, self.table.copy()
        return out


def _hash(keys: np.ndarray, shift) -> np.ndarray:
    with np.errstate(over="ignore"):
        return ((np.asarray(keys, dtype=np.int64).view(np.uint64) * _GOLDEN) >> shift).astype(np.intp)


# ---- sampling methods, seeds ------------------------------------------------------------------
POPULARITY_EXPONENT = 0.75     # word2vec's unigram^0.75
EXACT_BUDGET = 100_000_000     # (users x candidates) checked exactly after the rejection rounds
SEED_TAGS = {"train": 0, "valid": 1, "test": 2, "epoch": 7}


def rng_for(*seeds) -> np.random.Generator:
    """A generator seeded by a sequence of integers, e.g. ``(prep_seed, SEED_TAGS["valid"])``."""
    return np.random.default_rng(np.random.SeedSequence([int(s) % (1 << 63) for s in seeds]))


def item_cdf(method: str, train_items: np.ndarray, candidates: np.ndarray, n_items: int):
    """Cumulative weights over ``candidates`` for ``method`` ("popularity": count^0.75 of the
    training interactions; an item never met in training is never drawn), None for uniform."""
    if method == "uniform":
        return None
    w = np.bincount(np.asarray(train_items, np.int64), minlength=n_items)[candidates].astype(np.float64)
    w = w ** POPULARITY_EXPONENT
    return np.cumsum(w) if w.sum() > 0 else None


def _draw(candidates: np.ndarray, cdf, rng, m: int) -> np.ndarray:
    if cdf is None:
        return candidates[rng.integers(0, len(candidates), m)]
    pos = np.searchsorted(cdf, rng.random(m) * cdf[-1], side="right")
    return candidates[np.minimum(pos, len(candidates) - 1)]


def sample_negatives(src_users: np.ndarray, candidates: np.ndarray, known: PairSet,
                     n_items: int, rng, max_rounds: int = 30, cdf=None):
    """One sampled item per entry of ``src_users``, drawn from ``candidates`` (item indices),
    uniformly or, with ``cdf`` (`item_cdf`), by weight.

    ``known``: a :class:`PairSet` holding every observed pair (and earlier samples); accepted
    pairs are added to it. After ``max_rounds`` rounds of rejection, the entries still open are
    filled from each user's exact list of free candidates (when users x candidates stays within
    ``EXACT_BUDGET``), so ``ok`` is False only where the user has no free item left (a heavy user:
    the shortfall). Returns ``(items int64, ok bool)``.
    """
    m = len(src_users)
    items = np.full(m, -1, np.int64)
    ok = np.zeros(m, bool)
    if m == 0 or len(candidates) == 0:
        return items, ok
    users = src_users.astype(np.int64)
    todo = np.arange(m)
    for _ in range(max_rounds):
        if len(todo) == 0:
            break
        cand = _draw(candidates, cdf, rng, len(todo)).astype(np.int64)
        keys = users[todo] * n_items + cand
        good_idx = np.flatnonzero(~known.maybe_contains(keys))
        # the same pair twice in this round: one of them wins a slot of a scratch hash table
        # (the last writer); the others, and rare different keys sharing a slot, are redrawn
        log2 = int(max(10, np.ceil(np.log2(max(len(good_idx), 1) * 4))))
        slot = _hash(keys[good_idx], np.uint64(64 - log2))
        scratch = np.empty(1 << log2, np.int64)
        scratch[slot] = np.arange(len(good_idx))
        accept = good_idx[scratch[slot] == np.arange(len(good_idx))]
        items[todo[accept]] = cand[accept]
        ok[todo[accept]] = True
        known.add(keys[accept])
        rest = np.ones(len(todo), bool)
        rest[accept] = False
        todo = todo[rest]
    if len(todo):
        _fill_exactly(users, todo, items, ok, candidates, cdf, known, n_items, rng)
    return items, ok


def _fill_exactly(users, todo, items, ok, candidates, cdf, known: PairSet, n_items: int, rng) -> None:
    """The entries ``todo`` that rejection left open, per user from the exact free candidates."""
    weights = None if cdf is None else np.diff(cdf, prepend=0.0)
    order = todo[np.argsort(users[todo], kind="stable")]
    us, starts = np.unique(users[order], return_index=True)
    if len(us) * len(candidates) > EXACT_BUDGET:
        return
    cand = candidates.astype(np.int64)
    for u, entries in zip(us, np.split(order, starts[1:])):
        free = ~known.maybe_contains(u * n_items + cand)
        if weights is not None:
            free &= weights > 0
        pool = np.flatnonzero(free)
        take = min(len(entries), len(pool))
        if take == 0:
            continue
        p = None if weights is None else weights[pool] / weights[pool].sum()
        picked = cand[pool[rng.choice(len(pool), take, replace=False, p=p)]]
        items[entries[:take]] = picked
        ok[entries[:take]] = True
        known.add(u * n_items + picked)


# ---- negative rows of a split --------------------------------------------------------------------
def sources(n_obs: int, ratio: float, rng) -> np.ndarray:
    """The observed row (0..n_obs-1) each requested negative comes from: ``floor(ratio)`` per
    row, plus one more for a share ``ratio - floor(ratio)`` of the rows."""
    base = int(np.floor(ratio))
    src = np.repeat(np.arange(n_obs), base)
    if ratio - base > 0:
        src = np.concatenate([src, np.flatnonzero(rng.random(n_obs) < ratio - base)])
    return src


def negative_rows(r: dict, src: np.ndarray, items: np.ndarray, labels, tables: dict, reg_fill: dict) -> dict:
    """Rows of sampled negatives with the keys of split ``r``: the user, context and time of source
    row ``src``, item ``items``, ``row_id`` -1, ``sampled`` True; labels: a user/item-owned label
    from its table (``tables``: {name: (owner, array)}), binary 0, regression ``reg_fill[name]``,
    multi-label and distribution all 0. Negatives whose table label is unknown (NaN) are left out."""
    users = r["user_index"][src]
    keep = np.ones(len(src), bool)
    for name, (owner, tab) in tables.items():
        bad = np.isnan(tab).reshape(len(tab), -1).any(axis=1)
        keep &= ~bad[items if owner == "item" else users]
    src, items, users = src[keep], items[keep], users[keep]
    kinds = {"label:" + lab.name: lab for lab in labels}
    out = {}
    for k, col in r.items():
        if k == "user_index":
            out[k] = users
        elif k == "item_index":
            out[k] = items.astype(np.int64)
        elif k == "row_id":
            out[k] = np.full(len(src), -1, np.int64)
        elif k == "sampled":
            out[k] = np.ones(len(src), bool)
        elif k in kinds:
            out[k] = _negative_label(kinds[k], tables, reg_fill, items, users, len(src))
        else:                                  # context features, event time: the source row's
            out[k] = np.asarray(col)[src]
    return out


def _negative_label(lab, tables: dict, reg_fill: dict, items, users, n: int) -> np.ndarray:
    if lab.name in tables:
        owner, tab = tables[lab.name]
        return np.asarray(tab[items if owner == "item" else users], np.float32)
    if lab.task_type == "regression":
        return np.full(n, reg_fill.get(lab.name, 0.0), np.float32)
    if lab.task_type in ("multilabel", "distribution"):    # a distribution's zeros: unknown, out of its space
        return np.zeros((n, len(lab.classes)), np.float32)
    return np.zeros(n, np.float32)


def draw_split(r: dict, ratio: float, known: PairSet, rng, *, candidates, n_items: int, labels,
               tables: dict, reg_fill: dict, cdf=None, cold=None) -> tuple[dict, dict]:
    """Sampled negatives for the observed rows of split ``r`` (``ratio`` per row), never a pair of
    ``known`` (accepted pairs join it): ``(rows, tally)``, tally ``{"requested", "drawn", "users"}``
    (``users``: the users short of free items). A source row whose item is in ``cold`` (held-out
    items of an evaluation split) draws from ``cold``, the others from ``candidates``."""
    obs = np.flatnonzero(~np.asarray(r["sampled"], bool)) if "sampled" in r else np.arange(len(r["user_index"]))
    src = obs[sources(len(obs), ratio, rng)]
    users = np.asarray(r["user_index"][src], np.int64)
    items = np.full(len(src), -1, np.int64)
    ok = np.zeros(len(src), bool)
    is_cold = np.zeros(len(src), bool)
    if cold is not None and len(cold):
        is_cold = np.isin(r["item_index"][src], cold)
    for mask, cands, c in ((~is_cold, candidates, cdf), (is_cold, cold, None)):
        if mask.any():
            items[mask], ok[mask] = sample_negatives(users[mask], cands, known, n_items, rng, cdf=c)
    tally = {"requested": int(len(src)), "drawn": int(ok.sum()), "users": np.unique(users[~ok])}
    return negative_rows(r, src[ok], items[ok], labels, tables, reg_fill), tally


def shortfall(tallies) -> dict:
    """``{"requested", "drawn", "share", "users"}`` over the tallies of `draw_split`: share of the
    requested negatives that could not be drawn, users short of free items."""
    req = sum(t["requested"] for t in tallies)
    drawn = sum(t["drawn"] for t in tallies)
    users = np.unique(np.concatenate([t["users"] for t in tallies])) if tallies else np.zeros(0)
    return {"requested": int(req), "drawn": int(drawn),
            "share": round((req - drawn) / req, 6) if req else 0.0, "users": int(len(users))}


def shortfall_text(report_negatives: dict | None) -> str | None:
    """The shortfall of a preparation report's ``negatives`` in words, or None when there is none."""
    sf = (report_negatives or {}).get("shortfall") or {}
    if not sf.get("requested") or sf.get("drawn", 0) >= sf["requested"]:
        return None
    n = int(sf.get("users", 0))
    return (f"{100 * float(sf['share']):.1f} % of requested negatives could not be drawn: {n} heavy "
            f"user{'' if n == 1 else 's'} {'has' if n == 1 else 'have'} too few unseen items "
            f"({sf['drawn']:,} of {sf['requested']:,} drawn). Lower prep.negative_ratio to ask for fewer.")


# ---- fresh training negatives per epoch --------------------------------------------------------------
class EpochNegatives:
    """The training negatives of each epoch for a prepared dataset (see `epoch_sampler`).

    Known pairs: every observed pair of every split plus the (fixed) sampled pairs of valid and
    test, so a training negative is never a user's own item of any split, nor an evaluation
    negative. ``draw(epoch, seed)`` is seeded by (preparation seed, ``seed``, ``epoch``): the same
    call gives the same rows (a resumed run, every data-parallel rank), another epoch other rows."""

    def __init__(self, ds, spec: dict, tables: dict):
        self.spec, self.tables, self.labels = spec, tables, list(ds.labels)
        self.r = ds.rows["train"]
        self.n_items = len(ds.item_ids)
        sampled = np.asarray(self.r["sampled"], bool)
        self.observed = np.flatnonzero(~sampled)
        keys = []
        for split, rows in ds.rows.items():
            m = ~sampled if split == "train" else slice(None)
            keys.append(np.asarray(rows["user_index"], np.int64)[m] * self.n_items
                        + np.asarray(rows["item_index"], np.int64)[m])
        keys = np.concatenate(keys)
        self.known = PairSet(int(len(keys) + float(spec["ratio"]) * len(self.observed)))
        self.known.add(keys)
        self.candidates = np.setdiff1d(np.arange(self.n_items), np.asarray(ds.cold_items, np.int64))
        train_items = np.asarray(self.r["item_index"], np.int64)[self.observed]
        self.cdf = item_cdf(spec.get("method", "uniform"), train_items, self.candidates, self.n_items)
        self.last: dict = {}       # the shortfall of the latest draw

    def draw(self, epoch: int, seed: int = 0) -> dict:
        """The sampled negative rows of ``epoch`` (the keys of the train split)."""
        known = self.known.copy()
        rng = rng_for(self.spec.get("seed", 0), SEED_TAGS["epoch"], seed, epoch)
        rows, tally = draw_split(self.r, float(self.spec["ratio"]), known, rng, candidates=self.candidates,
                                 n_items=self.n_items, labels=self.labels, tables=self.tables,
                                 reg_fill=self.spec.get("regression_fill") or {}, cdf=self.cdf)
        self.last = shortfall([tally])
        return rows


def epoch_sampler(ds) -> EpochNegatives | None:
    """The per-epoch sampler of a prepared dataset, or None where its training negatives stay as
    prepared: no negative sampling, or a dataset prepared before negatives were drawn per epoch
    (its ``meta["negatives"]`` is missing) or stripped of a label table the negatives need."""
    spec = (ds.meta or {}).get("negatives")
    r = ds.rows.get("train") or {}
    if not isinstance(spec, dict) or not spec.get("per_epoch") or float(spec.get("ratio") or 0) <= 0:
        return None
    if not all(k in r for k in ("sampled", "user_index", "item_index")) or not len(ds.item_ids):
        return None
    tables = {}
    for name, owner in (spec.get("label_tables") or {}).items():
        tab = (ds.item_table if owner == "item" else ds.user_table).get("label:" + name)
        if tab is None:
            return None
        tables[name] = (owner, np.asarray(tab))
    return EpochNegatives(ds, spec, tables)


def add_negatives(rows: dict, config, known: PairSet, *, n_items: int, warm_cand, cold: dict,
                  label_fields, tables: dict, reg_fill: dict) -> dict:
    """Sampled negatives appended to every split (``config.negative_ratio`` per observed row, never a
    pair of ``known``): valid and test first, uniformly, each with its own seed from ``config.seed``
    (the same dataset and seed give the same evaluation negatives, whatever the training method);
    then one draw for train by ``config.negative_sampling`` -- what readers of the prepared train
    split see; the trainer draws its own every epoch. Returns the report's ``sampled``,
    ``unfilled`` and ``shortfall``."""
    ratio = float(config.negative_ratio)
    train_items = rows["train"]["item_index"]
    drawn, tallies = {}, []
    for sname in ("valid", "test", "train"):
        r = rows[sname]
        method = config.negative_sampling if sname == "train" else "uniform"
        neg, tally = draw_split(r, ratio, known, rng_for(config.seed, SEED_TAGS[sname]), candidates=warm_cand,
                                n_items=n_items, labels=label_fields, tables=tables, reg_fill=reg_fill,
                                cdf=item_cdf(method, train_items, warm_cand, n_items), cold=cold.get(sname))
        drawn[sname] = tally["drawn"]
        tallies.append(tally)
        for key in r:
            r[key] = np.concatenate([r[key], neg[key]])
    sf = shortfall(tallies)
    return {"sampled": {s: drawn[s] for s in NAMES}, "unfilled": sf["requested"] - sf["drawn"],
            "shortfall": sf}
