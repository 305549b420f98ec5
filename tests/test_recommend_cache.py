"""The fast recommendation path (item side of the input layers cached) gives the full path's numbers.

Every registered architecture, randomly initialised, on a dataset with user fields (categorical
and numeric), item fields (categorical, numeric and a text embedding), and context fields
(categorical and numeric, at their defaults), fields of different owners interleaved in X.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from _fixtures_train import TASKS, make_dataset, with_label_stats
from mtlrec.serve import recommend as rec
from mtlrec.dataset import FeatureField, PreparedDataset
from mtlrec.models import ARCHITECTURES, build_model
from mtlrec.runs.load import Run
from mtlrec.tasks import tasks_from_config

TOL = 1e-5
TEXT_DIM = 8


def rich_dataset(n_users: int = 30, n_items: int = 70) -> PreparedDataset:
    base = with_label_stats(make_dataset(n_users=n_users, n_items=n_items, n_rows=900))
    rng = np.random.default_rng(3)
    f = {x.name: x for x in base.fields}
    fields = [f["user_id"],
              FeatureField("category", "categorical", "item", vocab_size=6),
              f["age"],
              FeatureField("hour", "categorical", "context", vocab_size=5),
              f["item_id"],
              FeatureField("year", "numeric", "item"),
              f["occupation"],
              FeatureField("overview_emb", "dense", "item", "item text", dim=TEXT_DIM),
              FeatureField("distance", "numeric", "context")]
    item_table = dict(base.item_table)
    item_table["category"] = rng.integers(1, 6, n_items).astype(np.int64)
    item_table["year"] = rng.normal(size=n_items).astype(np.float32)
    item_table["overview_emb"] = rng.normal(size=(n_items, TEXT_DIM)).astype(np.float32)
    rows = {}
    for split, cols in base.rows.items():
        n = len(cols["user_index"])
        rows[split] = {**cols, "hour": rng.integers(1, 5, n).astype(np.int64),
                       "distance": rng.normal(size=n).astype(np.float32)}
    meta = {**base.meta, "context_defaults": {"hour": 2, "distance": 0.3}}
    return PreparedDataset(fields, base.labels, rows, base.user_table, item_table, base.user_ids,
                           base.item_ids, meta, item_info=base.item_info)


@pytest.fixture(scope="module")
def ds():
    return rich_dataset()


def make_run(ds, arch: str, seed: int = 0, **hparams) -> Run:
    tasks = tasks_from_config(TASKS, ds)
    torch.manual_seed(seed)
    small = {"embedding_dim": 4, "dense_proj_dim": 5, "tower_dims": [6]}
    model = build_model(arch, ds.fields, tasks, **{**small, **hparams})
    model.eval()
    return Run(config=None, dataset=ds, model=model, history=None, metrics={}, run_dir=None, tasks=tasks)


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(np.asarray(a[k], dtype=np.float64) - np.asarray(b[k], dtype=np.float64)).max())
               for k in a)


def check_same(run, users=(0, 7, 19)):
    for u in users:
        fast = rec.score_items(run, u)
        full = rec.score_items(run, u, fast=False)
        assert max_diff(fast, full) <= TOL, (run.model.arch, u)
        for t in run.tasks:                                    # every task type, every class
            assert fast[t.name].shape == full[t.name].shape


ARCHS = sorted(ARCHITECTURES)


def test_every_architecture_splits():
    ds = rich_dataset(n_users=5, n_items=5)
    for arch in ARCHS:
        assert make_run(ds, arch).model.input_layers(), f"{arch} names no input layers: no fast path"


@pytest.mark.parametrize("arch", ARCHS)
def test_split_forward_equals_forward_from_input(ds, arch):
    run = make_run(ds, arch)
    with torch.no_grad():
        x = run.model.embed(run.device_data().candidates(4))
        a, b = run.model.forward_from_input(x), run.model.forward_split(x)
    assert max_diff({k: v.numpy() for k, v in a.items()}, {k: v.numpy() for k, v in b.items()}) <= TOL


@pytest.mark.parametrize("arch", ARCHS)
def test_fast_path_is_used_and_equals_full_path(ds, arch, monkeypatch):
    run = make_run(ds, arch)
    calls = []
    real = rec._fast_forward
    monkeypatch.setattr(rec, "_fast_forward", lambda *a: calls.append(1) or real(*a))
    check_same(run)
    assert calls and rec.item_split(run) is not None
    # a subset of items, in any order
    sub = [5, 0, 33, 12]
    fast = rec.score_items(run, 3, sub)
    full = rec.score_items(run, 3, sub, fast=False)
    assert max_diff(fast, full) <= TOL
    assert fast["genres"].shape == (4, 4)
    as_tensor = rec.score_items(run, 3, torch.tensor(sub))
    assert max_diff(as_tensor, full) <= TOL
    empty = rec.score_items(run, 3, [])
    assert empty["click"].shape == (0,) and empty["genres"].shape == (0, 4)


@pytest.mark.parametrize("arch", ARCHS)
def test_fast_path_with_blocks_equals_one_pass(ds, arch, monkeypatch):
    run = make_run(ds, arch)
    monkeypatch.setattr(rec, "CPU_CHUNK_ROWS", 16)             # 70 items: 5 blocks, the last one short
    check_same(run, users=(2,))


@pytest.mark.parametrize("arch", ARCHS)
def test_recommend_lists_identical(ds, arch, monkeypatch):
    run = make_run(ds, arch, seed=1)
    for user in ("u0", "u11", "u23"):
        fast = rec.recommend(run, user, k=10)
        monkeypatch.setattr(rec, "_fast_forward", lambda *a: None)
        full = rec.recommend(run, user, k=10)
        monkeypatch.undo()
        assert [r["item"] for r in fast] == [r["item"] for r in full]
        assert [round(r["score"], 5) for r in fast] == [round(r["score"], 5) for r in full]
        for a, b in zip(fast, full):
            for t in ("click", "like", "rating"):
                assert abs(a["tasks"][t] - b["tasks"][t]) <= TOL
            assert list(a["tasks"]["genres"]) == list(b["tasks"]["genres"])


@pytest.mark.parametrize("arch", ARCHS)
def test_cache_follows_parameter_changes(ds, arch):
    run = make_run(ds, arch)
    model = run.model
    before = rec.score_items(run, 1)
    split = rec.item_split(run)
    # an in-place change of one parameter the item side reads ...
    with torch.no_grad():
        model.input.embedding.weight.add_(0.1)
    assert rec.item_split(run) is not split
    after = rec.score_items(run, 1)
    assert max_diff(after, rec.score_items(run, 1, fast=False)) <= TOL
    assert max_diff(after, before) > 1e-4                       # the change is visible, not stale
    # ... one optimiser step over every parameter ...
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    feats, labels = run.device_data().batch("train", torch.arange(64))
    out = model(feats)
    loss = sum(out[t.name].float().pow(2).mean() for t in run.tasks)
    opt.zero_grad()
    loss.backward()
    opt.step()
    model.eval()
    check_same(run, users=(1,))
    # ... and new weights loaded into the same model
    other = make_run(ds, arch, seed=5).model
    model.load_state_dict(other.state_dict())
    check_same(run, users=(1,))
    rec.score_items(run, 1)
    assert max_diff(rec.score_items(run, 1), rec.score_items(make_run(ds, arch, seed=5), 1, fast=False)) <= TOL


@pytest.mark.parametrize("arch", ARCHS)
def test_cache_follows_item_table_edits(ds, arch):
    ds2 = rich_dataset()
    run = make_run(ds2, arch)
    rec.score_items(run, 2)
    data = run.device_data()
    data.item_table["year"][3] += 2.0                         # edited in place on the device
    data.item_table["overview_emb"][5].mul_(-1.0)
    check_same(run, users=(2,))


@pytest.mark.parametrize("arch", ARCHS)
def test_model_in_training_mode_uses_full_path(ds, arch):
    run = make_run(ds, arch, dropout=0.5)
    run.model.train()
    data = run.device_data()
    with torch.inference_mode():
        assert rec._fast_forward(run, data, run.model, 0, None) is None
    # score_items itself switches to eval mode (dropout off), and then fast == full
    check_same(run, users=(0,))


@pytest.mark.parametrize("arch", ARCHS)
def test_whatif_with_item_edits_matches_full_path(ds, arch):
    from mtlrec.serve import whatif
    run = make_run(ds, arch)
    rec.score_items(run, 4)                                    # the item cache is built and warm
    edits = {"year": 3.5, "category": "2"}
    res = whatif.whatif_scores(run, "u4", item="i9", item_edits=edits, exclude_seen=False)
    # the full path by hand: the run's candidates with item 9's features edited
    data = run.device_data()
    feats = {k: v.clone() for k, v in data.candidates(4).items()}
    feats["year"][9] = 3.5
    feats["category"][9] = 2
    with torch.inference_mode():
        out = run.model(feats)
    full = {t.name: t.predict(out[t.name]).float().numpy() for t in run.tasks}
    assert max_diff(res["preds"], full) <= TOL
    plain = rec.score_items(run, 4)
    assert max_diff({k: v[9] for k, v in plain.items()}, {k: v[9] for k, v in full.items()}) > 1e-6
    # the what-if left the run's own catalogue (and its cache) alone
    assert max_diff(plain, rec.score_items(run, 4, fast=False)) <= TOL
    others = [i for i in range(len(ds.item_ids)) if i != 9]
    assert max_diff({k: v[others] for k, v in plain.items()}, {k: v[others] for k, v in full.items()}) <= TOL


def test_pair_score_uses_the_same_numbers(ds):
    run = make_run(ds, "mmoe")
    p = rec.pair_score(run, "u3", "i17")
    full = rec.score_items(run, 3, fast=False)
    score = rec.fuse(run, full)
    assert abs(p["score"] - float(score[17])) <= TOL


def test_wrappers_and_changed_subclasses_use_the_full_path(ds):
    """A model that is no MultiTaskModel, or a subclass that changes the forward after the
    architecture named its input layers, is scored by its own forward."""
    from mtlrec.models.mmoe import MMoE
    run = make_run(ds, "mmoe")

    class Doubled(MMoE):
        def forward_from_input(self, x):
            return {k: 2 * v for k, v in super().forward_from_input(x).items()}

    class Wrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, feats):
            return {k: v + 1.0 for k, v in self.inner(feats).items()}

    own = {k: v for k, v in run.model.hparams.items() if k not in MMoE.COMMON_HPARAMS}   # set by build_model
    doubled = Doubled(ds.fields, run.tasks, **own)
    doubled.load_state_dict(run.model.state_dict())
    assert run.model.supports_split() and not doubled.supports_split()
    for model in (doubled.eval(), Wrapper(run.model).eval()):
        r = Run(config=None, dataset=ds, model=model, history=None, metrics={}, run_dir=None, tasks=run.tasks)
        assert rec.item_split(r) is None
        assert max_diff(rec.score_items(r, 2), rec.score_items(r, 2, fast=False)) == 0.0
