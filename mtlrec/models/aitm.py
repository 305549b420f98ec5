"""AITM: Adaptive Information Transfer Multi-task (Xi et al., KDD 2021).

Each task t has its own tower over the shared embedding X, whose hidden output is q_t. Along every
chain (``TaskSpec.given``: interact → like, interact → rating) the Adaptive Information Transfer
module passes what the parent learned to the child:

* p_{t-1} = h_t(z_{t-1}): the parent's representation z_{t-1} through a learned transfer layer
  (Linear + ReLU);
* z_t = Σ_{u ∈ {p_{t-1}, q_t}} w_u · h3(u), with w_u = softmax_u(⟨h1(u), h2(u)⟩ / √d): self-attention
  over the two inputs (query h1, key h2, value h3 projections; `AIT`); z_t = q_t for a task
  without a parent;
* the task's output layer reads z_t.

**How this maps onto mtlrec's chains.** In the paper every output is an *entire-space* probability
(conversion over all impressions) and the **behavioural expectation calibrator**
α · mean(max(ŷ_t − ŷ_{t−1}, 0)) (α = 0.6 in the paper) discourages a child above its parent. mtlrec's
models instead return, for a chained task, its *conditional* logit, and everything downstream
(recommendations, explanations, ranking, `mtlrec.chain.entire_space`) multiplies along the chain.
AITM keeps that meaning: the network's own output for a chained binary task is its joint
probability ŷ_t = p(interact ∧ like), and the model returns the conditional logit of
ŷ_t / P_{t−1} (P_{t−1}: the parent's entire-space probability), clamped below 1 (`LOG_COND_MAX`), so
the product along the chain gives back ŷ_t (or just under the parent's probability where ŷ_t is
above it, the case the calibrator penalises). This rather than a hook that lets the loss read a
joint output because one meaning of ``{task: logits}`` is what lets the recommendation cache,
Explain and ranking treat every architecture alike. Training is ``chain_training =
"entire_space"``: the product (= ŷ_t) is fitted against interact·like over every row, which is
the paper's per-task loss over all impressions; the clamp is straight-through, so the child's
loss trains its own output (and the parent only through the transfer), as in the paper. A task
without a parent is trained on its own labels; a chained regression task gets the transfer but
stays conditional (masked to its parent's rows), with no calibrator term.

The calibrator is the model's `extra_loss`: one term per chained binary task, added by the
trainer to that task's training loss (validation losses are the tasks' own).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mtlrec.chain import chain_of, logit_of_log_prob
from mtlrec.models.base import EMBEDDING_STD, MultiTaskModel
from mtlrec.models.layers import MLP, Tower, after_first

# log of the largest conditional probability a chained task may output (1 - 1e-6; logit ≈ 13.8)
LOG_COND_MAX = -1e-6
CALIBRATOR_ALPHA = 0.6       # α of the behavioural expectation calibrator (the paper's value)


def calibrator_penalty(p_child: torch.Tensor, p_parent: torch.Tensor, alpha: float = CALIBRATOR_ALPHA):
    """The behavioural expectation calibrator α · mean(max(p_child − p_parent, 0)): zero when no row
    has the child's probability above its parent's."""
    return float(alpha) * torch.relu(p_child.float() - p_parent.float()).mean()


class AIT(nn.Module):
    """Adaptive Information Transfer: self-attention over (p, q) [b, d] each -> z [b, d]."""

    def __init__(self, dim: int):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.softmax = nn.Softmax(dim=1)
        self.scale = math.sqrt(dim)

    def attention(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """w [b, 2]: the weight of the transferred p (column 0) and of the task's own q (column 1)."""
        u = torch.stack([p, q], 1)
        return self.softmax((self.query(u) * self.key(u)).sum(-1) / self.scale)

    def forward(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        w = self.attention(p, q)
        return (w.unsqueeze(-1) * self.value(torch.stack([p, q], 1))).sum(1)


class _Pending:
    """The calibrator terms of the last training forward, for `AITM.extra_loss`; not model state
    (a copy of the model starts without them)."""

    def __init__(self):
        self.terms = None

    def __deepcopy__(self, memo):
        return _Pending()

    def __reduce__(self):
        return _Pending, ()


class AITM(MultiTaskModel):
    arch = "aitm"
    label = "AITM (towers + information transfer)"
    description = ("AITM: one tower per task over the shared embedding; along a chain the parent's "
                   "representation is passed to the child by an attention module")
    has_shared_towers = True          # every tower reads H = X
    chain_training = "entire_space"

    def __init__(self, fields, tasks, *, tower_dims: Sequence[int] = (64, 32),
                 calibrator_alpha: float = CALIBRATOR_ALPHA, dropout: float = 0.0, embedding_dim: int = 16,
                 dense_proj_dim: int = 32, id_dropout: float = 0.0, embedding_std: float = EMBEDDING_STD,
                 history_encoder: str = "attention"):
        tower_dims = [int(d) for d in tower_dims]
        if not tower_dims:
            raise ValueError("aitm needs at least one hidden layer per tower (tower_dims), e.g. 64, 32")
        if not float(calibrator_alpha) >= 0:
            raise ValueError(f"aitm: calibrator_alpha must be >= 0, not {calibrator_alpha}")
        super().__init__(fields, tasks, dict(tower_dims=tower_dims, calibrator_alpha=float(calibrator_alpha),
                                             dropout=float(dropout), embedding_dim=int(embedding_dim),
                                             dense_proj_dim=int(dense_proj_dim), id_dropout=float(id_dropout),
                                             embedding_std=float(embedding_std),
                                             history_encoder=str(history_encoder)))
        d = tower_dims[-1]
        self.towers = nn.ModuleList(Tower(self.input.out_dim, tower_dims, t.n_outputs, dropout) for t in self.tasks)
        index = {n: i for i, n in enumerate(self.task_names)}
        self._parent = {i: index[t.given] for i, t in enumerate(self.tasks) if getattr(t, "given", "") in index}
        # parents before children
        self._order = sorted(range(len(self.tasks)), key=lambda i: len(chain_of(self.tasks[i], self.tasks)))
        self.transfer = nn.ModuleDict({str(i): MLP(d, [d], dropout) for i in self._parent})
        self.ait = nn.ModuleDict({str(i): AIT(d) for i in self._parent})
        self._pending = _Pending()

    # ---- forward -----------------------------------------------------------------------------
    def _needed(self, tasks) -> set[int]:
        """The tasks to compute for the outputs ``tasks`` (None = all): those and their ancestors."""
        keep: set[int] = set()
        for i, name in enumerate(self.task_names):
            j = i if tasks is None or name in tasks else None
            while j is not None and j not in keep:
                keep.add(j)
                j = self._parent.get(j)
        return keep

    def _heads(self, q: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """Each computed task's own output (logits; a chained binary task's is its joint probability's)."""
        z, raw = {}, {}
        for i in self._order:
            if i not in q:
                continue
            p = self._parent.get(i)
            z[i] = q[i] if p is None else self.ait[str(i)](self.transfer[str(i)](z[p]), q[i])
            raw[i] = self.towers[i].head(z[i])
        return raw

    def _conditional(self, raw: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """The returned logits: a chained binary task's own (joint) output turned into its conditional
        logit log(ŷ_t / P_parent) (clamped below 1, straight-through); others as they are."""
        out, joint = {}, {}
        for i in self._order:
            if i not in raw:
                continue
            p, logit = self._parent.get(i), raw[i]
            if self.tasks[i].type != "binary":
                out[i] = logit
                continue
            lp = F.logsigmoid(logit.float())
            if p not in joint:                  # no parent here (a single-task baseline), or not a binary one
                out[i], joint[i] = logit, lp
                continue
            ratio = lp - joint[p]
            cond = ratio - torch.relu(ratio - LOG_COND_MAX).detach()
            joint[i] = joint[p] + cond
            out[i] = logit_of_log_prob(cond).to(logit.dtype)
        return out

    def _finish(self, q: dict[int, torch.Tensor], tasks=None) -> dict[str, torch.Tensor]:
        raw = self._heads(q)
        out = self._conditional(raw)
        if self.training and torch.is_grad_enabled():
            self._pending.terms = self._calibrator(raw)
        return {self.task_names[i]: out[i] for i in sorted(out) if tasks is None or self.task_names[i] in tasks}

    def network_from_input(self, x):
        return self._finish({i: tower.mlp(x) for i, tower in enumerate(self.towers)})

    def input_layers(self):
        return {f"tower{i}": tower.mlp[0] for i, tower in enumerate(self.towers)}

    def forward_from_first(self, pre, tasks=None):
        return self._finish({i: after_first(self.towers[i].mlp, pre[f"tower{i}"]) for i in self._needed(tasks)},
                            tasks)

    # ---- shared representation, towers ---------------------------------------------------------
    def shared_from_input(self, x):
        return x                      # the embedding is what every task shares; transfer is task to task

    def towers_from_shared(self, h, tasks=None):
        out = self.network_from_input(h)
        return out if tasks is None else {k: v for k, v in out.items() if k in tasks}

    def task_parameters(self):
        """A task's tower, with the transfer and attention that feed it from its parent."""
        tp = super().task_parameters()
        for i in self._parent:
            name = self.task_names[i]
            tp[name] += list(self.transfer[str(i)].parameters()) + list(self.ait[str(i)].parameters())
        return tp

    # ---- the behavioural expectation calibrator ---------------------------------------------------
    def _calibrator(self, raw: dict[int, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        alpha = self.hparams["calibrator_alpha"]
        terms = {self.task_names[i]: calibrator_penalty(torch.sigmoid(raw[i].float()), torch.sigmoid(raw[p].float()),
                                                         alpha)
                 for i, p in self._parent.items()
                 if self.tasks[i].type == "binary" and i in raw and p in raw}
        return terms if terms and alpha > 0 else None

    def extra_loss(self, out, labels):
        """The calibrator terms of the last training forward (the one that gave ``out``), {chained
        binary task: α · mean(max(ŷ_task − ŷ_parent, 0))}; None outside training or without a chain."""
        terms, self._pending.terms = self._pending.terms, None
        return terms
