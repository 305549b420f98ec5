"""AppTest: what a demo reads in the tables (issue 21 §15). Two runs of the same MovieLens-style data,
one on its predefined u1.base/u1.test split and one on a random split, both with single-task
baselines: the Runs list tells them apart by their split, and no table of Runs compare, Results
or Recommendations shows 16-digit floats."""
from __future__ import annotations

import json
import math

import pytest
from _fixtures_ml100k import write_ml100k_split
from test_pages import no_exception
from test_runs_page import runs_page, table

pytestmark = pytest.mark.usefixtures("local_runs")     # runs trained by the tests' own jobs: local runs
SPLITS = {"u1": "prepared in the app · predefined: u1.base/u1.test", "random": "prepared in the app · random 80/10/10"}


@pytest.fixture(scope="module")
def library(runs_dir, tmp_path_factory):
    import torch

    from mtlrec.config import RunConfig
    from mtlrec.data.readers import load_data
    from mtlrec.data.suggest import suggest_spec
    from mtlrec.prep import PrepConfig, prepare
    from mtlrec.prep.splits import with_predefined_split
    from mtlrec.training.pipeline import run_training
    src = tmp_path_factory.mktemp("ml") / "ml-100k"
    write_ml100k_split(src)
    raw = load_data([src])
    like = [{"name": "like", "source": "rating", "op": ">=", "threshold": 4}]
    tasks = [{"name": "like", "type": "binary", "label": "like"},
             {"name": "rating", "type": "regression", "label": "rating"}]
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for k, (name, prep) in enumerate((("u1", {}), ("random", {"split": "random"}))):
            ds = prepare(raw, suggest_spec(raw),
                         PrepConfig.from_dict(with_predefined_split({**prep, "derived_labels": like}, raw)))
            cfg = RunConfig.from_dict({"name": name, "tasks": tasks,
                                       "model": {"arch": "shared_bottom", "shared_dims": [16], "tower_dims": [8],
                                                 "embedding_dim": 8},
                                       "train": {"epochs": 1, "batch_size": 128, "device": "cpu", "ranking_k": 0,
                                                 "baselines": True}})
            run_training(cfg, runs_dir / f"2026010{k}-000000-{name}", dataset=ds)
    finally:
        torch.set_num_threads(n)
    return runs_dir


def _floats(frame) -> list[float]:
    return [v for c in frame.columns for v in frame[c] if isinstance(v, float) and math.isfinite(v)]


def _readable(v: float) -> bool:
    """Shown by the app's rule: 4 decimals, at least 3 significant digits (0.00412), no float noise."""
    return v == 0 or round(v, max(4, 2 - math.floor(math.log10(abs(v))))) == v


def test_the_runs_list_names_each_runs_split(library):
    at = runs_page()
    t = table(at)
    assert dict(zip(t["model"] + "/" + t["run"].str.extract(r"(u1|random)")[0], t["data"])) \
        == {f"shared_bottom/{k}": v for k, v in SPLITS.items()}
    assert sorted(at.multiselect(key="runs_f_data").options) == sorted(SPLITS.values())


def test_compare_and_results_tables_show_no_float_noise(library):
    at = runs_page()
    at.multiselect(key="runs_selected").set_value(list(at.multiselect(key="runs_selected").options)).run()
    no_exception(at, "compare")
    frame = next(d.value for d in at.dataframe if "best" in d.value.columns)
    values = _floats(frame)
    assert len(values) == 4 and all(map(_readable, values)), values
    # Results of one run: the gain table and the metrics tables
    label = next(o for o in at.multiselect(key="runs_selected").options if "u1" in o)
    at.multiselect(key="runs_selected").set_value([label]).run()
    at.button(key="runs_open").click().run()
    no_exception(at, "results")
    gain = next(d.value for d in at.dataframe if "single-task" in d.value.columns)
    raw = json.loads((library / "20260100-000000-u1" / "metrics.json").read_text())["gain"]
    assert list(gain["task"]) == ["like", "rating"]
    for col, key in (("multi-task", "mtl"), ("single-task", "stl"), ("gain", "gain")):
        for task, shown in zip(gain["task"], gain[col]):
            assert _readable(shown) and shown == pytest.approx(raw[task][key], abs=6e-5), (col, task, shown)
    assert any(len(repr(raw[t]["mtl"])) > 8 for t in raw)       # the stored metrics do have float noise
    for d in at.dataframe:
        assert all(map(_readable, _floats(d.value))), (d.proto.id, d.value)
    at.switch_page("pages/recommend.py").run()
    no_exception(at, "recommendations")
    history = next(d.value for d in at.dataframe if "split" in d.value.columns)
    assert len(history) and all(map(_readable, _floats(history)))


def _downloads(at) -> dict:
    """{label: proto} of the download buttons; each must serve bytes made beforehand (a URL, no
    deferred callable whose id a rerun forgets) and must not rerun the page when clicked."""
    out = {b.proto.label: b.proto for b in at.get("download_button")}
    assert all(p.url and not p.deferred_file_id and p.ignore_rerun for p in out.values()), out
    return out


def test_a_big_run_folder_is_zipped_on_a_click_and_then_downloads(library, monkeypatch):
    at = runs_page()
    label = next(o for o in at.multiselect(key="runs_selected").options if "u1" in o)
    at.multiselect(key="runs_selected").set_value([label]).run()
    assert list(_downloads(at)) == ["Metrics (CSV)", "Run folder (zip)"]
    from pages.ui import downloads
    monkeypatch.setattr(downloads, "EAGER_BYTES", 1000)        # now every run folder is "big"
    at.session_state["downloads_made"] = {}
    at.run()
    assert list(_downloads(at)) == ["Metrics (CSV)"]
    at.button(key="runs_zip_dl_prepare").click().run()
    no_exception(at, "prepare the zip")
    assert list(_downloads(at)) == ["Metrics (CSV)", "Run folder (zip)"]
    url = _downloads(at)["Run folder (zip)"].url
    at.run()                                                    # a rerun serves the same zip, made once
    assert _downloads(at)["Run folder (zip)"].url == url
