"""Building blocks: MLP blocks, softmax gates and per-task towers.

Every activation is its own `nn.Module` instance, used once, and nothing is
in-place: SHAP's DeepExplainer hooks modules and needs exactly that.
"""
from __future__ import annotations

from typing import Sequence

import math

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


class GroupedLinear(nn.Module):
    """``n`` independent linear maps evaluated in one batched product.

    Input [b, d_in] (the same input for all ``n``) or [b, n, d_in] (one input each);
    output [b, n, d_out]. Map ``e`` is initialised like ``nn.Linear(d_in, d_out)``.
    """

    def __init__(self, n: int, in_dim: int, out_dim: int):
        super().__init__()
        self.n, self.in_dim, self.out_dim = int(n), int(in_dim), int(out_dim)
        bound = 1.0 / math.sqrt(self.in_dim)
        self.weight = nn.Parameter(torch.empty(self.n, self.in_dim, self.out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(self.n, self.out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            # shared input: one [b, d_in] x [d_in, n*d_out] product (bias fused) instead of an
            # einsum, which lowers to a batched product with copies (measured ~1.3x slower on CPU)
            w = self.weight.permute(1, 0, 2).reshape(self.in_dim, self.n * self.out_dim)
            return torch.addmm(self.bias.reshape(-1), x, w).view(x.shape[0], self.n, self.out_dim)
        # one input per map: one batched product over the expert axis, bias fused; the result is
        # a [b, n, d_out] view of an expert-major [n, b, d_out] tensor. Callers that stack the
        # inputs expert-major (``torch.stack(xs, 0).transpose(0, 1)``, as `CGCLevel`) save a copy
        # (measured ~2.5x faster than einsum, which permutes to and from expert-major itself)
        return torch.baddbmm(self.bias.unsqueeze(1), x.transpose(0, 1), self.weight).transpose(0, 1)

    def subset(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Maps ``idx`` only: x [b, len(idx), d_in] (one input each) -> [b, len(idx), d_out], map
        ``idx[j]`` on ``x[:, j]`` (the same batched product as `forward`, on fewer maps)."""
        w, b = self.weight.index_select(0, idx), self.bias.index_select(0, idx)
        return torch.baddbmm(b.unsqueeze(1), x.transpose(0, 1), w).transpose(0, 1)

    def as_matrix(self) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
        """(W [d_in, n*d_out], b [n*d_out], (n, d_out)): on a shared input ``x`` [b, d_in] the
        output is ``(x @ W + b).view(b, n, d_out)``."""
        w = self.weight.permute(1, 0, 2).reshape(self.in_dim, self.n * self.out_dim)
        return w, self.bias.reshape(-1), (self.n, self.out_dim)

    def extra_repr(self) -> str:
        return f"n={self.n}, in_dim={self.in_dim}, out_dim={self.out_dim}"


def linear_as_matrix(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """(W [d_in, m], b [m], output shape after the batch axis) of a layer that is affine in its
    input: ``layer(x) == (x @ W + b).view(b, *shape)``. `nn.Linear` and anything with an
    ``as_matrix()`` method (`GroupedLinear`)."""
    as_matrix = getattr(layer, "as_matrix", None)
    if as_matrix is not None:
        return as_matrix()
    if isinstance(layer, nn.Linear):
        b = layer.bias if layer.bias is not None else layer.weight.new_zeros(layer.out_features)
        return layer.weight.t(), b, (layer.out_features,)
    raise TypeError(f"{type(layer).__name__} is not an affine layer (nn.Linear or one with as_matrix())")


def after_first(seq: nn.Sequential, pre: torch.Tensor) -> torch.Tensor:
    """The rest of a Sequential block (``MLP``, ``ExpertBank``, ``Gate``) from its first layer's
    output ``pre``: ``after_first(seq, seq[0](x)) == seq(x)``."""
    h = pre
    for i, m in enumerate(seq):
        if i:
            h = m(h)
    return h


class ExpertBank(nn.Sequential):
    """``n`` expert MLPs (``[GroupedLinear -> ReLU (-> Dropout)] * len(dims)``) run together.

    Same maths as ``n`` separate `MLP`s, but one batched product per layer instead of
    ``n`` small ones. Input [b, d_in] (shared) or [b, n, d_in]; output [b, n, dims[-1]];
    expert ``e``'s output is ``out[:, e]``.
    """

    def __init__(self, in_dim: int, n: int, dims: Sequence[int], dropout: float = 0.0):
        layers: list[nn.Module] = []
        d = int(in_dim)
        for h in dims:
            layers.append(GroupedLinear(n, d, int(h)))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = int(h)
        super().__init__(*layers)
        self.n, self.out_dim = int(n), d

    def subset(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Experts ``idx`` only: x [b, len(idx), d_in] (one input each) -> [b, len(idx), dims[-1]]."""
        for m in self:
            if isinstance(m, GroupedLinear):
                x = m.subset(x, idx)
            elif isinstance(m, nn.ReLU) and not torch.is_grad_enabled():
                x = x.relu_()           # scoring: on the fresh output of the layer before
            else:
                x = m(x)
        return x


class Gate(nn.Sequential):
    """Softmax gate ``softmax(W x + b)`` over ``n`` experts: output [b, n], rows sum to 1."""

    def __init__(self, in_dim: int, n: int):
        super().__init__(nn.Linear(int(in_dim), int(n)), nn.Softmax(dim=-1))

    def from_pre(self, pre: torch.Tensor) -> torch.Tensor:
        """The gate weights from the linear layer's output ``pre`` = ``self[0](x)``: the same
        softmax as ``self(x)``, taken over the transposed [n, b] layout (torch's CPU softmax is
        ~4x slower on a last axis of a few columns); a [b, n] view whose columns are contiguous."""
        return torch.softmax(pre.t(), dim=0).t()

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """``self(x)``; without autograd through `from_pre` (faster). With autograd the modules run
        as they are (SHAP's DeepExplainer hooks the Softmax module)."""
        return self(x) if torch.is_grad_enabled() else self.from_pre(self[0](x))


def mix(gate: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """Gate-weighted sum of expert outputs: gate [b, n], experts [b, n, d] -> [b, d].

    A broadcast product and a sum over the (small) expert axis: same maths as
    ``bmm(gate[:, None], experts)`` but without b tiny matrix products (~5x faster on CPU).
    Without autograd (scoring) one multiply-add per expert instead: no [b, n, d] temporary and
    no broadcast over the last axis (~3x faster on CPU; the same sum up to rounding)."""
    if torch.is_grad_enabled():
        return (gate.unsqueeze(-1) * experts).sum(1)
    out = gate[:, :1] * experts[:, 0]
    for e in range(1, experts.shape[1]):
        out.addcmul_(gate[:, e:e + 1], experts[:, e])
    return out


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
        return self.head(self.mlp(h))

    def head(self, z: torch.Tensor) -> torch.Tensor:
        """The output layer on a hidden representation ``z`` [b, mlp.out_dim] (the logits)."""
        y = self.out(z)
        return y.squeeze(-1) if self.n_outputs == 1 else y

    def from_first(self, pre: torch.Tensor) -> torch.Tensor:
        """``self(h)`` from its first layer's output ``pre = self.mlp[0](h)`` (needs a hidden layer)."""
        return self.head(after_first(self.mlp, pre))
