"""ESMM: the Entire Space Multi-task Model (Ma et al., SIGIR 2018).

The tasks share only the embedding: X (the fused input, `FeatureInput`) is the shared
representation, and each task has its own MLP tower reading X -- no shared hidden layers, as in
the paper. A task given another (``TaskSpec.given``, e.g. like given interact) outputs its
*conditional* logit (pCVR = p(like | interact)); its entire-space probability is the product
along the chain, pCTCVR = pCTR × pCVR (`mtlrec.chain.entire_space`).

Training (``chain_training = "entire_space"``, done by `mtlrec.chain.task_losses`): a chained
binary task is never fitted on its own space; its loss is the BCE of the product pCTR·pCVR against
interact·like over *every* row, so the pCVR tower learns from rows where interact = 0 too (the
paper's remedy for sample-selection bias and data sparsity). Tasks without a parent are trained
on their own labels as usual; a chained regression task (rating given interact) stays conditional
(its loss masked to the parent's rows). Without any chain ESMM is plain per-task towers over a
shared embedding.
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from mtlrec.models.base import EMBEDDING_STD, MultiTaskModel
from mtlrec.models.layers import Tower


class ESMM(MultiTaskModel):
    arch = "esmm"
    label = "ESMM (entire-space towers)"
    description = ("ESMM: one tower per task over the shared embedding; a task given another is trained "
                   "through the product p(parent) · p(task | parent) over every row")
    has_shared_towers = True          # every tower reads H = X
    chain_training = "entire_space"

    def __init__(self, fields, tasks, *, tower_dims: Sequence[int] = (64, 32), dropout: float = 0.0,
                 embedding_dim: int = 16, dense_proj_dim: int = 32, id_dropout: float = 0.0,
                 embedding_std: float = EMBEDDING_STD,
                 history_encoder: str = "attention"):
        tower_dims = [int(d) for d in tower_dims]
        if not tower_dims:
            raise ValueError("esmm needs at least one hidden layer per tower (tower_dims), e.g. 64, 32")
        super().__init__(fields, tasks, dict(tower_dims=tower_dims, dropout=float(dropout),
                                             embedding_dim=int(embedding_dim), dense_proj_dim=int(dense_proj_dim),
                                             id_dropout=float(id_dropout), embedding_std=float(embedding_std),
                                             history_encoder=str(history_encoder)))
        self.towers = nn.ModuleList(Tower(self.input.out_dim, tower_dims, t.n_outputs, dropout) for t in self.tasks)

    def shared_from_input(self, x):
        return x                      # the shared embedding is all the tasks share

    def towers_from_shared(self, h, tasks=None):
        return {name: tower(h) for name, tower in zip(self.task_names, self.towers) if tasks is None or name in tasks}

    def network_from_input(self, x):
        return self.towers_from_shared(x)

    def input_layers(self):
        return {f"tower{i}": tower.mlp[0] for i, tower in enumerate(self.towers)}

    def forward_from_first(self, pre, tasks=None):
        return {name: tower.from_first(pre[f"tower{i}"])
                for i, (name, tower) in enumerate(zip(self.task_names, self.towers)) if tasks is None or name in tasks}
