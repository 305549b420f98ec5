"""LIME beside SHAP, dependence plots and per-pair gates (issue 13 §3, §5, §6)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from _fixtures_train import TASKS, make_dataset, with_label_stats

ARCHS = {"shared_bottom": {"shared_dims": [32, 16]},
         "mmoe": {"n_experts": 3, "expert_dims": [16]},
         "ple": {"expert_dims": [16]}}
AGE = {"mean": 30.0, "std": 10.0}
OCCUPATIONS = ["clerk", "nurse", "pilot"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run per architecture (1 epoch), on data whose preparation recorded the age's
    mean/std and the occupation names, as `mtlrec.prep` does."""
    from mtlrec.config import RunConfig
    from mtlrec.runs.load import load_run
    from mtlrec.training.pipeline import run_training
    ds = with_label_stats(make_dataset(n_rows=1500))
    ds.meta["report"]["stats"] = {"age": {"kind": "numeric", **AGE},
                                  "occupation": {"kind": "categorical", "top": OCCUPATIONS}}
    out = {}
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for arch, hp in ARCHS.items():
            d = tmp_path_factory.mktemp("explain_lime") / arch
            cfg = RunConfig.from_dict({"tasks": TASKS, "model": {"arch": arch, "tower_dims": [8], "embedding_dim": 8,
                                                                 **hp},
                                       "train": {"epochs": 1, "batch_size": 512, "device": "cpu", "seed": 0}})
            assert run_training(cfg, run_dir=d, dataset=ds).status == "finished"
            out[arch] = load_run(d)
    finally:
        torch.set_num_threads(n)
    return out


@pytest.mark.parametrize("arch", list(ARCHS))
def test_lime_explains_one_recommendation_on_every_architecture(runs, arch):
    from mtlrec.explain.core import state_snapshot
    from mtlrec.explain.lime import lime_explanation
    run = runs[arch]
    before = state_snapshot(run.model)
    for task in ("click", "rating", "genres"):
        res = lime_explanation(run, "u3", "i7", task, n_samples=300, background=30)
        assert set(res["lime"]) == set(res["shap"]) == {"user id", "item id", "age", "occupation"}
        assert all(np.isfinite(v) for v in res["lime"].values())
        assert -1.0 <= res["agreement"] <= 1.0
        assert res["top_lime"] in res["lime"] and res["note"]
    assert "label units" in res["unit"] or "logit" in res["unit"]
    after = state_snapshot(run.model)
    assert all(torch.equal(before[k], after[k]) for k in before)      # the run's model is untouched


class OneGroup(torch.nn.Module):
    """A model that reads only one feature group: the other groups' columns of X are zeroed."""

    def __init__(self, inner, group: str):
        super().__init__()
        self.inner = inner
        self.task_names = list(inner.task_names)
        self.arch = "stub"
        mask = torch.zeros(sum(len(c) for c in inner.input_groups().values()))
        mask[inner.input_groups()[group]] = 1.0
        self.register_buffer("mask", mask)

    def embed(self, features):
        return self.inner.embed(features)

    def input_groups(self):
        return self.inner.input_groups()

    def forward_from_input(self, x):
        return self.inner.forward_from_input(x * self.mask)


@pytest.mark.parametrize("method", ["lime", "captum"])
def test_both_rank_first_the_only_group_the_model_reads(runs, method):
    from mtlrec.explain.lime import lime_explanation
    base = runs["shared_bottom"]
    run = dataclasses.replace(base, model=OneGroup(base.model, "item id"))
    res = lime_explanation(run, "u3", "i7", "click", n_samples=500, background=30, method=method)
    assert res["top_shap"] == "item id" and res["top_lime"] == "item id"
    lime = res["lime"]
    assert all(abs(lime[g]) < 0.1 * abs(lime["item id"]) for g in lime if g != "item id"), lime
    # SHAP gives the unread groups exactly nothing (tied ranks): agreement is as high as ties allow
    assert res["agreement"] > 0.7


