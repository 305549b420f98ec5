"""bench/ranking.py (issue 22, "Must show"): its configuration table runs end to end on a tiny
MovieLens folder, configurations this checkout cannot run are reported as skipped, and the
observed-row metrics leave sampled negatives out."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_ranking", REPO / "bench" / "ranking.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _ratings(n_users=30, n_items=40, per_user=12, seed=0):
    rng = np.random.default_rng(seed)
    for u in range(1, n_users + 1):
        for i in rng.choice(np.arange(1, n_items + 1), size=per_user, replace=False):
            yield u, int(i), int(rng.integers(1, 6)), 880000000 + u * 100 + int(i)


def _folder(tmp_path: Path, layout: str) -> Path:
    d = tmp_path / layout
    d.mkdir()
    rows = list(_ratings())
    if layout == "100k":
        (d / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    elif layout == "1m":
        (d / "ratings.dat").write_text("".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in rows))
    else:
        (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n"
                                       + "".join(f"{u},{i},{r}.0,{t}\n" for u, i, r, t in rows))
        (d / "movies.csv").write_text("movieId,title,genres\n"
                                      + "".join(f"{i},Film {i} (1990),Drama|Comedy\n" for i in range(1, 41)))
    return d


@pytest.mark.parametrize("layout", ["100k", "1m", "latest"])
def test_movielens_layouts_give_the_rating_as_the_only_label(bench, tmp_path, layout):
    spec, rating = bench.movielens_spec(_folder(tmp_path, layout))
    assert spec.labels == {rating: "regression"} and spec.user_id and spec.item_id


def test_a_folder_that_is_not_movielens_is_refused_with_a_message(bench, tmp_path):
    (tmp_path / "interactions.csv").write_text("user,item,rating\n1,2,3\n2,3,4\n")
    with pytest.raises(SystemExit, match="is not read as MovieLens"):
        bench.movielens_spec(tmp_path)


def test_the_configuration_table_runs_end_to_end(bench, tmp_path):
    table = {
        "old_default": bench.CONFIGS["old_default"],
        # the same tasks with one sampled negative per observed row: observed-row metrics must not move
        "with_negatives": {**bench.CONFIGS["old_default"], "data": {"prep": {"negative_ratio": 1}}},
        "unknown_arch": {**bench.CONFIGS["old_default"], "model": {"arch": "no_such_arch"}},
        "unknown_task_field": {**bench.CONFIGS["old_default"],
                               "tasks": [{**bench.LIKE, "no_such_field": "x"}, bench.RATING]},
    }
    out = bench.run_bench(_folder(tmp_path, "100k"), [0], 1, list(table), threads=1, configs=table)
    json.dumps(out)                                          # one JSON object, as --json prints
    assert list(out)[-1] == "checks"
    assert out["checks"] == {"default_vs_popularity_ndcg10": None, "default_vs_popularity_recall10": None,
                             "like_auc_change_vs_old_default": None, "rating_rmse_change_vs_old_default": None}
    assert "architecture 'no_such_arch' is not available" in out["configs"]["unknown_arch"]["skipped"]
    assert "no_such_field" in out["configs"]["unknown_task_field"]["skipped"]
    old, neg = out["configs"]["old_default"]["mean"], out["configs"]["with_negatives"]["mean"]
    for block in (old, neg, out["baselines"]["popularity"]["mean"], out["baselines"]["mean_rating"]["mean"]):
        assert all(0.0 <= block[k] <= 1.0 for k in bench.RANK_KEYS), block
    assert old["test_rows_sampled"] == 0 and neg["test_rows_sampled"] > 0
    assert neg["test_rows_observed"] == old["test_rows_observed"]        # the same observed test rows
    for block in (old, neg):
        assert 0.0 <= block["like_auc"] <= 1.0 and math.isfinite(block["rating_rmse"])
