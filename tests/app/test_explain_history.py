"""AppTest: explanations by history items (issue 24, item 3) -- the Explain page's "Because of the
user's history" section (sentence, chart, table, attention note), the history what-if (remove an
item, add one; hypothetical, nothing written), the Recommendations card's history reason, and the
Tasks & model control that puts ``model.history`` in the run config."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from _fixtures_history import TASKS, planted_dataset

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
FAN = "u0"            # rated A 5★; B is held out for this user (test split)
STRANGER = "u3"       # never saw A


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    from mtlrec.config import RunConfig
    from mtlrec.training.jobs import TrainingJob
    d = tmp_path_factory.mktemp("history_app") / "run-mmoe"
    cfg = RunConfig.from_dict({"tasks": TASKS, "model": {"arch": "mmoe", "embedding_dim": 16, "id_dropout": 0.5,
                                                         "history": {"length": 10, "encoder": "attention"}},
                               "train": {"epochs": 20, "batch_size": 64, "lr": 0.02, "embedding_l2": 0.0,
                                         "ranking_k": 0, "dynamics_every": 0, "device": "cpu", "amp": False,
                                         "early_stopping": {"task": "rating", "patience": 0}}})
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        j = TrainingJob(cfg, run_dir=d, dataset=planted_dataset(seed=0)).start()
        j.join(timeout=240)
    finally:
        torch.set_num_threads(n)
    snap = j.snapshot()
    status = snap.get("status") if isinstance(snap, dict) else getattr(snap, "status", None)
    assert status == "finished", snap
    return j


def _files(d: Path) -> dict:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in d.rglob("*") if p.is_file()}


def _explain_page(job, user: str, item: str = "B") -> AppTest:
    from pages.ui.state import AppState
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["mtlrec_state"] = AppState(jobs=[job])
    at.session_state["explain_request"] = {"run_dir": str(job.run_dir), "user": user, "item": item}
    at.switch_page("pages/explain.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_explain_page_names_the_users_own_items_with_attention_beside(job):
    at = _explain_page(job, FAN)
    assert any(s.value == "Because of the user's history" for s in at.subheader)
    said = [s.value for s in at.success]
    assert any(v.startswith(f"Recommended mainly because user {FAN} rated Item A 5★") for v in said), said
    chart = [c.proto.spec for c in at.get("plotly_chart") if "attention weight (not an attribution)" in c.proto.spec]
    assert len(chart) == 1 and "Item A " in chart[0]
    table = next(d.value for d in at.dataframe if "attention" in d.value.columns)
    assert {"item", "given", "fused", "like", "rating"} <= set(table.columns)
    top = table.sort_values("fused", ascending=False).iloc[0]
    assert top["item"] == "A" and top["given"] == "5★"
    assert any("not attributions" in i.value for i in at.info)


def test_removing_an_item_from_the_history_rescores_the_pair_without_saving_anything(job):
    from mtlrec.explain.history import explain_history
    from mtlrec.runs.load import load_run
    rd = str(job.run_dir)
    files = _files(Path(rd))
    at = _explain_page(job, FAN)
    tag = f"{rd}_{FAN}_B"
    at.selectbox(key=f"whatif_hist_pick_{tag}").set_value("A")
    at.button(key=f"whatif_hist_remove_go_{tag}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Hypothetical — not saved" in w.value and "without Item A" in w.value for w in at.warning), [w.value for w in at.warning]
    pair = next(t.value for t in at.table if "before" in t.value.columns)
    fused = pair[pair[""] == "fused score"].iloc[0]
    drop = float(fused["before"]) - float(fused["after"])
    expected = next(e["fused"] for e in explain_history(load_run(rd), FAN, "B")["items"] if e["item"] == "A")
    assert drop > 0 and abs(drop - expected) < 2e-3            # the table shows 3 decimals
    assert _files(Path(rd)) == files                          # hypothetical: the run folder is untouched


def test_adding_a_liked_item_to_a_strangers_history_raises_the_pair(job):
    rd = str(job.run_dir)
    at = _explain_page(job, STRANGER)
    tag = f"{rd}_{STRANGER}_B"
    at.selectbox(key=f"whatif_hist_add_item_{tag}").set_value("A")
    at.number_input(key=f"whatif_hist_add_rating_{tag}").set_value(5.0)
    at.button(key=f"whatif_hist_add_go_{tag}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("with Item A" in w.value and "rated 5" in w.value for w in at.warning)
    pair = next(t.value for t in at.table if "before" in t.value.columns)
    fused = pair[pair[""] == "fused score"].iloc[0]
    assert float(fused["after"]) > float(fused["before"])


def test_a_rating_outside_the_training_range_is_refused_in_words(job):
    rd = str(job.run_dir)
    at = _explain_page(job, STRANGER)
    tag = f"{rd}_{STRANGER}_B"
    at.selectbox(key=f"whatif_hist_add_item_{tag}").set_value("A")
    at.number_input(key=f"whatif_hist_add_rating_{tag}").set_value(9.0)
    at.button(key=f"whatif_hist_add_go_{tag}").click().run()
    assert not at.exception
    shown = " ".join(e.value for e in at.error)
    assert "outside the values seen in training" in shown and "Traceback" not in shown


def test_recommendation_cards_carry_the_top_history_reason(job):
    from pages.ui.state import AppState
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["mtlrec_state"] = AppState(jobs=[job], selected_run=str(job.run_dir), rec_user=FAN)
    at.switch_page("pages/recommend.py").run()
    assert not at.exception, [e.value for e in at.exception]
    lines = [m.value for m in at.markdown if ":green[because user" in m.value]
    assert lines and all(f"because user {FAN} rated" in v for v in lines)


def test_the_tasks_and_model_history_control_reaches_the_run_config():
    from mtlrec.app.workflow import build_run_config
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.button(key="home_load_sample").click().run()
    at.switch_page("pages/model.py").run()
    assert not at.exception, [e.value for e in at.exception]
    state = at.session_state["mtlrec_state"]
    ctr = state.counter
    assert "history" not in state.model
    at.checkbox(key=f"hist_on_{ctr}").check().run()
    at.number_input(key=f"hist_len_{ctr}").set_value(15).run()
    at.selectbox(key=f"hist_enc_{ctr}").set_value("mean").run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page("pages/train.py").run()                     # leaving the page keeps the setting
    state = at.session_state["mtlrec_state"]
    assert state.model["history"] == {"length": 15, "encoder": "mean"}
    cfg = build_run_config(spec=state.spec, prep=state.prep, tasks=state.tasks, model=state.model,
                           train=state.train, text=state.text, source=state.source)
    assert cfg.history == {"length": 15, "encoder": "mean"} and cfg.hparams["history_encoder"] == "mean"
    assert json.loads(json.dumps(cfg.to_dict()))["model"]["history"] == {"length": 15, "encoder": "mean"}
    at.switch_page("pages/model.py").run()
    at.checkbox(key=f"hist_on_{ctr}").uncheck().run()
    assert "history" not in at.session_state["mtlrec_state"].model