@pytest.mark.parametrize("method", ["lime", "captum"])
def test_lime_weights_have_the_signs_of_the_shap_values(runs, method):
    """A model that reads one group: its LIME slope and its SHAP value point the same way (the lime
    package's regression mode keeps a negated copy of the surrogate under its first key)."""
    from mtlrec.explain.lime import lime_explanation
    base = runs["shared_bottom"]
    run = dataclasses.replace(base, model=OneGroup(base.model, "age"))
    for user in ("u3", "u10", "u40"):
        res = lime_explanation(run, user, "i7", "click", n_samples=500, background=30, method=method)
        s, w = res["shap"]["age"], res["lime"]["age"]
        assert abs(s) > 1e-4 and np.sign(s) == np.sign(w), (user, s, w)


class ClassPerGroup(torch.nn.Module):
    """A known-answer model: class 0 of genres reads only the item id, class 1 only the age
    (the other groups' columns zeroed, the logit scaled up); every other output is the inner model's."""

    def __init__(self, inner, groups=("item id", "age")):
        super().__init__()
        self.inner = inner
        self.task_names = list(inner.task_names)
        self.arch = "stub"
        cols = inner.input_groups()
        masks = torch.zeros(len(groups), sum(len(c) for c in cols.values()))
        for k, g in enumerate(groups):
            masks[k, cols[g]] = 1.0
        self.register_buffer("masks", masks)

    def embed(self, features):
        return self.inner.embed(features)

    def input_groups(self):
        return self.inner.input_groups()

    @property
    def input(self):                       # the input layer (its fields), as the dependence plot reads it
        return self.inner.input

    def forward_from_input(self, x):
        out = dict(self.inner.forward_from_input(x))
        g = out["genres"].clone()
        for k in range(len(self.masks)):
            g[:, k] = 100.0 * self.inner.forward_from_input(x * self.masks[k])["genres"][:, k]   # 1 epoch: faint
        out["genres"] = g
        return out

    def forward(self, features):
        return self.forward_from_input(self.embed(features))


def test_lime_explains_one_class_of_a_multilabel_task(runs):
    """Never the mean logit over the classes: each class gets its own LIME and SHAP, and on a
    model whose answer is known, both rank first the one group that class reads."""
    from mtlrec.errors import DataError
    from mtlrec.explain.lime import lime_explanation
    base = runs["shared_bottom"]
    classes = base.dataset.label("genres").classes
    run = dataclasses.replace(base, model=ClassPerGroup(base.model))
    by_name = lime_explanation(run, "u3", "i7", "genres", cls=str(classes[0]), n_samples=500, background=30)
    by_index = lime_explanation(run, "u3", "i7", "genres", cls=1, n_samples=500, background=30)
    assert by_name["class"] == str(classes[0]) and by_index["class"] == str(classes[1])
    assert f"class '{classes[1]}'" in by_index["unit"] and "mean" not in by_index["unit"]
    assert by_name["top_shap"] == by_name["top_lime"] == "item id"
    assert by_index["top_shap"] == by_index["top_lime"] == "age"
    assert by_name["agreement"] > 0.7 and by_index["agreement"] > 0.7
    assert by_name["shap"] != by_index["shap"] and by_name["lime"] != by_index["lime"]
    # the SHAP beside LIME is the class's own waterfall (explain_recommendation with that class)
    from mtlrec.explain.api import explain_recommendation
    for res in (by_name, by_index):
        wf = explain_recommendation(run, "u3", "i7", background=30, classes={"genres": res["class"]})
        c = wf["tasks"]["genres"]["contributions"]
        assert all(abs(c[g] - res["shap"][g]) < 1e-6 + 1e-3 * abs(c[g]) for g in c), (c, res["shap"])
    # by default: the class the local view explains, the pair's most likely one
    default = lime_explanation(run, "u3", "i7", "genres", n_samples=300, background=30)
    assert default["class"] == explain_recommendation(run, "u3", "i7", background=30)["tasks"]["genres"]["class"]
    with pytest.raises(DataError, match="no class"):
        lime_explanation(run, "u3", "i7", "genres", cls="nope", n_samples=100, background=30)
    with pytest.raises(DataError, match="no classes"):
        lime_explanation(run, "u3", "i7", "click", cls=0, n_samples=100, background=30)
    assert lime_explanation(run, "u3", "i7", "click", n_samples=100, background=30)["class"] is None


