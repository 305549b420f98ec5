"""The worker's hold hook (MTLREC_TEST_HOLD_DIR, used by tests/browser/test_state_matrix.py) is off
unless set, and a hold ends when its gate file appears or the run is cancelled."""
from __future__ import annotations

import threading

from mtlrec.training import worker


def test_the_hold_hook_is_off_unless_set(tmp_path, monkeypatch):
    monkeypatch.delenv(worker.HOLD_ENV, raising=False)
    worker._hold("start", threading.Event())          # no folder named: returns at once
    assert list(tmp_path.iterdir()) == []


def test_a_hold_ends_on_its_gate_or_on_cancel(tmp_path, monkeypatch):
    monkeypatch.setenv(worker.HOLD_ENV, str(tmp_path))
    cancel = threading.Event()
    threading.Timer(0.2, (tmp_path / "start").touch).start()
    worker._hold("start", cancel)                     # returns once the gate exists
    assert (tmp_path / "start.reached").exists()
    cancel.set()
    worker._hold("batch", cancel)                     # no gate, but the run is cancelled
    assert (tmp_path / "batch.reached").exists() and not (tmp_path / "batch").exists()
