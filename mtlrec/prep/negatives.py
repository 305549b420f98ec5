"""Negative sampling for implicit feedback, vectorised with rejection on hashed pairs.

A (user, item) pair is hashed to ``user * n_items + item`` (int64). Candidates are drawn in
bulk; those that hit a known pair (any observed interaction of the user, in any split) or a
pair already sampled are redrawn, for a few rounds. So no sampled negative is ever a known
positive.
"""
from __future__ import annotations

import numpy as np


def _in_sorted(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), bool)
    pos = np.searchsorted(sorted_keys, keys)
    pos = np.minimum(pos, len(sorted_keys) - 1)
    return sorted_keys[pos] == keys


def sample_negatives(src_users: np.ndarray, candidates: np.ndarray, known_keys: np.ndarray,
                     n_items: int, rng, max_rounds: int = 30):
    """One sampled item per entry of ``src_users``, drawn from ``candidates`` (item indices).

    ``known_keys``: sorted unique int64 hashes of every observed pair. Returns
    ``(items int64, ok bool)``; ``ok`` is False where no free item was found (dropped by the caller).
    """
    m = len(src_users)
    items = np.full(m, -1, np.int64)
    ok = np.zeros(m, bool)
    if m == 0 or len(candidates) == 0:
        return items, ok
    users = src_users.astype(np.int64)
    todo = np.arange(m)
    taken = np.zeros(0, np.int64)      # sorted keys sampled so far
    for _ in range(max_rounds):
        if len(todo) == 0:
            break
        cand = candidates[rng.integers(0, len(candidates), len(todo))].astype(np.int64)
        keys = users[todo] * n_items + cand
        bad = _in_sorted(keys, known_keys) | _in_sorted(keys, taken)
        # duplicates inside this round: keep the first of each key
        good_idx = np.flatnonzero(~bad)
        _, first = np.unique(keys[good_idx], return_index=True)
        accept = good_idx[first]
        items[todo[accept]] = cand[accept]
        ok[todo[accept]] = True
        taken = np.union1d(taken, keys[accept])
        rest = np.ones(len(todo), bool)
        rest[accept] = False
        todo = todo[rest]
    return items, ok
