"""The ranking over the whole catalogue in the app (issue 27, item 3): Train lets the visitor switch it
off or choose how many test users are ranked; Results says which users were ranked, or that the
ranking was skipped."""
from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

from _fixtures_train import TASKS, make_dataset
from test_pages import APP, no_exception, state_of, texts

from mtlrec.app.workflow import build_run_config


def _ranking_widgets(at: AppTest):
    on = next(c for c in at.checkbox if c.label.startswith("Rank the test users over the whole catalogue"))
    users = next((n for n in at.number_input if n.label == "Users ranked"), None)
    return on, users


def test_train_page_switches_the_ranking_off_or_sets_the_users():
    at = AppTest.from_file(APP, default_timeout=240).run()
    at.button(key="home_load_sample").click().run()
    at.switch_page("pages/train.py").run()
    no_exception(at, "train page")
    st_ = state_of(at)
    on, users = _ranking_widgets(at)
    assert on.value is True and users.value is None                    # default: on, "auto"
    assert "ranking_k" not in st_.train and "ranking_users" not in st_.train   # a visit saves nothing
    assert "scored pairs" in texts(at)                                 # what the setting costs
    users.set_value(37).run()
    no_exception(at, "setting the users")
    assert st_.train["ranking_users"] == 37
    assert "37 users × 800 items = 29,600 scored pairs" in texts(at), texts(at)
    on, _ = _ranking_widgets(at)
    on.uncheck().run()
    no_exception(at, "switching the ranking off")
    assert st_.train["ranking_k"] == 0
    assert _ranking_widgets(at)[1] is None and "Ranking off" in texts(at)
    cfg = build_run_config(spec=st_.spec, prep=st_.prep, tasks=st_.tasks, model=st_.model, train=st_.train,
                           text=st_.text, source=st_.source)
    assert cfg.train.ranking_k == 0 and cfg.train.ranking_users == 37
    _ranking_widgets(at)[0].check().run()
    assert st_.train["ranking_k"] == 10                                  # back on: the default K


def _tiny_run(runs_dir, name: str, **train):
    from mtlrec.config import RunConfig
    from mtlrec.training.jobs import TrainingJob
    tasks = [t for t in TASKS if t["name"] in ("click", "rating")]
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = RunConfig.from_dict({"name": name, "tasks": tasks,
                                   "model": {"arch": "shared_bottom", "shared_dims": [16], "tower_dims": [8],
                                             "embedding_dim": 8},
                                   "train": {"epochs": 1, "batch_size": 512, "device": "cpu", **train}})
        rd = runs_dir / f"20260101-000000-{name}"
        job = TrainingJob(cfg, run_dir=rd, dataset=make_dataset(n_rows=1500)).start()
        job.join(timeout=300)
        assert job.snapshot()["status"] == "finished", job.snapshot()
    finally:
        torch.set_num_threads(n)
    return rd


@pytest.mark.parametrize("setting, shown", [
    ({"ranking_k": 0}, "Ranking over the whole catalogue: skipped"),
    ({"ranking_k": 5, "ranking_users": 6}, "Ranked 6 of "),
])
def test_results_says_whether_and_on_whom_the_ranking_ran(runs_dir, setting, shown, monkeypatch):
    # the run is a test's own TrainingJob (no owner): shown as the operator's local run
    monkeypatch.setenv("MTLREC_LOCAL_RUNS", "manage")
    rd = _tiny_run(runs_dir, f"rank{setting['ranking_k']}", **setting)
    at = AppTest.from_file(APP, default_timeout=240).run()
    st_ = state_of(at)
    st_.opened_runs.append(str(rd))
    st_.selected_run = str(rd)
    at.switch_page("pages/results.py").run()
    no_exception(at, "results")
    page = texts(at)
    assert shown in page, page
    tables = [d for d in at.dataframe if "ranked by" in d.value.columns]
    if setting["ranking_k"] == 0:
        assert not tables and "switched off for this run" in page
    else:
        assert "test users (a seeded sample) over 60 items, top 5." in page and tables
