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

from mtlrec.models.base import EMBEDDING_STD, MultiTaskModel
from mtlrec.models.layers import ExpertBank, Gate, Tower, after_first, mix


class CGCLevel(nn.Module):
    """One Customized Gate Control level.

    Its experts run as one `ExpertBank`, ordered task 0's ``n_specific`` experts, task
    1's, ..., then the ``n_shared`` shared experts. In the first level every expert
    reads X; in later levels task experts read their task's previous output and
    shared experts the previous shared output.
    """

    def __init__(self, in_dim: int, n_tasks: int, n_specific: int, n_shared: int, expert_dims, dropout: float,
                 last: bool):
        super().__init__()
        self.n_tasks, self.n_specific, self.n_shared = n_tasks, n_specific, n_shared
        n_all = n_tasks * n_specific + n_shared
        self.experts = ExpertBank(in_dim, n_all, expert_dims, dropout)
        self.task_gates = nn.ModuleList(Gate(in_dim, n_specific + n_shared) for _ in range(n_tasks))
        self.shared_gate = None if last else Gate(in_dim, n_all)
        self.out_dim = int(expert_dims[-1])
        shared = list(range(n_tasks * n_specific, n_all))
        for t in range(n_tasks):   # expert columns that task t's gate mixes: its own, then the shared ones
            idx = list(range(t * n_specific, (t + 1) * n_specific)) + shared
            self.register_buffer(f"_idx{t}", torch.tensor(idx, dtype=torch.long), persistent=False)
        self.register_buffer("_shared_idx", torch.tensor(shared, dtype=torch.long), persistent=False)

    def forward(self, task_inputs: list[torch.Tensor] | None, shared_input: torch.Tensor, need=None):
        """``task_inputs`` None means every expert reads ``shared_input`` (the first level).
        ``need``: the task indices whose outputs are wanted (None: all); in the last level (no
        shared gate) only their own experts and the shared ones run, and ``task_inputs`` of the
        other tasks may be None. Outputs and gates of tasks not needed are None.

        -> (task outputs, shared output or None, task gate weights, shared experts [b, n_shared, d])."""
        outs = range(self.n_tasks) if need is None else set(need)
        need = range(self.n_tasks) if need is None or self.shared_gate is not None else sorted(need)
        if task_inputs is None:
            experts = self.experts(shared_input)
            task_inputs = [shared_input] * self.n_tasks
            cols = range(self.n_tasks)
        else:
            per_expert = [task_inputs[t] for t in need for _ in range(self.n_specific)]
            per_expert += [shared_input] * self.n_shared
            x = torch.stack(per_expert, dim=0).transpose(0, 1)     # expert-major memory
            if len(need) == self.n_tasks:
                experts = self.experts(x)
            else:
                experts = self.experts.subset(x, self._expert_subset(need))
            cols = {t: j for j, t in enumerate(need)}
        gates = [gate.weights(x) if t in outs else None
                 for t, (x, gate) in enumerate(zip(task_inputs, self.task_gates))]
        shared_gate = None if self.shared_gate is None else self.shared_gate.weights(shared_input)
        return self._combine(experts, gates, shared_gate, cols)

    def _expert_subset(self, need) -> torch.Tensor:
        """The expert indices of the tasks ``need`` (their own experts, in task order), then the shared ones."""
        own = [e for t in need for e in range(t * self.n_specific, (t + 1) * self.n_specific)]
        return torch.tensor(own + self._shared_idx.tolist(), dtype=torch.long, device=self._shared_idx.device)

    def input_layers(self) -> dict[str, nn.Module]:
        """The layers that read the level's input when every expert reads it (the first level)."""
        layers = {"experts": self.experts[0]}
        layers.update({f"gate{t}": gate[0] for t, gate in enumerate(self.task_gates)})
        if self.shared_gate is not None:
            layers["shared_gate"] = self.shared_gate[0]
        return layers

    def forward_from_first(self, pre: dict[str, torch.Tensor], need=None):
        """``forward(None, x, need)`` from ``pre[name] = input_layers()[name](x)`` (every expert runs:
        they all read x)."""
        experts = after_first(self.experts, pre["experts"])
        gates = [gate.from_pre(pre[f"gate{t}"]) if need is None or t in need else None
                 for t, gate in enumerate(self.task_gates)]
        shared_gate = None if self.shared_gate is None else self.shared_gate.from_pre(pre["shared_gate"])
        return self._combine(experts, gates, shared_gate, range(self.n_tasks))

    def _combine(self, experts: torch.Tensor, gates: list, shared_gate: torch.Tensor | None, cols):
        """``cols[t]``: where task t's own experts sit in ``experts`` (in blocks of n_specific), the
        shared experts last. Tasks whose gate is None get no output."""
        outs = []
        ns, n0 = self.n_specific, experts.shape[1] - self.n_shared
        for t, g in enumerate(gates):
            if g is None:
                outs.append(None)
                continue
            # own experts and shared experts are contiguous column ranges: mix the two views
            # (no index_select copy of the expert outputs per task)
            shared_part = mix(g[:, ns:], experts[:, n0:])
            own = experts[:, cols[t] * ns:(cols[t] + 1) * ns]
            if ns and not torch.is_grad_enabled():      # scoring: the own experts added in place
                for e in range(ns):
                    shared_part.addcmul_(g[:, e:e + 1], own[:, e])
                outs.append(shared_part)
            else:
                outs.append(shared_part if ns == 0 else mix(g[:, :ns], own) + shared_part)
        shared_out = None if shared_gate is None else mix(shared_gate, experts)
        return outs, shared_out, gates, experts[:, n0:]


