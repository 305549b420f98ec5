"""One fused score everywhere: the recommendation list (library, ``mtlrec recommend --json``,
the CSV frame), the Explain page's data (`explain_recommendation`) and ``mtlrec explain --json``
show the same number for a (user, item) pair, and the explanation's split by feature group
adds up to it -- for every architecture, with the regression target standardised (the default
of prepared data) or not. Regression waterfalls are in label units; a multi-label task is
explained one class at a time."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _fixtures_train import TASKS, make_dataset, with_label_stats
from mtlrec.config import RunConfig
from mtlrec.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
N_ITEMS = 30
PAIRS = [("u3", "i7"), ("u10", "i0"), ("u25", "i19")]
WEIGHTS = [None, {"rating": 1.0}, {"click": 2.0, "like": 0.0, "rating": 1.0}]
BACKGROUND = 30


def _cli_weights(w) -> list[str]:
    return [] if not w else ["--weights", ",".join(f"{k}={v}" for k, v in w.items())]


@pytest.fixture(scope="module", params=[(a, s) for a in ("shared_bottom", "mmoe", "ple") for s in (True, False)],
                ids=lambda p: f"{p[0]}-{'standardised' if p[1] else 'raw'}")
def trained(request, tmp_path_factory):
    """A tiny run (1 epoch) per architecture, regression target standardised or raw."""
    from mtlrec.runs.load import load_run
    from mtlrec.training.pipeline import run_training
    arch, standardised = request.param
    ds = make_dataset(n_users=40, n_items=N_ITEMS, n_rows=900)
    if standardised:
        with_label_stats(ds)
    d = tmp_path_factory.mktemp(f"fused-{arch}-{standardised}") / "run"
    cfg = RunConfig.from_dict({"tasks": TASKS, "model": {"arch": arch, "embedding_dim": 8},
                               "train": {"epochs": 1, "batch_size": 256, "lr": 0.01, "device": "cpu",
                                         "seed": 0, "ranking_k": 0}})
    res = run_training(cfg, run_dir=d, dataset=ds)
    assert res.status == "finished"
    run = load_run(d)
    rating = run.task("rating")
    assert (rating.target_std != 1.0) == standardised      # the setting under test is in effect
    return run, d, standardised


def _main_json(capsys, *args) -> dict:
    from mtlrec.__main__ import main
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_recommend_explain_and_cli_show_the_same_fused_score(trained, capsys):
    from mtlrec.explain.api import explain_recommendation, make_explainer
    from mtlrec.serve.recommend import label_range, recommend
    from mtlrec.app.workflow import rec_frame
    run, d, standardised = trained
    ex = make_explainer(run, BACKGROUND)          # as the Explain page: one explainer per run
    rating = run.task("rating")
    lo, hi = label_range(run, rating)
    for user, item in PAIRS:
        for w in WEIGHTS:
            where = f"{user}/{item} weights={w}"
            recs = recommend(run, user, k=N_ITEMS, weights=w, exclude_seen=False)
            rec = next(r for r in recs if r["item"] == item)
            score = rec["score"]
            # the number itself: sum_t a_t * s_t with the rating on the label scale, scaled by its range
            a = {"click": 1 / 3, "like": 1 / 3, "rating": 1 / 3} if w is None else \
                {k: w.get(k, 0.0) / sum(w.values()) for k in ("click", "like", "rating")}
            s_rating = float(np.clip((rec["tasks"]["rating"] - lo) / (hi - lo), 0, 1))
            expect = a["click"] * rec["tasks"]["click"] + a["like"] * rec["tasks"]["like"] + a["rating"] * s_rating
            assert abs(score - expect) < 1e-6, where
            # the CSV / card frame
            frame = rec_frame(recs, run.dataset)
            assert abs(float(frame.loc[frame["item_id"] == item, "fused"].iloc[0]) - score) < 1e-6, where
            # the Explain page's data
            res = explain_recommendation(run, user, item, background=BACKGROUND, weights=w, explainer=ex)
            f = res["fused"]
            assert abs(f["score"] - score) < 1e-6, where
            assert abs(f["base_value"] + sum(f["contributions"].values()) - score) < 1e-5, where
            assert abs(sum(f["by_task"].values()) - score) < 1e-6, where
            assert abs(res["tasks"]["rating"]["prediction"] - rec["tasks"]["rating"]) < 1e-6, where
            # the command line
            cli_rec = _main_json(capsys, "recommend", "--run", str(d), "--user", user, "--k", str(N_ITEMS),
                                 "--include-seen", "--json", *_cli_weights(w))
            cli_score = next(r["score"] for r in cli_rec["items"] if r["item"] == item)
            assert abs(cli_score - score) < 1e-6, where
            cli_exp = _main_json(capsys, "explain", "--run", str(d), "--user", user, "--item", item,
                                 "--background", str(BACKGROUND), "--json", *_cli_weights(w))
            cf = cli_exp["fused"]
            assert abs(cf["score"] - score) < 1e-6, where
            assert abs(cf["base_value"] + sum(cf["contributions"].values()) - score) < 1e-5, where


def test_regression_waterfall_is_in_label_units(trained):
    from mtlrec.explain.api import explain_recommendation
    run, _, standardised = trained
    t = run.task("rating")
    u, i = run.dataset.user_index("u3"), run.dataset.item_index("i7")
    with torch.no_grad():
        z = float(run.model(run.device_data().candidates(u, [i]))["rating"][0])
    res = explain_recommendation(run, "u3", "i7", background=BACKGROUND)
    r = res["tasks"]["rating"]
    assert r["space"] == "label" and r["unit"] == "rating (label units)"
    # output = the predicted rating (the model's output mapped to the label scale) = base + contributions
    assert abs(r["output"] - (z * t.target_std + t.target_mean)) < 1e-4
    assert abs(r["output"] - r["prediction"]) < 1e-4
    assert abs(r["base_value"] + sum(r["contributions"].values()) - r["output"]) < 1e-4
    # the affine map: contributions scale by the std, the base value shifts by the mean
    st = r["standardisation"]
    assert abs((r["output"] - r["base_value"]) - t.target_std * (st["output"] - st["base_value"])) < 1e-6
    if standardised:   # the base value is an average predicted rating, on the ratings' 1-5 scale
        assert 1.0 <= r["base_value"] <= 5.0 and 1.0 <= r["output"] <= 5.0
    for name in ("click", "like"):
        assert res["tasks"][name]["space"] == "logit"


def test_a_multilabel_task_is_explained_one_class_at_a_time(trained):
    from mtlrec.explain.api import explain_recommendation
    run, _, _ = trained
    classes = run.dataset.label("genres").classes
    u, i = run.dataset.user_index("u10"), run.dataset.item_index("i0")
    with torch.no_grad():
        logits = run.model(run.device_data().candidates(u, [i]))["genres"][0].double()
    default = explain_recommendation(run, "u10", "i0", background=BACKGROUND)["tasks"]["genres"]
    top = int(torch.argmax(logits))
    assert default["class"] == classes[top] and default["space"] == "logit"
    assert list(default["class_probabilities"])[0] == classes[top]
    pick = classes[(top + 1) % len(classes)]
    g = explain_recommendation(run, "u10", "i0", background=BACKGROUND, classes={"genres": pick})["tasks"]["genres"]
    k = classes.index(pick)
    assert g["class"] == pick and g["class_index"] == k and pick in g["output_kind"]
    assert abs(g["output"] - float(logits[k])) < 1e-4
    assert abs(g["prediction"] - float(torch.sigmoid(logits[k]))) < 1e-5
    assert abs(g["base_value"] + sum(g["contributions"].values()) - g["output"]) < 1e-4
    with pytest.raises(DataError, match="task 'genres' has no class 'Western'"):
        explain_recommendation(run, "u10", "i0", background=BACKGROUND, classes={"genres": "Western"})
    with pytest.raises(DataError, match="no multilabel or distribution task named 'click'"):
        explain_recommendation(run, "u10", "i0", background=BACKGROUND, classes={"click": "x"})


def test_python_m_mtlrec_recommend_and_explain_agree(tmp_path):
    """The real commands in their own processes (standardised rating, as prepared data has it;
    every architecture and both settings run in-process above)."""
    from mtlrec.training.pipeline import run_training
    ds = with_label_stats(make_dataset(n_users=40, n_items=N_ITEMS, n_rows=900))
    cfg = RunConfig.from_dict({"tasks": TASKS, "model": {"arch": "mmoe", "embedding_dim": 8},
                               "train": {"epochs": 1, "batch_size": 256, "device": "cpu", "ranking_k": 0}})
    d = tmp_path / "run"
    run_training(cfg, run_dir=d, dataset=ds)
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def cli(*args) -> dict:
        p = subprocess.run([sys.executable, "-m", "mtlrec", *args, "--json"], capture_output=True, text=True,
                           cwd=ROOT, env=env, timeout=300)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    w = ["--weights", "click=1,rating=3"]
    rec = cli("recommend", "--run", str(d), "--user", "u3", "--k", "3", *w)["items"][0]
    exp = cli("explain", "--run", str(d), "--user", "u3", "--item", rec["item"], "--background", "20", *w)
    f = exp["fused"]
    assert abs(f["score"] - rec["score"]) < 1e-6
    assert abs(f["base_value"] + sum(f["contributions"].values()) - rec["score"]) < 1e-5
    assert abs(exp["tasks"]["rating"]["prediction"] - rec["tasks"]["rating"]) < 1e-6
    assert exp["tasks"]["rating"]["space"] == "label"
