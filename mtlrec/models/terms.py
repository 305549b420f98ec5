"""Pair terms: per-user and per-item biases and the user·item dot product, added to task logits.

An MLP over concatenated embeddings learns a multiplicative user × item interaction poorly
(Rendle et al. 2020); matrix factorisation has it built in: r̂ = μ + b_u + b_i + p_u·q_i. With the
model options ``biases`` and ``interaction: "dot"`` every architecture adds, to the logit of each
task of a type in ``TERM_TASK_TYPES``,

    s_t · (b_u + b_i)  +  c_t · (p_u · q_i)

where ``b_u``, ``b_i`` are the **last column** of the user-id and item-id embeddings in the fused
input X (per-id parameters, under the same embedding L2 as the rest of the table; id code 0, the
unknown bucket, has its own), ``p_u``, ``q_i`` the other columns of those embeddings (all of them
without ``biases``), and ``s_t``, ``c_t`` one learned scale per task (starting at 1). The biases and
factors stay columns of X, so the term is a function of X: explanations (which attribute the logit
to X's column groups) include it in the user-id and item-id groups.

The term is not affine in X (a product of user and item columns), so the recommendation cache
(`mtlrec.serve.cache.InputSplit`) cannot fold it into the input layers: it keeps the item side
(``side(x, "item")``: b_i and q_i of every catalogue item) and computes ``pair_matrix`` per request,
one [items, k] @ [k] product.

Not done, by measurement: SVD++'s user factor p_u + (the mean of the user's history items'
embeddings) in the dot product, with a mean-pooled history input (``model.history``): on u1
(biases, dot, embedding_l2 3e-3, refit, history of 200, seed 0) rating RMSE 0.9159 with it, 0.9114
with the history only as the network's input.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

INTERACTIONS = ("none", "dot")
# task types whose logits get the terms: decided by measurement on u1 and ml-latest-small
# (docs/model-defaults.md: on the binary like task the terms did not help)
TERM_TASK_TYPES = ("regression",)
ID_FIELDS = ("user_id", "item_id")


def check_options(biases, interaction) -> None:
    """Clear errors for option values no model can use."""
    if not isinstance(biases, bool):
        raise ValueError(f"biases must be true or false, not {biases!r}")
    if interaction not in INTERACTIONS:
        raise ValueError(f"interaction must be one of {', '.join(map(repr, INTERACTIONS))}, not {interaction!r}")


class PairTerms(nn.Module):
    """The bias and dot terms of one model over its fused input's id columns (see the module doc).

    Not called as a module (``logits``, ``pair_rows`` and ``pair_matrix`` are plain methods), so
    hooks that wrap the model's modules (SHAP's DeepExplainer) see it as ordinary tensor algebra."""

    def __init__(self, feature_input, tasks: Sequence, biases: bool = False, interaction: str = "none"):
        super().__init__()
        check_options(biases, interaction)
        cols = feature_input.field_columns()
        kinds = {f.name: f.kind for f in feature_input.fields}
        missing = [n for n in ID_FIELDS if kinds.get(n) != "categorical"]
        if missing:
            raise ValueError(f"biases / interaction need the user and item ids as inputs; the model has no "
                             f"{' or '.join(missing)} field (give the data a user_id and item_id role)")
        self.biases, self.dot = bool(biases), interaction == "dot"
        if self.biases and self.dot and len(cols["user_id"]) < 2:
            raise ValueError("biases together with interaction 'dot' need embedding_dim >= 2 "
                             "(one column is the bias, the rest the factors)")
        self.task_names = [t.name for t in tasks if t.type in TERM_TASK_TYPES and int(t.n_outputs) == 1]
        n = len(self.task_names)
        self.bias_scale = nn.Parameter(torch.ones(n)) if self.biases else None
        self.dot_scale = nn.Parameter(torch.ones(n)) if self.dot else None
        for side, name in zip(("user", "item"), ID_FIELDS):
            self.register_buffer(f"_{side}_cols", torch.tensor(self._bias_and_factors(cols[name]), dtype=torch.long),
                                 persistent=False)

    def _bias_and_factors(self, c: list[int]) -> list[int]:
        """The columns of one id block the term reads: the bias (last) column, then the factors."""
        keep = [c[-1]] if self.biases else []
        if self.dot:
            keep += c[:-1] if self.biases else c
        return keep

    def columns(self, who: str) -> list[int]:
        """The columns of X the term reads for ``who`` ("user" or "item")."""
        return getattr(self, f"_{who}_cols").tolist()

    def side(self, x: torch.Tensor, who: str) -> torch.Tensor:
        """The columns of X the term reads for ``who`` ("user" or "item") [b, c]: the bias (when
        ``biases``) first, then the factors (when ``interaction`` is "dot")."""
        return x.index_select(1, getattr(self, f"_{who}_cols"))

    def _combine(self, bias: torch.Tensor | None, dot: torch.Tensor | None) -> torch.Tensor:
        """[..., n_tasks] from the summed biases and the dot products [...]."""
        out = 0
        if bias is not None:
            out = out + bias.unsqueeze(-1) * self.bias_scale
        if dot is not None:
            out = out + dot.unsqueeze(-1) * self.dot_scale
        return out

    def pair_rows(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Row-wise terms [b, n_tasks] of user sides [b or 1, c] and item sides [b, c]."""
        o = int(self.biases)
        bias = user[:, 0] + item[:, 0] if self.biases else None
        dot = (user[:, o:] * item[:, o:]).sum(1) if self.dot else None
        return self._combine(bias, dot)

    def pair_matrix(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Every user against every item: terms [u, n, n_tasks] of user sides [u, c], item sides [n, c]."""
        o = int(self.biases)
        bias = user[:, :1] + item[:, 0].unsqueeze(0) if self.biases else None
        dot = user[:, o:] @ item[:, o:].T if self.dot else None
        return self._combine(bias, dot)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The terms of the rows of X [b, n_tasks]."""
        return self.pair_rows(self.side(x, "user"), self.side(x, "item"))

    def add(self, out: dict[str, torch.Tensor], terms: torch.Tensor) -> dict[str, torch.Tensor]:
        """``out`` {task: logits [...]} with ``terms`` [..., n_tasks] added to the tasks that get them
        (tasks absent from ``out`` are skipped)."""
        out = dict(out)
        for j, name in enumerate(self.task_names):
            if name in out:
                out[name] = out[name] + terms[..., j].to(out[name].dtype)
        return out
