"""AppTest (issue 22): the task chain on Tasks & model -- a "Given" parent per task shows the chain's
diagram and formula; one click sets the recommended chain for ratings data -- and a run trained with a
chain on Recommendations (the "Ranked by" sentence) and Explain (the entire-space waterfall)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from _fixtures_train import finished_tiny_job

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


def plain(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", str(markdown)).replace("\u2060", "")


def texts(at: AppTest) -> str:
    return "\n".join(plain(m.value) for m in [*at.markdown, *at.caption, *at.button])


def no_exception(at: AppTest, where: str) -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"


def diagram(at: AppTest) -> str:
    """The DOT source of the chain's diagram ("" when none is drawn; the architecture has its own)."""
    return next((c.proto.spec for c in at.get("graphviz_chart") if c.proto.spec.startswith("digraph chain")), "")


def test_a_parent_task_shows_the_chain_diagram_and_formula():
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.button(key="home_load_sample").click().run()
    at.switch_page("pages/model.py").run()
    no_exception(at, "tasks page")
    assert '"interact" -> "click" [label="given"]' in diagram(at)          # the sample's own chain
    assert "p(interact ∧ click) = p(interact) · p(click | interact)" in texts(at)
    like = next(s for s in at.selectbox if s.label == "Given" and s.key.startswith(
        "task_given_" + at.session_state["mtlrec_state"].tasks[1]["_uid"]))
    like.set_value("click").run()
    no_exception(at, "like given click")
    assert at.session_state["mtlrec_state"].tasks[1]["given"] == "click"
    assert '"click" -> "like" [label="given"]' in diagram(at)
    assert "p(interact ∧ click ∧ like) = p(interact) · p(click | interact) · p(like | click)" in texts(at)
    assert any(r"\text{click} \wedge \text{like})" in e.value for e in at.get("latex"))


def test_one_click_sets_the_recommended_chain():
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.button(key="home_load_sample").click().run()
    at.switch_page("pages/model.py").run()
    assert not [b for b in at.button if b.key == "task_recommended_chain"]     # the sample has its chain
    state = at.session_state["mtlrec_state"]
    state.tasks = [{k: v for k, v in t.items() if k != "given"} for t in state.tasks if t["name"] != "interact"]
    at.run()                                                                  # tasks without a chain: offered
    btn = at.button(key="task_recommended_chain")
    assert btn.label == "Use the recommended chain: interact + like given interact + rating given interact"
    btn.click().run()
    no_exception(at, "recommended chain")
    state = at.session_state["mtlrec_state"]
    assert [(t["name"], t.get("given", "")) for t in state.tasks] == [
        ("interact", ""), ("like", "interact"), ("rating", "interact")]
    assert state.prep.negative_ratio == 4 and state.prep.negative_label == "interact"
    assert "interact" in [lab.name for lab in state.dataset.labels]       # prepared again, with negatives
    assert '"interact" -> "rating" [label="given"]' in diagram(at)
    assert not at.error, [e.value for e in at.error]


@pytest.fixture(scope="module")
def chain_job(tmp_path_factory):
    return finished_tiny_job(tmp_path_factory.mktemp("chain_app") / "run-chain", ("click", "like", "rating"),
                             {"like": "click", "rating": "click"})


def test_a_chained_run_recommends_and_explains_in_the_entire_space(chain_job):
    from pages.ui.state import AppState
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["mtlrec_state"] = AppState(jobs=[chain_job])
    at.switch_page("pages/recommend.py").run()
    no_exception(at, "recommendations")
    assert "Ranked by p(click) (weight 0.33), p(click ∧ like) = p(click) · p(like | click) (weight 0.33), " \
           "fused with the predicted rating" in texts(at)
    at.session_state["explain_request"] = {"run_dir": str(chain_job.run_dir), "user": "u4", "item": "i9"}
    at.switch_page("pages/explain.py").run()
    no_exception(at, "explain")
    assert not at.error, [e.value for e in at.error]
    assert "like: p(click ∧ like) = p(click) · p(like | click)" in texts(at)
    titles = [str(json.loads(c.proto.spec)["layout"].get("title", {}).get("text")) for c in at.get("plotly_chart")]
    assert any(re.match(r"like: (probability|logit) of p\(click ∧ like\)", t) for t in titles), titles
