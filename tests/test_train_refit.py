"""``train.refit``: after early stopping picked the best epoch on valid, a new model trained on
train + valid for that many epochs is the run's model (its test metrics, model.pt)."""
from __future__ import annotations

import pytest
import torch

from _fixtures_train import TASKS, make_dataset, with_label_stats
from mtlrec.config import RunConfig
from mtlrec.errors import TrainingError
from mtlrec.training import trainer as trainer_module
from mtlrec.training.pipeline import run_training


def config(**train) -> RunConfig:
    return RunConfig.from_dict({"tasks": TASKS[:3], "model": {"arch": "shared_bottom", "shared_dims": [16],
                                                              "tower_dims": [8], "embedding_dim": 4},
                                "train": {"epochs": 6, "batch_size": 128, "device": "cpu", "ranking_k": 0,
                                          "dynamics_every": 0, "early_stopping": {"patience": 2}, **train}})


@pytest.fixture
def fits(monkeypatch):
    """Every `Trainer.fit` of the run: (training rows, validation rows, epochs run, the model)."""
    seen = []
    real = trainer_module.Trainer.fit

    def spy(self, data, **kw):
        res = real(self, data, **kw)
        valid = data.n_rows("valid") if "valid" in data.rows else 0
        seen.append((data.n_rows("train"), valid, res.epochs_run, self.model))
        return res
    monkeypatch.setattr(trainer_module.Trainer, "fit", spy)
    return seen


def test_refit_trains_on_train_and_valid_for_the_best_epoch_count(tmp_path, fits):
    ds = with_label_stats(make_dataset(n_users=30, n_items=25, n_rows=800))
    n_train, n_valid = ds.n_rows("train"), ds.n_rows("valid")
    res = run_training(config(refit=True), run_dir=tmp_path / "run", dataset=ds)
    assert res.status == "finished"
    best = res.metrics["best_epoch"]
    assert len(fits) == 2
    assert fits[0][:2] == (n_train, n_valid)                  # early stopping on valid chose the epochs
    assert fits[1][:3] == (n_train + n_valid, 0, best)        # then train + valid, exactly that many
    assert res.metrics["refit"]["epochs"] == best
    assert res.metrics["refit"]["train_rows"] == n_train + n_valid
    assert res.model is fits[1][3]                            # the run's model is the refit one
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in res.model.state_dict().items())
    assert set(res.metrics["test"]) == {"click", "like", "rating"}


def test_without_refit_one_model_is_trained(fits):
    ds = with_label_stats(make_dataset(n_users=30, n_items=25, n_rows=800))
    res = run_training(config(), dataset=ds)
    assert len(fits) == 1 and "refit" not in res.metrics


def test_refit_without_a_validation_split_is_skipped_with_a_warning(fits):
    ds = with_label_stats(make_dataset(n_users=30, n_items=25, n_rows=800, splits=(0.8, 0.0, 0.2)))
    res = run_training(config(refit=True), dataset=ds)
    assert len(fits) == 1 and "refit" not in res.metrics
    assert any("train.refit was skipped" in w for w in res.metrics["warnings"])


def test_refit_must_be_a_boolean():
    with pytest.raises(TrainingError, match="train.refit must be true or false"):
        config(refit="yes").train.validate()
