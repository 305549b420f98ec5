"""Negative sampling for implicit feedback, vectorised with rejection on hashed pairs.

A (user, item) pair is the key ``user * n_items + item`` (int64), hashed (multiplicative
hashing) into a boolean table. Every observed pair (any split) sets its bit; candidates are drawn
in bulk and redrawn, for a few rounds, while their bit is set -- so a sampled negative is
never a known positive (a hash collision can only reject a free pair, never accept a known
one). Accepted pairs set their bit too, so a pair is not sampled twice.
"""
from __future__ import annotations

import numpy as np

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


def _hash(keys: np.ndarray, shift) -> np.ndarray:
    with np.errstate(over="ignore"):
        return ((np.asarray(keys, dtype=np.int64).view(np.uint64) * _GOLDEN) >> shift).astype(np.intp)


def sample_negatives(src_users: np.ndarray, candidates: np.ndarray, known: PairSet,
                     n_items: int, rng, max_rounds: int = 30):
    """One sampled item per entry of ``src_users``, drawn from ``candidates`` (item indices).

    ``known``: a :class:`PairSet` holding every observed pair (and earlier samples); accepted
    pairs are added to it. Returns ``(items int64, ok bool)``; ``ok`` is False where no free
    item was found (the caller drops those).
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
        cand = candidates[rng.integers(0, len(candidates), len(todo))].astype(np.int64)
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
    return items, ok