def test_agreement_is_a_rank_correlation_of_absolute_importance():
    from mtlrec.explain.lime import agreement
    shap = {"a": 3.0, "b": -2.0, "c": 0.5}
    assert agreement(shap, {"a": -30.0, "b": 20.0, "c": 1.0}) == pytest.approx(1.0)
    assert agreement(shap, {"a": 0.1, "b": 2.0, "c": 3.0}) == pytest.approx(-1.0)
    assert agreement(shap, {"a": 1.0, "b": 1.0, "c": 1.0}) == 0.0          # no ranking on one side: not NaN


def test_unknown_lime_settings_say_what_to_use(runs):
    from mtlrec.errors import DataError
    from mtlrec.explain.lime import lime_explanation
    with pytest.raises(DataError, match="no task 'nope'"):
        lime_explanation(runs["mmoe"], "u3", "i7", "nope")
    with pytest.raises(DataError, match="LIME implementation"):
        lime_explanation(runs["mmoe"], "u3", "i7", "click", method="kernel")


def test_dependence_values_are_the_prepared_features_on_their_original_scale(runs):
    from mtlrec.explain.dependence import dependence_data, dependence_figure, plottable_groups
    run = runs["mmoe"]
    ds = run.dataset
    assert plottable_groups(run) == {"user id": "support", "item id": "support", "age": "numeric",
                                     "occupation": "categorical"}
    d = dependence_data(run, "age", "occupation", "click", n_rows=120, background=20)
    assert d["n_rows"] == 120 and len(d["values"]) == len(d["shap"]) == len(d["color"]) == 120
    users = np.asarray(ds.rows[d["split"]]["user_index"])[d["rows"]]
    for k in (0, 7, 50):
        u = users[k]
        assert d["values"][k] == pytest.approx(float(ds.user_table["age"][u]) * AGE["std"] + AGE["mean"], rel=1e-5)
        assert d["color"][k] == OCCUPATIONS[int(ds.user_table["occupation"][u]) - 1]
    assert np.isfinite(d["shap"]).all() and np.abs(d["shap"]).max() > 0
    # ids: their support (training rows of the item)
    d = dependence_data(run, "item id", "age", "click", n_rows=60, background=20)
    items = np.asarray(ds.rows[d["split"]]["item_index"])[d["rows"]]
    support = np.bincount(ds.rows["train"]["item_index"], minlength=len(ds.item_ids))
    assert d["kind"] == "support" and list(d["values"][:5]) == list(support[items[:5]].astype(float))
    fig = dependence_figure(d)
    assert "SHAP value of item id" in fig.layout.yaxis.title.text
    dependence_figure(dependence_data(run, "occupation", "age", n_rows=40, background=20))   # categorical x axis


def test_dependence_refuses_a_group_without_a_single_value(runs):
    from mtlrec.errors import DataError
    from mtlrec.explain.dependence import dependence_data
    with pytest.raises(DataError, match="no feature group 'genre'"):
        dependence_data(runs["mmoe"], "genre", n_rows=10)


