"""The pair terms of a model through the recommendation cache (`mtlrec.serve.cache.InputSplit`).

A model's per-user / per-item biases and user·item dot product (`mtlrec.models.terms.PairTerms`)
are not affine in X, so they cannot be folded into the precomputed input layers. `CachedPairTerms`
keeps what they read of the precomputed rows instead (the item bias and item factors: a few
columns of X per item) and adds the terms of a request's user rows to the network's logits: one
[items, k] @ [k] product per user, the same numbers as the full forward up to float rounding.
"""
from __future__ import annotations

import torch


class CachedPairTerms:
    """The item side of ``model.pair_terms`` for the N precomputed rows of an `InputSplit`.

    ``rows_of(start, stop)``: rows of X; ``fixed_cols``: the precomputed columns, which must hold the
    item-id columns and none of the user-id columns (otherwise ValueError: the split does not
    separate the pair terms' two sides)."""

    def __init__(self, terms, rows_of, n_rows: int, step: int, fixed_cols):
        self.terms = terms
        fixed = {int(c) for c in fixed_cols}
        item_cols, user_cols = set(terms.columns("item")), set(terms.columns("user"))
        if not item_cols <= fixed or user_cols & fixed:
            raise ValueError("the precomputed columns must hold the item id's columns and none of the user "
                             "id's for a model with biases / interaction terms")
        with torch.no_grad():
            self.item = torch.cat([terms.side(rows_of(a, min(a + step, n_rows)), "item")
                                   for a in range(0, n_rows, step)]) if n_rows else None

    def add(self, out: dict, x_row: torch.Tensor, rows: torch.Tensor | None = None) -> dict:
        """``out`` {task: logits [n]} of the precomputed rows (all, or ``rows``) with the terms of
        ``x_row`` [1 or n, d_x] added (one row: broadcast over the n rows)."""
        item = self.item if rows is None else self.item.index_select(0, rows)
        user = self.terms.side(x_row, "user")
        if user.shape[0] == 1:
            terms = self.terms.pair_matrix(user, item)[0]
        else:
            terms = self.terms.pair_rows(user, item)
        return self.terms.add(out, terms)

    def add_tile(self, out: dict, x_rows: torch.Tensor, start: int, stop: int) -> dict:
        """``out`` {task: logits [u, stop - start]} with the terms of each of the u rows of ``x_rows``
        against the precomputed rows ``start .. stop - 1`` added."""
        return self.terms.add(out, self.terms.pair_matrix(self.terms.side(x_rows, "user"), self.item[start:stop]))


def cached_pair_terms(model, rows_of, n_rows: int, step: int, fixed_cols) -> CachedPairTerms | None:
    """`CachedPairTerms` of ``model`` over the precomputed rows; None when it has no pair terms."""
    terms = getattr(model, "pair_terms", None)
    return None if terms is None else CachedPairTerms(terms, rows_of, n_rows, step, fixed_cols)
