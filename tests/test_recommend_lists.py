"""Recommendations from a run folder: unseen items only, ordered, fused score, errors."""
from __future__ import annotations

import numpy as np
import pytest

from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig
from mtlrec.errors import DataError


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from mtlrec.runs.load import load_run
    from mtlrec.training.pipeline import run_training
    # few items and many rows: most users have seen most of the catalogue
    ds = make_dataset(n_users=40, n_items=30, n_rows=1500)
    cfg = RunConfig.from_dict({"tasks": TASKS, "model": {"arch": "shared_bottom"},
                               "train": {"epochs": 2, "batch_size": 128, "lr": 0.01, "device": "cpu"}})
    d = tmp_path_factory.mktemp("rec") / "run"
    run_training(cfg, d, dataset=ds)
    return load_run(d)


def test_recommendations_never_include_seen_items(run):
    from mtlrec.serve.recommend import recommend
    ds = run.dataset
    for u in range(len(ds.user_ids)):
        seen = {str(ds.item_ids[i]) for i in ds.interacted_items(u)}
        recs = recommend(run, ds.user_ids[u], k=30)
        items = [r["item"] for r in recs]
        assert not seen & set(items)
        assert len(items) == len(set(items)) == min(30, len(ds.item_ids) - len(seen))
        scores = [r["score"] for r in recs]
        assert scores == sorted(scores, reverse=True)
    # with exclude_seen=False the user's own items do come back
    u0 = ds.user_ids[0]
    allrecs = recommend(run, u0, k=30, exclude_seen=False)
    assert len(allrecs) == 30
    assert {str(ds.item_ids[i]) for i in ds.interacted_items(0)} <= {r["item"] for r in allrecs}


def test_fused_score_follows_the_weights(run):
    from mtlrec.serve.recommend import recommend
    u = run.dataset.user_ids[3]
    only_click = recommend(run, u, k=10, weights={"click": 1.0})
    assert [r["score"] for r in only_click] == pytest.approx([r["tasks"]["click"] for r in only_click])
    assert [r["tasks"]["click"] for r in only_click] == sorted((r["tasks"]["click"] for r in only_click), reverse=True)
    lo, hi = run.info["label_ranges"]["rating"]
    mixed = recommend(run, u, k=5, weights={"click": 1.0, "rating": 3.0})
    for r in mixed:
        s_rating = np.clip((r["tasks"]["rating"] - lo) / (hi - lo), 0, 1)
        assert r["score"] == pytest.approx(0.25 * r["tasks"]["click"] + 0.75 * s_rating, rel=1e-5)
    first = mixed[0]
    assert set(first["tasks"]) == {"click", "like", "rating", "genres"}
    assert 0 < len(first["tasks"]["genres"]) <= 3 and first["title"].startswith("Movie")


def test_unknown_user_and_bad_weights_are_clear_errors(run):
    from mtlrec.serve.recommend import recommend
    with pytest.raises(DataError, match="user 'nobody' is not in this run's data"):
        recommend(run, "nobody")
    with pytest.raises(DataError, match="weights can be given for: click, like, rating"):
        recommend(run, run.dataset.user_ids[0], weights={"genres": 1.0})


def test_each_recommendation_shows_its_training_support(run, capsys):
    """support = the item's number of real training rows, counted by hand; on the records, the
    page's frame and the CLI; computed once per loaded run."""
    from mtlrec.__main__ import main
    from mtlrec.serve.recommend import item_support, recommend
    from mtlrec.app.workflow import rec_frame
    ds = run.dataset
    tr = ds.rows["train"]
    by_hand = {str(ds.item_ids[i]): int((tr["item_index"] == i).sum()) for i in range(len(ds.item_ids))}
    u = ds.user_ids[5]
    recs = recommend(run, u, k=8, exclude_seen=False)
    assert [r["support"] for r in recs] == [by_hand[r["item"]] for r in recs]
    assert sum(by_hand.values()) == ds.n_rows("train") and max(by_hand.values()) > 0
    assert item_support(run) is item_support(run)                # cached on the run
    frame = rec_frame(recs, ds)
    assert list(frame["support"]) == [by_hand[i] for i in frame["item_id"]]
    capsys.readouterr()
    assert main(["recommend", "--run", str(run.run_dir), "--user", u, "--k", "3", "--include-seen"]) == 0
    out = capsys.readouterr().out
    assert f"support={recs[0]['support']}" in out.splitlines()[1]


def test_support_leaves_sampled_negatives_out(run):
    from mtlrec.serve.recommend import item_support
    from mtlrec.runs.load import Run
    ds = make_dataset(n_users=5, n_items=4, n_rows=60)
    tr = ds.rows["train"]
    tr["sampled"] = np.zeros(len(tr["item_index"]), bool)
    tr["sampled"][tr["item_index"] == 0] = True                  # item 0 only has sampled rows
    fake = Run(config=None, dataset=ds, model=None, history=None, metrics={}, run_dir=None)
    support = item_support(fake)
    assert support[0] == 0
    assert support[1:].tolist() == [int((tr["item_index"] == i).sum()) for i in (1, 2, 3)]
