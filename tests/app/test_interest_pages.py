"""AppTest: user-level interest mining in the app (issue 24 item 4). The Data page offers "user
interests over genres" for the sample, the Tasks page can add a distribution task on it, and Results
shows a user's predicted interest profile next to the actual one."""
from __future__ import annotations

import time

from test_pages import new_app, no_exception, state_of, texts


def test_data_page_offers_interests_and_results_shows_the_profile(runs_dir):
    at = new_app().run()
    at.button(key="home_load_sample").click().run()
    no_exception(at, "after loading the sample")
    st_ = state_of(at)
    at.switch_page("pages/data.py").run()
    no_exception(at, "data page")
    c = st_.counter
    box = at.checkbox(key=f"prep_interest_genres_{c}")
    assert box.label == "user interests over genres" and not box.value
    assert at.selectbox(key=f"prep_interest_positive_{c}").value == "like"
    box.check()
    next(b for b in at.button if b.label == "Prepare").click().run()
    no_exception(at, "after Prepare")
    lab = st_.dataset.label("interest_genres")
    assert lab.task_type == "distribution" and "Drama" in lab.classes
    assert "interest label 'interest_genres' over genres" in texts(at)
    # Tasks & model: the new label is offered to a task of type distribution
    at.switch_page("pages/model.py").run()
    no_exception(at, "tasks page")
    from mtlrec.tasks import DEFAULT_METRIC
    st_.tasks = [{"name": lb.name, "type": lb.task_type, "label": lb.name, "weight": 1.0,
                  "metric": DEFAULT_METRIC[lb.task_type]} for lb in st_.dataset.labels if lb.name != "interest_genres"]
    at.run()
    next(b for b in at.button if b.label == "Add task").click().run()      # the one label without a task
    no_exception(at, "adding a task")
    added = st_.tasks[-1]
    assert (added["label"], added["type"], added["metric"]) == ("interest_genres", "distribution", "class_ndcg")
    st_.tasks = [t for t in st_.tasks if t["name"] in ("click", "interest_genres")]
    st_.train.update(epochs=1, batch_size=4096, ranking_k=0)
    st_.model = {"arch": "mmoe", "n_experts": 2, "expert_dims": [16], "tower_dims": [8], "embedding_dim": 8}
    at.switch_page("pages/train.py").run()
    at.button(key="train_start").click().run()
    no_exception(at, "starting training")
    job = st_.jobs[-1]
    deadline = time.time() + 240
    while time.time() < deadline:
        snap = job.snapshot()
        status = snap.get("status") if isinstance(snap, dict) else getattr(snap, "status", None)
        if status in ("finished", "failed", "cancelled"):
            break
        at.run()
        time.sleep(0.3)
    assert status == "finished", status
    at.switch_page("pages/results.py").run()
    no_exception(at, "results")
    assert "User interests: predicted and actual" in [h.value for h in at.subheader]
    assert "training mean baseline" in texts(at)
    specs = " ".join(ch.proto.spec for ch in at.get("plotly_chart"))
    assert "predicted vs actual" in specs and '"name":"actual"' in specs and '"name":"predicted"' in specs
    # another user redraws the profile
    users = at.selectbox(key="results_interest_user_interest_genres")
    users.set_value(users.options[1]).run()
    no_exception(at, "another user")
    specs = " ".join(ch.proto.spec for ch in at.get("plotly_chart"))
    assert f"user {users.options[1]}," in specs
