"""AppTest: the Explain page with a trained run (per-task waterfalls, fused score, sentence,
global summary), and the click on a recommendation's "Explain" button that opens it."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import re

from _fixtures_train import finished_tiny_job

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A finished training job of a tiny MMoE (click, rating, genres; 1 epoch), as the Train page
    leaves it; the rating target is standardised, as on every prepared dataset."""
    return finished_tiny_job(tmp_path_factory.mktemp("explain_app") / "run-mmoe", ("click", "rating", "genres"))


def app_with(job) -> AppTest:
    from pages.ui.state import AppState
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["mtlrec_state"] = AppState(jobs=[job])
    return at


def no_exception(at: AppTest, where: str) -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"


def charts(at: AppTest) -> list:
    return at.get("plotly_chart")


def test_explain_page_shows_waterfalls_fused_score_and_global_summary(job):
    at = app_with(job)
    at.session_state["explain_request"] = {"run_dir": str(job.run_dir), "user": "u4", "item": "i9"}
    at.switch_page("pages/explain.py").run()
    no_exception(at, "explain page")
    assert any(t.value == "Explain a recommendation" for t in at.title)
    assert not at.error, [e.value for e in at.error]
    # pre-filled from the request
    assert at.selectbox(key=f"explain_user_{job.run_dir}").value == "u4"
    assert at.selectbox(key=f"explain_item_{job.run_dir}").value == "i9"
    # one waterfall per task, the fused waterfall and the by-task bars; the sentence
    assert len(charts(at)) == 3 + 2
    assert at.success and at.success[0].value.startswith(("Recommended mainly because", "Scores"))
    # the global summary: computed on a click, with a progress bar; then cached for the run
    at.number_input(key="explain_global_rows").set_value(100).run()
    at.button(key="explain_global_go").click().run()
    no_exception(at, "global summary")
    assert not at.error, [e.value for e in at.error]
    n = len(charts(at))
    assert n >= 4 + 3                       # importance, heatmap, gates (MMoE)
    assert at.button(key="explain_global_go").disabled
    # another item: new waterfalls, no exception
    at.selectbox(key=f"explain_item_{job.run_dir}").set_value("i1").run()
    no_exception(at, "other item")
    assert len(charts(at)) == n


def test_explain_button_on_a_recommendation_opens_its_explanation(job):
    at = app_with(job)
    at.switch_page("pages/recommend.py").run()
    no_exception(at, "recommendations page")
    buttons = [b for b in at.button if str(b.key).startswith("explain_")]
    assert buttons, "no Explain button on the recommendation list"
    first = buttons[0]
    item = str(first.key)[len("explain_"):]
    user = at.selectbox(key="rec_user").value
    first.click().run()
    no_exception(at, "after clicking Explain")
    assert any(t.value == "Explain a recommendation" for t in at.title), [t.value for t in at.title]
    assert at.session_state["explain_request"]["item"] == item
    assert at.selectbox(key=f"explain_item_{job.run_dir}").value == item
    assert at.selectbox(key=f"explain_user_{job.run_dir}").value == str(user)
    assert len(charts(at)) == 5


def test_explain_shows_the_fused_score_of_the_recommendation_list(job):
    """The fused score on Explain is the number the Recommendations page shows for the same pair."""
    at = app_with(job)
    at.switch_page("pages/recommend.py").run()
    no_exception(at, "recommendations page")
    rd = str(job.run_dir)
    at.slider(key=f"rec_w_{rd}_click").set_value(0.2).run()       # lean on the (standardised) rating
    at.slider(key=f"rec_w_{rd}_rating").set_value(1.0).run()
    no_exception(at, "re-ranked")
    fused = [m.value for m in at.markdown if re.fullmatch(r"\*\*\d+\.\d{3}\*\*", m.value)]
    buttons = [b for b in at.button if str(b.key).startswith("explain_")]
    assert fused and len(fused) == len(buttons)
    shown = fused[0].strip("*")                    # the first card's fused score, as displayed
    buttons[0].click().run()
    no_exception(at, "explain page")
    assert any(t.value == "Explain a recommendation" for t in at.title)
    metric = [m for m in at.metric if m.label == "Fused score"]
    assert metric and metric[0].value == shown, (metric[0].value if metric else None, shown)
    # the rating waterfall is titled with the predicted rating and drawn in rating units
    wf = [c for c in at.get("plotly_chart") if "rating: predicted" in str(c.proto.spec)]
    assert wf and "rating (label units)" in str(wf[0].proto.spec)


