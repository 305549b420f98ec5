"""AppTest: on Recommendations a user's catalogue is scored once; moving a task-weight slider only
re-weights those scores (no second `score_items`), and the list equals `recommend` with the weights."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from _fixtures_train import finished_tiny_job

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    return finished_tiny_job(tmp_path_factory.mktemp("rerank_app") / "run-mmoe", ("click", "rating"))


def _order(at: AppTest) -> list[str]:
    out = []
    for m in at.markdown:
        hit = re.match(r"\*\*.*\*\* · ([^ \n]+)", m.value)      # **title** · item id
        if hit:
            out.append(re.sub(r"\\(.)", r"\1", hit.group(1)).replace("\u2060", ""))
    return out


def test_recommend_from_scores_is_recommend_without_a_model_pass(job):
    from mtlrec.serve import recommend as rec
    from mtlrec.runs.load import load_run
    run = load_run(job.run_dir)
    preds = rec.score_items(run, rec.user_index(run, "u3"))
    for w in ({"click": 1.0, "rating": 0.0}, {"click": 0.2, "rating": 0.8}, None):
        assert rec.recommend_from_scores(run, "u3", preds, 7, w) == rec.recommend(run, "u3", k=7, weights=w)


def test_slider_move_reweights_without_scoring_again(job, monkeypatch):
    from mtlrec.serve import recommend as rec
    from mtlrec.runs.load import load_run
    from pages.ui.state import AppState
    calls = []
    real = rec.score_items

    def counting(run, user_index, item_indices=None):
        calls.append(int(user_index))
        return real(run, user_index, item_indices)

    monkeypatch.setattr(rec, "score_items", counting)
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["mtlrec_state"] = AppState(jobs=[job])
    at.switch_page("pages/recommend.py").run()
    assert not at.exception, [e.value for e in at.exception]
    user = at.selectbox(key="rec_user").value
    assert len(calls) == 1 and len(_order(at)) == 10
    rd = str(job.run_dir)
    lists = []
    for w in ({"click": 1.0, "rating": 0.0}, {"click": 0.0, "rating": 1.0}, {"click": 0.35, "rating": 0.65}):
        for name, v in w.items():
            at.slider(key=f"rec_w_{rd}_{name}").set_value(v)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert len(calls) == 1, "a slider move scored the catalogue again"
        shown = _order(at)
        monkeypatch.setattr(rec, "score_items", real)
        expected = [r["item"] for r in rec.recommend(load_run(rd), user, k=10, weights=w)]
        monkeypatch.setattr(rec, "score_items", counting)
        assert shown == expected, (w, shown, expected)
        lists.append(shown)
    assert lists[0] != lists[1]
