"""Issue 22 (items 1, 4): a chained task (like given click) is ranked, recommended and explained in
the entire space -- p(click ∧ like) = p(click) · p(like | click) -- while its metrics, curves and
residuals count only its own space (and a regression task's never the sampled negatives)."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from _fixtures_train import finished_tiny_job, make_dataset, with_label_stats

GIVEN = {"like": "click", "rating": "click"}


@pytest.fixture(scope="module")
def chain_run(tmp_path_factory):
    """A tiny MMoE trained with click, like given click and rating given click (1 epoch)."""
    from mtlrec.runs.load import load_run
    job = finished_tiny_job(tmp_path_factory.mktemp("chain") / "run-chain", ("click", "like", "rating"), GIVEN)
    return load_run(job.run_dir)


def _raw(run, user, item) -> dict:
    """{task: logit} of one pair from the model's own forward (no cache, no chain)."""
    data = run.device_data()
    u, i = run.dataset.user_index(user), run.dataset.item_index(item)
    with torch.inference_mode():
        out = run.model.eval()(data.candidates(u, [i]))
    return {k: float(v.reshape(-1)[0]) for k, v in out.items()}


def _sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


# ---- ranking: the entire-space product, not the conditional -------------------------------------------
class _HandModel(torch.nn.Module):
    """Fixed logits per item: click high on items 1, 2; like (given click) highest on item 0."""

    def __init__(self, tasks):
        super().__init__()
        self.tasks = tasks
        self.logits = {"click": torch.tensor([-5.0, 3.0, 3.0]), "like": torch.tensor([5.0, 0.0, -1.0])}

    def forward(self, feats):
        return {k: v[feats["item"]] for k, v in self.logits.items()}


def test_ranking_of_a_chained_task_uses_the_entire_space_product():
    from mtlrec.ranking import evaluate_ranking
    from mtlrec.tasks import TaskSpec
    tasks = [TaskSpec("click", "binary"), TaskSpec("like", "binary", given="click", given_label="click")]
    rows = {"test": {"user_index": np.array([0, 0]), "item_index": np.array([0, 1]),
                     "label:click": np.array([1.0, 1.0]), "label:like": np.array([1.0, 0.0])}}
    ds = SimpleNamespace(rows=rows, has_users=True, has_items=True, user_ids=np.array(["u0"]),
                         item_ids=np.array(["i0", "i1", "i2"]))
    data = SimpleNamespace(ds=ds, device=torch.device("cpu"), item_table={},
                           candidates=lambda u, items: {"item": torch.as_tensor(items)})
    got = evaluate_ranking(_HandModel(tasks), data, k=1, tasks=tasks, max_users=None, exclude_splits=())
    # conditional p(like | click) puts item 0 first (MRR 1); p(click)·p(like | click) puts it last
    assert got["like"]["mrr"] == pytest.approx(1 / 3)
    assert got["like"]["hitrate@1"] == 0.0


# ---- recommend, explain: the same entire-space number ------------------------------------------------
def test_recommend_and_pair_score_give_the_entire_space_probability(chain_run):
    from mtlrec.serve.recommend import pair_score, ranked_by, recommend
    item = recommend(chain_run, "u3", k=1, exclude_seen=False)[0]["item"]
    raw = _raw(chain_run, "u3", item)
    pair = pair_score(chain_run, "u3", item)
    assert pair["tasks"]["like"] == pytest.approx(_sig(raw["click"]) * _sig(raw["like"]), rel=1e-4)
    assert pair["tasks"]["click"] == pytest.approx(_sig(raw["click"]), rel=1e-4)
    assert "p(click ∧ like) = p(click) · p(like | click)" in ranked_by(chain_run)
    assert "fused with the predicted rating" in ranked_by(chain_run)


def test_the_waterfall_of_a_chained_task_adds_up_to_its_entire_space_output(chain_run):
    from mtlrec.explain.api import explain_recommendation
    ex = explain_recommendation(chain_run, "u3", "i5", background=16)
    like = ex["tasks"]["like"]
    raw = _raw(chain_run, "u3", "i5")
    p = _sig(raw["click"]) * _sig(raw["like"])
    assert like["base_value"] + sum(like["contributions"].values()) == pytest.approx(like["output"], abs=1e-4)
    assert like["output"] == pytest.approx(math.log(p / (1 - p)), abs=1e-3)
    assert like["prediction"] == pytest.approx(p, rel=1e-4)
    assert like["entire_space"] == "p(click ∧ like) = p(click) · p(like | click)"
    assert sum(like["probability"]["contributions"].values()) + like["probability"]["base_value"] \
        == pytest.approx(p, abs=1e-4)
    fused = ex["fused"]
    assert fused["base_value"] + sum(fused["contributions"].values()) == pytest.approx(fused["score"], abs=1e-6)


