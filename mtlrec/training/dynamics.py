"""Training dynamics: how the tasks pull on the shared parameters while a model trains.

On a sample of training batches (``train.dynamics_every`` = k: about one batch in k, evenly
spaced in each epoch and at least one per epoch, see `sampled_batches`; 0 turns it off) the
trainer calls `DynamicsRecorder.batch`, which measures, per task *i*:

* ``g_i = ∂L_i/∂θ_shared``: the gradient of the task's **unweighted** mean batch loss ``L_i``
  on the **shared parameters** (every trainable parameter of the model except the task
  towers, see `shared_parameters`: embeddings, shared bottom, experts, gates);
* its norm ``‖g_i‖`` and, for every pair of tasks, the cosine ``g_i·g_j / (‖g_i‖‖g_j‖)``
  (negative: the tasks pull the shared parameters in conflicting directions);
* for MMoE / PLE (``model.has_gates``), each task's gate on the batch (PLE: its last level,
  columns the task's own experts then the shared ones): the mean entropy of its gate rows
  (0 = always one expert, ``log n_experts`` = all experts alike) and the mean share of each expert.

Method: the gradients come from ``torch.autograd.grad(L_i, shared, retain_graph=True)`` on the
*training step's own graph*, after the forward and before the backward. ``autograd.grad``
returns the gradients without writing ``.grad``, so the optimiser step, the combined loss and
its backward are exactly those of an unmeasured batch; no extra forward of the model is run.
The gates are read by a separate ``model.gate_weights`` pass under ``torch.no_grad`` in eval
mode (no dropout, no id dropout), so measuring draws no random numbers either: a run with
dynamics on trains the same model as one with them off. Under mixed precision (CUDA) the task
losses are scaled by the grad scaler's factor before ``autograd.grad`` and the results unscaled.

All per-batch numbers stay on the device; `DynamicsRecorder.epoch_end` reads them back once
and aggregates the epoch (`aggregate`) into a plain JSON record that the trainer stores as
``"dynamics"`` in the epoch's history record (history.json)::

    {"batches": 3, "every": 20,
     "grad_norm": {task: mean ‖g_i‖},
     "pairs": [{"tasks": [a, b], "cosine": mean cosine, "conflict": share of batches with cosine < 0}],
     "gates": {task: {"entropy": mean entropy, "shares": [mean share per expert]}},   # MMoE / PLE only
     "max_entropy": log(n_experts), "experts": [expert labels]}                       # MMoE / PLE only

The task loss weights are not repeated here: the epoch record has them under ``"weights"``.
Runs trained before this existed simply have no ``"dynamics"`` key.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch

DEFAULT_EVERY = 20


def shared_parameters(model) -> list[torch.nn.Parameter]:
    """The trainable parameters of ``model`` that are not in a task tower (`task_parameters`)."""
    tower = {id(p) for plist in model.task_parameters().values() for p in plist}
    return [p for p in model.parameters() if p.requires_grad and id(p) not in tower]


def gradient_gram(grads: Sequence[Sequence[torch.Tensor | None]]) -> torch.Tensor:
    """Gram matrix ``G[i, j] = g_i · g_j`` [T, T] of T gradients, each given as one tensor (or None
    for zero) per parameter, in the same parameter order for every task."""
    T = len(grads)
    if T == 0:
        return torch.zeros(0, 0)
    n_params = len(grads[0])
    G = None
    for k in range(n_params):
        parts = [g[k] for g in grads]
        ref = next((p for p in parts if p is not None), None)
        if ref is None:
            continue
        S = torch.stack([(p if p is not None else torch.zeros_like(ref)).reshape(-1).float() for p in parts])
        term = S @ S.T
        G = term if G is None else G + term
    if G is None:
        return torch.zeros(T, T)
    return G


def norms_and_cosines(G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖g_i‖ [T], cosine [T, T]) from a Gram matrix; the cosine of a zero gradient is 0."""
    G = G.double()
    n = G.diagonal().clamp_min(0).sqrt()
    denom = n[:, None] * n[None, :]
    cos = torch.where(denom > 0, G / denom.clamp_min(1e-300), torch.zeros_like(G))
    return n, cos.clamp(-1.0, 1.0)


def task_gradient_gram(losses: Sequence[torch.Tensor], params: Sequence[torch.Tensor], *,
                       scale: float = 1.0) -> torch.Tensor:
    """Gram matrix of the gradients of each loss on ``params``, without touching ``.grad``.
    The graph is kept (``retain_graph``), so the caller can still call ``backward`` on it."""
    params = list(params)
    grads = []
    for loss in losses:
        if not loss.requires_grad:
            grads.append([None] * len(params))
            continue
        g = torch.autograd.grad(loss * scale if scale != 1.0 else loss, params, retain_graph=True,
                                allow_unused=True)
        grads.append(list(g))
    G = gradient_gram(grads)
    return G / (scale * scale) if scale != 1.0 else G


