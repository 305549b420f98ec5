"""The multi-task model interface and the fused input module.

``FeatureInput`` turns a feature dict (as `DeviceData.batch` makes it) into the
fused vector ``X = [X_1, ..., X_n]`` of the article (§4.1): an embedding per
categorical field (user id, item id, categorical features), the value itself per
numeric field, a learned linear projection per dense field (precomputed text
embeddings) and, per multihot field (a multi-valued column such as genres), the mean of
the embeddings of its values (zeros when it has none), concatenated in field order.

``MultiTaskModel`` is the one interface every architecture implements: subclasses
build their shared part and towers and implement ``forward_from_input(X)``;
everything else (embedding, explanations' access to X and H, the towers' parameters
θ_i for the L2 term) is defined here.

Split first layers (fast recommendations): X is a concatenation of per-field column
blocks and every layer that reads X is affine, so for any partition of the columns
``layer(X) = (X_a·W_a + b) + X_b·W_b``. An architecture names those layers
(``input_layers``) and finishes its forward from their outputs (``forward_from_first``);
`mtlrec.serve.cache.InputSplit` precomputes one side (e.g. the item columns of every catalogue
item) once and adds the other side (one user row) per request.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from mtlrec.models.layers import linear_as_matrix


# Standard deviation of the normal the embedding table starts from (see docs/model-defaults.md:
# chosen by measurement on ml-latest-small and Census-Income; torch's own N(0, 1) overfits ids).
EMBEDDING_STD = 0.01


class FeatureInput(nn.Module):
    """Feature dict -> fused input X [b, out_dim], columns in field order.

    All categorical fields share one embedding table with a row offset per field
    (one lookup per batch instead of one per field; field j owns rows
    ``offsets[j] .. offsets[j] + vocab_size_j - 1``). Codes outside
    ``0..vocab_size-1`` (e.g. ids unseen at preparation time) map to the field's
    code 0, the unknown bucket. Numeric fields are one column each (their value);
    dense fields go through their own learned ``nn.Linear(dim, dense_proj_dim)``.
    A multihot field (0/1 per class [b, K]) is the mean of the embedding rows of its classes
    (its own table [K, embedding_dim], as a sequence feature with mean pooling): ``m·E / Σm``,
    a zero vector for a row without any class.

    ``embedding_std``: every embedding row starts from N(0, embedding_std²).

    A history field (the user's last N items before the row, `mtlrec.prep.history`: item_id codes
    [b, N], -1 = padding, and their values ``<name>:value``) embeds each history item with the
    ``item_id`` rows of the shared table plus its value times a learned vector, and pools them into
    one ``embedding_dim`` block: ``history_encoder`` "mean" (the mean over the real entries; a
    user-side block) or "attention" (target attention as in DIN, Zhou et al. KDD 2018: the candidate
    item's embedding, projected by a learned matrix, scores each history item; a softmax over the
    real entries weights them; the block then depends on the candidate too). An empty history
    gives zeros.

    ``id_dropout`` (training mode only): each row's ``user_id`` / ``item_id`` code is
    replaced by the unknown code 0 with this probability. Items held out of training
    (cold start) all have code 0; without id dropout that embedding row is never trained
    and they enter the model through an untrained vector.
    """

    ID_FIELDS = ("user_id", "item_id")

    def __init__(self, fields: Sequence, embedding_dim: int = 16, dense_proj_dim: int = 32,
                 id_dropout: float = 0.0, embedding_std: float = EMBEDDING_STD,
                 history_encoder: str = "attention"):
        super().__init__()
        self.fields = list(fields)
        if not self.fields:
            raise ValueError("the model needs at least one input feature")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"input field names must be unique: {names}")
        self.embedding_dim = int(embedding_dim)
        self.dense_proj_dim = int(dense_proj_dim)
        cat = [f for f in self.fields if f.kind == "categorical"]
        for f in self.fields:
            if f.kind not in ("categorical", "numeric", "dense", "multihot", "history"):
                raise ValueError(f"field '{f.name}': unknown kind '{f.kind}'")
            if f.kind == "categorical" and int(f.vocab_size) < 1:
                raise ValueError(f"categorical field '{f.name}' has vocab_size {f.vocab_size}")
            if f.kind in ("dense", "multihot", "history") and int(f.dim) < 1:
                raise ValueError(f"{f.kind} field '{f.name}' has dim {f.dim}")
        self.cat_names = [f.name for f in cat]
        self.num_names = [f.name for f in self.fields if f.kind == "numeric"]
        self.dense_names = [f.name for f in self.fields if f.kind == "dense"]
        vocab = [int(f.vocab_size) for f in cat]
        offsets = [sum(vocab[:j]) for j in range(len(vocab))]
        self._offsets = dict(zip(self.cat_names, offsets))
        self._vocab = dict(zip(self.cat_names, vocab))
        self.embedding = nn.Embedding(sum(vocab), self.embedding_dim) if cat else None
        self.embedding_std = float(embedding_std)
        if not self.embedding_std > 0:
            raise ValueError(f"embedding_std must be > 0, not {embedding_std}")
        if self.embedding is not None:
            nn.init.normal_(self.embedding.weight, 0.0, self.embedding_std)
        self.register_buffer("cat_offsets", torch.tensor(offsets, dtype=torch.long), persistent=False)
        self.register_buffer("cat_vocab", torch.tensor(vocab, dtype=torch.long), persistent=False)
        self.id_dropout = float(id_dropout)
        if not 0.0 <= self.id_dropout < 1.0:
            raise ValueError(f"id_dropout must be in [0, 1), not {id_dropout}")
        self.register_buffer("cat_is_id", torch.tensor([n in self.ID_FIELDS for n in self.cat_names],
                                                       dtype=torch.bool), persistent=False)
        self.projections = nn.ModuleList(nn.Linear(int(f.dim), self.dense_proj_dim)
                                         for f in self.fields if f.kind == "dense")
        self.multihot_names = [f.name for f in self.fields if f.kind == "multihot"]
        self.multihot = nn.ParameterList(
            nn.Parameter(torch.randn(int(f.dim), self.embedding_dim) * self.embedding_std)
            for f in self.fields if f.kind == "multihot")
        self._init_history(history_encoder)
        self.widths = [self.embedding_dim if f.kind in ("categorical", "multihot", "history") else
                       1 if f.kind == "numeric" else self.dense_proj_dim for f in self.fields]
        self.out_dim = int(sum(self.widths))
        # runs of consecutive fields of one kind, in field order: (kind, n_fields)
        runs: list[list] = []
        for f in self.fields:
            if f.kind in ("categorical", "numeric") and runs and runs[-1][0] == f.kind:
                runs[-1][1] += 1
            else:
                runs.append([f.kind, 1])
        self._runs = [tuple(r) for r in runs]

    def _init_history(self, encoder: str) -> None:
        self.history_names = [f.name for f in self.fields if f.kind == "history"]
        self.history_encoder = str(encoder)
        if self.history_encoder not in ("mean", "attention"):
            raise ValueError(f"history_encoder must be 'mean' or 'attention', not {encoder!r}")
        if self.history_names and "item_id" not in self._offsets:
            raise ValueError("a history input needs the item_id field (its items share its embedding rows)")
        d = self.embedding_dim
        self.history_value = nn.ParameterList(nn.Parameter(torch.zeros(d)) for _ in self.history_names)
        self.history_query = nn.ParameterList(
            nn.Parameter(torch.eye(d) + torch.randn(d, d) * 0.01) for _ in self.history_names
            if self.history_encoder == "attention")

    @property
    def attention_history(self) -> list[str]:
        """History fields whose block depends on the candidate item (target attention)."""
        return list(self.history_names) if self.history_encoder == "attention" else []

    def history_items(self, name: str, features) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedded history items [b, N, d] with their values, mask of real entries [b, N])."""
        codes = self._get(features, name).long()
        codes = codes.reshape(1, -1) if codes.dim() == 1 else codes
        mask = codes >= 0
        vocab = self._vocab["item_id"]
        codes = torch.where(mask & (codes < vocab), codes, 0) + self._offsets["item_id"]
        e = self.embedding(codes)
        value = features.get(name + ":value") if hasattr(features, "get") else None
        if value is not None:
            k = self.history_names.index(name)
            e = e + value.float().reshape(codes.shape).unsqueeze(-1) * self.history_value[k]
        return e, mask

    def history_queries(self, name: str, item_codes: torch.Tensor) -> torch.Tensor:
        """The attention query of each candidate item (its item_id code) [n, d], scaled by 1/√d."""
        codes = item_codes.long().reshape(-1)
        vocab = self._vocab["item_id"]
        codes = torch.where((codes >= 0) & (codes < vocab), codes, 0) + self._offsets["item_id"]
        w = self.history_query[self.history_names.index(name)]
        return self.embedding(codes) @ (w / float(self.embedding_dim) ** 0.5)

    @staticmethod
    def history_attention(queries: torch.Tensor, items: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Softmax weights [u, n, N] of `history_queries` [u or 1, n, d] over history items [u, N, d]
        (0 on padding; all 0 for an empty history)."""
        scores = queries @ items.transpose(-1, -2)
        # padding: a large negative (finite: an all-padding row then gives no NaN, and is zeroed below)
        scores = scores.add_(torch.where(mask, 0.0, torch.finfo(scores.dtype).min / 4).unsqueeze(-2))
        w = torch.softmax(scores, dim=-1)
        has = mask.any(dim=-1).to(w.dtype)[..., None, None]
        return w * has if torch.is_grad_enabled() else w.mul_(has)

    def _history_block(self, name: str, features) -> torch.Tensor:
        e, mask = self.history_items(name, features)
        if self.history_encoder == "mean":
            m = mask.unsqueeze(-1).float()
            return (m * e).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)
        q = self.history_queries(name, self._get(features, "item_id")).unsqueeze(1)     # [b, 1, d]
        w = self.history_attention(q, e, mask)                                         # [b, 1, N]
        return (w @ e).squeeze(1)

    def embedding_rows(self, name: str) -> torch.Tensor:
        """The embedding table of categorical field ``name`` [vocab_size, embedding_dim] (a view)."""
        if name not in self._offsets:
            raise KeyError(f"'{name}' is not a categorical input field; categorical fields: {self.cat_names}")
        o = self._offsets[name]
        return self.embedding.weight[o:o + self._vocab[name]]

    def multihot_rows(self, name: str) -> torch.Tensor:
        """The embedding table of multihot field ``name`` [classes, embedding_dim]."""
        if name not in self.multihot_names:
            raise KeyError(f"'{name}' is not a multihot input field; multihot fields: {self.multihot_names}")
        return self.multihot[self.multihot_names.index(name)]

    def _mean_pooled(self, name: str, table: torch.Tensor, features) -> torch.Tensor:
        """The mean of the embedding rows of the row's classes [b, d] (zeros: no class)."""
        m = self._get(features, name).float()
        m = m.reshape(m.shape[0] if m.dim() else 1, -1)
        return (m @ table) / m.sum(dim=1, keepdim=True).clamp_min(1.0)

    def dense_projection(self, name: str) -> nn.Linear:
        """The learned projection of dense field ``name``."""
        if name not in self.dense_names:
            raise KeyError(f"'{name}' is not a dense input field; dense fields: {self.dense_names}")
        return self.projections[self.dense_names.index(name)]

    def _get(self, features, name):
        try:
            return features[name]
        except KeyError:
            raise KeyError(f"feature '{name}' is missing from the batch; the model expects "
                           f"{[f.name for f in self.fields]}") from None

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        cat_parts: list[torch.Tensor] = []
        num_parts: list[torch.Tensor] = []
        if self.cat_names:
            codes = torch.stack([self._get(features, n).long().reshape(-1) for n in self.cat_names], dim=1)
            ok = (codes >= 0) & (codes < self.cat_vocab)
            codes = torch.where(ok, codes, 0)
            if self.training and self.id_dropout > 0:
                drop = (torch.rand(codes.shape, device=codes.device) < self.id_dropout) & self.cat_is_id
                codes = torch.where(drop, 0, codes)
            codes = codes + self.cat_offsets
            emb = self.embedding(codes)                                   # [b, n_cat, d]
            flat = emb.reshape(emb.shape[0], -1)
            sizes = [n * self.embedding_dim for k, n in self._runs if k == "categorical"]
            cat_parts = list(flat.split(sizes, dim=1)) if len(sizes) > 1 else [flat]
        if self.num_names:
            nums = torch.stack([self._get(features, n).float().reshape(-1) for n in self.num_names], dim=1)
            sizes = [n for k, n in self._runs if k == "numeric"]
            num_parts = list(nums.split(sizes, dim=1)) if len(sizes) > 1 else [nums]
        dense_parts = [proj(self._get(features, n).float()) for n, proj in zip(self.dense_names, self.projections)]
        bag_parts = [self._mean_pooled(n, tab, features) for n, tab in zip(self.multihot_names, self.multihot)]
        hist_parts = [self._history_block(n, features) for n in self.history_names]
        it = {"categorical": iter(cat_parts), "numeric": iter(num_parts), "dense": iter(dense_parts),
              "multihot": iter(bag_parts), "history": iter(hist_parts)}
        parts = [next(it[k]) for k, _ in self._runs]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def field_columns(self) -> dict[str, list[int]]:
        """Field name -> its column indices in X."""
        out: dict[str, list[int]] = {}
        start = 0
        for f, w in zip(self.fields, self.widths):
            out[f.name] = list(range(start, start + w))
            start += w
        return out

    def input_groups(self) -> dict[str, list[int]]:
        """Display group -> column indices of X (every column in exactly one group)."""
        out: dict[str, list[int]] = {}
        for f, cols in zip(self.fields, self.field_columns().values()):
            out.setdefault(f.group or f.name, []).extend(cols)
        return out

def _check_hparams(arch: str, hp: dict[str, Any]) -> None:
    """Clear errors for hyperparameter values no architecture can use."""
    p = hp.get("dropout", 0.0)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{arch}: dropout must be in [0, 1), not {p}")
    for name in ("embedding_dim", "dense_proj_dim", "n_experts", "n_shared_experts", "n_levels"):
        if name in hp and int(hp[name]) < 1:
            raise ValueError(f"{arch}: {name} must be at least 1, not {hp[name]}")
    for name in ("shared_dims", "tower_dims", "expert_dims"):
        if any(int(d) < 1 for d in hp.get(name, [])):
            raise ValueError(f"{arch}: every layer size in {name} must be at least 1, not {hp[name]}")


class MultiTaskModel(nn.Module):
    """Base of every architecture: ``forward(features) -> {task name: logits}``.

    Logits are [b] for binary/regression tasks and [b, K] for multilabel tasks.
    Subclasses set ``arch`` (their registry name), build their layers after calling
    ``super().__init__`` and implement ``network_from_input`` (X -> {task: logits} of their
    network), ``shared_representation`` and ``task_parameters``. ``forward_from_input`` is the
    network's logits plus the pair terms, when set (`set_pair_terms`: the options every
    architecture has, ``COMMON_HPARAMS``). ``hparams`` holds every constructor keyword (and the
    common options, once set) so that ``build_model(model.arch, fields, tasks, **model.hparams)``
    rebuilds the same model.
    """

    # options of every architecture, with their defaults (`set_pair_terms`, `mtlrec.models.terms`)
    COMMON_HPARAMS: dict[str, Any] = {"biases": False, "interaction": "none"}

    arch: str = ""
    has_shared_towers: bool = False   # True when towers_from_shared(H) works (shared-bottom)
    has_gates: bool = False           # True when gate_weights(features) works (MMoE, PLE)
    # how a chained task (TaskSpec.given) is learned, see mtlrec.chain: "conditional" (its own space)
    # or "entire_space" (the product along its chain against the product of labels, every row: ESMM)
    chain_training: str = "conditional"
    label: str = ""                   # the name shown in the app's architecture picker (arch when empty)
    description: str = ""             # one line: what the architecture shares (picker help, docs)

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
        if not any(getattr(f, "kind", "") == "history" for f in fields):
            self.hparams.pop("history_encoder", None)        # only a model with a history input has one
        _check_hparams(self.arch, self.hparams)
        self.input = FeatureInput(fields, embedding_dim=hparams.get("embedding_dim", 16),
                                  dense_proj_dim=hparams.get("dense_proj_dim", 32),
                                  id_dropout=hparams.get("id_dropout", 0.0),
                                  embedding_std=hparams.get("embedding_std", EMBEDDING_STD),
                                  history_encoder=hparams.get("history_encoder", "attention"))
        self.pair_terms = None

    def set_pair_terms(self, biases: bool = False, interaction: str = "none") -> None:
        """Add per-user / per-item biases and the user·item dot product to the logits of the
        regression tasks (`mtlrec.models.terms.PairTerms`); both off removes them. Recorded in
        ``hparams``."""
        from mtlrec.models.terms import PairTerms, check_options
        check_options(biases, interaction)
        self.pair_terms = (PairTerms(self.input, self.tasks, biases, interaction)
                           if biases or interaction != "none" else None)
        self.hparams.update(biases=bool(biases), interaction=str(interaction))

    # ---- the interface -------------------------------------------------------------------
    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.forward_from_input(self.embed(features))

    def embed(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """The fused input X [b, d_x]."""
        return self.input(features)

    def input_groups(self) -> dict[str, list[int]]:
        return self.input.input_groups()

    def forward_from_input(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{task: logits} of the fused input X: the network's, plus the pair terms when set."""
        out = self.network_from_input(x)
        return out if self.pair_terms is None else self.pair_terms.add(out, self.pair_terms.logits(x))

    def network_from_input(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{task: logits} of the architecture's network (without the pair terms)."""
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

    def extra_loss(self, out: dict[str, torch.Tensor], labels: dict) -> dict[str, torch.Tensor] | None:
        """Loss terms of the architecture itself beyond the tasks' losses, {task: scalar}: the trainer
        adds each to that task's training loss (so weighting strategies see it with the task), after
        the forward pass that gave ``out``. None (the default): no extra term. AITM's behavioural
        expectation calibrator is one."""
        return None

    def expert_names(self) -> list[str]:
        """The name of each column of `gate_weights`, numbered from 1 as every label the visitor
        reads shows them ("expert 1", ...); empty without gates."""
        return []

    def shared_expert_names(self) -> list[str]:
        """The name of each block of the shared representation H that is one expert's output (in the
        order H concatenates them); empty when H is not made of experts."""
        return []

    # ---- split first layers (see `mtlrec.serve.cache.InputSplit`) ------------------------
    def input_layers(self) -> dict[str, nn.Module]:
        """Name -> every layer that reads the fused input X directly, each affine in X
        (`nn.Linear`, `GroupedLinear`) with nothing nonlinear between X and it. The default
        ``{}`` means the architecture cannot be split (callers use the full forward)."""
        return {}

    def supports_split(self) -> bool:
        """True when `input_layers` / `forward_from_first` describe this model's forward: the
        architecture names its input layers, and no subclass below the one that defines
        ``forward_from_first`` changed ``forward``, ``embed`` or ``forward_from_input`` (a wrapper
        or a modified subclass gets the full forward)."""
        mro = type(self).__mro__
        owner = next(c for c in mro if "forward_from_first" in c.__dict__)
        for name in ("forward", "embed", "forward_from_input", "network_from_input"):
            definer = next(c for c in mro if name in c.__dict__)
            if definer is not owner and issubclass(definer, owner):
                return False
        return bool(self.input_layers())

    def forward_from_first(self, pre: dict[str, torch.Tensor], tasks=None) -> dict[str, torch.Tensor]:
        """{task: logits} from ``pre[name] = input_layers()[name](X)``; equals
        ``network_from_input(X)`` (the pair terms are not in it: callers add them, see
        `forward_split`). ``tasks``: a collection of task names -- only their outputs are
        computed and returned (the towers of the others are skipped); None = every task."""
        raise NotImplementedError(f"the '{self.arch}' architecture does not split after its input layers")

    def input_matrix(self) -> tuple[torch.Tensor, torch.Tensor, list[tuple[str, int, int, tuple[int, ...]]]]:
        """All input layers side by side: (W [d_x, M], b [M], layout), where layout holds
        ``(name, start, stop, shape)``: that layer's output is ``(X·W + b)[:, start:stop]``
        viewed as ``[b, *shape]`` (see `split_pre`)."""
        layers = self.input_layers()
        if not layers:
            raise NotImplementedError(f"the '{self.arch}' architecture names no input layers")
        ws, bs, layout, start = [], [], [], 0
        for name, layer in layers.items():
            w, b, shape = linear_as_matrix(layer)
            if w.shape[0] != self.input.out_dim:
                raise ValueError(f"input layer '{name}' reads {w.shape[0]} columns, X has {self.input.out_dim}")
            ws.append(w)
            bs.append(b)
            layout.append((name, start, start + w.shape[1], tuple(shape)))
            start += w.shape[1]
        return torch.cat(ws, dim=1), torch.cat(bs), layout

    @staticmethod
    def split_pre(pre: torch.Tensor, layout) -> dict[str, torch.Tensor]:
        """The per-layer outputs (views) of the stacked pre-activations ``pre`` [b, M]."""
        return {name: pre[:, a:z].view(pre.shape[0], *shape) for name, a, z, shape in layout}

    def forward_split(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``forward_from_input(x)`` computed through `input_matrix` and `forward_from_first`
        (a reference for the split path)."""
        w, b, layout = self.input_matrix()
        out = self.forward_from_first(self.split_pre(torch.addmm(b, x, w), layout))
        return out if self.pair_terms is None else self.pair_terms.add(out, self.pair_terms.logits(x))

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
