"""SHAP explanations of each architecture: additivity in logit space, an ignored feature gets
nothing, the explained model is never modified (also when an explanation fails)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mtlrec.dataset import FeatureField
from mtlrec.explain import core
from mtlrec.explain.core import ModelExplainer, state_snapshot
from mtlrec.models import ARCHITECTURES, build_model
from mtlrec.tasks import TaskSpec

ARCHS = sorted(ARCHITECTURES)
SMALL = {"shared_bottom": dict(shared_dims=[32, 16], tower_dims=[8], embedding_dim=4),
         "mmoe": dict(n_experts=3, expert_dims=[16], tower_dims=[8], embedding_dim=4),
         "ple": dict(n_levels=2, n_shared_experts=2, n_specific_experts=1, expert_dims=[16], tower_dims=[8],
                     embedding_dim=4),
         "esmm": dict(tower_dims=[16, 8], embedding_dim=4),
         "aitm": dict(tower_dims=[16, 8], embedding_dim=4)}
FIELDS = [FeatureField("user_id", "categorical", "user", group="user id", vocab_size=30),
          FeatureField("item_id", "categorical", "item", group="item id", vocab_size=20),
          FeatureField("age", "numeric", "user"),
          FeatureField("noise", "numeric", "context"),
          FeatureField("genre", "categorical", "item", vocab_size=5),
          FeatureField("item_text", "dense", "item", group="item text", dim=6)]
TASKS = [TaskSpec("click", "binary"), TaskSpec("like", "binary"), TaskSpec("rating", "regression"),
         TaskSpec("genres", "multilabel", n_outputs=3)]




def features(n: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"user_id": torch.randint(0, 30, (n,), generator=g), "item_id": torch.randint(0, 20, (n,), generator=g),
            "age": torch.randn(n, generator=g), "noise": 3 * torch.randn(n, generator=g),
            "genre": torch.randint(0, 5, (n,), generator=g), "item_text": torch.randn(n, 6, generator=g)}


def make_model(arch: str, seed: int = 0, ignore_noise: bool = True):
    """A model with lively random weights; the 'noise' column of X is cut off by construction:
    every weight that reads X is zero on it (nothing trains these models)."""
    torch.manual_seed(seed)
    model = build_model(arch, FIELDS, TASKS, **SMALL[arch])
    with torch.no_grad():
        for p in model.parameters():           # larger weights than the default init: clearer signals
            p.mul_(2.0)
    if ignore_noise:
        cols = torch.tensor(model.input_groups()["noise"])
        d_x = sum(len(c) for c in model.input_groups().values())
        n_cut = 0
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.startswith("input."):
                    continue
                for dim, size in enumerate(p.shape):
                    if p.dim() >= 2 and size == d_x:      # a weight that reads X: cut the noise column
                        p.index_fill_(dim, cols, 0.0)
                        n_cut += 1
        assert n_cut > 0, "no layer reads X directly: the test cannot cut the noise column"
    return model.eval()


def embed(model, feats):
    with torch.no_grad():
        return model.embed(feats)


@pytest.fixture(scope="module", params=ARCHS)
def setup(request):
    arch = request.param
    model = make_model(arch)
    ex = ModelExplainer(model, embed(model, features(100, 1)))
    return arch, model, ex


def test_noise_column_really_is_ignored_by_the_model(setup):
    _, model, _ = setup
    f = features(50, 2)
    g = dict(f, noise=f["noise"] + 10.0)
    with torch.no_grad():
        a, b = model(f), model(g)
    for t in a:
        assert torch.allclose(a[t], b[t], atol=1e-6)


def test_base_plus_contributions_equals_logit(setup):
    arch, model, ex = setup
    x = embed(model, features(5, 3))
    att = ex.explain(x)
    assert att.space == "logit"
    assert att.values.shape == (5, len(ex.group_names), len(TASKS))
    # the explained outputs are the model's own logits (multilabel: the mean class logit)
    with torch.no_grad():
        out = model.forward_from_input(x)
    for j, t in enumerate(TASKS):
        ref = out[t.name] if out[t.name].dim() == 1 else out[t.name].mean(-1)
        np.testing.assert_allclose(att.outputs[:, j], ref.numpy(), atol=1e-5)
    recon = att.base_values[None, :] + att.values.sum(axis=1)
    assert np.max(np.abs(recon - att.outputs)) < 1e-3, att.method
    # the contributions are not all trivially zero
    assert np.abs(att.values).max() > 1e-2
    # the base value is the mean logit over the background
    np.testing.assert_allclose(att.base_values, ex._logits(ex.background).mean(0), atol=1e-4)


def test_deep_explainer_where_additive_exact_shapley_for_gates(setup):
    arch, model, ex = setup
    method = ex.method_for("input")
    if arch in ("shared_bottom", "esmm", "aitm"):   # (no chain among these tasks: AITM is plain towers)
        assert method == "deep"             # ReLU nets: DeepLIFT is exactly additive
    else:
        assert method == "exact"            # softmax gates x experts: DeepLIFT is not additive


def test_ignored_feature_gets_no_contribution(setup):
    arch, model, ex = setup
    x = embed(model, features(6, 4))
    att = ex.explain(x)
    noise = att.groups.index("noise")
    assert np.abs(att.values[:, noise, :]).max() < 1e-6
    others = np.delete(att.values, noise, axis=1)
    assert np.abs(others).max() > 1e-2
    # also in the global importance
    f = features(60, 5)
    summary = ex.global_summary(embed(model, f), features=f, heatmap_rows=20, max_units=8)
    for t in summary["importance"]:
        imp = summary["importance"][t]
        assert imp["noise"] < 1e-6 * max(1.0, max(imp.values()))
        assert max(imp.values()) > 1e-3
    hm = np.asarray(summary["heatmap"]["values"])
    noise_row = np.abs(hm[summary["heatmap"]["groups"].index("noise")])
    if arch in ("esmm", "aitm"):
        # H is the embedding X itself: the noise column is one unit of H (and drives nothing else)
        assert (noise_row > 1e-6).sum() <= len(model.input_groups()["noise"])
    else:
        assert noise_row.max() < 1e-6


def _hooks_left(model) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules())


def test_weights_unchanged_after_explanations_and_after_a_failure(setup, monkeypatch):
    arch, model, ex = setup
    before = state_snapshot(model)
    f = features(40, 6)
    ex.explain(embed(model, f)[:3])
    ex.global_summary(embed(model, f), features=f, heatmap_rows=10, max_units=4)
    # a failure in the middle of an explanation (after SHAP's hooks are on the copy)
    monkeypatch.setattr(core, "_gradients", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    monkeypatch.setattr(core, "exact_group_shapley", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        ex.explain(embed(model, f)[:2])
    with pytest.raises(RuntimeError, match="boom"):
        ex.global_summary(embed(model, f), features=f, heatmap_rows=10, max_units=4)
    monkeypatch.undo()
    # an invalid background fails before anything runs
    with pytest.raises(ValueError, match="NaN"):
        ModelExplainer(model, torch.full((10, ex.background.shape[1]), float("nan")))
    with pytest.raises(ValueError, match="columns"):
        ModelExplainer(model, torch.zeros(10, 3))
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert _hooks_left(model) == 0
    assert not any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    # the explainer recovers (a fresh copy) and still adds up
    att = ex.explain(embed(model, f)[:2])
    assert att.additivity_error() < 1e-3


def test_batched_deep_matches_shap_deepexplainer():
    import shap
    model = make_model("shared_bottom", seed=3)
    bg = embed(model, features(20, 7))
    x = embed(model, features(3, 8))
    ex = ModelExplainer(model, bg)
    att = ex.explain(x, method="deep")
    net = core.TaskLogits(make_model("shared_bottom", seed=3), [t.name for t in TASKS])
    ref = shap.DeepExplainer(net, bg).shap_values(x, check_additivity=False)
    ref = np.asarray(ref).reshape(3, x.shape[1], len(TASKS))
    grouped = np.stack([ref[:, c, :].sum(1) for c in ex.group_cols], axis=1)
    np.testing.assert_allclose(att.values, grouped, atol=1e-5)


@pytest.mark.slow   # shap's Exact explainer compiles numba code on first use (10-40 s on a busy machine)
def test_exact_group_shapley_matches_shap_exact_explainer():
    model = make_model("mmoe", seed=4)
    bg = embed(model, features(12, 9))
    x = embed(model, features(2, 10))
    ex = ModelExplainer(model, bg)
    ours = ex.explain(x, method="exact")
    ref = ex.explain(x, method="shap_exact")      # shap.explainers.Exact with the group masker
    assert ours.method == "exact" and ref.method == "shap_exact"
    np.testing.assert_allclose(ours.values, ref.values, atol=1e-6)
    np.testing.assert_allclose(ours.base_values, ref.base_values, atol=1e-6)


def test_global_summary_views_per_architecture(setup):
    arch, model, ex = setup
    f = features(50, 11)
    seen = []
    s = ex.global_summary(embed(model, f), features=f, heatmap_rows=20, max_units=6,
                          progress=lambda frac, msg: seen.append(frac))
    assert seen and seen[-1] == 1.0 and all(0.0 <= v <= 1.0 for v in seen)
    assert set(s["importance"]) == {t.name for t in TASKS}
    assert set(s["importance"]["click"]) == set(ex.group_names)
    hm = np.asarray(s["heatmap"]["values"])
    assert hm.shape == (len(ex.group_names), len(s["heatmap"]["units"])) and 0 < hm.shape[1] <= 6
    if model.has_shared_towers:
        rel = s["tower_reliance"]["values"]
        assert set(rel) == {t.name for t in TASKS} and len(rel["click"]) == len(s["tower_reliance"]["units"])
    if model.has_gates:
        for t, w in s["gates"].items():
            assert abs(sum(w.values()) - 1.0) < 1e-4
    # per-expert attributions where H holds exactly the experts every gate mixes (MMoE)
    if arch == "mmoe":
        rel = s["expert_reliance"]
        assert set(rel) == {t.name for t in TASKS} and len(rel["click"]) == SMALL["mmoe"]["n_experts"]
        assert max(rel["rating"].values()) > 0
    else:
        assert "expert_reliance" not in s


def test_expert_attributions_add_up_to_the_tower_output():
    import shap
    model = make_model("mmoe", seed=8)
    f = features(30, 14)
    x = embed(model, f)
    with torch.no_grad():
        g = model.gate_weights(f)["like"]
        h = model.shared_from_input(x)
        z = (h.reshape(len(h), g.shape[1], -1) * g[:, :, None]).reshape(len(h), -1)
        logit = model.forward_from_input(x)["like"]
    net = core.ExpertMixToTask(model.towers[model.task_names.index("like")], g.shape[1])
    ex = shap.DeepExplainer(net, z[:10])
    phi = core._deep_phi(ex, z[10:], z[:10], 1)[:, :, 0]
    np.testing.assert_allclose(phi.sum(1) + float(np.asarray(ex.expected_value).reshape(-1)[0]),
                               logit[10:].numpy(), atol=1e-4)


def test_many_groups_use_sampled_permutations_and_still_add_up():
    """Above EXACT_MAX_GROUPS groups (e.g. Census-Income's ~40 columns) 2^G coalitions are too
    many: sampled permutations of the groups are used, still exactly additive; with few groups
    the permutation estimate is close to the exact values."""
    fields = [FeatureField(f"num{i}", "numeric", "user") for i in range(core.EXACT_MAX_GROUPS + 2)]
    torch.manual_seed(5)
    model = build_model("mmoe", fields, TASKS[:2], n_experts=2, expert_dims=[8], tower_dims=[4]).eval()
    g = torch.Generator().manual_seed(0)
    feats = {f.name: torch.randn(40, generator=g) for f in fields}
    x = embed(model, feats)
    ex = ModelExplainer(model, x[:30])
    att = ex.explain(x[30:33])
    assert att.method == "permutation"
    assert att.additivity_error() < 1e-3
    # agreement with exact Shapley values on a 4-group model
    small = make_model("mmoe", seed=6)
    exs = ModelExplainer(small, embed(small, features(30, 12)))
    xr = embed(small, features(2, 13))
    exact, perm = exs.explain(xr, method="exact"), exs.explain(xr, method="permutation")
    assert perm.additivity_error() < 1e-3
    scale = np.abs(exact.values).max()
    assert np.abs(perm.values - exact.values).max() < 0.35 * scale
