"""ESMM and AITM (issue 22 item 3): the entire-space product, the gradient ESMM's pCVR tower gets from
rows without the parent event, AITM's calibrator, and both trained from the CLI on a chained config
(saved, reloaded, recommending through the item-side cache)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mtlrec.chain import entire_space, task_losses
from mtlrec.dataset import FeatureField
from mtlrec.models import build_model, chain_note
from mtlrec.models.aitm import calibrator_penalty
from mtlrec.tasks import TaskSpec

FIELDS = [FeatureField("user_id", "categorical", "user", vocab_size=12),
          FeatureField("item_id", "categorical", "item", vocab_size=9),
          FeatureField("age", "numeric", "user")]
CLICK = TaskSpec("click", "binary")
LIKE = TaskSpec("like", "binary", given="click")
RATING = TaskSpec("rating", "regression", given="click")
TASKS = [CLICK, LIKE, RATING]


def batch(n: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    feats = {"user_id": torch.randint(0, 12, (n,), generator=g), "item_id": torch.randint(0, 9, (n,), generator=g),
             "age": torch.randn(n, generator=g)}
    click = (torch.arange(n) % 2).float()
    labels = {"click": click, "like": click * (torch.arange(n) % 4 == 1).float(), "rating": torch.randn(n, generator=g)}
    return feats, labels


def model(arch: str, **hp):
    torch.manual_seed(0)
    return build_model(arch, FIELDS, TASKS, tower_dims=[8, 4], embedding_dim=4, **hp)


def test_esmm_pctcvr_is_pctr_times_pcvr_and_the_chained_loss_is_its_bce_on_every_row():
    m = model("esmm").eval()
    feats, labels = batch()
    out = m(feats)
    p_ctr, p_cvr = torch.sigmoid(out["click"]), torch.sigmoid(out["like"])
    p_ctcvr = entire_space(TASKS, {"click": p_ctr, "like": p_cvr, "rating": out["rating"]})["like"]
    assert np.allclose(p_ctcvr.detach().numpy(), (p_ctr * p_cvr).detach().numpy(), atol=1e-6)
    assert m.chain_training == "entire_space"
    losses = task_losses(TASKS, out, labels, m.chain_training)
    by_hand = F.binary_cross_entropy(p_ctr * p_cvr, labels["click"] * labels["like"])   # all 8 rows
    assert float(losses["like"]) == pytest.approx(float(by_hand), abs=1e-5)
    assert float(losses["click"]) == pytest.approx(float(F.binary_cross_entropy(p_ctr, labels["click"])), abs=1e-5)


def test_esmm_cvr_tower_learns_from_rows_where_the_parent_event_is_zero():
    """The entire-space point: on rows with click = 0 (no like can be observed) the pCVR tower still
    gets a gradient, through pCTCVR; fitted on its own space it would get none."""
    m = model("esmm").train()
    feats, labels = batch()
    rows = labels["click"] == 0
    feats = {k: v[rows] for k, v in feats.items()}
    labels = {k: v[rows] for k, v in labels.items()}
    like_tower = m.towers[m.task_names.index("like")]
    for mode, gets_gradient in (("entire_space", True), ("conditional", False)):
        m.zero_grad()
        task_losses(TASKS, m(feats), labels, mode)["like"].backward()
        grad = sum(float(p.grad.abs().sum()) for p in like_tower.parameters() if p.grad is not None)
        assert (grad > 1e-8) is gets_gradient, (mode, grad)


def test_aitm_calibrator_by_hand_and_zero_when_the_child_stays_below_its_parent():
    child = torch.tensor([0.2, 0.5, 0.9, 0.3])
    parent = torch.tensor([0.4, 0.4, 0.6, 0.3])
    assert float(calibrator_penalty(child, parent, alpha=0.6)) == pytest.approx(0.6 * (0.1 + 0.3) / 4, abs=1e-6)
    assert float(calibrator_penalty(torch.tensor([0.1, 0.3, 0.6, 0.0]), parent)) == 0.0
    # in the model: a like output far above click is penalised, one far below is not
    feats, labels = batch()
    for bias, positive in ((30.0, True), (-30.0, False)):
        m = model("aitm").train()
        with torch.no_grad():
            m.towers[m.task_names.index("like")].out.bias.fill_(bias)
        out = m(feats)
        extra = m.extra_loss(out, labels)
        assert set(extra) == {"like"}                        # one term per chained binary task
        p_click = torch.sigmoid(out["click"]).detach()
        expected = 0.6 * float((1.0 - p_click).mean()) if positive else 0.0
        assert float(extra["like"]) == pytest.approx(expected, abs=1e-5)
        assert m.extra_loss(out, labels) is None             # taken once: never added twice
    m.eval()
    with torch.no_grad():
        m(feats)
    assert m.extra_loss(out, labels) is None                 # nothing outside training


def test_aitm_product_along_the_chain_is_its_own_joint_output_and_never_above_the_parent():
    m = model("aitm").eval()
    feats, _ = batch(16, 3)
    with torch.no_grad():
        out = m(feats)
        for bias in (-2.0, 10.0):              # below the parent: the product is the joint; above: capped
            m.towers[m.task_names.index("like")].out.bias.add_(bias)
            o = m(feats)
            p = entire_space(TASKS, {k: torch.sigmoid(v) for k, v in o.items() if k != "rating"})
            assert bool((p["like"] <= torch.sigmoid(o["click"]) + 1e-7).all())
    assert set(out) == {"click", "like", "rating"}


def test_chain_note_only_for_entire_space_architectures_without_a_chain():
    unchained = [{"name": "click", "type": "binary"}, {"name": "like", "type": "binary"}]
    assert "no task here is given another" in chain_note("esmm", unchained).lower()
    assert chain_note("aitm", unchained) and chain_note("mmoe", unchained) is None
    assert chain_note("esmm", [*unchained[:1], {**unchained[1], "given": "click"}]) is None


# ---- end to end: the CLI on a chained config ----------------------------------------------------------
def write_chain_case(d, arch: str, n_rows: int = 500, seed: int = 0):
    """interactions.csv where like is only ever 1 on clicked rows, and a config: click, like given
    click, rating given click."""
    rng = np.random.default_rng(seed)
    lines = ["user_id,item_id,click,like,rating,age"]
    for _ in range(n_rows):
        u, i = int(rng.integers(1, 30)), int(rng.integers(1, 25))
        click = int(rng.random() < 0.3 + 0.015 * u)
        like = int(click and rng.random() < 0.2 + 0.03 * i)
        lines.append(f"{u},{i},{click},{like},{rng.integers(1, 6)},{rng.normal():.3f}")
    (d / "interactions.csv").write_text("\n".join(lines) + "\n")
    cfg = {"data": {"paths": ["interactions.csv"],
                    "roles": {"user_id": "user_id", "item_id": "item_id",
                              "labels": {"click": "binary", "like": "binary", "rating": "regression"},
                              "numeric": {"age": "user"}}},
           "tasks": [{"name": "click", "type": "binary", "label": "click"},
                     {"name": "like", "type": "binary", "label": "like", "given": "click"},
                     {"name": "rating", "type": "regression", "label": "rating", "given": "click"}],
           "model": {"arch": arch, "tower_dims": [8, 4], "embedding_dim": 4},
           "train": {"epochs": 2, "batch_size": 128, "device": "cpu", "ranking_k": 0, "threads": 1}}
    (d / "config.json").write_text(json.dumps(cfg))
    return d / "config.json"


@pytest.mark.parametrize("arch", ["esmm", "aitm"])
def test_trained_from_the_cli_reloaded_and_the_item_cache_equals_the_full_forward(arch, tmp_path, capsys):
    from mtlrec.serve import recommend as rec
    from mtlrec.__main__ import main
    from mtlrec.runs.load import load_run
    cfg = write_chain_case(tmp_path, arch)
    capsys.readouterr()
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--json", "--device", "cpu",
                 "--threads", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["test"]) == {"click", "like", "rating"} and 0 <= res["test"]["like"]["auc"] <= 1
    run = load_run(tmp_path / "run")
    assert run.model.arch == arch and run.model.hparams["tower_dims"] == [8, 4]
    assert [t.given for t in run.tasks] == ["", "click", "click"]
    assert run.model.supports_split()
    for user in (0, 5, 11):
        fast, full = rec.score_items(run, user), rec.score_items(run, user, fast=False)
        for t in run.tasks:
            assert float(np.abs(np.asarray(fast[t.name], dtype=np.float64)
                                - np.asarray(full[t.name], dtype=np.float64)).max()) <= 1e-5, (arch, t.name)
    # explanations: the chained task's logit splits over the input groups, base + contributions = output
    from mtlrec.explain.core import ModelExplainer
    data = run.device_data()
    with torch.no_grad():
        x = run.model.embed(data.candidates(3))
        shared = run.model.shared_from_input(x)
    assert shared.shape == x.shape                           # H is the shared embedding X
    att = ModelExplainer(run.model, x[:12], tasks=["like"]).explain(x[12:16])
    recon = att.base_values[None, :] + att.values.sum(axis=1)
    assert np.max(np.abs(recon - att.outputs)) < 1e-3, att.method


def test_the_trainer_adds_an_architectures_extra_loss_to_its_task(tmp_path, capsys, monkeypatch):
    """`MultiTaskModel.extra_loss` (AITM's calibrator) enters the named task's training loss."""
    from mtlrec.__main__ import main
    from mtlrec.models.aitm import AITM
    monkeypatch.setattr(AITM, "extra_loss", lambda self, out, labels: {"like": out["like"].sum() * 0 + 100.0})
    cfg = write_chain_case(tmp_path, "aitm", n_rows=300)
    capsys.readouterr()
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--json", "--device", "cpu",
                 "--threads", "1"]) == 0
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    epoch = hist["epochs"][0]["train_loss"]
    assert epoch["like"] > 100 and epoch["click"] < 5
