"""AppTest: the "Training dynamics" view of a finished MMoE run on Results (under its own
subheader, the anchor other sections link to) and its compact live figure on Train."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from _fixtures_train import finished_tiny_job

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A finished training job of a tiny MMoE (click, like, rating; 2 epochs, dynamics on every batch)."""
    return finished_tiny_job(tmp_path_factory.mktemp("dynamics_app") / "run-mmoe", ("click", "like", "rating"), epochs=2, dynamics_every=1, ranking_k=0)


def app_with(job) -> AppTest:
    from pages.ui.state import AppState
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["mtlrec_state"] = AppState(jobs=[job])
    return at


def specs(at: AppTest) -> str:
    return " ".join(c.proto.spec for c in at.get("plotly_chart"))


def test_results_shows_the_training_dynamics_of_a_finished_run(job):
    from mtlrec.figures.dynamics import TITLES
    at = app_with(job)
    at.switch_page("pages/results.py").run()
    assert not at.exception, [e.value for e in at.exception]
    heads = [s for s in at.subheader if s.value == "Training dynamics"]
    assert heads, [s.value for s in at.subheader]
    assert heads[0].proto.anchor == "training-dynamics"
    assert "gradient" not in specs(at)                   # its charts open on demand
    at.session_state["results_dyn_open"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    s = specs(at)
    for name in ("weights", "grad_norm", "cosine", "entropy", "shares"):   # MMoE: the gates too
        assert TITLES[name] in s, name
    assert any("shared parameters" in c.value for c in at.caption)


def test_train_page_draws_the_live_dynamics_figure(job):
    at = app_with(job)
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(m.value.startswith("**Training dynamics**") for m in at.markdown), [m.value for m in at.markdown]
    assert "gradient cosine per task pair" in specs(at)


def test_results_names_a_gradient_methods_weights_implied_weights(tmp_path):
    """Issue 21 #8: a PCGrad run's weights chart is the aggregator's implied weights, not "Loss weight"."""
    job = finished_tiny_job(tmp_path / "run-pcgrad", ("click", "rating"), epochs=1, dynamics_every=1,
                            ranking_k=0, weighting="pcgrad")
    at = app_with(job)
    at.switch_page("pages/results.py").run()
    at.session_state["results_dyn_open"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    s = specs(at)
    assert "Implied weight per task" in s and "Loss weight per task" not in s
    assert any("pcgrad does not weight the losses" in c.value for c in at.caption)
