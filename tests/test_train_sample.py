"""Every architecture trains on the shipped sample data and beats a trivial predictor on every task."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import _fixtures_train  # noqa: F401  (one torch thread)
from mtlrec.config import RunConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The shipped config's data (first 20,000 interactions, to keep the test short), prepared once."""
    from mtlrec.training.pipeline import build_dataset
    d = tmp_path_factory.mktemp("sample")
    lines = (REPO / "sample_data" / "interactions.csv").read_text().splitlines()
    (d / "interactions.csv").write_text("\n".join(lines[:20001]) + "\n")
    for name in ("users.csv", "items.csv"):
        (d / name).write_text((REPO / "sample_data" / name).read_text())
    cfg = RunConfig.load(REPO / "sample_data" / "config_shared_bottom.json")
    cfg.base_dir = str(d)
    return build_dataset(cfg)


def trivial(ds) -> dict:
    """Constant predictors fitted on the training split: AUC 0.5, mean rating, genre priors."""
    from sklearn.metrics import roc_auc_score
    tr, te = ds.rows["train"], ds.rows["test"]
    prior = np.broadcast_to(tr["label:genres"].mean(0), te["label:genres"].shape)
    return {"click": 0.5, "like": 0.5,
            "rating": float(np.sqrt(np.mean((te["label:rating"] - tr["label:rating"].mean()) ** 2))),
            "genres": float(roc_auc_score(te["label:genres"].ravel(), prior.ravel()))}


@pytest.mark.parametrize("arch", ["shared_bottom", "mmoe", "ple"])
def test_architecture_beats_trivial_predictor_on_sample_data(sample, arch):
    from mtlrec.training.pipeline import run_training
    cfg = RunConfig.load(REPO / "sample_data" / f"config_{arch}.json")
    assert cfg.arch == arch and {t["name"] for t in cfg.tasks} == {"click", "like", "rating", "genres"}
    cfg.train.epochs, cfg.train.lr, cfg.train.batch_size, cfg.train.device = 3, 0.01, 256, "cpu"
    res = run_training(cfg, dataset=sample)
    test, base = res.metrics["test"], trivial(sample)
    assert test["click"]["auc"] > base["click"] + 0.03
    assert test["like"]["auc"] > base["like"] + 0.03
    assert test["rating"]["rmse"] < base["rating"] - 0.02
    assert test["genres"]["micro_auc"] > base["genres"] + 0.02
