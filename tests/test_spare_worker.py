"""The spare worker process (issue 25): Start hands the run to a process that has already imported
torch and mtlrec; a fresh spare follows; a dead spare never gets a run (a fresh worker trains it)."""
from __future__ import annotations

import os
import signal
import time

import pytest

from _fixtures_train import make_dataset
from test_jobs_worker import cfg_for

from mtlrec.training import spare as spare_mod
from mtlrec.training.jobs import TrainingJob, start_spare_worker

READY_S = 240      # a spare imports torch, cvxpy, torch._dynamo: minutes on a loaded 2-core machine


@pytest.fixture
def process_mode(monkeypatch):
    monkeypatch.setenv("MTLREC_TRAIN_ISOLATION", "process")
    monkeypatch.delenv("MTLREC_SPARE_WORKER", raising=False)
    spare_mod.stop_pool()
    yield
    spare_mod.stop_pool()


def _alive(pid: int) -> bool:
    from mtlrec.runs.folder import proc_is_zombie
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not proc_is_zombie(pid)


def _until(cond, what: str, timeout: float = READY_S):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def test_start_trains_in_the_spare_a_fresh_spare_follows_and_cancel_reaches_it(process_mode, tmp_path, monkeypatch):
    """The run's worker is the spare (same pid); once it trains, a new spare (another pid) waits; the
    next run takes that one, with the MTLREC_* variables set after it started (the test hook holds
    it after its first batch); closing the pool leaves that run alone, and Cancel stops it."""
    assert start_spare_worker()
    pool = spare_mod.current_pool()
    first = pool.wait_ready(READY_S)
    assert first and _alive(first)
    job = TrainingJob(cfg_for(epochs=2), tmp_path / "a", dataset=make_dataset(n_rows=1500)).start()
    assert job.join(300)
    s = job.snapshot()
    assert s["status"] == "finished", s["error"]
    assert job.worker_pid == first and job.from_spare and job.worker_exitcode == 0
    assert s["epoch"] == 2 and (tmp_path / "a" / "model.pt").is_file()
    second = pool.wait_ready(READY_S)
    assert second and second != first and _alive(second)

    hold = tmp_path / "hold"
    hold.mkdir()
    monkeypatch.setenv("MTLREC_TEST_HOLD_DIR", str(hold))     # set after the spare started: it travels
    (hold / "start").touch()
    job2 = TrainingJob(cfg_for(epochs=50), tmp_path / "b", dataset=make_dataset(n_rows=1500)).start()
    _until(lambda: (hold / "batch.reached").exists() or job2.done, "the second run's first batch", 300)
    assert job2.worker_pid == second and job2.from_spare
    spare_mod.stop_pool()              # no more spares: the run in the one it took goes on
    time.sleep(2 * spare_mod.POLL_S)
    assert _alive(second) and not job2.done
    job2.cancel()
    assert job2.join(120)
    s2 = job2.snapshot()
    assert s2["status"] == "cancelled", s2["error"]
    assert s2["epoch"] < 50 and job2.worker_exitcode == 0
    assert pool.spawned >= 2 and pool.taken == 2


def test_a_killed_spare_never_gets_the_run_and_is_replaced(process_mode, tmp_path, monkeypatch):
    """A spare killed while it waits: the next Start trains in a freshly spawned worker (not the dead
    pid; also when it is handed the run in the instant its last threads exit: it never says a word, and
    the job starts a fresh worker); the keeper starts a new spare."""
    pool = spare_mod.SparePool()          # driven by hand here (no keeper thread yet): no race
    monkeypatch.setattr(spare_mod, "_POOL", pool)
    pool._maybe_spawn()
    dead = pool.wait_ready(READY_S)
    assert dead
    os.kill(dead, signal.SIGKILL)
    _until(lambda: not _alive(dead), "the killed spare's end", 30)
    job = TrainingJob(cfg_for(epochs=1), tmp_path / "a", dataset=make_dataset(n_rows=600)).start()
    assert job.join(300)
    s = job.snapshot()
    assert s["status"] == "finished", (s["error"], job.worker_pid, dead, job.from_spare)
    assert job.worker_pid != dead and not job.from_spare      # (taken while its threads still exited: retried)
    pool.start()                                                   # the keeper replaces it
    fresh = pool.wait_ready(READY_S)
    assert fresh and fresh not in (dead, job.worker_pid) and _alive(fresh)

    # a spare that dies once it has the run but before its first word: the job starts a fresh worker
    hold = tmp_path / "hold"
    hold.mkdir()
    (hold / "start").write_text("crash")          # the test hook: every worker ends at its start (exit 13)
    monkeypatch.setenv("MTLREC_TEST_HOLD_DIR", str(hold))
    taken = pool.taken
    job2 = TrainingJob(cfg_for(epochs=1), tmp_path / "b", dataset=make_dataset(n_rows=600)).start()
    assert job2.join(300)
    s2 = job2.snapshot()
    assert s2["status"] == "failed" and "exit code 13" in s2["error"], s2["error"]
    assert job2.worker_pid not in (fresh, None) and not job2.from_spare and pool.taken == taken + 1
    assert not _alive(fresh)
    pool.close()


def test_no_spare_where_jobs_train_in_a_thread_or_it_is_turned_off(monkeypatch):
    spare_mod.stop_pool()
    monkeypatch.setenv("MTLREC_TRAIN_ISOLATION", "thread")
    assert not start_spare_worker() and spare_mod.current_pool() is None
    monkeypatch.setenv("MTLREC_TRAIN_ISOLATION", "process")
    monkeypatch.setenv("MTLREC_SPARE_WORKER", "0")
    assert not start_spare_worker() and spare_mod.current_pool() is None
