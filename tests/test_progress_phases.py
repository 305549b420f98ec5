"""Progress (issue 15, part 4): every phase named with its own progress (training, test evaluation,
ranking, baseline k of n, fold k of n), an ETA from measured time (None before an epoch is
measured; see also tests/test_eta.py), all state in plain JSON-able dataclass fields; the Train page names the evaluation phase."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from _fixtures_train import TASKS, make_dataset, with_label_stats
from mtlrec.training.progress import Progress, progress_label


def _progress() -> Progress:
    return Progress(phases=["multi-task", "baseline 1 of 2 (click)", "baseline 2 of 2 (like)"], epochs=2)


def _copy(p: Progress) -> Progress:
    """What crosses a process boundary: the dataclass fields, through JSON."""
    doc = json.loads(json.dumps({f.name: getattr(p, f.name) for f in dataclasses.fields(Progress)}))
    return Progress(**doc)


def test_eta_waits_for_a_measured_epoch_then_counts_measured_epochs():
    p = _progress()
    clock = 1000.0
    lefts, etas = [], []
    for b in range(1, 6):                      # 0.5 s per batch
        clock += 0.5
        p.batch_done(1, b, 10, now=clock)
        lefts.append(p.epoch_left_s)
        etas.append(p.eta_s)
    assert lefts[:3] == [None, None, None]     # the first batch is not timed; then 2 timed batches
    assert lefts[4] == pytest.approx(5 * 0.5)  # epoch 1, batch 5 of 10: its batches end in 2.5 s
    assert etas == [None] * 5                  # no whole epoch (with its validation) measured yet
    # slower batches move the average, not the start of the run
    for b in range(6, 11):
        clock += 1.5
        p.batch_done(1, b, 10, now=clock)
    assert 0.5 < p.batch_s < 1.5
    # the whole epoch -- batches, then 4 s of validation -- is measured at the next epoch's first batch
    clock += 4.0 + p.batch_s
    p.batch_done(2, 1, 10, now=clock)
    epoch_s = clock - 1000.5                   # from the end of epoch 1's first batch
    assert p.epoch_s == pytest.approx(epoch_s)
    validation = epoch_s - 10 * p.batch_s
    # 9 batches and a validation left here, then 2 baselines x 2 epochs
    assert p.eta_s == pytest.approx(9 * p.batch_s + validation + 4 * epoch_s)
    # a copy through the fields says the same (properties read fields only)
    q = _copy(p)
    assert (q.eta_s, q.eta_early_s, q.fraction, q.label) == (p.eta_s, p.eta_early_s, p.fraction, p.label)


def test_a_long_first_batch_does_not_give_an_absurd_first_eta():
    p = Progress(epochs=5)
    p.started = 0.0
    p.batch_done(1, 1, 100, now=40.0)          # model build, first-batch compilation ...
    assert p.eta_s is None and p.label == "training — epoch 1/5 · batch 1/100"
    for b in range(2, 6):
        p.batch_done(1, b, 100, now=40.0 + 0.1 * (b - 1))
    assert p.eta_s is None and p.epoch_left_s == pytest.approx(95 * 0.1)
    for b in range(6, 101):
        p.batch_done(1, b, 100, now=40.0 + 0.1 * (b - 1))
    p.batch_done(2, 1, 100, now=40.0 + 10.0 + 1.0)     # 1 s of validation
    assert p.epoch_s == pytest.approx(11.0)            # the 40 s first batch is not in it
    assert p.eta_s == pytest.approx(99 * 0.1 + 1.0 + 3 * 11.0)


def test_phases_are_named_with_their_own_progress_through_a_run():
    p = _progress()
    seen = []

    def look():
        seen.append((p.label, p.fraction))

    t = 0.0
    look()
    assert p.label == "training — starting"
    for e in (1, 2):
        for b in range(1, 5):
            t += 1
            p.batch_done(e, b, 4, now=t)
            look()
    assert seen[-1][0] == "training — epoch 2/2 · batch 4/4"
    p.start_step("test evaluation", total=450, now=t)
    look()
    assert p.label == "test evaluation — scoring 450 test rows" and p.phase.startswith("test evaluation")
    p.step_done(450, now=t + 1)
    p.start_step("ranking", now=t + 1)
    p.step_done(0, 62, now=t + 1)
    look()
    assert p.label == "ranking — users 0/62"
    p.step_done(31, now=t + 3)
    look()
    assert p.label == "ranking — users 31/62" and p.step_fraction == 0.5
    assert p.eta_s is not None and p.eta_s >= 2.0          # 31 users left at 1 user per 1/15.5 s
    p.start_phase(1, now=t + 5)
    look()
    assert p.label == "baseline 1 of 2 (click) — starting"
    p.batch_done(1, 1, 4, now=t + 6)
    look()
    assert p.label == "baseline 1 of 2 (click) — epoch 1/2 · batch 1/4"
    p.phase_index = 2                          # as `mtlrec.training.baselines.train_baselines` moves on
    look()
    assert p.label == "baseline 2 of 2 (like) — starting"
    p.batch_done(1, 1, 4, now=t + 9)
    p.batch_done(2, 4, 4, now=t + 10)
    look()
    fr = [f for _, f in seen]
    assert fr == sorted(fr), seen
    assert all(f < 1.0 for f in fr)            # never "100 %" before the end
    p.phase_index = 3
    p.start_step("done", now=t + 11)
    assert p.fraction == 1.0 and p.eta_s == 0.0


def test_folds_are_named_fold_k_of_n(tmp_path):
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import run_training

    class Recording(Progress):
        def __setattr__(self, key, value):
            object.__setattr__(self, key, value)
            if key in ("phase_index", "step", "total", "n_batches") and hasattr(self, "timed_phase"):
                label = self.label
                if not getattr(self, "labels", None) or self.labels[-1] != label:
                    object.__setattr__(self, "labels", [*getattr(self, "labels", []), label])

    cfg = RunConfig.from_dict({"tasks": TASKS[:2], "model": {"arch": "shared_bottom", "shared_dims": [16],
                                                             "tower_dims": [8], "embedding_dim": 8},
                               "train": {"epochs": 1, "batch_size": 512, "device": "cpu", "seed": 0,
                                         "ranking_k": 5, "baselines": True, "cv_folds": 2}})
    p = Recording()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = run_training(cfg, dataset=with_label_stats(make_dataset(n_rows=1200)), progress=p)
    finally:
        torch.set_num_threads(n)
    assert res.status == "finished"
    names = [lab.split(" — ")[0] for lab in p.labels]
    order = ["training", "test evaluation", "ranking", "baseline 1 of 2 (click)", "baseline 2 of 2 (like)",
             "fold 1 of 2", "fold 2 of 2", "done"]
    assert [x for i, x in enumerate(names) if i == 0 or names[i - 1] != x] == order, p.labels
    assert p.fraction == 1.0


def test_the_snapshot_label_names_the_evaluation_phase():
    p = _progress()
    p.batch_done(2, 4, 4, now=1.0)
    p.start_step("test evaluation", total=1200, now=2.0)
    snap = {"phase": p.phase, "phases": list(p.phases), "epoch": p.epoch, "epochs": p.epochs, "batch": p.batch,
            "n_batches": p.n_batches}
    assert progress_label(snap) == "test evaluation — scoring 1,200 test rows"
    snap.update(phase="baseline 1 of 2 (click)", epoch=1, batch=3)
    assert progress_label(snap) == "baseline 1 of 2 (click) — epoch 1/2 · batch 3/4"


def test_train_page_text_names_the_evaluation_phase(tmp_path):
    from streamlit.testing.v1 import AppTest

    from mtlrec.config import RunConfig
    from mtlrec.training.jobs import TrainingJob
    from pages.ui.state import AppState
    from pathlib import Path
    cfg = RunConfig.from_dict({"tasks": TASKS[:2], "train": {"epochs": 3, "device": "cpu"}})
    job = TrainingJob(cfg, run_dir=tmp_path / "run-mmoe")     # never started: the test drives its Progress
    job._status = "running"
    p = job._progress
    p.phases, p.started = ["multi-task"], 0.0
    for b in range(1, 6):
        p.batch_done(3, b, 5, now=10.0 + b)
    p.start_step("test evaluation", total=2000, now=20.0)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.session_state["mtlrec_state"] = AppState(jobs=[job])
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    text = at.get("progress")[0].proto.text
    assert "test evaluation — scoring 2,000 test rows" in text, text
    assert "ETA" in text and "100%" not in text, text
    p.start_step("ranking", now=21.0)
    p.step_done(40, 943, now=23.0)
    at.run()
    text = at.get("progress")[0].proto.text
    assert "ranking — users 40/943" in text, text
    job._status = "cancelled"                  # so that the page stops refreshing


def test_queued_gpu_batches_are_averaged_over_their_syncs():
    """Launches that return at once and a sync every 50 batches (a GPU's pattern): the average is the
    real cost per batch, not the launch time."""
    p = Progress(epochs=1)
    t = 0.0
    p.batch_done(1, 1, 1000, now=t)
    for b in range(2, 502):
        t += 0.5 if b % 50 == 0 else 0.001
        p.batch_done(1, b, 1000, now=t)
    real = t / 500
    assert p.batch_s == pytest.approx(real, rel=0.15)
    assert p.eta_s == pytest.approx(499 * p.batch_s)
