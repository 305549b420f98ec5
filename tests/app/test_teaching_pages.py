"""AppTests of the teaching aids (issue 14 §4-§6): the equations on Tasks & model carry the numbers of the
configuration, Results names the seesaw of a run with mixed gains and shows cross-validation mean ± std,
Data shows the label-correlation matrix once the data is prepared."""
from __future__ import annotations

import json

import pytest
import torch
from streamlit.testing.v1 import AppTest

from _fixtures_train import TASKS, make_dataset
from test_pages import APP, no_exception, plain, texts


def sample_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240).run()
    at.button(key="home_load_sample").click().run()
    no_exception(at, "loading the sample")
    return at


def test_tasks_page_writes_the_equations_with_the_configs_numbers():
    at = sample_app()
    st_ = at.session_state["mtlrec_state"]
    st_.model = {"arch": "mmoe", "n_experts": 3, "expert_dims": [24], "tower_dims": [8], "embedding_dim": 8}
    st_.tasks[0]["weight"] = 0.7
    st_.train["l2"] = 0.0025
    at.switch_page("pages/model.py").run()
    no_exception(at, "tasks page")
    eqs = "\n".join(lt.value for lt in at.latex)
    assert r"\sum_{e=1}^{3}" in eqs and "24" in eqs                 # 3 experts of width 24
    assert r"\mathrm{softmax}" in eqs
    assert r"0.7\,L_{\text{" + st_.tasks[0]["name"] + "}}" in eqs   # the task's weight w_i
    assert "0.0025" in eqs                                           # λ
    assert "d_x" in eqs                                              # no prepared data yet: symbolic width
    widgets = list(at.number_input) + list(at.selectbox) + list(at.text_input) + list(at.slider)
    assert widgets and not [w.label for w in widgets if not w.help]   # every setting explains itself


def test_tasks_page_says_what_each_weighting_does_and_what_it_cost():
    """Issue 21 #14: beside each method its benchmark Δm and cost; the chosen one's line says what it
    does; a method that did worse than single-task training on the benchmark is warned about; a
    gradient method gets its gradient combination, not "the w_i are adapted"."""
    from mtlrec.weighting import WEIGHTINGS
    at = sample_app()
    at.switch_page("pages/model.py").run()
    no_exception(at, "tasks page")
    box = next(b for b in at.selectbox if b.label == "Loss weighting")
    assert len(box.options) == len(WEIGHTINGS) and all(" · Δm " in o for o in box.options), box.options
    from mtlrec.weighting.facts import MEASURED
    for name, shown in zip(WEIGHTINGS, box.options):
        m = MEASURED["methods"][name]
        assert shown == f"{name} · Δm {m['delta_m_pct']:+.2f} ± {m['delta_m_std']:.2f} % · " \
                        f"{m['cost_vs_static']:.1f}× time", shown
    mgda = MEASURED["methods"]["mgda"]
    assert mgda["delta_m_pct"] < 0                   # the benchmark's finding the page must not hide
    box.set_value("mgda").run()
    no_exception(at, "mgda chosen")
    shown = plain(texts(at))
    assert "**MGDA** combines the tasks' **gradients** on the shared layers" in shown
    assert f"Δm {mgda['delta_m_pct']:+.2f} ± {mgda['delta_m_std']:.2f} % — worse than training each task alone" in shown
    assert any("did **worse than training each task alone**" in w.value for w in at.warning)
    eqs = "\n".join(lt.value for lt in at.latex)
    assert r"\mathcal{A}_{\text{MGDA}}" in eqs and "adapted" not in eqs
    table = next(d.value for d in at.dataframe if "what it does" in d.value.columns)
    assert list(table["method"]) == list(WEIGHTINGS) and table["what it does"].str.len().min() > 20


def test_data_page_shows_the_label_correlation_after_preparation():
    at = sample_app()
    at.switch_page("pages/data.py").run()
    assert not at.get("plotly_chart") or "How the labels move together" not in texts(at)
    next(b for b in at.button if b.label == "Prepare").click().run()
    no_exception(at, "after Prepare")
    assert "How the labels move together" in texts(at)
    assert "Pearson correlation of every pair of labels on the training rows" in texts(at)
    assert any("label_corr_fig" in str(getattr(c, "key", "") or c.proto.id) for c in at.get("plotly_chart"))


