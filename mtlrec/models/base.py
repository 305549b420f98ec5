"""The multi-task model interface and the fused input module.

``FeatureInput`` turns a feature dict (as `DeviceData.batch` makes it) into the
fused vector ``X = [X_1, ..., X_n]`` of the article (§4.1): an embedding per
categorical field (user id, item id, categorical features), the value itself per
numeric field, and a learned linear projection per dense field (precomputed text
embeddings), concatenated in field order.

``MultiTaskModel`` is the one interface every architecture implements: subclasses
build their shared part and towers and implement ``forward_from_input(X)``;
everything else (embedding, explanations' access to X and H, the towers' parameters
θ_i for the L2 term) is defined here.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import torch
from torch import nn


def _key(i: int, name: str) -> str:
    """A ModuleDict-safe key for field ``i`` (field names may contain dots or spaces)."""
    return f"f{i}_" + re.sub(r"[^0-9A-Za-z_]", "_", name)


class FeatureInput(nn.Module):
    """Feature dict -> fused input X [b, out_dim].

    Categorical codes outside ``0..vocab_size-1`` (e.g. ids unseen at preparation
    time) map to code 0, the unknown bucket.
    """

    def __init__(self, fields: Sequence, embedding_dim: int = 16, dense_proj_dim: int = 32):
        super().__init__()
        self.fields = list(fields)
        if not self.fields:
            raise ValueError("the model needs at least one input feature")
        self.embedding_dim = int(embedding_dim)
        self.dense_proj_dim = int(dense_proj_dim)
        self.embeddings = nn.ModuleDict()
        self.projections = nn.ModuleDict()
        self._plan: list[tuple[str, str, str]] = []   # (field name, kind, module key)
        widths: list[int] = []
        for i, f in enumerate(self.fields):
            key = _key(i, f.name)
            if f.kind == "categorical":
                if int(f.vocab_size) < 1:
                    raise ValueError(f"categorical field '{f.name}' has vocab_size {f.vocab_size}")
                self.embeddings[key] = nn.Embedding(int(f.vocab_size), self.embedding_dim)
                widths.append(self.embedding_dim)
            elif f.kind == "numeric":
                widths.append(1)
            elif f.kind == "dense":
                self.projections[key] = nn.Linear(int(f.dim), self.dense_proj_dim)
                widths.append(self.dense_proj_dim)
            else:
                raise ValueError(f"field '{f.name}': unknown kind '{f.kind}'")
            self._plan.append((f.name, f.kind, key))
        self.widths = widths
        self.out_dim = int(sum(widths))

    def module_for(self, name: str) -> nn.Module | None:
        """The embedding / projection of field ``name`` (None for numeric fields)."""
        for fname, kind, key in self._plan:
            if fname == name:
                if kind == "categorical":
                    return self.embeddings[key]
                return self.projections[key] if kind == "dense" else None
        raise KeyError(name)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        for name, kind, key in self._plan:
            try:
                x = features[name]
            except KeyError:
                raise KeyError(f"feature '{name}' is missing from the batch; the model expects "
                               f"{[p[0] for p in self._plan]}") from None
            if kind == "categorical":
                emb = self.embeddings[key]
                x = x.long()
                ok = (x >= 0) & (x < emb.num_embeddings)
                parts.append(emb(torch.where(ok, x, torch.zeros_like(x))))
            elif kind == "numeric":
                parts.append(x.float().reshape(-1, 1))
            else:
                parts.append(self.projections[key](x.float()))
        return torch.cat(parts, dim=-1)

    def input_groups(self) -> dict[str, list[int]]:
        """Display group -> column indices of X (every column in exactly one group)."""
        out: dict[str, list[int]] = {}
        start = 0
        for f, w in zip(self.fields, self.widths):
            out.setdefault(f.group or f.name, []).extend(range(start, start + w))
            start += w
        return out

    def field_columns(self) -> dict[str, list[int]]:
        """Field name -> column indices of X."""
        out: dict[str, list[int]] = {}
        start = 0
        for f, w in zip(self.fields, self.widths):
            out[f.name] = list(range(start, start + w))
            start += w
        return out


class MultiTaskModel(nn.Module):
    """Base of every architecture: ``forward(features) -> {task name: logits}``.

    Logits are [b] for binary/regression tasks and [b, K] for multilabel tasks.
    Subclasses set ``arch`` (their registry name), build their layers after calling
    ``super().__init__`` and implement ``forward_from_input``, ``shared_representation``
    and ``task_parameters``. ``hparams`` holds every constructor keyword so that
    ``build_model(model.arch, fields, tasks, **model.hparams)`` rebuilds the same model.
    """

    arch: str = ""
    has_shared_towers: bool = False   # True when towers_from_shared(H) works (shared-bottom)
    has_gates: bool = False           # True when gate_weights(features) works (MMoE, PLE)

    def __init__(self, fields: Sequence, tasks: Sequence, hparams: dict[str, Any]):
        super().__init__()
        self.tasks = list(tasks)
        if not self.tasks:
            raise ValueError("a multi-task model needs at least one task")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique: {names}")
        self.task_names = names
        self.hparams = dict(hparams)
        self.input = FeatureInput(fields, embedding_dim=hparams.get("embedding_dim", 16),
                                  dense_proj_dim=hparams.get("dense_proj_dim", 32))

    # ---- the interface -------------------------------------------------------------------
    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.forward_from_input(self.embed(features))

    def embed(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """The fused input X [b, d_x]."""
        return self.input(features)

    def input_groups(self) -> dict[str, list[int]]:
        return self.input.input_groups()

    def forward_from_input(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def shared_representation(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """The shared representation H [b, d_h] the towers build on."""
        return self.shared_from_input(self.embed(features))

    def shared_from_input(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def towers_from_shared(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError(
            f"the '{self.arch}' architecture has no single shared representation that all towers read "
            f"(each task mixes experts with its own gate); check model.has_shared_towers first")

    def gate_weights(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"the '{self.arch}' architecture has no gates; check model.has_gates")

    def task_parameters(self) -> dict[str, list[nn.Parameter]]:
        """Task name -> the parameters θ_i of its tower (for the L2 term λ·Σ_i ‖θ_i‖²)."""
        return {name: list(tower.parameters()) for name, tower in zip(self.task_names, self.towers)}

    # ---- helpers -------------------------------------------------------------------------
    def task(self, name: str):
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)

    def predict(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Probabilities / values per task (no gradient bookkeeping is changed: wrap in no_grad)."""
        out = self(features)
        return {t.name: t.predict(out[t.name]) for t in self.tasks}

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
