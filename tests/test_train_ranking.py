"""Ranking metrics (Recall@K, NDCG@K, HitRate@K, MRR) in a run's final test evaluation."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig

RANK_KEYS = {"recall@{k}", "ndcg@{k}", "hitrate@{k}", "mrr"}


def cfg_for(tasks=TASKS, **train) -> RunConfig:
    t = {"epochs": 2, "batch_size": 128, "lr": 0.01, "log_every": 5, "device": "cpu", "seed": 1}
    t.update(train)
    return RunConfig.from_dict({"tasks": tasks, "model": {"arch": "mmoe", "n_experts": 2, "expert_dims": [16],
                                                          "tower_dims": [8]}, "train": t})


def idless_dataset(n_rows: int = 1500, seed: int = 0):
    """Context features only: no user or item ids, so nothing to rank."""
    from mtlrec.dataset import FeatureField, LabelField, PreparedDataset
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 20, size=(n_rows, 2))
    s = (x[:, 0] - 10) / 5.0
    click = (rng.random(n_rows) < 1 / (1 + np.exp(-s))).astype(np.float32)
    like = (rng.random(n_rows) < 1 / (1 + np.exp(-(s - 1)))).astype(np.float32)
    perm = rng.permutation(n_rows)
    parts = {"train": perm[:1000], "valid": perm[1000:1250], "test": perm[1250:]}
    rows = {name: {"a": x[p, 0], "b": x[p, 1], "label:click": click[p], "label:like": like[p]}
            for name, p in parts.items()}
    fields = [FeatureField("a", "categorical", "context", vocab_size=20),
              FeatureField("b", "categorical", "context", vocab_size=20)]
    return PreparedDataset(fields, [LabelField("click", "binary"), LabelField("like", "binary")], rows)


@pytest.fixture(scope="module")
def ranked_run(tmp_path_factory):
    from mtlrec.training.pipeline import run_training
    run_dir = tmp_path_factory.mktemp("rank") / "run"
    cfg = cfg_for(ranking_k=5)
    return cfg, run_training(cfg, run_dir, dataset=make_dataset(seed=2)), run_dir


def test_metrics_json_has_ranking_per_binary_task(ranked_run):
    cfg, res, run_dir = ranked_run
    assert res.status == "finished"
    ranking = json.loads((run_dir / "metrics.json").read_text())["ranking"]
    # binary tasks only: regression / multi-label have no "relevant item" per user
    assert set(ranking) == {"click", "like"}
    for task, vals in ranking.items():
        assert set(vals) == {key.format(k=5) for key in RANK_KEYS}, task
        for name, v in vals.items():
            assert 0.0 <= v <= 1.0, (task, name, v)
        assert vals["hitrate@5"] >= vals["recall@5"] - 1e-9   # a hit needs at least one relevant item found
    assert res.ranking == res.metrics["ranking"]
    # a trained model finds some of its test users' positives in the top 5 of 60 items
    assert max(v["hitrate@5"] for v in ranking.values()) > 0
    info = json.loads((run_dir / "metrics.json").read_text())["ranking_info"]
    # "auto" on 60 items: every test user with a positive (fewer than 500)
    assert info["status"] == "done" and info["users"] == info["of_users"] > 0 and info["items"] == 60
    assert info["k"] == 5 and info["sampled"] is False


def test_ranking_is_on_test_with_train_and_valid_items_left_out(ranked_run):
    """The reported numbers are exactly the test-split ranking with train+valid items excluded."""
    from mtlrec.ranking import evaluate_ranking
    cfg, res, _ = ranked_run
    data = res.dataset.to_device("cpu")
    direct = evaluate_ranking(res.model, data, split="test", k=5, max_users=cfg.train.ranking_users,
                              seed=cfg.train.seed, exclude_splits=("train", "valid"))
    assert set(res.ranking) == set(direct)
    for task in direct:
        assert res.ranking[task] == pytest.approx(direct[task])
    # leaving the training items in gives different numbers: the exclusion is really applied
    leaky = evaluate_ranking(res.model, data, split="test", k=5, max_users=cfg.train.ranking_users,
                             seed=cfg.train.seed, exclude_splits=())
    assert leaky != direct


def test_popularity_baseline_sits_beside_the_ranking(ranked_run):
    """metrics.json ranks the same test users by item popularity and (the data has a rating) by item
    mean rating: same tasks, same K, same keys."""
    from mtlrec.ranking import evaluate_mean_rating, evaluate_popularity
    cfg, res, run_dir = ranked_run
    m = json.loads((run_dir / "metrics.json").read_text())
    base = m["ranking_baseline"]
    assert set(base) == {"popularity", "mean_rating"}
    assert m["ranking_info"]["mean_rating"]["label"] == "rating"
    for name in base:
        assert set(base[name]) == set(res.ranking) == {"click", "like"}
        for task, vals in base[name].items():
            assert set(vals) == set(res.ranking[task]), task
            assert all(0.0 <= v <= 1.0 for v in vals.values()), (task, vals)
    assert res.ranking_baseline == base
    for name, evaluate in (("popularity", evaluate_popularity), ("mean_rating", evaluate_mean_rating)):
        direct = evaluate(res.dataset, split="test", k=5, max_users=cfg.train.ranking_users, seed=cfg.train.seed)
        for task in direct:
            assert base[name][task] == pytest.approx(direct[task])


def test_ranking_k_zero_and_idless_data_skip_it(tmp_path):
    from mtlrec.training.pipeline import run_training
    from mtlrec.metrics import ranking_note
    res = run_training(cfg_for(epochs=1, ranking_k=0), tmp_path / "k0", dataset=make_dataset(n_rows=1500, seed=4))
    assert res.status == "finished" and res.ranking == {} and res.ranking_baseline == {}
    skipped = json.loads((tmp_path / "k0" / "metrics.json").read_text())
    assert skipped["ranking"] == {} and skipped["ranking_info"]["status"] == "skipped"
    assert ranking_note(skipped).startswith("Ranking skipped: the ranking over the whole catalogue was switched off")
    tasks = [t for t in TASKS if t["type"] == "binary"]
    res = run_training(cfg_for(tasks=tasks, epochs=1), tmp_path / "noid", dataset=idless_dataset())
    assert res.status == "finished"
    assert res.ranking == {}
    metrics = json.loads((tmp_path / "noid" / "metrics.json").read_text())
    assert metrics.get("ranking", {}) == {}
    assert metrics["ranking_info"] == {"status": "not applicable", "reason": "the data has no user and item ids"}
    assert set(metrics["test"]) == {"click", "like"}   # the ordinary test metrics are still there


def test_ranking_users_caps_the_ranked_users_and_says_n_of_m(tmp_path):
    from mtlrec.metrics import ranking_note
    from mtlrec.training.pipeline import run_training
    res = run_training(cfg_for(epochs=1, ranking_k=5, ranking_users=7), tmp_path / "r",
                       dataset=make_dataset(n_rows=1500, seed=4))
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    info = m["ranking_info"]
    assert info["status"] == "done" and info["users"] == 7 < info["of_users"] and info["sampled"] is True
    assert set(m["ranking"]) == set(m["ranking_baseline"]["popularity"]) == {"click", "like"}
    assert ranking_note(m) == f"Ranked 7 of {info['of_users']:,} test users (a seeded sample) over 60 items, top 5."
    assert res.metrics["ranking_info"] == info


def test_job_snapshot_carries_ranking(tmp_path):
    from mtlrec.training.jobs import TrainingJob
    job = TrainingJob(cfg_for(epochs=1), tmp_path / "job", dataset=make_dataset(n_rows=1500, seed=5)).start()
    assert job.join(120)
    snap = job.snapshot()
    assert snap["status"] == "finished"
    assert set(snap["metrics"]["ranking"]) == {"click", "like"}


def test_ranking_k_must_be_non_negative():
    from mtlrec.errors import TrainingError
    with pytest.raises(TrainingError, match="ranking_k"):
        cfg_for(ranking_k=-1).train.validate()


@pytest.mark.parametrize("bad", [0, -3, "many", True, 2.5, None])
def test_ranking_users_is_auto_or_a_positive_whole_number(bad):
    from mtlrec.errors import TrainingError
    with pytest.raises(TrainingError, match='ranking_users must be "auto" or an integer >= 1'):
        cfg_for(ranking_users=bad).train.validate()


def test_ranking_settings_round_trip_and_old_configs_keep_ranking():
    """A config without the ranking keys (as written before) ranks with K 10 and "auto" users; the
    settings survive a JSON round trip."""
    old = RunConfig.from_dict({"tasks": TASKS, "train": {"epochs": 1}})
    old.validate()
    assert old.train.ranking_k == 10 and old.train.ranking_users == "auto"
    for users in ("auto", 37):
        cfg = cfg_for(ranking_users=users, ranking_k=0)
        back = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert back.train.ranking_users == users and back.train.ranking_k == 0
