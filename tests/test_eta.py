"""The ETA (issue 21, item 12): from measured time, never assuming the run goes to its epoch cap.

Early stopping ends most runs at 15-25 of 50 epochs, and the old reading (batch times x every
batch up to the cap, plus a validation pause measured only after the first epoch) jumped 3:32 ->
10:59 -> 16:01 min. A synthetic run: 50-epoch cap, patience 5, 40 batches of ~0.1 s and a 2 s
validation per epoch, improving until epoch 15 (so early stopping ends it at epoch 20)."""
from __future__ import annotations

import pytest

from mtlrec.training.progress import Progress

CAP, PATIENCE, BATCHES, BATCH_S, VALID_S, BEST_UNTIL = 50, 5, 40, 0.1, 2.0, 15
STOP = BEST_UNTIL + PATIENCE


def _batch_time(epoch: int, batch: int) -> float:
    return BATCH_S * (1.0 + 0.1 * (((epoch * 7 + batch * 3) % 5) - 2) / 2)   # +-10 %, deterministic


def _end_of_epoch(epoch: int) -> float:
    """The synthetic clock when epoch ``epoch``'s validation ends."""
    t = 0.0
    for e in range(1, epoch + 1):
        t += sum(_batch_time(e, b) for b in range(1, BATCHES + 1)) + VALID_S
    return t


def run(readings, patience: int = PATIENCE):
    """Drive a Progress through the synthetic run; ``readings(p, now, epoch, batch)`` after every batch."""
    p = Progress(epochs=CAP)
    if hasattr(p, "patience"):
        p.patience = patience
    now, history = 0.0, []
    for e in range(1, STOP + 1):
        for b in range(1, BATCHES + 1):
            now += _batch_time(e, b)
            p.batch_done(e, b, BATCHES, now=now)
            readings(p, now, e, b)
        now += VALID_S
        history.append({"epoch": e, "best": e <= BEST_UNTIL})
        if hasattr(p, "epoch_end"):
            p.epoch_end(history[-1], type("H", (), {"epochs": history})())
    return p


def test_the_reading_to_the_cap_never_jumps_up():
    """Every reading of the time to the cap is at most 5 % above the one before (it should fall by
    one epoch per epoch), and is never below the time the run could still take."""
    seen = []

    def look(p, now, e, b):
        if p.eta_s is not None:
            seen.append((e, b, p.eta_s, now))
    run(look)
    assert seen and seen[0][0] <= 2                       # a reading from the second epoch at the latest
    for (e0, b0, a, _), (e1, b1, c, _) in zip(seen, seen[1:]):
        assert c <= a * 1.05, f"the ETA jumped from {a:.0f} s (epoch {e0}, batch {b0}) to {c:.0f} s (epoch {e1}, batch {b1})"
    for e, b, eta, now in seen:                           # "up to": the cap is an upper bound
        assert eta >= (_end_of_epoch(CAP) - now) * 0.95, (e, b)


def test_the_early_stopping_figure_is_what_the_run_takes_and_the_cap_is_said_up_to():
    from mtlrec.training.progress import eta_text
    got = {}

    def look(p, now, e, b):
        if b == BATCHES // 2:
            got[e] = (p.eta_early_s, p.eta_s, p.stop_epoch, now,
                      eta_text({"eta_s": p.eta_s, "eta_early_s": p.eta_early_s, "stop_epoch": p.stop_epoch,
                                "epoch_left_s": p.epoch_left_s, "epoch": p.epoch, "epochs": p.epochs}))
    run(look)
    assert got[1][0] is None and "once epoch 1 is measured" in got[1][4]        # no guess before an epoch
    early, cap, stop, now, text = got[10]                                       # best so far: epoch 9
    assert stop == 9 + PATIENCE
    assert early == pytest.approx(_end_of_epoch(stop) - now, rel=0.05)
    early, cap, stop, now, text = got[17]                                       # no better epoch since 15
    assert stop == STOP
    assert early == pytest.approx(_end_of_epoch(STOP) - now, rel=0.05)        # what the run really takes
    assert cap == pytest.approx(_end_of_epoch(CAP) - now, rel=0.05)
    assert f"if early stopping ends it at epoch {STOP}" in text and "up to" in text and f"all {CAP} epochs" in text


def test_a_run_that_never_stops_early_gives_one_figure():
    from mtlrec.training.progress import eta_text
    texts = []

    def look(p, now, e, b):
        if e == 5 and b == 1:
            texts.append(eta_text({"eta_s": p.eta_s, "eta_early_s": p.eta_early_s, "stop_epoch": p.stop_epoch,
                                   "epoch_left_s": p.epoch_left_s, "epoch": p.epoch, "epochs": p.epochs}))
            assert p.eta_early_s == p.eta_s
    run(look, patience=0)
    assert texts and texts[0].startswith("ETA ") and "up to" not in texts[0] and "early" not in texts[0]


def test_the_train_page_says_the_early_stopping_figure_and_up_to_the_cap(tmp_path):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from _fixtures_train import TASKS
    from mtlrec.config import RunConfig
    from mtlrec.training.jobs import TrainingJob
    from pages.ui.state import AppState
    cfg = RunConfig.from_dict({"tasks": TASKS[:2], "train": {"epochs": CAP, "device": "cpu"}})
    job = TrainingJob(cfg, run_dir=tmp_path / "run-mmoe")     # never started: the test drives its Progress
    job._status = "running"
    job._progress = run(lambda *a: None)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.session_state["mtlrec_state"] = AppState(jobs=[job])
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    text = at.get("progress")[0].proto.text
    assert f"if early stopping ends it at epoch {STOP}" in text and "up to" in text, text
    job._status = "cancelled"                  # so that the page stops refreshing
