"""Run under torchrun by tests/test_distributed.py: trains the tiny dataset with several loss
weightings in data-parallel mode and writes, per weighting, the validation metrics, the task
weights and how far the ranks' parameters (model and weighting) are apart after training.

    torchrun --nproc-per-node 2 tests/_ddp_weightings.py OUT.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# the strategies that keep state or decide on per-task gradients (static weighting is the default
# of every other distributed test): learnable weights, GradNorm's Jacobian and loss ratios, DWA's
# epoch losses, PCGrad's aggregation of the Jacobian
WEIGHTINGS = ("uncertainty", "gradnorm", "dwa", "pcgrad")


def train_one(weighting: str, dist=None):
    """(trainer, result) of 2 epochs of MMoE on the tiny dataset (``dist``: None = alone)."""
    from _fixtures_train import make_dataset

    from mtlrec.config import TrainConfig
    from mtlrec.models import build_model
    from mtlrec.tasks import TaskSpec as Task
    from mtlrec.training.trainer import Trainer, seeded_build
    ds = make_dataset(n_rows=2000)
    tasks = [Task("click", "binary", "click"), Task("like", "binary", "like"),
             Task("rating", "regression", "rating")]
    cfg = TrainConfig(epochs=2, batch_size=200, lr=3e-3, weighting=weighting, seed=3)
    model = seeded_build(3, build_model, "mmoe", ds.fields, tasks)
    trainer = Trainer(model, tasks, cfg, "cpu", dist=dist)
    return trainer, trainer.fit(ds.to_device("cpu"))


def flat(module) -> torch.Tensor:
    ps = [p.detach().reshape(-1).float() for p in module.parameters()]
    return torch.cat(ps) if ps else torch.zeros(1)


def main(out: str) -> None:
    from mtlrec.training import distributed
    dist = distributed.init_from_env("cpu")
    results = {}
    for w in WEIGHTINGS:
        trainer, res = train_one(w, dist)
        params = torch.cat([flat(trainer.model), flat(trainer.weighting)])
        gathered = [torch.empty_like(params) for _ in range(dist.world)]
        torch.distributed.all_gather(gathered, params)
        spread = max(float((g - gathered[0]).abs().max()) for g in gathered)
        results[w] = {"valid": res.valid, "weights": trainer._weights(), "rank_param_spread": spread,
                      "best_epoch": res.best_epoch, "rows": trainer.own_rows}
    if dist.is_main:
        Path(out).write_text(json.dumps(results))
    distributed.shutdown()
    distributed.leave(0)          # as `python -m mtlrec train` ranks end (see `distributed.leave`)


if __name__ == "__main__":
    main(sys.argv[1])
