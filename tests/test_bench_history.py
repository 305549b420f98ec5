"""bench/history.py (issue 24, "Must show"): the with/without-history table runs end to end on a tiny
MovieLens folder with timestamps, and its JSON ends with the history check."""
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
    spec = importlib.util.spec_from_file_location("bench_history", REPO / "bench" / "history.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _folder(tmp_path: Path, n_users=30, n_items=40, per_user=12) -> Path:
    """A 100K-layout u.data: every user rates ``per_user`` items at distinct times; low item ids
    are rated more often and higher (something for the models and popularity to find)."""
    rng = np.random.default_rng(0)
    p = 1.0 / np.arange(1, n_items + 1)
    lines = []
    for u in range(1, n_users + 1):
        items = rng.choice(np.arange(1, n_items + 1), size=per_user, replace=False, p=p / p.sum())
        for k, i in enumerate(items):
            r = 5 if i <= 10 and rng.random() < 0.8 else int(rng.integers(1, 5))
            lines.append(f"{u}\t{int(i)}\t{r}\t{880000000 + u * 1000 + k}\n")
    d = tmp_path / "ml"
    d.mkdir()
    (d / "u.data").write_text("".join(lines))
    return d


def test_the_history_table_runs_end_to_end_and_ends_with_the_check(bench, tmp_path):
    args = bench.parse(["--data", str(_folder(tmp_path)), "--seeds", "0", "--archs", "esmm,no_such_arch",
                        "--lengths", "3", "--epochs", "1", "--threads", "1"])
    out = bench.run_bench(Path(args.data), args)
    json.dumps(out)                                           # one JSON object, as --json prints
    assert list(out)[-1] == "checks" and list(out["checks"]) == ["history_ndcg10_rel_gain"]
    assert out["default_arch"] == "esmm" and out["default_length"] == 3 and out["split"] == "temporal"
    rows = out["rows"]
    assert set(rows) == {"esmm/none", "esmm/mean@3", "esmm/attention@3", "no_such_arch/none",
                         "no_such_arch/mean@3", "no_such_arch/attention@3"}
    assert "architecture 'no_such_arch' is not available" in rows["no_such_arch/attention@3"]["skipped"]
    for name in ("esmm/none", "esmm/mean@3", "esmm/attention@3"):
        m = rows[name]["mean"]
        assert all(0.0 <= m[k] <= 1.0 for k in bench.RANK_KEYS), (name, m)
        assert 0.0 <= m["like_auc"] <= 1.0 and math.isfinite(m["rating_rmse"])
        assert m["test_rows_sampled"] > 0 and m["test_rows_observed"] == 30      # one test row per user
    none, att = rows["esmm/none"]["mean"]["ndcg@10"], rows["esmm/attention@3"]["mean"]["ndcg@10"]
    g = out["checks"]["history_ndcg10_rel_gain"]
    assert g is None if none == 0 else round(g, 2) == round((att - none) / none, 2)
    assert 0.0 <= out["baselines"]["popularity"]["mean"]["ndcg@10"] <= 1.0


def test_the_check_is_the_mean_of_the_per_seed_gains(bench):
    per_seed = {0: {"esmm/none": {"ndcg@10": 0.10}, "esmm/attention@20": {"ndcg@10": 0.12}},
                1: {"esmm/none": {"ndcg@10": 0.20}, "esmm/attention@20": {"ndcg@10": 0.20}},
                2: {"esmm/none": {"failed": "x"}, "esmm/attention@20": {"ndcg@10": 0.3}}}
    assert bench.gain(per_seed, "esmm/none", "esmm/attention@20") == 0.1      # (0.2 + 0.0) / 2
    assert bench.gain({0: {"esmm/none": {"ndcg@10": 0.1}}}, "esmm/none", "esmm/attention@20") is None