@pytest.fixture(scope="module")
def run_with_gains(runs_dir):
    """A tiny finished run with single-task baselines and 2 CV folds; its gains made mixed by hand."""
    from mtlrec.config import RunConfig
    from mtlrec.training.jobs import TrainingJob
    tasks = [t for t in TASKS if t["name"] in ("click", "rating")]
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = RunConfig.from_dict({"name": "seesaw", "tasks": tasks,
                                   "model": {"arch": "shared_bottom", "shared_dims": [16], "tower_dims": [8],
                                             "embedding_dim": 8},
                                   "train": {"epochs": 2, "batch_size": 512, "device": "cpu", "ranking_k": 0,
                                             "baselines": True, "cv_folds": 2}})
        job = TrainingJob(cfg, run_dir=runs_dir / "20260101-000000-seesaw", dataset=make_dataset(n_rows=1500)).start()
        job.join(timeout=400)
        assert job.snapshot()["status"] == "finished", job.snapshot()
    finally:
        torch.set_num_threads(n)
    rd = runs_dir / "20260101-000000-seesaw"
    m = json.loads((rd / "metrics.json").read_text())
    assert len(m["cv"]["folds"]) == 2 and m["cv"]["scheme"] == "user"
    m["gain"] = {"click": {"metric": "auc", "mtl": 0.80, "stl": 0.75, "gain": 0.05},
                 "rating": {"metric": "rmse", "mtl": 1.10, "stl": 1.00, "gain": -0.10}}
    (rd / "metrics.json").write_text(json.dumps(m))
    return rd


def test_train_page_offers_cross_validation_folds():
    at = sample_app()
    at.switch_page("pages/train.py").run()
    no_exception(at, "train page")
    st_ = at.session_state["mtlrec_state"]
    folds = next(w for w in at.number_input if w.label == "Cross-validation folds")
    assert folds.value == 1 and folds.help
    folds.set_value(3).run()
    assert st_.train["cv_folds"] == 3
    assert "3 folds" in texts(at) and "grouped by user" in texts(at)      # the sample is split at random


def test_results_names_the_seesaw_and_shows_cross_validation(run_with_gains, local_runs):
    at = AppTest.from_file(APP, default_timeout=240).run()
    st_ = at.session_state["mtlrec_state"]
    st_.opened_runs.append(str(run_with_gains))
    st_.selected_run = str(run_with_gains)
    at.switch_page("pages/results.py").run()
    no_exception(at, "results")
    warn = "\n".join(plain(w.value) for w in at.warning)
    assert "The seesaw" in warn and "helped **click**" in warn and "hurt **rating**" in warn, warn
    assert "Training dynamics" in warn and "#training-dynamics" in warn
    dm = next(mt for mt in at.metric if mt.label.startswith("Δm"))
    assert dm.value.startswith("-")                                   # -1.67 %: rating's loss outweighs click's gain
    cv = next(d.value for d in at.dataframe if "validation folds" in d.value.columns)
    assert list(cv["task"]) == ["click", "rating"] and all("±" in v for v in cv["validation folds"])
    assert "folds grouped by user" in texts(at)


def test_tasks_page_offers_esmm_and_aitm_with_their_help_a_chain_note_and_formulas():
    """Issue 22 item 3: ESMM and AITM in the architecture choice (from the registry), their settings
    explained; without a chained task the page says what they become; with one, pCTCVR = pCTR × pCVR."""
    at = sample_app()
    st_ = at.session_state["mtlrec_state"]
    st_.tasks = [{k: v for k, v in t.items() if k != "given"} for t in st_.tasks if t["name"] != "interact"]
    at.switch_page("pages/model.py").run()
    no_exception(at, "tasks page")
    box = next(b for b in at.selectbox if b.label == "Architecture")
    assert {"ESMM (entire-space towers)", "AITM (towers + information transfer)"} <= set(box.options)
    assert "ESMM" in box.help and "AITM" in box.help
    box.set_value("aitm").run()
    no_exception(at, "aitm chosen")
    alpha = next(n for n in at.number_input if n.label == "calibrator alpha")
    assert alpha.value == pytest.approx(0.6) and "calibrator" in alpha.help
    assert any("built for task chains" in i.value for i in at.info)       # no task is given another yet
    binary = [t for t in st_.tasks if t.get("type") == "binary"]
    given = next(s for s in at.selectbox if s.label == "Given" and s.key.startswith("task_given_" + binary[1]["_uid"]))
    given.set_value(binary[0]["name"]).run()                           # like given click, as a visitor sets it
    next(b for b in at.selectbox if b.label == "Architecture").set_value("esmm").run()
    no_exception(at, "esmm with a chain")
    assert not any("built for task chains" in i.value for i in at.info)
    eqs = "\n".join(lt.value for lt in at.latex)
    assert r"\text{pCTCVR}" in eqs and r"\text{pCVR}" in eqs
