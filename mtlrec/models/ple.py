"""PLE: Progressive Layered Extraction (Tang et al., RecSys 2020).

``n_levels`` stacked CGC levels. In each level every task owns ``n_specific_experts``
experts and all tasks share ``n_shared_experts``; task i's gate mixes its own and
the shared experts, and (except in the last level) a shared gate mixes all experts
to feed the next level's shared experts. Towers read the last level's task outputs.
H is the concatenation of the last level's shared-expert outputs.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mtlrec.models.base import MultiTaskModel
from mtlrec.models.layers import MLP, Gate, Tower, mix


class CGCLevel(nn.Module):
    """One Customized Gate Control level."""

    def __init__(self, in_dim: int, n_tasks: int, n_specific: int, n_shared: int, expert_dims, dropout: float,
                 last: bool):
        super().__init__()
        self.specific = nn.ModuleList(nn.ModuleList(MLP(in_dim, expert_dims, dropout) for _ in range(n_specific))
                                      for _ in range(n_tasks))
        self.shared = nn.ModuleList(MLP(in_dim, expert_dims, dropout) for _ in range(n_shared))
        self.task_gates = nn.ModuleList(Gate(in_dim, n_specific + n_shared) for _ in range(n_tasks))
        self.shared_gate = None if last else Gate(in_dim, n_tasks * n_specific + n_shared)
        self.out_dim = int(expert_dims[-1])

    def forward(self, task_inputs: list[torch.Tensor], shared_input: torch.Tensor):
        """-> (task outputs, shared output or None, task gate weights, shared experts [b, n_shared, d])."""
        shared = [e(shared_input) for e in self.shared]
        outs, gates, all_specific = [], [], []
        for x, experts, gate in zip(task_inputs, self.specific, self.task_gates):
            own = [e(x) for e in experts]
            all_specific.extend(own)
            g = gate(x)
            gates.append(g)
            outs.append(mix(g, torch.stack(own + shared, dim=1)))
        shared_stack = torch.stack(shared, dim=1)
        shared_out = None
        if self.shared_gate is not None:
            shared_out = mix(self.shared_gate(shared_input), torch.stack(all_specific + shared, dim=1))
        return outs, shared_out, gates, shared_stack


class PLE(MultiTaskModel):
    arch = "ple"
    has_gates = True

    def __init__(self, fields, tasks, *, n_levels: int = 2, n_shared_experts: int = 2, n_specific_experts: int = 1,
                 expert_dims: Sequence[int] = (64,), tower_dims: Sequence[int] = (32,), dropout: float = 0.0,
                 embedding_dim: int = 16, dense_proj_dim: int = 32):
        expert_dims, tower_dims = [int(d) for d in expert_dims], [int(d) for d in tower_dims]
        if int(n_levels) < 1 or int(n_shared_experts) < 1 or int(n_specific_experts) < 0 or not expert_dims:
            raise ValueError("ple needs n_levels >= 1, n_shared_experts >= 1, n_specific_experts >= 0 "
                             "and at least one expert layer (expert_dims)")
        super().__init__(fields, tasks, dict(n_levels=int(n_levels), n_shared_experts=int(n_shared_experts),
                                             n_specific_experts=int(n_specific_experts), expert_dims=expert_dims,
                                             tower_dims=tower_dims, dropout=float(dropout),
                                             embedding_dim=int(embedding_dim), dense_proj_dim=int(dense_proj_dim)))
        n_t = len(self.tasks)
        levels = []
        in_dim = self.input.out_dim
        for lv in range(int(n_levels)):
            levels.append(CGCLevel(in_dim, n_t, int(n_specific_experts), int(n_shared_experts), expert_dims,
                                   dropout, last=lv == int(n_levels) - 1))
            in_dim = expert_dims[-1]
        self.levels = nn.ModuleList(levels)
        self.towers = nn.ModuleList(Tower(expert_dims[-1], tower_dims, t.n_outputs, dropout) for t in self.tasks)

    def _run(self, x: torch.Tensor):
        task_in, shared_in = [x] * len(self.tasks), x
        gates, shared_stack = [], None
        for level in self.levels:
            task_in, shared_in, gates, shared_stack = level(task_in, shared_in)
        return task_in, gates, shared_stack

    def forward_from_input(self, x):
        outs, _, _ = self._run(x)
        return {name: tower(h) for name, tower, h in zip(self.task_names, self.towers, outs)}

    def shared_from_input(self, x):
        return self._run(x)[2].flatten(1)                    # [b, n_shared * d]

    def gate_weights(self, features):
        """Task -> last-level gate weights [b, n_specific + n_shared] (own experts first, then shared)."""
        _, gates, _ = self._run(self.embed(features))
        return dict(zip(self.task_names, gates))
