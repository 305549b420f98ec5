"""The recommendation cache: a model's input layers with one column block of X precomputed.

Every layer that reads the fused input X is affine (`mtlrec.models.base.MultiTaskModel.input_layers`),
so for any partition of X's columns ``layer(X) = (X_a·W_a + b) + X_b·W_b``. `InputSplit` computes
the first part once for N rows (e.g. the item columns of every catalogue item) and adds the second
per request (one user row), then runs the rest of the network (``model.forward_from_first``).
A model's pair terms (biases, user·item dot product), which are not affine in X, are added per
request from their own item-side cache (`mtlrec.serve.pair_cache`).
`mtlrec.serve.catalogue.item_split` keeps one per model and catalogue.

A target-attention history block (`mtlrec.models.base.FeatureInput`, encoder "attention") depends
on both sides: `HistoryPair` keeps each catalogue item's attention query and computes the block per
request from the user's history (``[u, N, d]``), so the layers still see the exact X.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mtlrec.serve.pair_cache import cached_pair_terms

if TYPE_CHECKING:  # pragma: no cover
    from mtlrec.models.base import MultiTaskModel


class InputSplit:
    """A model's input layers with one column block of X precomputed for N rows.

    ``pre_fixed = X[:, fixed]·W[fixed] + b`` [N, M] is computed once (e.g. the item columns of
    every catalogue item); ``forward(x_row)`` adds ``x_row[:, rest]·W[rest]`` (one row, e.g. a
    user and the context defaults, broadcast over the N rows) and finishes with
    ``model.forward_from_first``. Equal to ``model.forward_from_input(X)`` for the X whose
    fixed columns are those of ``x_fixed`` and rest columns those of ``x_row``, up to float
    rounding. A snapshot: it does not follow later parameter changes (rebuild it).

    ``x_fixed`` is the rows [N, d_x], or a function ``(start, stop) -> rows start .. stop - 1 of
    X`` together with ``n_rows`` = N: X is then made ``block_rows`` rows at a time and never
    whole (only ``pre_fixed`` is catalogue-sized)."""

    def __init__(self, model: "MultiTaskModel", x_fixed, fixed_cols, n_rows: int | None = None,
                 block_rows: int = 65536, pair: "HistoryPair | None" = None):
        self.model = model
        w, b, self.layout = model.input_matrix()
        d = w.shape[0]
        fixed = sorted({int(c) for c in fixed_cols})
        if any(c < 0 or c >= d for c in fixed):
            raise ValueError(f"fixed columns must lie in 0..{d - 1}")
        self.pair = pair
        skip = set(fixed) | (set(pair.cols) if pair is not None else set())
        rest = [c for c in range(d) if c not in skip]
        dev = w.device
        if callable(x_fixed):
            self.n_rows, rows_of, step = int(n_rows), x_fixed, max(1, int(block_rows))
        else:
            self.n_rows, step = int(x_fixed.shape[0]), max(1, int(x_fixed.shape[0]))
            rows_of = lambda a, z: x_fixed[a:z]     # noqa: E731 - one block: the whole matrix
        fc = torch.as_tensor(fixed, dtype=torch.long, device=dev)
        self.rest_cols = torch.as_tensor(rest, dtype=torch.long, device=dev)
        if fixed:
            w_fixed = w.index_select(0, fc)
            self.pre_fixed = torch.empty(self.n_rows, w.shape[1], dtype=w.dtype, device=dev)
            for a in range(0, self.n_rows, step):
                z = min(a + step, self.n_rows)
                torch.addmm(b, rows_of(a, z).index_select(1, fc), w_fixed, out=self.pre_fixed[a:z])
        else:
            self.pre_fixed = b.expand(self.n_rows, -1).contiguous()
        self.w_rest = w.index_select(0, self.rest_cols).contiguous() if rest else None
        # the model's pair terms (biases, user·item dot), not affine in X: their own item-side cache
        self.pair_terms = cached_pair_terms(model, rows_of, self.n_rows, step, fixed)

    def _pair(self, user, rows) -> torch.Tensor | None:
        """The history blocks' share of the pre-activations [u, n, M] (None without a pair part)."""
        if self.pair is None:
            return None
        if user is None:
            raise ValueError("this model's history block depends on the user: pass the user's features (user=)")
        return self.pair.pre(user, rows)

    def forward(self, x_row: torch.Tensor, rows: torch.Tensor | None = None,
                chunk: int | None = None, user: dict | None = None, tasks=None) -> dict[str, torch.Tensor]:
        """{task: logits} of the precomputed rows (all, or ``rows``) with the rest columns of ``x_row``;
        ``tasks``: only these tasks' (`MultiTaskModel.forward_from_first`; None = every task).

        ``chunk``: run the network on blocks of that many rows and concatenate (the same
        numbers; the intermediates of a block stay in the CPU cache, so the memory-bound
        elementwise layers -- ReLU, gates, expert mixing -- run several times faster)."""
        model, layout = self.model, self.layout
        pre_fixed = self.pre_fixed if rows is None else self.pre_fixed.index_select(0, rows)
        n = pre_fixed.shape[0]
        user_pre = None if self.w_rest is None else x_row.index_select(1, self.rest_cols) @ self.w_rest
        step = int(chunk) if chunk and n > chunk else max(n, 1)
        parts = []
        for a in range(0, n, step):         # the pair part per block too: its intermediates stay small
            pre = pre_fixed[a:a + step]
            pre = pre + user_pre if user_pre is not None else pre
            if self.pair is not None:
                if user is None:
                    raise ValueError("this model's history block depends on the user: pass the user's "
                                     "features (user=)")
                pre = self.pair.add_to(pre, user, slice(a, a + step) if rows is None else rows[a:a + step],
                                       in_place=user_pre is not None)
            parts.append(model.forward_from_first(model.split_pre(pre, layout), tasks=tasks))
        if len(parts) == 1:
            out = parts[0]
        elif not parts:                     # no rows: one empty pass gives the right shapes
            out = model.forward_from_first(model.split_pre(pre_fixed, layout), tasks=tasks)
        else:
            out = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        return out if self.pair_terms is None else self.pair_terms.add(out, x_row, rows)

    def forward_tile(self, x_rows: torch.Tensor, start: int, stop: int, tasks=None,
                     user: dict | None = None) -> dict[str, torch.Tensor]:
        """{task: logits [u, stop - start, ...]}: each of the ``u`` rows of ``x_rows`` [u, d_x] (its
        rest columns, e.g. a user and the context defaults) against the precomputed rows
        ``start .. stop - 1``, in one pass of u·(stop - start) rows. ``tasks``: only these tasks'
        outputs (`MultiTaskModel.forward_from_first`). Row (i, j) equals `forward` of ``x_rows[i]``
        on precomputed row ``start + j``, up to float rounding."""
        block = self.pre_fixed[start:stop]
        u, n = int(x_rows.shape[0]), int(block.shape[0])
        if self.w_rest is None:
            pre = block.unsqueeze(0).expand(u, n, block.shape[1])
        else:
            pre = block.unsqueeze(0) + (x_rows.index_select(1, self.rest_cols) @ self.w_rest).unsqueeze(1)
        pair = self._pair(user, slice(start, stop))
        if pair is not None:
            pre = pre + pair
        out = self.model.forward_from_first(self.model.split_pre(pre.reshape(u * n, -1), self.layout), tasks=tasks)
        out = {k: v.reshape(u, n, *v.shape[1:]) for k, v in out.items()}
        return out if self.pair_terms is None else self.pair_terms.add_tile(out, x_rows, start, stop)


