"""Issue 25: a run folder's version (what page caches are keyed on) changes with what a page shows of it,
never stays with the folder's name alone, and is stable while nothing changes."""
from __future__ import annotations

import json
import os

from mtlrec.runs.version import run_version


def _folder(d):
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.pt").write_bytes(b"weights-1")
    (d / "metrics.json").write_text(json.dumps({"test": {"click": {"auc": 0.7}}}))
    (d / "status.json").write_text(json.dumps({"status": "finished"}))
    return d


def _bump(path, text: str) -> None:
    """Rewrite ``path`` with a later modification time (a filesystem with coarse times sees it too)."""
    st = path.stat()
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_version_is_stable_and_follows_the_runs_files(tmp_path):
    d = _folder(tmp_path / "run")
    v = run_version(d)
    assert run_version(d) == v and len(v) == 16
    _bump(d / "status.json", json.dumps({"status": "running", "heartbeat": 1}))   # resumed: training again
    v_running = run_version(d)
    assert v_running != v
    _bump(d / "status.json", json.dumps({"status": "running", "heartbeat": 2}))   # every heartbeat: a new one
    assert run_version(d) != v_running
    _bump(d / "metrics.json", json.dumps({"test": {"click": {"auc": 0.8}}}))
    assert run_version(d) not in (v, v_running)


def test_a_run_replaced_under_the_same_name_has_another_version(tmp_path):
    d = _folder(tmp_path / "run")
    v = run_version(d)
    for f in d.iterdir():
        f.unlink()
    d.rmdir()
    _folder(d)
    (d / "model.pt").write_bytes(b"weights-two")          # another run's model (another size)
    assert run_version(d) != v
    assert run_version(_folder(tmp_path / "other")) != run_version(d)    # same files, another folder
