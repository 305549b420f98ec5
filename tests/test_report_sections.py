"""The exports carry what Results shows (issue 21 §11): cross-validation, Δm and the seesaw, and the
training dynamics are in the HTML report and the metrics CSV when the run has them, and absent
(no empty section, no empty rows) when it has not."""
from __future__ import annotations

import io
import json
import re
import shutil

import pandas as pd
import pytest

from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig


def _train(d, **train):
    from mtlrec.training.pipeline import run_training
    t = {"epochs": 2, "batch_size": 256, "lr": 0.01, "device": "cpu", "seed": 0, "ranking_k": 0, **train}
    cfg = RunConfig.from_dict({"name": d.name, "tasks": TASKS[:3], "train": t,
                               "model": {"arch": "mmoe", "n_experts": 2, "expert_dims": [16], "tower_dims": [8],
                                         "embedding_dim": 8}})
    run_training(cfg, d, dataset=make_dataset(n_rows=600))
    return d


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """A tiny MMoE run with 2-fold cross-validation, single-task baselines and training dynamics on
    every batch; its gains are set to mixed signs (a seesaw) in its metrics.json."""
    d = _train(tmp_path_factory.mktemp("report_sections") / "full", cv_folds=2, baselines=True, dynamics_every=1)
    m = json.loads((d / "metrics.json").read_text())
    assert m["cv"]["folds"] and m["gain"]
    m["gain"] = {"click": {"metric": "auc", "mtl": 0.70, "stl": 0.65, "gain": 0.05},
                 "like": {"metric": "auc", "mtl": 0.60, "stl": 0.66, "gain": -0.06},
                 "rating": {"metric": "rmse", "mtl": 0.90, "stl": 1.00, "gain": 0.10}}
    (d / "metrics.json").write_text(json.dumps(m))
    return d


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """The same model without CV, baselines or dynamics."""
    return _train(tmp_path_factory.mktemp("report_plain") / "plain", dynamics_every=0)


def _csv(d) -> pd.DataFrame:
    from mtlrec.runs.report import metrics_csv
    return pd.read_csv(io.BytesIO(metrics_csv(d)), encoding="utf-8-sig")


def test_report_has_cross_validation_delta_m_seesaw_and_dynamics(full_run):
    from mtlrec.runs.report import report_html
    html = report_html(full_run, k=2, explain=False)
    cv = html.split("<h2>Cross-validation</h2>", 1)[1].split("<h2>", 1)[0]
    assert "over 2 folds" in cv
    for task, metric in (("click", "auc"), ("like", "auc"), ("rating", "rmse")):
        assert f"<td>{task}</td><td>{metric}</td>" in cv
    assert len(re.findall(r"<td>-?[0-9.]+ ± [0-9.]+</td>", cv)) == 6    # validation folds and test, per task
    gain = html.split("<h2>Multi-task gain</h2>", 1)[1].split("<h2>", 1)[0]
    # Δm = mean(+0.05/0.65, -0.06/0.66, +0.10/1.00) in percent
    expected = 100 * (0.05 / 0.65 - 0.06 / 0.66 + 0.10 / 1.00) / 3
    assert f"Δm over the single-task baselines: {expected:+.2f} %" in gain
    assert "The seesaw" in gain and "helped rating, click" in gain and "hurt like" in gain
    dyn = html.split("<h2>Training dynamics</h2>", 1)[1].split("<h2>", 1)[0]
    assert dyn.count("Plotly.newPlot") == 5               # weights, gradient norms, cosines, gate entropy, shares
    for title in ("Gradient norm per task", "Gradient cosine per task pair", "Gate entropy per task"):
        assert title in dyn
    assert "expert 1" in dyn and "expert 0" not in dyn


