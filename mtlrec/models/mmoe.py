"""MMoE: Multi-gate Mixture-of-Experts (Ma et al., KDD 2018).

``n_experts`` expert MLPs read X; task i mixes their outputs with its own softmax
gate ``g_i(X)`` and feeds ``Σ_e g_i,e(X)·E_e(X)`` to its tower. The shared
representation H is the concatenation of the expert outputs; ``gate_weights`` shows
how much each task relies on each expert.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mtlrec.models.base import EMBEDDING_STD, MultiTaskModel
from mtlrec.models.layers import ExpertBank, Gate, Tower, after_first, mix


class MMoE(MultiTaskModel):
    arch = "mmoe"
    label = "MMoE (experts + gates)"
    description = "MMoE: shared experts mixed per task by a softmax gate"
    has_gates = True

    def __init__(self, fields, tasks, *, n_experts: int = 4, expert_dims: Sequence[int] = (64,),
                 tower_dims: Sequence[int] = (32,), dropout: float = 0.0, embedding_dim: int = 16,
                 dense_proj_dim: int = 32, id_dropout: float = 0.0,
                 embedding_std: float = EMBEDDING_STD,
                 history_encoder: str = "attention"):
        expert_dims, tower_dims = [int(d) for d in expert_dims], [int(d) for d in tower_dims]
        if int(n_experts) < 1 or not expert_dims:
            raise ValueError("mmoe needs n_experts >= 1 and at least one expert layer (expert_dims)")
        super().__init__(fields, tasks, dict(n_experts=int(n_experts), expert_dims=expert_dims,
                                             tower_dims=tower_dims, dropout=float(dropout),
                                             embedding_dim=int(embedding_dim), dense_proj_dim=int(dense_proj_dim),
                                             id_dropout=float(id_dropout),
                                             embedding_std=float(embedding_std),
                                             history_encoder=str(history_encoder)))
        d_x = self.input.out_dim
        self.experts = ExpertBank(d_x, int(n_experts), expert_dims, dropout)
        self.gates = nn.ModuleList(Gate(d_x, int(n_experts)) for _ in self.tasks)
        self.towers = nn.ModuleList(Tower(expert_dims[-1], tower_dims, t.n_outputs, dropout) for t in self.tasks)

    def _experts(self, x: torch.Tensor) -> torch.Tensor:
        return self.experts(x)                                        # [b, n_experts, d]

    def network_from_input(self, x):
        experts = self._experts(x)
        return {name: tower(mix(gate(x), experts))
                for name, gate, tower in zip(self.task_names, self.gates, self.towers)}

    def input_layers(self):
        layers = {"experts": self.experts[0]}
        layers.update({f"gate{t}": gate[0] for t, gate in enumerate(self.gates)})
        return layers

    def forward_from_first(self, pre, tasks=None):
        experts = after_first(self.experts, pre["experts"])
        return {name: tower(mix(gate.from_pre(pre[f"gate{t}"]), experts))
                for t, (name, gate, tower) in enumerate(zip(self.task_names, self.gates, self.towers))
                if tasks is None or name in tasks}

    def shared_from_input(self, x):
        return self._experts(x).flatten(1)                            # [b, n_experts * d]

    def expert_names(self):
        return [f"expert {k + 1}" for k in range(int(self.hparams["n_experts"]))]

    def shared_expert_names(self):
        return self.expert_names()

    def gate_weights(self, features):
        """Task -> gate weights over the experts [b, n_experts] (rows sum to 1)."""
        x = self.embed(features)
        return {name: gate(x) for name, gate in zip(self.task_names, self.gates)}
