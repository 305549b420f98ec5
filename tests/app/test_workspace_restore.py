"""AppTest: a reload (or a bookmark) brings back what the visitor prepared and picked, exactly: the
prepared dataset with its derived labels, the tasks on them, and the explained pair."""
from __future__ import annotations

import json

import pytest

from _fixtures_ml100k import write_ml100k_split
from streamlit.testing.v1 import AppTest

from mtlrec.tasks import clean_tasks
from test_pages import APP, no_exception, plain, state_of, texts

LIKE = [{"name": "like", "source": "rating", "op": ">=", "threshold": 4}]


def _reload(wid: str, page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["ws"] = wid
    at.run()
    no_exception(at, "reloaded")
    if page:
        at.switch_page(page).run()
        no_exception(at, f"reloaded {page}")
    return at


def _prepared_with_a_derived_label(tmp_path) -> AppTest:
    """MovieLens 100K files uploaded, like = rating >= 4 derived on Data, prepared, a task added on it."""
    write_ml100k_split(tmp_path)
    files = [(p.name, p.read_bytes(), "application/octet-stream")
             for p in sorted(tmp_path.iterdir()) if p.name.startswith("u")]
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/data.py").run()
    at.radio(key="data_source").set_value("Upload files").run()
    at.file_uploader(key="data_upload").set_value(files).run()
    no_exception(at, "upload")
    next(t for t in at.text_input if t.label.startswith("derived labels")).set_value(json.dumps(LIKE))
    next(b for b in at.button if b.label == "Prepare").click().run()
    no_exception(at, "prepare")
    assert "like" in [lab.name for lab in state_of(at).dataset.labels]
    at.switch_page("pages/model.py").run()
    at.button(key="task_add").click().run()
    no_exception(at, "add task")
    assert "like" in [t["label"] for t in state_of(at).tasks], state_of(at).tasks
    return at


def _same_dataset(a, b) -> bool:
    """The same labels (name, type), splits and row counts per split."""
    return [(lab.name, lab.task_type) for lab in a.labels] == [(lab.name, lab.task_type) for lab in b.labels] \
        and {s: a.n_rows(s) for s in a.splits} == {s: b.n_rows(s) for s in b.splits}


def _label_boxes(at: AppTest) -> dict:
    return {s.key.split("_")[2]: s.value for s in at.selectbox if s.key and s.key.startswith("task_label_")}


def test_reload_brings_back_the_prepared_dataset_its_derived_labels_and_the_tasks(tmp_path):
    at = _prepared_with_a_derived_label(tmp_path)
    before = state_of(at)
    ds = before.dataset
    tasks = clean_tasks(before.tasks)
    again = _reload(before.ws_id, "pages/model.py")
    after = state_of(again)
    assert after.dataset is not None, "the prepared dataset was lost on reload"
    assert _same_dataset(after.dataset, ds)
    assert after.dataset_key == before.dataset_key          # loaded as kept, not prepared anew
    assert clean_tasks(after.tasks) == tasks
    shown = texts(again) + "\n".join(str(s.value) for s in again.selectbox)
    assert "(no label of this type)" not in shown
    assert sorted(v for v in _label_boxes(again).values()) == sorted(t["label"] for t in tasks)
    # every label has its task: Add task is disabled, and the page says why
    assert again.button(key="task_add").disabled
    assert "every label already has a task" in texts(again).lower()


def test_a_reload_without_the_kept_dataset_prepares_it_again_and_the_run_starts(tmp_path):
    """The kept copy is gone (a full disk, an older workspace): the reload prepares again, to the same
    labels and rows; the derived label's task keeps its label, and training starts on it."""
    import shutil

    from mtlrec.app import workspace as ws
    at = _prepared_with_a_derived_label(tmp_path)
    before = state_of(at)
    before.train.update(epochs=1, batch_size=4096)
    at.run()
    shutil.rmtree(ws.workspaces_root() / before.ws_id / "prepared", ignore_errors=True)
    again = _reload(before.ws_id, "pages/model.py")
    after = state_of(again)
    assert after.dataset is not None and _same_dataset(after.dataset, before.dataset)
    assert clean_tasks(after.tasks) == clean_tasks(before.tasks)
    again.switch_page("pages/train.py").run()
    again.button(key="train_start").click().run()
    no_exception(again, "start")
    assert after.jobs, [plain(e.value) for e in again.error]
    after.jobs[-1].cancel()


def test_a_task_whose_label_is_missing_is_refused_at_start_naming_it(tmp_path):
    """A task on a label the prepared data lacks: the Train page says so at once (before any run starts),
    and the Tasks page names the task, never writing a placeholder into it."""
    at = _prepared_with_a_derived_label(tmp_path)
    s = state_of(at)
    s.tasks.append({"name": "fun", "type": "binary", "label": "fun", "weight": 1.0, "metric": "auc"})
    at.run()
    errors = "\n".join(plain(e.value) for e in at.error)
    assert "Task fun needs a binary label, and its label fun is not in the data" in errors, errors
    assert s.tasks[-1]["label"] == "fun"
    at.switch_page("pages/train.py").run()
    at.button(key="train_start").click().run()
    no_exception(at, "start")
    assert not s.jobs
    errors = "\n".join(plain(e.value) for e in at.error)
    assert "task 'fun': the data has no label 'fun'" in errors, errors


# ---------------------------------------------------------------------------- the explained pair
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from _fixtures_train import finished_tiny_job
    return str(finished_tiny_job(tmp_path_factory.mktemp("ws_explain") / "run-mmoe", ("click", "rating")).run_dir)


def _explain(at: AppTest, rd: str) -> tuple[str, str]:
    at.switch_page("pages/explain.py").run()
    no_exception(at, "explain")
    return at.selectbox(key=f"explain_user_{rd}").value, at.selectbox(key=f"explain_item_{rd}").value


def test_explain_keeps_its_pair_and_recommendations_its_user_across_a_reload(run_dir, local_runs):
    from mtlrec.runs.load import load_run
    from pages.ui.state import AppState
    ds = load_run(run_dir).dataset
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["mtlrec_state"] = AppState(opened_runs=[run_dir], selected_run=run_dir)
    at.switch_page("pages/recommend.py").run()
    no_exception(at, "recommendations")
    at.selectbox(key="rec_user").set_value("u7").run()
    user, item = _explain(at, run_dir)
    # without a request: the Recommendations user, and an item that user has not rated (the top one)
    assert user == "u7"
    seen = {str(ds.item_ids[i]) for i in ds.interacted_items(ds.user_index("u7"))}
    assert item not in seen, (item, sorted(seen))
    other = next(i for i in (str(x) for x in ds.item_ids) if i != item and i not in seen)
    at.selectbox(key=f"explain_item_{run_dir}").set_value(other).run()
    assert any(other in s.value for s in at.subheader), [s.value for s in at.subheader]
    wid = state_of(at).ws_id

    again = _reload(wid)
    assert _explain(again, run_dir) == ("u7", other)
    assert any(other in s.value for s in again.subheader)
    again.switch_page("pages/recommend.py").run()
    assert again.selectbox(key="rec_user").value == "u7"


# ---------------------------------------------------------------------------- two tabs, one workspace
def _epochs(at: AppTest):
    return next(n for n in at.number_input if n.label == "Epochs")


def _banner(at: AppTest) -> str:
    return "\n".join(plain(w.value) for w in at.warning if "changed in another tab" in w.value)


def test_two_tabs_on_one_workspace_never_overwrite_each_other_silently():
    from mtlrec.app import workspace as ws
    a = AppTest.from_file(APP, default_timeout=120).run()
    a.button(key="home_load_sample").click().run()
    a.switch_page("pages/model.py").run()
    wid = state_of(a).ws_id
    b = _reload(wid, "pages/model.py")                  # the same workspace in a second tab
    _epochs(b).set_value(14).run()
    assert ws.load(wid)["train"]["epochs"] == 14 and not _banner(b)
    _epochs(a).set_value(77).run()                      # the first tab, on its older version
    no_exception(a, "conflict")
    assert ws.load(wid)["train"]["epochs"] == 14, "the other tab's save was overwritten"
    assert "changed in another tab" in _banner(a) and state_of(a).train["epochs"] == 77
    _epochs(a).set_value(78).run()                      # still not saved while the visitor has not chosen
    assert ws.load(wid)["train"]["epochs"] == 14 and _banner(a)
    # keep both: this tab continues in a copy; the original keeps the other tab's version
    a.button(key="ws_conflict_fork").click().run()
    mine = state_of(a).ws_id
    assert mine != wid and ws.load(mine)["train"]["epochs"] == 78 and ws.load(wid)["train"]["epochs"] == 14
    assert not _banner(a) and len(state_of(a).raw.interactions) == 60_000
    # load the newer version: a third tab takes the second tab's change
    c = _reload(wid, "pages/model.py")
    _epochs(b).set_value(20).run()
    _epochs(c).set_value(30).run()
    assert ws.load(wid)["train"]["epochs"] == 20 and _banner(c)
    c.button(key="ws_conflict_load").click().run()
    c.switch_page("pages/model.py").run()
    assert not _banner(c) and _epochs(c).value == 20 and state_of(c).train["epochs"] == 20
    _epochs(c).set_value(31).run()
    assert ws.load(wid)["train"]["epochs"] == 31
    # keep this tab's version: the second tab overwrites, knowingly
    _epochs(b).set_value(21).run()
    assert ws.load(wid)["train"]["epochs"] == 31 and _banner(b)
    b.button(key="ws_conflict_keep").click().run()
    assert ws.load(wid)["train"]["epochs"] == 21 and not _banner(b)
    c.run()
    assert _banner(c)                                   # and the third tab is told in turn


ALL_PAGES = ["pages/home.py", "pages/data.py", "pages/model.py", "pages/train.py", "pages/results.py",
             "pages/recommend.py", "pages/explain.py", "pages/runs.py", "pages/lab.py"]


def test_visiting_every_page_changes_nothing_the_workspace_saves():
    """A visit that changes nothing must save nothing: otherwise a second tab on the same workspace is
    told of a change nobody made (the Tasks & model page used to write every default in)."""
    import json

    from pages.ui import workspace as ui_ws

    def doc(at):
        return json.loads(json.dumps(ui_ws._doc(state_of(at)), default=str))

    at = AppTest.from_file(APP, default_timeout=120).run()
    at.button(key="home_load_sample").click().run()
    before = doc(at)
    for page in ALL_PAGES:
        at.switch_page(page).run()
        no_exception(at, page)
        now = doc(at)
        assert now == before, {k: (before.get(k), now.get(k)) for k in before if before.get(k) != now.get(k)}
    # a real change still reaches the saved workspace
    at.switch_page("pages/model.py").run()
    at.number_input(key=f"tr_pat_{state_of(at).counter}").set_value(7).run()
    assert doc(at)["train"]["early_stopping"] == {"patience": 7}
