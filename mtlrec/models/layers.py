"""Building blocks: MLP blocks, softmax gates and per-task towers.

Every activation is its own `nn.Module` instance, used once, and nothing is
in-place: SHAP's DeepExplainer hooks modules and needs exactly that.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class MLP(nn.Sequential):
    """``[Linear -> ReLU (-> Dropout)] * len(dims)``; ``out_dim`` is ``dims[-1]`` (``in_dim`` if empty)."""

    def __init__(self, in_dim: int, dims: Sequence[int], dropout: float = 0.0):
        layers: list[nn.Module] = []
        d = int(in_dim)
        for h in dims:
            layers.append(nn.Linear(d, int(h)))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = int(h)
        super().__init__(*layers)
        self.out_dim = d


class Gate(nn.Sequential):
    """Softmax gate ``softmax(W x + b)`` over ``n`` experts: output [b, n], rows sum to 1."""

    def __init__(self, in_dim: int, n: int):
        super().__init__(nn.Linear(int(in_dim), int(n)), nn.Softmax(dim=-1))


def mix(gate: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """Gate-weighted sum of expert outputs: gate [b, n], experts [b, n, d] -> [b, d]."""
    return torch.bmm(gate.unsqueeze(1), experts).squeeze(1)


class Tower(nn.Module):
    """One task's tower ``f_i(H; θ_i)``: an MLP then a linear output layer (the logits).

    Output [b] when ``n_outputs == 1`` (binary, regression), [b, K] otherwise.
    """

    def __init__(self, in_dim: int, dims: Sequence[int], n_outputs: int = 1, dropout: float = 0.0):
        super().__init__()
        self.mlp = MLP(in_dim, dims, dropout)
        self.out = nn.Linear(self.mlp.out_dim, int(n_outputs))
        self.n_outputs = int(n_outputs)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.out(self.mlp(h))
        return y.squeeze(-1) if self.n_outputs == 1 else y