def test_metrics_csv_has_cross_validation_delta_m_seesaw_and_dynamics(full_run):
    df = _csv(full_run)
    assert list(df.columns) == ["split", "task", "metric", "value", "direction", "headline", "epoch", "note"]
    m = json.loads((full_run / "metrics.json").read_text())
    for part, split in (("valid", "cross-validation (validation folds)"), ("test", "cross-validation (test)")):
        rows = df[df["split"] == split]
        mean = rows[(rows["task"] == "click") & (rows["metric"] == "auc (mean)")]
        std = rows[(rows["task"] == "click") & (rows["metric"] == "auc (std)")]
        assert len(mean) == len(std) == 1 and bool(mean["headline"].iloc[0])
        assert mean["value"].iloc[0] == pytest.approx(m["cv"][part]["click"]["auc"]["mean"], abs=1e-9)
        assert std["value"].iloc[0] == pytest.approx(m["cv"][part]["click"]["auc"]["std"], abs=1e-9)
        assert "over 2 folds" in mean["note"].iloc[0]
    gain = df[df["split"] == "multi-task gain"]
    dm = gain[gain["metric"] == "Δm % over the single-task baselines"]
    assert dm["value"].iloc[0] == pytest.approx(100 * (0.05 / 0.65 - 0.06 / 0.66 + 0.10 / 1.00) / 3, abs=1e-6)
    assert gain[gain["metric"] == "seesaw"]["note"].iloc[0] == "helped: rating, click; hurt: like"
    dyn = df[df["split"] == "training dynamics"]
    assert set(dyn["epoch"]) == {1, 2}
    assert set(dyn[dyn["metric"] == "gradient norm (shared parameters)"]["task"]) == {"click", "like", "rating"}
    assert set(dyn[dyn["metric"] == "gradient cosine"]["task"]) == {"click ↔ like", "click ↔ rating", "like ↔ rating"}
    cos = dyn[dyn["metric"] == "gradient cosine"]["value"]
    assert cos.between(-1, 1).all() and dyn[dyn["metric"] == "conflict share"]["value"].between(0, 1).all()
    shares = dyn[(dyn["epoch"] == 2) & dyn["metric"].str.startswith("gate share: ")]
    assert set(shares["metric"]) == {"gate share: expert 1", "gate share: expert 2"}
    assert shares.groupby("task")["value"].sum().round(6).eq(1.0).all()
    h = json.loads((full_run / "history.json").read_text())
    e1 = h["epochs"][0]["dynamics"]["grad_norm"]["like"]
    got = dyn[(dyn["epoch"] == 1) & (dyn["task"] == "like") & (dyn["metric"] == "gradient norm (shared parameters)")]
    assert got["value"].iloc[0] == pytest.approx(e1, rel=1e-9)


def test_a_run_without_them_has_no_such_sections_or_rows(plain_run, tmp_path):
    from mtlrec.runs.report import report_html
    html = report_html(plain_run, k=2, explain=False)
    assert "<h2>Cross-validation</h2>" not in html and "<h2>Training dynamics</h2>" not in html
    assert "Δm" not in html and "seesaw" not in html.lower()
    assert "No single-task baselines were trained" in html
    df = _csv(plain_run)
    assert not df["split"].str.startswith("cross-validation").any()
    assert set(df["split"]) == {"valid", "test"}
    # a damaged history or cv block is left out, never an exception
    d = tmp_path / "damaged"
    shutil.copytree(plain_run, d)
    (d / "history.json").write_text("[1, 2")
    m = json.loads((d / "metrics.json").read_text())
    m["cv"] = {"folds": "x"}
    (d / "metrics.json").write_text(json.dumps(m))
    assert "<h2>Cross-validation</h2>" not in report_html(d, k=1, explain=False)
    assert set(_csv(d)["split"]) == {"valid", "test"}


def test_a_gradient_methods_weights_are_named_implied_weights_in_the_csv(full_run, tmp_path):
    """As on Results: a gradient method's recorded weights are its aggregator's implied weights, not
    loss weights (issue 21 §8); the CSV names them so."""
    assert set(_csv(full_run).query("split == 'training dynamics'")["metric"]) >= {"loss weight"}
    d = tmp_path / "pcgrad"
    shutil.copytree(full_run, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["train"]["weighting"] = "pcgrad"
    (d / "config.json").write_text(json.dumps(cfg))
    names = set(_csv(d).query("split == 'training dynamics'")["metric"])
    assert "implied weight (last batch)" in names and "loss weight" not in names
