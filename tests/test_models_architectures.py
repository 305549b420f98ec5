"""Architectures: shapes, the explanation contract (X, H, groups, distinct activations), learning."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mtlrec.dataset import FeatureField
from mtlrec.metrics import evaluate_task
from mtlrec.models import ARCHITECTURES, HPARAM_HELP, architecture_hparams, build_model
from mtlrec.tasks import TaskSpec
from mtlrec.weighting import get_weighting, total_loss

ARCHS = sorted(ARCHITECTURES)




SMALL = {"shared_bottom": dict(shared_dims=[32, 16], tower_dims=[8]),
         "mmoe": dict(n_experts=3, expert_dims=[16], tower_dims=[8]),
         "ple": dict(n_levels=2, n_shared_experts=2, n_specific_experts=1, expert_dims=[16], tower_dims=[8]),
         "esmm": dict(tower_dims=[16, 8]),
         "aitm": dict(tower_dims=[16, 8])}

FIELDS = [FeatureField("user_id", "categorical", "user", group="user id", vocab_size=30),
          FeatureField("item_id", "categorical", "item", group="item id", vocab_size=20),
          FeatureField("age", "numeric", "user"),
          FeatureField("income", "numeric", "user"),
          FeatureField("item_text", "dense", "item", group="item text", dim=6)]
TASKS = [TaskSpec("click", "binary"), TaskSpec("like", "binary"), TaskSpec("rating", "regression"),
         TaskSpec("genres", "multilabel", n_outputs=4)]


def synthetic(n: int, seed: int):
    """Features and labels of a small problem with correlated tasks driven by the features."""
    g = torch.Generator().manual_seed(seed)
    user = torch.randint(0, 30, (n,), generator=g)
    item = torch.randint(0, 20, (n,), generator=g)
    age, income = torch.randn(n, generator=g), torch.randn(n, generator=g)
    text = torch.randn(n, 6, generator=g)
    gu = torch.Generator().manual_seed(1234)      # fixed per-user / per-item effects across splits
    ub, ib = torch.randn(30, generator=gu), torch.randn(20, generator=gu)
    z = 1.5 * age - income + ub[user] + ib[item] + text[:, 0]
    noise = lambda: 0.5 * torch.randn(n, generator=g)  # noqa: E731
    labels = {"click": (z + noise() > 0).float(),
              "like": (z + 0.8 * text[:, 1] + noise() > 0.5).float(),
              "rating": z + noise(),
              "genres": (text[:, 2:6] + 0.3 * torch.randn(n, 4, generator=g) > 0).float()}
    feats = {"user_id": user, "item_id": item, "age": age, "income": income, "item_text": text}
    return feats, labels


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_shapes_per_task_type(arch):
    torch.manual_seed(0)
    m = build_model(arch, FIELDS, TASKS, **SMALL[arch])
    feats, _ = synthetic(7, 0)
    out = m(feats)
    assert set(out) == {"click", "like", "rating", "genres"}
    assert out["click"].shape == (7,) and out["rating"].shape == (7,)
    assert out["genres"].shape == (7, 4)
    assert m.arch == arch


@pytest.mark.parametrize("arch", ARCHS)
def test_rebuild_from_arch_and_hparams_gives_same_model(arch):
    torch.manual_seed(0)
    m = build_model(arch, FIELDS, TASKS, **SMALL[arch])
    m2 = build_model(m.arch, FIELDS, TASKS, **m.hparams)
    m2.load_state_dict(m.state_dict())
    feats, _ = synthetic(5, 1)
    m.eval(), m2.eval()
    for k, v in m(feats).items():
        assert torch.equal(v, m2(feats)[k])
    # hparams hold the architecture's own defaults too, and are JSON-friendly
    assert set(m.hparams) == set(architecture_hparams(arch))
    assert set(m.hparams) <= set(HPARAM_HELP)
    import json
    json.dumps(m.hparams)


@pytest.mark.parametrize("arch", ARCHS)
def test_deterministic_given_seed(arch):
    feats, _ = synthetic(5, 2)
    outs = []
    for _ in range(2):
        torch.manual_seed(42)
        outs.append(build_model(arch, FIELDS, TASKS, **SMALL[arch])(feats)["click"])
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_from_input_matches_forward_and_groups_cover_x(arch):
    torch.manual_seed(0)
    m = build_model(arch, FIELDS, TASKS, **SMALL[arch]).eval()
    feats, _ = synthetic(6, 3)
    x = m.embed(feats)
    direct, via_x = m(feats), m.forward_from_input(x)
    for k in direct:
        assert torch.allclose(direct[k], via_x[k])
    groups = m.input_groups()
    assert set(groups) == {"user id", "item id", "age", "income", "item text"}
    cols = sorted(c for cs in groups.values() for c in cs)
    assert cols == list(range(x.shape[1]))          # every column exactly once
    assert len(groups["item text"]) == m.hparams["dense_proj_dim"]   # learned projection width
    h = m.shared_representation(feats)
    assert h.dim() == 2 and h.shape[0] == 6


@pytest.mark.parametrize("arch", ARCHS)
def test_activations_are_distinct_modules_each_called_once(arch):
    m = build_model(arch, FIELDS, TASKS, **SMALL[arch])
    acts = [mod for _, mod in m.named_modules(remove_duplicate=False)
            if isinstance(mod, (nn.ReLU, nn.Sigmoid, nn.Softmax))]
    assert acts and len({id(a) for a in acts}) == len(acts)
    assert not any(getattr(a, "inplace", False) for a in acts)
    calls: dict[int, int] = {}
    hooks = [a.register_forward_hook(lambda mod, i, o: calls.__setitem__(id(mod), calls.get(id(mod), 0) + 1))
             for a in acts]
    m(synthetic(4, 4)[0])
    for h in hooks:
        h.remove()
    assert set(calls.values()) == {1}             # none reused within one forward pass


def test_gates_and_shared_towers_capabilities():
    feats, _ = synthetic(5, 5)
    sb = build_model("shared_bottom", FIELDS, TASKS, **SMALL["shared_bottom"]).eval()
    assert sb.has_shared_towers and not sb.has_gates
    h = sb.shared_representation(feats)
    assert h.shape == (5, 16)
    assert torch.allclose(sb.towers_from_shared(h)["click"], sb(feats)["click"])
    with pytest.raises(NotImplementedError, match="no gates"):
        sb.gate_weights(feats)
    mm = build_model("mmoe", FIELDS, TASKS, **SMALL["mmoe"])
    assert mm.has_gates and not mm.has_shared_towers
    gw = mm.gate_weights(feats)
    assert set(gw) == {t.name for t in TASKS} and gw["click"].shape == (5, 3)
    assert torch.allclose(gw["rating"].sum(1), torch.ones(5))
    assert mm.shared_representation(feats).shape == (5, 3 * 16)
    with pytest.raises(NotImplementedError, match="has_shared_towers"):
        mm.towers_from_shared(torch.zeros(5, 48))
    ple = build_model("ple", FIELDS, TASKS, **SMALL["ple"])
    gw = ple.gate_weights(feats)
    assert gw["genres"].shape == (5, 1 + 2)
    first = ple.gate_weights(feats, level=0)
    assert first["genres"].shape == (5, 3) and not torch.allclose(first["genres"], gw["genres"])
    with pytest.raises(IndexError, match="2 levels"):
        ple.gate_weights(feats, level=2)
    assert ple.shared_representation(feats).shape == (5, 2 * 16)


@pytest.mark.parametrize("arch", ARCHS)
def test_task_parameters_are_the_towers(arch):
    m = build_model(arch, FIELDS, TASKS, **SMALL[arch])
    tp = m.task_parameters()
    assert set(tp) == {t.name for t in TASKS}
    ids = [id(p) for ps in tp.values() for p in ps]
    assert len(ids) == len(set(ids))                      # towers do not share parameters
    emb = {id(p) for p in m.input.parameters()}
    assert not emb & set(ids)                              # the input module is not a tower
    # λ·Σ‖θ_i‖² adds exactly the towers' squared norm
    losses = {t.name: torch.tensor(0.0) for t in TASKS}
    w = get_weighting("static", TASKS)
    expected = sum(float((p.detach() ** 2).sum()) for ps in tp.values() for p in ps)
    assert float(total_loss(m, losses, w, l2=0.5).detach()) == pytest.approx(0.5 * expected, rel=1e-5)


def test_unknown_category_codes_map_to_the_unknown_bucket():
    m = build_model("shared_bottom", FIELDS, TASKS, **SMALL["shared_bottom"]).eval()
    feats, _ = synthetic(3, 6)
    bad = dict(feats, user_id=torch.tensor([0, 999, -5]))
    x = m.embed(bad)
    unk = m.input.embedding_rows("user_id")[0]
    cols = m.input_groups()["user id"]
    for r in range(3):
        assert torch.allclose(x[r, cols], unk)


def test_unknown_architecture_and_hparam_are_clear_errors():
    with pytest.raises(ValueError, match="shared_bottom.*mmoe|mmoe.*shared_bottom"):
        build_model("transformer", FIELDS, TASKS)
    with pytest.raises(ValueError, match="n_experts"):
        build_model("shared_bottom", FIELDS, TASKS, n_experts=3)


@pytest.mark.parametrize("arch", ARCHS)
def test_each_architecture_learns_every_task(arch):
    torch.manual_seed(0)
    train_f, train_y = synthetic(1500, 10)
    test_f, test_y = synthetic(600, 11)
    m = build_model(arch, FIELDS, TASKS, **SMALL[arch])
    w = get_weighting("static", TASKS)
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        idx = torch.randint(0, 1500, (256,), generator=g)
        out = m({k: v[idx] for k, v in train_f.items()})
        losses = {t.name: t.loss(out[t.name], train_y[t.name][idx]) for t in TASKS}
        loss = total_loss(m, losses, w, l2=1e-4)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        pred = m.predict(test_f)
    for t in TASKS:
        res = evaluate_task(t, test_y[t.name].numpy(), pred[t.name].numpy())
        if t.type == "binary":
            assert res["auc"] > 0.75, (t.name, res)
        elif t.type == "regression":   # beats predicting the mean
            assert res["rmse"] < 0.8 * float(test_y[t.name].std()), (t.name, res)
        else:
            assert res["micro_auc"] > 0.7, (t.name, res)


def test_fused_input_columns_follow_field_order_with_mixed_kinds():
    fields = [FeatureField("age", "numeric", "user"),
              FeatureField("user_id", "categorical", "user", vocab_size=5),
              FeatureField("item_id", "categorical", "item", vocab_size=7),
              FeatureField("item_text", "dense", "item", dim=3),
              FeatureField("price", "numeric", "item"),
              FeatureField("hour", "numeric", "context"),
              FeatureField("city", "categorical", "context", vocab_size=4)]
    m = build_model("shared_bottom", fields, [TaskSpec("click", "binary")], embedding_dim=4, dense_proj_dim=2,
                    shared_dims=[8], tower_dims=[4])
    f = {"age": torch.tensor([0.5, -1.0]), "user_id": torch.tensor([1, 4]), "item_id": torch.tensor([6, 0]),
         "item_text": torch.randn(2, 3), "price": torch.tensor([2.0, 3.0]), "hour": torch.tensor([7.0, 8.0]),
         "city": torch.tensor([3, 2])}
    x = m.embed(f).detach()
    cols = m.input.field_columns()
    assert [len(cols[n]) for n in cols] == [1, 4, 4, 2, 1, 1, 4] and x.shape == (2, 17)
    for fld in fields:
        got = x[:, cols[fld.name]]
        if fld.kind == "numeric":
            want = f[fld.name].unsqueeze(1)
        elif fld.kind == "categorical":
            want = m.input.embedding_rows(fld.name)[f[fld.name]]
        else:
            want = m.input.dense_projection(fld.name)(f[fld.name])
        assert torch.allclose(got, want.detach()), fld.name


@pytest.mark.parametrize("bad, match", [(dict(dropout=1.0), "dropout"), (dict(embedding_dim=0), "embedding_dim"),
                                        (dict(tower_dims=[8, 0]), "tower_dims")])
def test_bad_hyperparameter_values_are_clear(bad, match):
    for arch in ARCHS:
        with pytest.raises(ValueError, match=match):
            build_model(arch, FIELDS, TASKS, **bad)
    with pytest.raises(ValueError, match="shared layer"):
        build_model("shared_bottom", FIELDS, TASKS, shared_dims=[])
    with pytest.raises(ValueError, match="n_experts"):
        build_model("mmoe", FIELDS, TASKS, n_experts=0)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_id_dropout_trains_the_unknown_id_that_cold_items_use_and_is_off_in_eval(arch):
    torch.manual_seed(0)
    tasks = [TaskSpec("click", "binary"), TaskSpec("rating", "regression")]
    feats, labels = synthetic(256, seed=1)
    feats["item_id"] = torch.randint(1, 20, (256,))          # every training row has a known item id
    for p, unknown_row_moves in ((0.0, False), (0.3, True)):
        torch.manual_seed(0)
        model = build_model(arch, FIELDS, tasks, id_dropout=p)
        assert model.hparams["id_dropout"] == p
        before = model.input.embedding_rows("item_id")[0].detach().clone()
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        model.train()
        for _ in range(5):
            out = model(feats)
            loss = sum(t.loss(out[t.name], labels[t.name]) for t in tasks)
            opt.zero_grad()
            loss.backward()
            opt.step()
        moved = not torch.equal(model.input.embedding_rows("item_id")[0], before)
        assert moved is unknown_row_moves
    model.eval()   # no randomness at inference: two passes agree
    a, b = model(feats), model(feats)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="id_dropout"):
        build_model(arch, FIELDS, tasks, id_dropout=1.5)