# ---- metrics on the own space ----------------------------------------------------------------------------
def _with_negatives(ds, n_neg: int = 200, seed: int = 1):
    """``ds`` with ``n_neg`` sampled negatives added to its test split (click, like 0; made-up rating 1)."""
    rng = np.random.default_rng(seed)
    t = ds.rows["test"]
    n = len(t["user_index"])
    neg = {"user_index": rng.integers(0, len(ds.user_ids), n_neg), "item_index": rng.integers(0, len(ds.item_ids), n_neg),
           "label:click": np.zeros(n_neg, np.float32), "label:like": np.zeros(n_neg, np.float32),
           "label:rating": np.ones(n_neg, np.float32), "label:genres": np.zeros((n_neg, 4), np.float32)}
    ds.rows["test"] = {k: np.concatenate([np.asarray(t[k]), neg[k].astype(np.asarray(t[k]).dtype)]) for k in neg}
    ds.rows["test"]["sampled"] = np.r_[np.zeros(n, bool), np.ones(n_neg, bool)]
    return ds


def _rmse(entry) -> float:
    from mtlrec.runs.predictions import own_space_rows
    y, p = own_space_rows(entry)
    return round(float(np.sqrt(np.mean((p - y) ** 2))), 6)


def test_rating_rmse_counts_observed_rows_only_with_or_without_sampled_negatives(chain_run):
    from mtlrec.runs.predictions import predictions_frame, score_split
    plain = with_label_stats(make_dataset(n_rows=1500))
    negs = _with_negatives(with_label_stats(make_dataset(n_rows=1500)))
    runs = [SimpleNamespace(run_dir=None, dataset=d, model=chain_run.model, tasks=chain_run.tasks) for d in (plain, negs)]
    a, b = (score_split(r, "test") for r in runs)
    assert _rmse(a["rating"]) == _rmse(b["rating"])
    assert b["rating"]["space"] == "rows where click = 1, observed"
    n_obs = len(plain.rows["test"]["user_index"])
    # like counts only the rows where click = 1: the same rows with or without negatives
    assert int(b["like"]["mask"].sum()) == int(a["like"]["mask"].sum()) < n_obs
    # every row stays in the predictions CSV, which says whether it counts
    frame = predictions_frame(runs[1], "test")
    assert len(frame) == n_obs + 200
    assert frame["in rating's space"].sum() == a["rating"]["mask"].sum()
    assert not frame.loc[frame["sampled"], "in like's space"].any()


def test_a_chained_run_recommends_and_explains_from_the_cli(chain_run, capsys):
    import json

    from mtlrec.__main__ import main
    assert main(["recommend", "--run", str(chain_run.run_dir), "--user", "u3", "--k", "3", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert "p(click ∧ like) = p(click) · p(like | click)" in rec["ranked_by"]
    item = rec["items"][0]["item"]
    assert main(["explain", "--run", str(chain_run.run_dir), "--user", "u3", "--item", item,
                 "--background", "16", "--json"]) == 0
    like = json.loads(capsys.readouterr().out)["tasks"]["like"]
    assert like["prediction"] == pytest.approx(rec["items"][0]["tasks"]["like"], rel=1e-4)
    assert like["base_value"] + sum(like["contributions"].values()) == pytest.approx(like["output"], abs=1e-4)


def test_the_report_shows_the_chain_and_what_the_list_ranks_by(chain_run):
    from mtlrec.runs.report import report_html
    html = report_html(chain_run.run_dir, explain=False)
    assert "<li>p(click ∧ like) = p(click) · p(like | click)</li>" in html
    assert "<li>rating is learned and scored on the rows where click = 1</li>" in html
    assert "Ranked by p(click) (weight 0.33), p(click ∧ like) = p(click) · p(like | click)" in html
