"""The trainer's step is a plain training step: its per-epoch losses equal a hand-written loop's.

Guards the speed work of issue 25 (batches gathered with ``index_select``, losses kept on the device,
sampled training-dynamics batches, batch records): none of it may change what is trained.
"""
from __future__ import annotations

import math

import torch

from _fixtures_train import make_dataset
from mtlrec.config import TrainConfig
from mtlrec.models import build_model
from mtlrec.tasks import TaskSpec
from mtlrec.training.trainer import Trainer, seeded_build

TASKS = [TaskSpec("click", "binary"), TaskSpec("like", "binary")]
HP = {"n_experts": 3, "expert_dims": [16], "tower_dims": [8], "embedding_dim": 4}


def _plain_loop(ds, data, cfg: TrainConfig) -> list[dict]:
    """Per-epoch mean training losses of a minimal loop: the same seeded model, batch order, fused
    Adam and loss sum, rows gathered by plain advanced indexing (``a[idx]``, as before issue 25)."""
    model = seeded_build(cfg.seed, build_model, "mmoe", ds.fields, TASKS, **HP)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)
    gen = torch.Generator().manual_seed(cfg.seed)
    rows, n = data.rows["train"], data.n_rows("train")
    epochs = []
    for _ in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen)
        n_batches = math.ceil(n / cfg.batch_size)
        sums = {t.name: 0.0 for t in TASKS}
        for b in range(n_batches):
            idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            ui, ii = rows["user_index"][idx], rows["item_index"][idx]
            feats = {**{k: tab[ui] for k, tab in data.user_table.items()},
                     **{k: tab[ii] for k, tab in data.item_table.items()}}
            out = model(feats)
            losses = {t.name: t.loss(out[t.name], rows["label:" + t.name][idx]) for t in TASKS}
            opt.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            opt.step()
            for k, v in losses.items():
                sums[k] += float(v.detach())
        epochs.append({k: v / n_batches for k, v in sums.items()})
    return epochs


def test_trainer_epochs_have_the_plain_loops_losses_with_dynamics_and_batch_records_on():
    ds = make_dataset(n_rows=800)
    data = ds.to_device("cpu")
    cfg = TrainConfig(epochs=2, batch_size=64, lr=0.01, embedding_l2=0.0, device="cpu", amp=False,
                      log_every=4, dynamics_every=5, seed=3)
    model = seeded_build(cfg.seed, build_model, "mmoe", ds.fields, TASKS, **HP)
    result = Trainer(model, TASKS, cfg, "cpu").fit(data, evaluate_test=False)
    got = [e["train_loss"] for e in result.history.epochs]
    want = _plain_loop(ds, data, cfg)
    assert len(got) == len(want) == 2
    assert all("dynamics" in e for e in result.history.epochs)      # the sampled batches were measured
    for g, w in zip(got, want):
        for task in w:
            assert abs(g[task] - w[task]) <= 1e-6, (task, g[task], w[task])
    assert got[-1]["click"] < got[0]["click"]                        # and the model learned
