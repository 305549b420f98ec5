"""AppTest: the Explain page's "What if…" section -- features prefilled from the data, a submitted
edit shown as hypothetical (the pair's scores and rank before -> after, the top list, the SHAP
waterfall), a new user known by features only; nothing written to the run folder."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from _fixtures_train import TASKS
from _fixtures_whatif import make_whatif_dataset

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    from mtlrec.config import RunConfig
    from mtlrec.training.jobs import TrainingJob
    d = tmp_path_factory.mktemp("whatif_app") / "run-sb"
    tasks = [t for t in TASKS if t["name"] in ("click", "rating", "genres")]
    cfg = RunConfig.from_dict({"tasks": tasks,
                               "model": {"arch": "shared_bottom", "shared_dims": [16], "tower_dims": [8],
                                         "embedding_dim": 8},
                               "train": {"epochs": 1, "batch_size": 512, "device": "cpu"}})
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        j = TrainingJob(cfg, run_dir=d, dataset=make_whatif_dataset()).start()
        j.join(timeout=240)
    finally:
        torch.set_num_threads(n)
    snap = j.snapshot()
    status = snap.get("status") if isinstance(snap, dict) else getattr(snap, "status", None)
    assert status == "finished", snap
    return j


def _files(d: Path) -> dict:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in d.rglob("*") if p.is_file()}


def _frame(at: AppTest, column: str):
    """The what-if table with ``column`` ("rank": the top list; "": the before -> after table)."""
    frames = [d.value for d in at.table if column in d.value.columns]
    assert len(frames) == 1, [list(d.value.columns) for d in at.table]
    return frames[0]


def _explain_page(job) -> AppTest:
    """The Explain page of the job's run, for user u4 and item i9."""
    from pages.ui.state import AppState
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["mtlrec_state"] = AppState(jobs=[job])
    at.session_state["explain_request"] = {"run_dir": str(job.run_dir), "user": "u4", "item": "i9"}
    at.switch_page("pages/explain.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_what_if_section_scores_a_hypothetical_user_without_saving_anything(job):
    rd = str(job.run_dir)
    files = _files(Path(rd))
    at = _explain_page(job)
    assert any(s.value == "What if…" for s in at.subheader)
    n_charts = len(at.get("plotly_chart"))
    from pages.ui.workspace import _doc
    workspace = json.dumps(_doc(at.session_state["mtlrec_state"]), sort_keys=True, default=str)
    # prefilled from the data: u4's age in years and occupation by name
    from mtlrec.runs.load import load_run
    from mtlrec.serve.whatif import current_values
    now = current_values(load_run(rd), "u4")
    age = at.number_input(key=f"whatif_{rd}_u4_age")
    occ = at.selectbox(key=f"whatif_{rd}_u4_occupation")
    assert abs(age.value - now["age"]) < 1e-3 and occ.value == now["occupation"]
    assert set(occ.options) == {"student", "engineer", "artist"}
    age.set_value(now["age"] + 40)
    occ.set_value("artist" if now["occupation"] != "artist" else "student")
    at.button(key=f"whatif_go_{rd}_u4").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("Hypothetical — not saved" in w.value for w in at.warning)
    assert any(m.value.startswith("**Item i9: rank") and "→" in m.value for m in at.markdown)
    top = _frame(at, "rank")
    assert len(top) == 10 and list(top["rank"]) == list(range(1, 11))
    change = _frame(at, "")
    assert {"click", "rating", "fused score", "rank"} <= set(change[""])
    fused = change[change[""] == "fused score"].iloc[0]
    assert fused["before"] != fused["after"]
    assert len(at.get("plotly_chart")) == n_charts + 1          # the hypothetical pair's waterfall
    # a new user, features only: no "before", still a list of 10
    at.radio(key=f"whatif_who_{rd}").set_value("a new user (features only)").run()
    at.selectbox(key=f"whatif_{rd}_new_occupation").set_value("engineer")
    at.button(key=f"whatif_go_{rd}_new").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("a new user" in w.value for w in at.warning)
    assert len(_frame(at, "rank")) == 10
    change = _frame(at, "")
    assert set(change["before"]) == {"—"}
    assert _files(Path(rd)) == files                           # nothing written to the run folder
    assert json.dumps(_doc(at.session_state["mtlrec_state"]), sort_keys=True, default=str) == workspace


def _plain(md: str) -> str:
    """Markdown of `md_text` as it reads (escapes and word joiners removed)."""
    import re
    return re.sub(r"\\(.)", r"\1", md).replace("\u2060", "")


def test_a_new_users_defaults_are_shown_and_named_after_scoring(job):
    """Issue 21 item 10: a new user starts from defaults -- each shown with how it was chosen, and
    the hypothetical result names the values left at their default."""
    from mtlrec.runs.load import load_run
    from mtlrec.serve.whatif import default_values
    rd = str(job.run_dir)
    defaults = default_values(load_run(rd))
    at = _explain_page(job)
    at.radio(key=f"whatif_who_{rd}").set_value("a new user (features only)").run()
    assert not at.exception, [e.value for e in at.exception]
    said = [_plain(c.value).replace("**", "") for c in at.caption
            if "Each one starts at a default" in _plain(c.value)]
    assert len(said) == 1, [c.value for c in at.caption]
    for name, d in defaults.items():
        value = f"{d['value']:g}" if isinstance(d["value"], float) else d["value"]
        assert f"{name} = {value} ({d['how']})" in said[0]
    assert "most frequent" in defaults["occupation"]["how"] or "category" in defaults["occupation"]["how"]
    age = at.number_input(key=f"whatif_{rd}_new_age")
    assert _plain(age.help) == f"default: {defaults['age']['how']}"
    age.set_value(24.0)
    at.button(key=f"whatif_go_{rd}_new").click().run()
    assert not at.exception, [e.value for e in at.exception]
    banner = [_plain(w.value) for w in at.warning if "Hypothetical" in w.value]
    occ = defaults["occupation"]
    assert len(banner) == 1 and "a new user with age = 24" in banner[0]
    assert f"left at their default: occupation = {occ['value']} ({occ['how']})" in banner[0], banner


def test_a_value_far_outside_the_training_range_is_refused_in_words_and_one_near_it_warned(job):
    """Issue 27 item 5: age = 1e308 gave NaN scores and nonsense ranks; now the page says why it cannot
    score it (the training range, a fix) without any score, and a value just outside the range is
    scored with a warning."""
    rd = str(job.run_dir)
    at = _explain_page(job)
    age = at.number_input(key=f"whatif_{rd}_u4_age")
    age.set_value(1e308)
    at.button(key=f"whatif_go_{rd}_u4").click().run()
    assert not at.exception, [e.value for e in at.exception]
    said = " ".join(_plain(e.value).replace("**", "") for e in at.error)
    assert "age = 1e+308 is far outside the values the model was trained on" in said, said
    assert "Fix:" in said and "Where: column age" in said, said
    assert not [t for t in at.table if "rank" in t.value.columns]           # no list made of NaN scores
    assert not any("Hypothetical" in w.value for w in at.warning)
    from mtlrec.runs.load import load_run
    from mtlrec.serve.whatif import raw_training_range
    high = raw_training_range(load_run(rd), "age")[1]
    at.number_input(key=f"whatif_{rd}_u4_age").set_value(round(high + 10, 3))
    at.button(key=f"whatif_go_{rd}_u4").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    warned = [_plain(w.value) for w in at.warning if "outside the range seen in training" in _plain(w.value)]
    assert len(warned) == 1 and warned[0].startswith(f"age = {round(high + 10, 3):.6g} is outside"), warned
    top = _frame(at, "rank")
    assert list(top["rank"]) == list(range(1, 11)) and "nan" not in " ".join(top["fused"])