class PLE(MultiTaskModel):
    arch = "ple"
    label = "PLE (shared + task experts)"
    description = "PLE: shared and task-own experts, in stacked levels"
    has_gates = True

    def __init__(self, fields, tasks, *, n_levels: int = 2, n_shared_experts: int = 2, n_specific_experts: int = 1,
                 expert_dims: Sequence[int] = (64,), tower_dims: Sequence[int] = (32,), dropout: float = 0.0,
                 embedding_dim: int = 16, dense_proj_dim: int = 32, id_dropout: float = 0.0,
                 embedding_std: float = EMBEDDING_STD,
                 history_encoder: str = "attention"):
        expert_dims, tower_dims = [int(d) for d in expert_dims], [int(d) for d in tower_dims]
        if int(n_levels) < 1 or int(n_shared_experts) < 1 or int(n_specific_experts) < 0 or not expert_dims:
            raise ValueError("ple needs n_levels >= 1, n_shared_experts >= 1, n_specific_experts >= 0 "
                             "and at least one expert layer (expert_dims)")
        super().__init__(fields, tasks, dict(n_levels=int(n_levels), n_shared_experts=int(n_shared_experts),
                                             n_specific_experts=int(n_specific_experts), expert_dims=expert_dims,
                                             tower_dims=tower_dims, dropout=float(dropout),
                                             embedding_dim=int(embedding_dim), dense_proj_dim=int(dense_proj_dim),
                                             id_dropout=float(id_dropout),
                                             embedding_std=float(embedding_std),
                                             history_encoder=str(history_encoder)))
        n_t = len(self.tasks)
        levels = []
        in_dim = self.input.out_dim
        for lv in range(int(n_levels)):
            levels.append(CGCLevel(in_dim, n_t, int(n_specific_experts), int(n_shared_experts), expert_dims,
                                   dropout, last=lv == int(n_levels) - 1))
            in_dim = expert_dims[-1]
        self.levels = nn.ModuleList(levels)
        self.towers = nn.ModuleList(Tower(expert_dims[-1], tower_dims, t.n_outputs, dropout) for t in self.tasks)

    def _run(self, x: torch.Tensor | None, gate_level: int = -1, pre: dict | None = None, need=None):
        """``pre``: the first level's input-layer outputs instead of ``x`` (`forward_from_first`).
        ``need``: the task indices whose outputs are wanted (None: all). A task's output of level i
        feeds only its own experts and gate in level i + 1, and every expert of a level with a shared
        gate is mixed by it: the last two levels compute only what ``need`` reads."""
        task_in, shared_in = None, x
        gates, shared_stack = [], None
        want = gate_level % len(self.levels)
        n = len(self.levels)
        for i, level in enumerate(self.levels):
            level_need = need if i >= n - 2 else None
            if i == 0 and pre is not None:
                task_in, shared_in, g, shared_stack = level.forward_from_first(pre, level_need)
            else:
                task_in, shared_in, g, shared_stack = level(task_in, shared_in, level_need)
            if i == want:
                gates = g
        return task_in, gates, shared_stack

    def input_layers(self):
        return self.levels[0].input_layers()

    def forward_from_first(self, pre, tasks=None):
        need = None if tasks is None else {t for t, name in enumerate(self.task_names) if name in tasks}
        outs, _, _ = self._run(None, pre=pre, need=need)
        return {name: tower(h) for name, tower, h in zip(self.task_names, self.towers, outs)
                if tasks is None or name in tasks}

    def network_from_input(self, x):
        outs, _, _ = self._run(x)
        return {name: tower(h) for name, tower, h in zip(self.task_names, self.towers, outs)}

    def shared_from_input(self, x):
        return self._run(x)[2].flatten(1)                    # [b, n_shared * d]

    def expert_names(self):
        """The last level's gate columns: the task's own experts first, then the shared experts."""
        own = int(self.hparams["n_specific_experts"])
        return [f"own {k + 1}" for k in range(own)] + self.shared_expert_names()

    def shared_expert_names(self):
        return [f"shared {k + 1}" for k in range(int(self.hparams["n_shared_experts"]))]

    def gate_weights(self, features, level: int = -1):
        """Task -> gate weights [b, n_specific + n_shared] of ``level`` (default: the last level);
        columns: the task's own experts first, then the shared experts."""
        if not -len(self.levels) <= level < len(self.levels):
            raise IndexError(f"PLE has {len(self.levels)} levels; level {level} does not exist")
        _, gates, _ = self._run(self.embed(features), gate_level=level)
        return dict(zip(self.task_names, gates))