def test_a_multilabel_task_is_explained_for_the_class_picked(job):
    at = app_with(job)
    at.session_state["explain_request"] = {"run_dir": str(job.run_dir), "user": "u4", "item": "i9"}
    at.switch_page("pages/explain.py").run()
    no_exception(at, "explain page")
    pick = at.selectbox(key=f"explain_class_{job.run_dir}_u4_i9_genres")
    assert pick.label == "Class of genres to explain"
    name = lambda shown: shown.split(" (probability")[0]   # noqa: E731  (options read "Drama (probability 0.48)")
    top = name(pick.value)                                  # default: the most likely class

    def genres_title() -> str:      # the class's probability by default (its logit one toggle away)
        return next(str(c.proto.spec) for c in charts(at) if "genres: probability of class" in str(c.proto.spec))

    assert f"class '{top}'" in genres_title() and "mean logit" not in genres_title()
    other = next(o for o in pick.options if name(o) != top)
    pick.set_value(other).run()
    no_exception(at, "another class")
    assert f"class '{name(other)}'" in genres_title()
    # LIME beside SHAP explains the same class as the waterfall, never the mean over the classes
    at.selectbox(key=f"explain_lime_task_{job.run_dir}").set_value("genres").run()
    at.button(key="explain_lime_go").click().run()
    no_exception(at, "LIME of a class")
    lime = [str(c.proto.spec) for c in charts(at) if "SHAP vs LIME" in str(c.proto.spec)]
    assert lime and f"class '{name(other)}'" in lime[0] and "mean logit" not in lime[0]
    # the dependence plot of a multi-label task: one class too, picked beside the task
    at.selectbox(key=f"explain_dep_task_{job.run_dir}").set_value("genres").run()
    dep_class = at.selectbox(key=f"explain_dep_class_{job.run_dir}_genres")
    dep_class.set_value(dep_class.options[-1]).run()
    at.button(key="explain_dep_go").click().run()
    no_exception(at, "dependence plot of a class")
    dep = [str(c.proto.spec) for c in charts(at) if "SHAP value of" in str(c.proto.spec)]
    assert dep and f"genres (class '{dep_class.options[-1]}')" in dep[0] and "mean logit" not in dep[0]


def test_explain_page_shows_values_and_the_unit_toggle(job):
    """Bars and the table name the pair's values; probabilities by default, the logit one click away."""
    at = app_with(job)
    at.session_state["explain_request"] = {"run_dir": str(job.run_dir), "user": "u4", "item": "i9"}
    at.switch_page("pages/explain.py").run()
    no_exception(at, "explain page")
    specs = [str(c.proto.spec) for c in charts(at)]
    click = next(s for s in specs if "click: " in s)
    assert "click: probability" in click and "user id = u4" in click and "item id = i9" in click
    fused = next(s for s in specs if "fused score" in s)
    assert "item id = i9" in fused                        # the fused score split by feature, with values
    table = next(d.value for d in at.dataframe if "value for this pair" in d.value.columns)
    assert "user id = u4" in set(table["value for this pair"]) and "occupation" in set(table["feature group"])
    assert any("training interaction" in c.value for c in at.caption)     # what the ids stand for
    toggle = at.toggle(key="explain_logit_view")
    assert toggle.value is False
    toggle.set_value(True).run()
    no_exception(at, "logit view")
    click = next(str(c.proto.spec) for c in charts(at) if "click: " in str(c.proto.spec))
    assert "click: logit" in click and "logit (log-odds)" in click
    assert any("standardised output" in str(c.proto.spec) for c in charts(at))   # rating, model output
