"""AppTest: Tasks & model offers the bias and dot terms for every architecture, and a choice made
there reaches the run's model settings."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


def test_biases_and_dot_interaction_are_chosen_on_tasks_and_model():
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.button(key="home_load_sample").click().run()
    at.switch_page("pages/model.py").run()
    assert not at.exception
    interaction = next(s for s in at.selectbox if s.label == "interaction")
    assert list(interaction.options) == ["none", "dot"] and interaction.value == "none"
    biases = next(c for c in at.checkbox if c.label == "biases")
    assert biases.value is False
    interaction.set_value("dot")
    biases.check()
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    model = at.session_state["mtlrec_state"].model
    assert model.get("interaction") == "dot" and model.get("biases") is True
