"""The two-stage top-k of `recommend` (the fused tasks over the catalogue through the item-side cache,
the other tasks for the top items only) gives the full forward's list: the same items in the same
order, the same scores and per-task values (to 1e-5), on every architecture, with and without a
behaviour history, and with equal scores ordered by item index (lower first) on both paths."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from _fixtures_train import TASKS, make_dataset, with_label_stats
from mtlrec.models import ARCHITECTURES, build_model
from mtlrec.prep.history import with_history
from mtlrec.runs.load import Run
from mtlrec.serve import recommend as rec
from mtlrec.tasks import tasks_from_config

TOL = 1e-5
ARCHS = sorted(ARCHITECTURES)
# like given click: the chained architectures (ESMM, AITM) rank by p(click ∧ like)
CHAINED = [TASKS[0], {**TASKS[1], "given": "click"}, *TASKS[2:]]


@pytest.fixture(scope="module")
def ds():
    return with_label_stats(make_dataset(n_users=30, n_items=70, n_rows=900))


def make_run(ds, arch: str, history: str = "none") -> Run:
    if history != "none":
        ds = with_history(ds, {"length": 6, "encoder": history})
    tasks = tasks_from_config(CHAINED, ds)
    torch.manual_seed(2)
    model = build_model(arch, ds.fields, tasks, embedding_dim=6, tower_dims=[6],
                        **({"history_encoder": history} if history != "none" else {})).eval()
    with torch.no_grad():                         # ids far from their start, so every item differs
        model.input.embedding.weight.normal_()
    return Run(config=None, dataset=ds, model=model, history=None, metrics={}, run_dir=None, tasks=tasks)


def full_forward_list(run, user: int, k: int):
    """(items, scores, predictions) of the full forward over the catalogue, ranked by the fused score,
    equal scores by item index, the user's items left out."""
    preds = rec.score_items(run, user, fast=False)
    score = rec.fuse(run, preds).copy()
    score[run.dataset.interacted_items(user)] = -np.inf
    order = sorted(np.flatnonzero(np.isfinite(score)), key=lambda i: (-score[i], i))[:k]
    return order, score, preds


def check_list(run, user: int, k: int = 10):
    order, score, preds = full_forward_list(run, user, k)
    got = rec.recommend(run, run.dataset.user_ids[user], k=k)
    assert [r["item"] for r in got] == [str(run.dataset.item_ids[i]) for i in order]
    for r, i in zip(got, order):
        assert abs(r["score"] - score[i]) <= TOL
        for t in run.tasks:
            if t.type in ("binary", "regression"):
                assert abs(r["tasks"][t.name] - preds[t.name][i]) <= TOL, (t.name, i)
            else:                                 # the top classes with their probabilities
                names = rec.class_names(run, t)
                want = np.argsort(-preds[t.name][i], kind="stable")[:3]
                assert list(r["tasks"][t.name]) == [names[c] for c in want]
                assert np.allclose(list(r["tasks"][t.name].values()), preds[t.name][i][want], atol=TOL)
    return got


@pytest.mark.parametrize("history", ["none", "mean", "attention"])
@pytest.mark.parametrize("arch", ARCHS)
def test_fast_top_k_is_the_full_forwards_top_k(ds, arch, history):
    run = make_run(ds, arch, history)
    for user in (0, 7, 19):
        check_list(run, user)


def test_the_fast_path_does_not_score_the_multilabel_task_over_the_catalogue(ds, monkeypatch):
    run = make_run(ds, "ple")
    calls = []
    score_items = rec.score_items

    def spy(run, user, item_indices=None, **kw):
        out = score_items(run, user, item_indices, **kw)
        calls.append({n: len(v) for n, v in out.items()})
        return out
    monkeypatch.setattr(rec, "score_items", spy)
    got = rec.recommend(run, "u3", k=5)
    assert calls == [{"click": 70, "like": 70, "rating": 70}, {"genres": 5}]
    assert len(got) == 5 and all(len(r["tasks"]["genres"]) == 3 for r in got)


def duplicated_items(ds, first: int = 20):
    """``ds`` with items ``first`` .. the last made copies of item ``first`` (the same features and id
    code): they all get the very same scores."""
    item_table = {k: v.copy() for k, v in ds.item_table.items()}
    for v in item_table.values():
        v[first:] = v[first]
    return type(ds)(ds.fields, ds.labels, ds.rows, ds.user_table, item_table, ds.user_ids, ds.item_ids,
                    ds.meta, item_info=ds.item_info)


@pytest.mark.parametrize("arch", ["shared_bottom", "mmoe", "ple"])
def test_equal_scores_come_in_item_order_on_both_paths(ds, arch):
    run = make_run(duplicated_items(ds), arch)
    for user in (1, 4):
        order, score, _ = full_forward_list(run, user, 70)
        copies = [i for i in order if i >= 20]
        assert len(set(score[copies].tolist())) == 1        # the copies tie exactly
        assert copies == sorted(copies)
        # a list that ends inside the tied group: its lowest item indices, in order, on both paths
        k = order.index(copies[0]) + 4
        got = check_list(run, user, k)
        assert [r["item"] for r in got][-4:] == [str(run.dataset.item_ids[i]) for i in copies[:4]]
        full = rec.recommend(run, run.dataset.user_ids[user], k=k, fast=False)
        assert [r["item"] for r in full] == [r["item"] for r in got]
