"""AppTest: which run the pages show. A second run started in the same session takes over the
Train page's panel, runs table, buttons and sidebar, and Results opens on it when it ends; the
visitor's own choices (run, user) are kept across reruns and page switches."""
from __future__ import annotations

import re
import time

import pytest
from streamlit.testing.v1 import AppTest

from test_pages import APP, no_exception, state_of, texts

TERMINAL = ("finished", "failed", "cancelled")


def _status(job) -> str:
    snap = job.snapshot(include_batches=False)
    return snap.get("status") if isinstance(snap, dict) else getattr(snap, "status", None)


def _wait_end(at: AppTest, job, timeout: float = 240) -> str:
    """Poll the page (AppTest does not tick run_every) until the job ends; then one more run."""
    deadline = time.time() + timeout
    while time.time() < deadline and _status(job) not in TERMINAL:
        at.run()
        no_exception(at, "while training")
        time.sleep(0.3)
    at.run()
    return _status(job)


def _progress_text(at: AppTest) -> str:
    return at.get("progress")[0].proto.text


@pytest.fixture(scope="module")
def two_runs(runs_dir):
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.button(key="home_load_sample").click().run()
    st_ = state_of(at)
    # two unconditional tasks (the sample's chain gives them "interact" as a parent)
    st_.tasks = [{k: v for k, v in t.items() if k != "given"} for t in st_.tasks if t["name"] in ("click", "rating")]
    st_.train.update(epochs=1, batch_size=4096, ranking_k=0)
    st_.model = {"arch": "shared_bottom", "shared_dims": [16], "tower_dims": [8], "embedding_dim": 8}
    at.run()
    at.button(key="train_start").click().run()
    first = st_.jobs[-1]
    assert _wait_end(at, first) == "finished"
    assert not at.button(key="train_start").disabled
    # the second run: with single-task baselines
    at.checkbox(key=f"train_baselines_{st_.counter}").check().run()
    at.button(key="train_start").click().run()
    no_exception(at, "starting the second run")
    second = st_.jobs[-1]
    assert second is not first
    return {"at": at, "first": first, "second": second, "state": st_}


def test_second_run_takes_over_the_train_page(two_runs):
    at, first, second, st_ = two_runs["at"], two_runs["first"], two_runs["second"], two_runs["state"]
    name1, name2 = first.run_dir.name, second.run_dir.name
    seen_running = False
    deadline = time.time() + 240
    while time.time() < deadline and _status(second) not in TERMINAL:
        at.run()
        no_exception(at, "while the second run trains")
        assert _progress_text(at).startswith(name2), _progress_text(at)     # the panel follows the new run
        if _status(second) not in TERMINAL:
            # (the status may change between the page run and this check; only judge a settled state)
            table = at.dataframe[0].value
            if list(table["run"]) == [name2, name1] and table["status"].iloc[0] == "running":
                seen_running = True
                assert at.button(key="train_start").disabled
                assert not at.button(key="train_cancel").disabled
        assert at.selectbox(key="train_show_run").value == str(second.run_dir)
        time.sleep(0.3)
    assert seen_running, "the runs table never showed the second run as running"
    assert _status(second) == "finished", second.snapshot().get("error")
    at.run()
    no_exception(at, "after the second run")
    assert _progress_text(at).startswith(name2)
    assert "Finished" in texts(at)
    assert not at.button(key="train_start").disabled, "Start stays disabled after the run ended"
    assert at.button(key="train_cancel").disabled, "Cancel stays enabled after the run ended"
    assert list(at.dataframe[0].value["status"]) == ["finished", "finished"]


def test_results_opens_on_the_newest_run_and_keeps_the_choice(two_runs):
    at, first, second = two_runs["at"], two_runs["first"], two_runs["second"]
    at.switch_page("pages/results.py").run()
    no_exception(at, "results")
    assert at.selectbox(key="run_picker").value == str(second.run_dir)
    assert "no single-task baselines" not in texts(at)
    # the gain on the metric card is the gain of the chart/table: same number, same sign
    gain = {r["task"]: r["gain"] for r in next(d.value for d in at.dataframe if "gain" in d.value.columns)
            .to_dict("records")}
    cards = {m.label.split(" — ")[0]: m for m in at.metric}
    for task, g in gain.items():
        assert cards[task].delta == f"{g:+.4f} gain vs single-task", (task, cards[task].delta, g)
    # no empty cells in the metric tables
    for d in at.dataframe:
        if d.value.index.name == "task":
            assert not d.value.isna().any().any(), d.value
    # the visitor picks the older run: kept across reruns and page switches
    at.selectbox(key="run_picker").set_value(str(first.run_dir)).run()
    assert "no single-task baselines" in texts(at)
    at.run()
    assert at.selectbox(key="run_picker").value == str(first.run_dir)
    at.switch_page("pages/train.py").run()
    at.switch_page("pages/results.py").run()
    assert at.selectbox(key="run_picker").value == str(first.run_dir)


def test_chosen_user_survives_a_page_switch(two_runs):
    at = two_runs["at"]
    at.switch_page("pages/recommend.py").run()
    no_exception(at, "recommendations")
    users = at.selectbox(key="rec_user").options
    pick = users[7]
    at.selectbox(key="rec_user").set_value(pick).run()
    assert any(f"Top 10 for user {pick}" in m.value for m in at.markdown)
    at.switch_page("pages/explain.py").run()
    no_exception(at, "explain")
    at.switch_page("pages/recommend.py").run()
    assert at.selectbox(key="rec_user").value == pick
    assert any(f"Top 10 for user {pick}" in m.value for m in at.markdown)


def test_train_page_names_what_early_stopping_follows(two_runs):
    at = two_runs["at"]
    at.switch_page("pages/train.py").run()
    no_exception(at, "train")
    cap = next(c.value for c in at.caption if "Early stopping" in c.value)
    cap = re.sub(r"\\(.)", r"\1", cap).replace("\u2060", "")          # as the visitor reads it
    assert "Early stopping follows click's validation AUC (higher is better), patience 3" in cap, cap