def test_per_pair_gates_sum_to_one_and_differ_from_the_average(runs):
    from mtlrec.explain.gates import gates_frame, max_difference, pair_gates
    for arch in ("mmoe", "ple"):
        run = runs[arch]
        diffs = []
        for u, i in [("u3", "i7"), ("u10", "i2"), ("u40", "i33")]:
            g = pair_gates(run, u, i)
            assert g["has_gates"] and set(g["pair"]) == {t["name"] for t in TASKS}
            for t, w in g["pair"].items():
                assert sum(w.values()) == pytest.approx(1.0, abs=1e-5)
                assert sum(g["average"][t].values()) == pytest.approx(1.0, abs=1e-5)
            diffs.append(max_difference(g))
        assert max(diffs) > 1e-4, arch
        assert len(gates_frame(g)) == sum(len(w) for w in g["pair"].values())
    g = pair_gates(runs["shared_bottom"], "u3", "i7")
    assert not g["has_gates"] and "no gates" in g["note"]


def test_dependence_on_a_gated_model_cuts_its_background_to_the_time_budget(runs, monkeypatch):
    """A slow model gets fewer background rows (at least MIN_BACKGROUND), said in the result."""
    from mtlrec.explain import dependence as dep
    run = runs["ple"]
    roomy = dep.dependence_data(run, "age", n_rows=50, background=20)
    assert roomy["background"] > dep.MIN_BACKGROUND
    monkeypatch.setattr(dep, "TIME_BUDGET_S", 1e-6)
    tight = dep.dependence_data(run, "age", n_rows=50, background=20)
    assert tight["background"] == dep.MIN_BACKGROUND and tight["method"] == "exact"
    assert np.isfinite(tight["shap"]).all() and len(tight["shap"]) == 50


def test_dependence_warns_when_the_background_is_cut_below_the_advised_minimum(runs):
    """Issue 21 item 10: a plot on 2 background rows says so, with the rows used and why; a plot on
    enough rows carries no warning."""
    from mtlrec.errors import DataError
    from mtlrec.explain import dependence as dep
    ok = dep.dependence_data(runs["shared_bottom"], "age", n_rows=40, background=20)
    assert ok["background"] == 20 and ok["warning"] is None
    small = dep.dependence_data(runs["shared_bottom"], "age", n_rows=40, background=4)
    assert small["background"] == 4
    assert small["warning"].startswith(f"Only 4 background rows were used, fewer than the {dep.ADVISED_BACKGROUND}")
    tight = dep.dependence_data(runs["ple"], "age", n_rows=50, background=20, time_budget_s=1e-6)
    assert tight["background"] == dep.MIN_BACKGROUND < dep.ADVISED_BACKGROUND
    w = tight["warning"]
    assert w.startswith(f"Only {dep.MIN_BACKGROUND} background rows were used") and "1e-06 s" in w, w
    assert "plot fewer rows (now 50)" in w
    with pytest.raises(DataError, match="time budget must be a positive number"):
        dep.dependence_data(runs["ple"], "age", n_rows=5, time_budget_s=0)


def test_dependence_of_a_multilabel_task_plots_one_class(runs):
    """Never the mean logit over the classes: one class, by name or index, each its own values."""
    from mtlrec.errors import DataError
    from mtlrec.explain.dependence import default_class, dependence_data, dependence_figure
    base = runs["mmoe"]
    classes = [str(c) for c in base.dataset.label("genres").classes]
    run = dataclasses.replace(base, model=ClassPerGroup(base.model, groups=("item id", "age")))
    a = dependence_data(run, "age", task="genres", cls=classes[0], n_rows=40, background=10)
    b = dependence_data(run, "age", task="genres", cls=1, n_rows=40, background=10)
    assert (a["class"], b["class"]) == (classes[0], classes[1]) and "mean" not in a["unit"]
    assert np.abs(a["shap"]).max() < 1e-6 < np.abs(b["shap"]).max()     # class 0 does not read the age
    assert f"class '{classes[1]}'" in dependence_figure(b).layout.title.text
    d = dependence_data(run, "age", task="genres", n_rows=10, background=10)
    assert d["class_index"] == default_class(run, "genres")
    with pytest.raises(DataError, match="no classes"):
        dependence_data(run, "age", task="click", cls=0, n_rows=10)
