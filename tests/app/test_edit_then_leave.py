"""AppTest: a value typed on Tasks & model is kept when the very next script run draws another page
(the visitor typed, then clicked the sidebar before the rerun of the edit had drawn the page). The CI
browser journey lost "Batch size 64" this way; the Train page then said "Batch: 1024"."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


def _no_error(at: AppTest) -> None:
    assert not at.exception and not [e.value for e in at.error if "went wrong" in str(e.value)]


def _number(at: AppTest, label: str):
    return next(n for n in at.number_input if n.label == label)


def test_training_settings_and_hparams_typed_then_left_at_once_reach_train():
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.button(key="home_load_sample").click().run()
    at.switch_page("pages/model.py").run()
    _no_error(at)
    _number(at, "Epochs").set_value(2)
    _number(at, "Batch size").set_value(64)
    tower = next(t for t in at.text_input if t.label.startswith("tower dims"))
    tower.set_value("48, 8")
    at.switch_page("pages/train.py").run()             # no run of Tasks & model in between
    assert not at.exception
    state = at.session_state["mtlrec_state"]
    assert (state.train["epochs"], state.train["batch_size"]) == (2, 64)
    assert state.model.get("tower_dims") == [48, 8]
    shown = " ".join(str(c.value) for c in [*at.caption, *at.markdown]).replace("**", "")
    assert "Epochs: 2 · Batch: 64" in shown
    at.switch_page("pages/model.py").run()             # and the editors show them again
    _no_error(at)
    assert (_number(at, "Epochs").value, _number(at, "Batch size").value) == (2, 64)
    steps = next(str(c.value) for c in at.caption if str(c.value).startswith("At most"))
    assert steps.startswith("At most 2 epochs") and "in batches of 64 rows" in steps, steps


def test_a_task_renamed_then_left_at_once_keeps_its_name():
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.button(key="home_load_sample").click().run()
    at.switch_page("pages/model.py").run()
    state = at.session_state["mtlrec_state"]
    uid = state.tasks[-1]["_uid"]
    next(t for t in at.text_input if t.key.startswith(f"task_name_{uid}_")).set_value("watched")
    at.switch_page("pages/results.py").run()
    assert at.session_state["mtlrec_state"].tasks[-1]["name"] == "watched"
