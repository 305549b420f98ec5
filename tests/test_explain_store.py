"""Issue 25: what `mtlrec.explain.store` keeps in a run folder is read back for the same run version and
settings only, and a folder that cannot be written still gives the value."""
from __future__ import annotations

import json
import os

import numpy as np

from mtlrec.explain.store import stored


def _run(d):
    d.mkdir()
    (d / "model.pt").write_bytes(b"w")
    (d / "metrics.json").write_text("{}")
    return d


def test_kept_per_version_and_settings(tmp_path):
    d = _run(tmp_path / "run")
    calls = []

    def compute():
        calls.append(1)
        return {"importance": np.array([0.5, 0.25]), "n_rows": np.int64(50), "nan": float("nan")}
    first = stored(d, "global", {"n_rows": 50}, compute)
    assert first == {"importance": [0.5, 0.25], "n_rows": 50, "nan": None}
    assert stored(d, "global", {"n_rows": 50}, compute) == first and len(calls) == 1   # read back
    stored(d, "global", {"n_rows": 100}, compute)                                      # other settings
    assert len(calls) == 2
    st = (d / "metrics.json").stat()
    (d / "metrics.json").write_text('{"changed": 1}')                                 # the run changed
    os.utime(d / "metrics.json", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    stored(d, "global", {"n_rows": 50}, compute)
    assert len(calls) == 3
    assert all(json.loads(f.read_text()) for f in (d / "cache").iterdir())


def test_a_run_folder_that_cannot_be_written_still_gives_the_value(tmp_path, monkeypatch):
    import errno

    import mtlrec.diskio as diskio
    d = _run(tmp_path / "run")

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(diskio, "write_text", full)
    assert stored(d, "global", {}, lambda: {"a": 1}) == {"a": 1}
    assert not list((d / "cache").glob("*.json"))
