"""Shared-Bottom (Caruana 1997; the article's model, §4.2).

``H = σ(W_H·X + b_H)`` (ReLU, stacked ``len(shared_dims)`` times), then one tower
``f_i(H; θ_i)`` per task reading the same H.
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from mtlrec.models.base import EMBEDDING_STD, MultiTaskModel
from mtlrec.models.layers import MLP, Tower, after_first


class SharedBottom(MultiTaskModel):
    arch = "shared_bottom"
    label = "Shared bottom"
    description = "shared bottom: one shared network H under every task's tower"
    has_shared_towers = True

    def __init__(self, fields, tasks, *, shared_dims: Sequence[int] = (128, 64), tower_dims: Sequence[int] = (32,),
                 dropout: float = 0.0, embedding_dim: int = 16, dense_proj_dim: int = 32,
                 id_dropout: float = 0.0,
                 embedding_std: float = EMBEDDING_STD,
                 history_encoder: str = "attention"):
        shared_dims, tower_dims = [int(d) for d in shared_dims], [int(d) for d in tower_dims]
        if not shared_dims:
            raise ValueError("shared_bottom needs at least one shared layer (shared_dims)")
        super().__init__(fields, tasks, dict(shared_dims=shared_dims, tower_dims=tower_dims,
                                             dropout=float(dropout), embedding_dim=int(embedding_dim),
                                             dense_proj_dim=int(dense_proj_dim), id_dropout=float(id_dropout),
                                             embedding_std=float(embedding_std),
                                             history_encoder=str(history_encoder)))
        self.bottom = MLP(self.input.out_dim, shared_dims, dropout)
        self.towers = nn.ModuleList(Tower(self.bottom.out_dim, tower_dims, t.n_outputs, dropout)
                                    for t in self.tasks)

    def shared_from_input(self, x):
        return self.bottom(x)

    def towers_from_shared(self, h, tasks=None):
        return {name: tower(h) for name, tower in zip(self.task_names, self.towers) if tasks is None or name in tasks}

    def network_from_input(self, x):
        return self.towers_from_shared(self.bottom(x))

    def input_layers(self):
        return {"bottom": self.bottom[0]}

    def forward_from_first(self, pre, tasks=None):
        return self.towers_from_shared(after_first(self.bottom, pre["bottom"]), tasks)
