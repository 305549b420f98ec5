"""Scoring users against the whole catalogue: the item-side cache and tiles of users × items.

Item-side cache (`item_split`): everything that depends only on the item side -- the embedded
item fields and their share of every input layer (``model.input_layers()``) -- is computed once
per model and catalogue (`mtlrec.serve.cache.InputSplit`, keyed to the model's input parameters
and the item tables) and reused by every user: a user adds their own share (user fields, context
defaults) and the rest of the network runs (``model.forward_from_first``). The same numbers as the
full forward up to float rounding (~1e-6). `mtlrec.serve.recommend` (one user per request) and
`mtlrec.ranking` (many users, `score_tile`) both read it.

`score_tile` scores a few users against a block of items in one pass -- through the cache when
the model splits, else through the model's own forward over `DeviceData.candidates` -- and only
for the tasks asked for, so a caller that streams over users and items never holds more than one
tile's intermediates.
"""
from __future__ import annotations

import weakref

import numpy as np

# model -> _ItemSplit. Weak keys: a model that is dropped takes its cache with it.
_ITEM_SPLITS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

# items embedded at a time while the cache is built (the embedded X of the whole catalogue is
# never made at once: only the cache itself is catalogue-sized)
BUILD_ROWS = 16384


class _ItemSplit:
    """The model's input layers with the item columns of every catalogue item precomputed
    (`mtlrec.serve.cache.InputSplit`), plus what it was computed from (`_cache_key`)."""

    def __init__(self, key, data, split):
        self.key = key
        self.data_ref = weakref.ref(data)
        self.split = split


def _item_columns(model) -> list[int] | None:
    """X columns of the item-owned fields, or None when some field's owner is unknown."""
    cols: list[int] = []
    fields = model.input.fields
    for f, c in zip(fields, model.input.field_columns().values()):
        owner = getattr(f, "owner", None)
        if owner not in ("user", "item", "context"):
            return None
        if owner == "item":
            cols.extend(c)
    return cols


def _version(t) -> int:
    # tensors made under torch.inference_mode have no version counter (and can only be changed
    # in place under inference_mode); their storage still identifies them
    return -1 if t.is_inference() else t._version


def _cache_key(model, data) -> tuple:
    """What the item part depends on: the input module and the input layers (which modules, and
    each parameter's and buffer's storage and in-place version: an optimiser step,
    ``load_state_dict`` or ``.to()`` change it) and the item tables (storage and version). The
    rest of the network runs live on every request, so its parameters are not part of the key."""
    layers = model.input_layers()
    tensors = [*model.input.parameters(), *model.input.buffers(),
               *(p for layer in layers.values() for p in layer.parameters())]
    state = (id(model.input), tuple(id(layer) for layer in layers.values()),
             tuple((t.data_ptr(), _version(t)) for t in tensors))
    items = tuple((k, t.data_ptr(), _version(t)) for k, t in data.item_table.items())
    return state, items, id(data)


def item_split(model, data, keep: bool = True):
    """The `InputSplit` of ``model`` over ``data``'s catalogue (item columns precomputed for every
    item), cached per model and rebuilt when the parameters or the item tables change; None when
    the model does not split (no ``input_layers``) or the data has no item fields. ``keep=False``
    uses a valid cached one but does not cache a new one (a one-off pass, e.g. the ranking at the
    end of a training, leaves no catalogue-sized cache behind)."""
    supports = getattr(model, "supports_split", None)     # models outside MultiTaskModel: full path
    if not data.item_table or supports is None or not supports():
        return None
    key = _cache_key(model, data)
    entry = _ITEM_SPLITS.get(model)
    if entry is not None and entry.key == key and entry.data_ref() is data:
        return entry.split
    cols = _item_columns(model)
    if cols is None:
        return None
    import torch

    from mtlrec.serve.cache import HistoryPair, InputSplit

    def items_x(start, stop):                  # the user part of these rows is never used
        return model.embed(data.candidates(0, torch.arange(start, stop, device=data.device)))
    with torch.inference_mode():
        pair = None
        if model.input.attention_history:      # history blocks that depend on the candidate item
            pair = HistoryPair(model, data.item_table["item_id"], model.input_matrix()[0])
        split = InputSplit(model, items_x, cols, n_rows=len(data.ds.item_ids), pair=pair)
    if keep:
        _ITEM_SPLITS[model] = _ItemSplit(key, data, split)
    return split


def user_rows(model, data, users) -> "torch.Tensor":
    """The fused input X of each user in ``users`` (user fields, context defaults; the item
    columns are those of item 0 and never read through the cache) [len(users), d_x]."""
    import torch
    return torch.cat([model.embed(data.candidates(int(u), [0])) for u in users])


def score_tile(model, data, split, users, start: int, stop: int, tasks, x_users=None) -> dict[str, np.ndarray]:
    """{task name: predictions [len(users), stop - start] (multilabel: [..., K])} of ``tasks`` (`TaskSpec`s; probabilities
    of binary tasks, a chained one's in the entire space: `mtlrec.chain.scored`) for every user of ``users`` against items ``start .. stop - 1``, in one pass.

    ``split``: `item_split` of the model (None: the model's own forward over the candidates);
    ``x_users``: `user_rows` of ``users``, when the caller has them. Run under
    ``torch.inference_mode()`` with the model in eval mode."""
    import torch

    from mtlrec.chain import scored, with_ancestors
    all_tasks = list(getattr(model, "tasks", None) or tasks)
    names = [t.name for t in tasks]
    if split is not None:
        x = user_rows(model, data, users) if x_users is None else x_users
        out = split.forward_tile(x, start, stop, tasks=with_ancestors(names, all_tasks),
                                 user=data.user_histories(users))
    else:
        items = torch.arange(start, stop, device=data.device)
        parts = [data.candidates(int(u), items) for u in users]
        feats = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        # [users, items] per task, as forward_tile gives them (a multilabel task: [users, items, K])
        out = {k: v.reshape(len(users), stop - start, *v.shape[1:]) for k, v in model(feats).items()}
    return {n: p.cpu().numpy() for n, p in scored(all_tasks, out, names).items()}
