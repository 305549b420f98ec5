"""What a demo notices (issue 21 §15), below the pages: one rule for numbers in tables, "an item",
the split named in the Runs list, and experts numbered from 1 wherever they are named."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from _fixtures_ml100k import write_ml100k_split


@pytest.mark.parametrize("value, shown", [
    (0.7812345678901234, 0.7812), (-0.012345678, -0.0123), (0.000123456789, 0.000123), (2.0, 2.0),
    (np.float32(0.8123456), 0.8123), (12345.678912345, 12345.6789), (0.0, 0.0)])
def test_floats_are_rounded_to_four_decimals_keeping_three_significant_digits(value, shown):
    from mtlrec.display import display_number
    assert display_number(value) == shown
    assert isinstance(display_number(value), float)


def test_other_cells_are_left_as_they_are_and_text_follows_the_same_rule():
    from mtlrec.display import display_number, display_table, format_number
    assert [display_number(v) for v in (3, "0.123456789", None, True)] == [3, "0.123456789", None, True]
    assert np.isnan(display_number(float("nan")))
    assert [format_number(v) for v in (0.7812345678901234, 0.000123456, 3, None, float("inf"), 2.5e7)] \
        == ["0.7812", "0.000123", "3", "—", "n/a", "2.50e+07"]
    frame = display_table(pd.DataFrame({"task": ["click", "rating"], "auc": [0.81234567891, None],
                                        "n": [10, 20], "mixed": [0.123456789, "x"]}))
    assert frame["auc"].iloc[0] == 0.8123 and np.isnan(frame["auc"].iloc[1])
    assert list(frame["n"]) == [10, 20] and list(frame["mixed"]) == [0.1235, "x"]
    assert display_table([{"gain": 0.0123456789, "task": "a"}]) == [{"gain": 0.0123, "task": "a"}]


def test_articles():
    from mtlrec.display import with_article
    assert [with_article(w) for w in ("item", "user", "unseen item", "unit", "epoch", "cold-start split")] \
        == ["an item", "a user", "an unseen item", "a unit", "an epoch", "a cold-start split"]


def test_a_predefined_split_warning_says_an_item(tmp_path):
    """MovieLens u1.test holds items u1.base never has: the warning reads "an item", never "a item"."""
    from mtlrec.data.readers import load_data
    from mtlrec.data.suggest import suggest_spec
    from mtlrec.prep import PrepConfig, prepare
    from mtlrec.prep.splits import with_predefined_split
    write_ml100k_split(tmp_path / "ml", n_items=60, side=False)
    raw = load_data([tmp_path / "ml"])
    ds = prepare(raw, suggest_spec(raw), PrepConfig.from_dict(with_predefined_split({}, raw)))
    warnings = [w for w in ds.meta["report"]["prep_warnings"] if "not in the training rows" in w]
    assert any("an item that is not in the training rows" in w for w in warnings), warnings
    assert not any(" a item" in w for w in ds.meta["report"]["warnings"])


def _prepared(tmp_path, prep: dict):
    from mtlrec.data.readers import load_data
    from mtlrec.data.suggest import suggest_spec
    from mtlrec.prep import PrepConfig, prepare
    from mtlrec.prep.splits import with_predefined_split
    write_ml100k_split(tmp_path / "ml", side=False)
    raw = load_data([tmp_path / "ml"])
    return prepare(raw, suggest_spec(raw), PrepConfig.from_dict(with_predefined_split(prep, raw)))


@pytest.mark.parametrize("prep, text", [
    ({}, "predefined: u1.base/u1.test"),
    ({"split": "random"}, "random 80/10/10"),
    ({"split": "random", "valid_frac": 0.15, "test_frac": 0.2}, "random 65/15/20"),
    ({"split": "temporal"}, "temporal (per user: last → test, second last → valid)")])
def test_the_split_is_named_from_what_the_dataset_records(tmp_path, prep, text):
    from mtlrec.runs.library import split_text
    ds = _prepared(tmp_path, prep)
    assert split_text(None, {"meta": ds.meta}) == text
    assert split_text({"data": {"prep": {"split": "column", "split_column": "fold"}}}, None) == "predefined: column fold"
    assert split_text(None, None) == ""


def test_experts_are_numbered_from_one_in_gates_explanations_and_dynamics(tmp_path):
    """The gate columns of a pair, the global gates, the expert reliance, the shared units and the
    training dynamics all name the same experts: expert 1 .. expert n (PLE: own k, shared k)."""
    from _fixtures_train import finished_tiny_job
    from mtlrec.explain.api import global_summary
    from mtlrec.explain.gates import pair_gates
    from mtlrec.models import build_model
    from mtlrec.runs.load import load_run
    job = finished_tiny_job(tmp_path / "mmoe", ("click", "rating"), dynamics_every=1)
    run = load_run(job.run_dir)
    names = ["expert 1", "expert 2"]
    g = pair_gates(run, "u4", "i9", n_rows=50)
    assert [list(w) for w in g["pair"].values()] == [names, names] and list(g["average"]["click"]) == names
    s = global_summary(run, n_rows=20, background=8, max_units=6, heatmap_rows=10, heatmap_background=4,
                       gradient_samples=2)
    assert list(s["gates"]["click"]) == names
    assert list(s["expert_reliance"]["rating"]) == names
    assert {lab.split(" · ")[0] for lab in s["heatmap"]["unit_labels"]} <= set(names)
    hist = json.loads((job.run_dir / "history.json").read_text())
    assert hist["epochs"][-1]["dynamics"]["experts"] == names
    ple = build_model("ple", run.dataset.fields, run.tasks, n_shared_experts=2, n_specific_experts=1,
                      expert_dims=[8], tower_dims=[4], embedding_dim=4)
    assert ple.expert_names() == ["own 1", "shared 1", "shared 2"] and ple.shared_expert_names() == ["shared 1", "shared 2"]