class HistoryPair:
    """The target-attention history blocks of X for every catalogue item against a user's history.

    Each item's attention query (its item_id embedding times the learned query matrix) is computed
    once; per request the user's history items are embedded once and ``pre(user, rows)`` gives
    ``Σ_fields softmax(q·Kᵀ/√d)·K · W_field`` [u, n, M] -- the same block `FeatureInput` computes row
    by row, so the result equals the full forward up to float rounding."""

    def __init__(self, model: "MultiTaskModel", item_codes: torch.Tensor, w: torch.Tensor):
        inp = model.input
        self.input = inp
        columns = inp.field_columns()
        self.parts = []
        self.cols: list[int] = []
        for name in inp.attention_history:
            c = columns[name]
            cols = torch.as_tensor(c, dtype=torch.long, device=w.device)
            self.parts.append((name, inp.history_queries(name, item_codes), w.index_select(0, cols)))
            self.cols.extend(c)

    def add_to(self, pre: torch.Tensor, user: dict, rows, in_place: bool) -> torch.Tensor:
        """``pre`` [n, M] plus one user's history blocks for item ``rows`` (one fused multiply-add
        per field: no catalogue-sized temporary; ``in_place``: ``pre`` may be overwritten)."""
        for name, queries, w in self.parts:
            items, mask = self.input.history_items(name, user)              # [1, N, d], [1, N]
            q = queries[rows]
            pooled = (self.input.history_attention(q.unsqueeze(0), items, mask) @ items)[0]     # [n, d]
            pre = pre.addmm_(pooled, w) if in_place else torch.addmm(pre, pooled, w)
            in_place = True
        return pre

    def pre(self, user: dict, rows=None) -> torch.Tensor:
        """[u, n, M]: rows None = every item, a slice or a LongTensor of item rows."""
        total = None
        for name, queries, w in self.parts:
            q = queries if rows is None else queries[rows]
            items, mask = self.input.history_items(name, user)              # [u, N, d], [u, N]
            pooled = self.input.history_attention(q.unsqueeze(0), items, mask) @ items     # [u, n, d]
            part = pooled @ w
            total = part if total is None else total + part
        return total