def gate_entropy(gates: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of gate rows [b, n_experts] whose rows sum to 1: in [0, log n_experts]."""
    p = gates.float().clamp_min(0)
    ent = -(torch.where(p > 0, p * torch.log(p.clamp_min(1e-30)), torch.zeros_like(p))).sum(-1)
    return ent.mean()


def sampled_batches(n_batches: int, every: int) -> list[int]:
    """The batches of an epoch of ``n_batches`` that are measured: ``m = max(1, round(n / every))``
    batches, evenly spaced from the first. One measured batch costs about 1 + T/2 training steps
    (T extra backward passes through the shared layers), so k = 20 keeps the overhead near
    (1 + T/2) / 20: ~7 % for MMoE with four tasks on the sample data (bench/dynamics_overhead.py).
    Epochs shorter than ``every`` batches are still measured once (their time is mostly validation)."""
    n, k = int(n_batches), int(every)
    if n <= 0 or k <= 0:
        return []
    m = max(1, int(round(n / k)))
    return sorted({(i * n) // m for i in range(m)})


def pair_list(names: Sequence[str]) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]


def aggregate(names: Sequence[str], grams: Sequence[torch.Tensor], gates: Mapping[str, Sequence] | None = None,
              experts: Sequence[str] | None = None, every: int | None = None) -> dict:
    """The epoch record from the per-batch Gram matrices and gate numbers.

    ``gates``: {task: [(entropy, shares [n_experts]) per sampled batch]} (None or empty: no gates).
    Batches whose Gram matrix is not finite (an overflow under mixed precision) are left out."""
    names = list(names)
    out: dict = {"batches": 0}
    if every is not None:
        out["every"] = int(every)
    good = [G.double().cpu() for G in grams if bool(torch.isfinite(G).all())]
    if good:
        norms, coss = zip(*(norms_and_cosines(G) for G in good))
        N = torch.stack(norms)          # [m, T]
        C = torch.stack(coss)           # [m, T, T]
        out["batches"] = len(good)
        out["grad_norm"] = {t: float(N[:, i].mean()) for i, t in enumerate(names)}
        out["pairs"] = [{"tasks": [names[i], names[j]], "cosine": float(C[:, i, j].mean()),
                         "conflict": float((C[:, i, j] < 0).double().mean())} for i, j in pair_list(names)]
    if gates:
        rec = {}
        n_exp = None
        for t, rows in gates.items():
            if not rows:
                continue
            ent = torch.stack([torch.as_tensor(e, dtype=torch.float64).cpu() for e, _ in rows])
            sh = torch.stack([torch.as_tensor(s, dtype=torch.float64).cpu() for _, s in rows])
            n_exp = sh.shape[-1]
            rec[t] = {"entropy": float(ent.mean()), "shares": [float(v) for v in sh.mean(0)]}
        if rec:
            out["gates"] = rec
            out["max_entropy"] = math.log(n_exp) if n_exp else 0.0
            out["experts"] = list(experts) if experts and len(experts) == n_exp else \
                [f"expert {k + 1}" for k in range(n_exp or 0)]
    return out


def expert_labels(model) -> list[str] | None:
    """Names of the gate columns (`MultiTaskModel.expert_names`: ``expert k`` for MMoE; PLE: the
    task's own experts, then the shared ones); None when the model names none."""
    names = getattr(model, "expert_names", None)
    return (list(names()) or None) if callable(names) else None


class DynamicsRecorder:
    """Measures sampled batches of one training run (see the module docstring).

    ``batch(b, n_batches, features, losses)`` is called for every training batch ``b`` (0-based,
    within the epoch of ``n_batches``) with the batch's per-task losses, after the forward and
    before the backward; it measures the batches of `sampled_batches`. ``epoch_end()`` returns the
    epoch's record (None when nothing was measured) and starts the next epoch."""

    def __init__(self, model, task_names: Sequence[str], every: int = DEFAULT_EVERY, scaler=None):
        if int(every) < 1:
            raise ValueError(f"dynamics every must be >= 1, not {every}")
        self.model = model
        self.names = list(task_names)
        self.every = int(every)
        self.scaler = scaler
        self.params = shared_parameters(model)
        self.has_gates = bool(getattr(model, "has_gates", False))
        self.experts = expert_labels(model) if self.has_gates else None
        self._grams: list[torch.Tensor] = []
        self._gates: dict[str, list] = {}
        self._plan: tuple | None = None

    @classmethod
    def for_trainer(cls, trainer) -> "DynamicsRecorder | None":
        """The recorder for a `Trainer` (None when ``train.dynamics_every`` is 0 or unset)."""
        every = int(getattr(trainer.cfg, "dynamics_every", 0) or 0)
        if every <= 0:
            return None
        return cls(trainer.model, trainer.names, every, scaler=trainer.scaler)

    def batch(self, b: int, n_batches: int, features, losses: Mapping[str, torch.Tensor]) -> None:
        if self._plan is None or self._plan[0] != n_batches:
            self._plan = (n_batches, frozenset(sampled_batches(n_batches, self.every)))
        if b in self._plan[1]:
            self.measure(features, losses)

    def measure(self, features, losses: Mapping[str, torch.Tensor]) -> None:
        scale = 1.0
        if self.scaler is not None:
            scale = float(self.scaler.get_scale())
        self._grams.append(task_gradient_gram([losses[n] for n in self.names], self.params, scale=scale).detach())
        if self.has_gates:
            model = self.model
            was = model.training
            model.eval()
            try:
                with torch.no_grad():
                    gw = model.gate_weights(features)
            finally:
                model.train(was)
            for t, g in gw.items():
                self._gates.setdefault(t, []).append((gate_entropy(g), g.float().mean(0)))

    def epoch_end(self) -> dict | None:
        if not self._grams and not self._gates:
            return None
        rec = aggregate(self.names, self._grams, self._gates, self.experts, self.every)
        self._grams, self._gates = [], {}
        return rec
