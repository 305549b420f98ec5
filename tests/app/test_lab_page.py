"""AppTest of the Lab page: the architectures card trains to the end (polled with at.run()), the
prepared sweep draws its figure and verdict, the weighting card compares two methods."""
from __future__ import annotations

import time

import pytest

from tests.app.test_pages import new_app, no_exception, texts

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _lab():
    at = new_app().run()
    at.switch_page("pages/lab.py").run()
    no_exception(at, "lab page")
    return at


def _poll(at, kind: str, timeout: float = 240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        at.run()
        no_exception(at, f"while {kind} runs")
        job = at.session_state["lab_jobs"][kind]
        if job.done:
            break
        time.sleep(0.3)
    at.run()
    return at.session_state["lab_jobs"][kind]


@pytest.fixture
def small_lab(monkeypatch):
    from mtlrec.teaching import lab
    orig = lab.LabJob.__init__

    def init(self, kind="archs", p=0.5, **options):
        options.update(n=400, epochs=2)
        orig(self, kind, p, **options)
    monkeypatch.setattr(lab.LabJob, "__init__", init)


def test_lab_page_lists_weighting_methods_and_is_idle():
    at = _lab()
    assert any(t.value == "Lab" for t in at.title)
    from mtlrec.weighting import WEIGHTINGS
    assert list(at.selectbox(key="lab_w1").options) == list(WEIGHTINGS)
    assert "prepared sweep" in texts(at)
    assert not at.button(key="lab_run").disabled


def test_architectures_card_trains_all_three_then_shows_test_table(small_lab):
    at = _lab()
    at.slider(key="lab_p").set_value(0.3).run()
    at.button(key="lab_run").click().run()
    no_exception(at, "start")
    assert at.button(key="lab_run").disabled          # one experiment at a time
    job = _poll(at, "archs")
    assert job.status == "finished", job.snapshot()["error"]
    assert job.p == pytest.approx(0.3)
    assert at.get("plotly_chart")
    table = at.dataframe[0].value
    assert set(table["run"]) == {"shared-bottom", "MMoE", "PLE"}
    assert (table["mean rmse"] > 0).all()
    assert not at.button(key="lab_run").disabled        # the page redrew its buttons at the end


def test_prepared_sweep_draws_metric_against_p_and_a_verdict(small_lab):
    at = _lab()
    at.button(key="lab_sweep").click().run()
    job = _poll(at, "sweep", timeout=400)
    assert job.status == "finished", job.snapshot()["error"]
    assert len(at.get("plotly_chart")) >= 1
    table = next(d.value for d in at.dataframe if "architecture" in d.value.columns)
    assert {"p = 0.5", "p = 0.9", "p = 1"} <= set(table.columns)
    assert "paper's ordering" in texts(at)


def test_the_prepared_sweep_is_the_benchmarks_and_its_chart_says_its_size(monkeypatch):
    """Issue 21 #7: the page's sweep runs at bench/lab.py's size (n = 3000, 3 seeds, 12 epochs), the
    chart states the size of what ran, and "holds" is never printed over MMoE behind shared-bottom."""
    from mtlrec.teaching import lab
    asked = []
    orig = lab.LabJob.__init__

    def init(self, kind="archs", p=0.5, **options):
        asked.append((kind, dict(options)))
        options.update(n=400, epochs=2)            # then run it small: the test checks what the page asked
        orig(self, kind, p, **options)
    monkeypatch.setattr(lab.LabJob, "__init__", init)
    at = _lab()
    at.button(key="lab_sweep").click().run()
    [(kind, options)] = asked
    assert kind == "sweep"
    assert (options.get("n", lab.LAB_N), tuple(options.get("seeds")), options.get("epochs", lab.LAB_TRAIN["epochs"])) \
        == (3000, (0, 1, 2), 12) == (lab.LAB_N, lab.SWEEP_SEEDS, lab.LAB_TRAIN["epochs"])
    job = _poll(at, "sweep", timeout=400)
    assert job.status == "finished", job.snapshot()["error"]
    spec = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "400 rows per p and seed (280 to train on), 3 seeds, 2 epochs per run" in spec
    table = next(d.value for d in at.dataframe if "architecture" in d.value.columns).set_index("architecture")
    shown = texts(at)
    mmoe_behind = any(table.loc["MMoE", c] >= table.loc["shared-bottom", c] for c in ("p = 0.5", "p = 0.9", "p = 1"))
    if mmoe_behind:
        assert "ordering holds" not in shown and "does not hold on this sweep" in shown
    assert not [e.value for e in at.error if "went wrong" in e.value]


def test_lab_results_survive_a_reload(small_lab, monkeypatch):
    """Issue 21 #7: a finished experiment is kept in the workspace: a new session on the same
    workspace id (F5, a bookmark) of a new server process shows its table without training again."""
    from test_pages import state_of
    from mtlrec.teaching import lab
    from pages.ui import lab as lab_ui
    at = _lab()
    at.slider(key="lab_p").set_value(0.3).run()
    at.button(key="lab_run").click().run()
    job = _poll(at, "archs")
    assert job.status == "finished" and job.join(30)       # the thread has stored the result
    first = at.dataframe[0].value
    wid = state_of(at).ws_id

    from test_pages import new_app
    monkeypatch.setattr(lab_ui, "_LIVE", {}, raising=False)   # a new server process: only the disk remembers
    again = new_app()
    again.query_params["ws"] = wid
    again.run()
    again.switch_page("pages/lab.py").run()
    no_exception(again, "lab page after a reload")
    restored = again.session_state["lab_jobs"]["archs"]
    assert isinstance(restored, lab.StoredJob) and restored.status == "finished"
    table = again.dataframe[0].value
    assert list(table["run"]) == list(first["run"]) == ["shared-bottom", "MMoE", "PLE"]
    assert [round(v, 4) for v in table["mean rmse"]] == [round(v, 4) for v in first["mean rmse"]]
    assert any("p = 0.3" in p.proto.text for p in again.get("progress"))


def test_weighting_card_compares_two_methods_and_their_gradient_conflict(small_lab):
    """Issue 21 #9: the conflict chart has a panel per measure (not 8 series on one axis) and its
    legend under the panels, not over the title; it says how many batches each point stands on."""
    import json
    at = _lab()
    at.selectbox(key="lab_w1").set_value("static")
    at.selectbox(key="lab_w2").set_value("dwa").run()
    at.button(key="lab_wrun").click().run()
    job = _poll(at, "weightings")
    assert job.status == "finished", job.snapshot()["error"]
    assert set(job.snapshot()["runs"]) == {"static", "dwa"}
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    [fig] = [f for f in specs if "Gradient conflict" in json.dumps(f["layout"].get("title"))]
    lay = fig["layout"]
    assert {"xaxis", "xaxis2", "xaxis3"} <= set(lay)                    # three panels
    assert lay["legend"]["y"] < 0 and lay["legend"]["yanchor"] == "top"  # under the plot
    assert sorted({t["name"] for t in fig["data"] if t.get("showlegend", True)}) == ["dwa", "static"]
    assert any("sampled batches" in (t.get("hovertemplate") or "") for t in fig["data"])
    assert any("sampled batches" in c.value for c in at.caption)


def test_cancel_stops_the_experiment_and_says_so(monkeypatch):
    from mtlrec.teaching import lab
    orig = lab.LabJob.__init__

    def init(self, kind="archs", p=0.5, **options):
        options.update(n=400, epochs=500)          # would run for minutes
        orig(self, kind, p, **options)
    monkeypatch.setattr(lab.LabJob, "__init__", init)
    at = _lab()
    at.button(key="lab_run").click().run()
    assert not at.button(key="lab_cancel").disabled
    at.button(key="lab_cancel").click().run()
    job = _poll(at, "archs", timeout=60)
    assert job.status == "cancelled"
    assert any("Cancelled" in w.value for w in at.warning)
    assert not at.button(key="lab_run").disabled
