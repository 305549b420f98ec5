"""Train page: "Processes" (data-parallel training in torchrun processes, issue 16).

The option shows where more than one process can train: several GPUs, or
``MTLREC_CPU_PROCESSES`` on a CPU machine (gloo). The job launches ``train --nproc N`` and
follows the run through its folder; the page shows it like any other run.
"""
from __future__ import annotations

import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from test_pages import APP, no_exception, state_of, texts

from pages.ui.state import TERMINAL


def _start_page(at: AppTest):
    at.button(key="home_load_sample").click().run()
    st_ = state_of(at)
    # two unconditional tasks (the sample's chain gives them "interact" as a parent)
    st_.tasks = [{k: v for k, v in t.items() if k != "given"} for t in st_.tasks if t["name"] in ("click", "rating")]
    st_.train.update(epochs=1, batch_size=4096, ranking_k=0)
    st_.model = {"arch": "shared_bottom", "shared_dims": [16], "tower_dims": [8], "embedding_dim": 8}
    at.switch_page("pages/train.py").run()
    no_exception(at, "opening Train")
    return st_


def test_no_processes_option_on_a_one_device_machine(monkeypatch):
    monkeypatch.delenv("MTLREC_CPU_PROCESSES", raising=False)
    import torch
    if torch.cuda.device_count() > 1:
        pytest.skip("this machine has several GPUs: the option is offered")
    at = AppTest.from_file(APP, default_timeout=120).run()
    _start_page(at)
    assert not [n for n in at.number_input if n.key == "train_processes"]


def test_two_processes_train_a_run_the_page_follows(monkeypatch, runs_dir):
    monkeypatch.setenv("MTLREC_CPU_PROCESSES", "2")
    at = AppTest.from_file(APP, default_timeout=120).run()
    st_ = _start_page(at)
    at.number_input(key="train_processes").set_value(2).run()
    at.button(key="train_start").click().run()
    no_exception(at, "starting a two-process run")
    job = st_.jobs[-1]
    assert job.processes == 2
    deadline = time.time() + 300
    while time.time() < deadline and job.snapshot(include_batches=False)["status"] not in TERMINAL:
        at.run()
        no_exception(at, "while two processes train")
        time.sleep(0.5)
    at.run()
    snap = job.snapshot()
    assert snap["status"] == "finished", snap["error"]
    assert "(2 processes)" in at.get("progress")[0].proto.text
    assert "Finished" in texts(at)
    table = at.dataframe[0].value
    assert "2 processes" in table["device"].iloc[0]
    assert snap["metrics"]["distributed"]["world_size"] == 2
    assert len(snap["history"]["epochs"]) == 1                 # followed through history.json
    ranks = sorted(p.name for p in (job.run_dir / "ranks").iterdir())
    assert ranks == ["rank0.json", "rank1.json"]
    assert json.loads((job.run_dir / "status.json").read_text())["status"] == "finished"
    assert job.result is not None and job.result.model is not None     # loaded from the folder
