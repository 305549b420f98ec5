"""mtlrec.app.workspace_clean: workspaces expire after their idle time, and their disk use is capped
(oldest idle first; never one in use). The clock is faked through ``now`` and file times."""
from __future__ import annotations

import json
import os
import time

import pytest

from mtlrec.app import workspace as ws
from mtlrec.app import workspace_clean as wc
from mtlrec.__main__ import main as cli
from mtlrec.errors import DataError

DAY = 86400.0
NOW = time.time()


def _make(root, idle_days: float, size: int = 1000) -> str:
    """A saved workspace with an uploaded file of ``size`` bytes, last used ``idle_days`` before NOW."""
    wid = ws.new_workspace_id()
    ws.save_files(wid, [("interactions.csv", b"x" * size)], root)
    ws.save(wid, {"source": "interactions.csv"}, root)
    when = NOW - idle_days * DAY
    for folder, dirs, files in os.walk(root / wid):
        for name in dirs + files:
            os.utime(os.path.join(folder, name), (when, when))
    os.utime(root / wid, (when, when))
    return wid


def test_workspaces_idle_past_their_time_to_live_are_removed_with_their_uploads(tmp_path):
    old, recent, kept = _make(tmp_path, 20), _make(tmp_path, 10), _make(tmp_path, 30)
    runs = tmp_path / "runs_of_someone"                       # not a workspace: never touched
    runs.mkdir()
    res = wc.sweep(tmp_path, days=14, cap_gb=0, keep={kept}, now=NOW)
    assert [(r["id"], r["reason"]) for r in res["removed"]] == [(old, "expired")]
    assert res["removed"][0]["idle_days"] == pytest.approx(20, abs=0.01)
    assert not (tmp_path / old).exists() and ws.exists(recent, tmp_path) and ws.exists(kept, tmp_path)
    assert runs.is_dir() and res["kept"] == 2
    note = wc.removed_note(old, tmp_path)                      # what the app tells the link's visitor
    assert note["reason"] == "expired" and note["idle_days"] == pytest.approx(20, abs=0.01)
    assert wc.removed_note(recent, tmp_path) is None
    assert not any(p.name.startswith(".trash-") for p in tmp_path.iterdir())


def test_using_a_workspace_restarts_its_idle_time_and_a_dry_run_removes_nothing(tmp_path):
    a, b = _make(tmp_path, 20), _make(tmp_path, 21)
    wc.touch(a, tmp_path)                                       # opened now
    dry = wc.sweep(tmp_path, days=14, cap_gb=0, dry_run=True)
    assert [r["id"] for r in dry["removed"]] == [b] and ws.exists(b, tmp_path)
    assert wc.removed_note(b, tmp_path) is None
    assert [r["id"] for r in wc.sweep(tmp_path, days=14, cap_gb=0)["removed"]] == [b]
    assert ws.exists(a, tmp_path)
    assert wc.sweep(tmp_path, days=0, cap_gb=0, now=NOW + 1000 * DAY)["removed"] == []   # 0: for ever


def test_the_disk_cap_removes_the_longest_idle_first_never_one_in_use(tmp_path):
    oldest, in_use, older, newer, just_used = (_make(tmp_path, d, size=1000) for d in (9, 8, 5, 3, 0.01))
    # five workspaces of a little over 1,000 bytes each; the cap leaves room for less than two
    res = wc.sweep(tmp_path, days=0, cap_gb=2000 / 1e9, keep={in_use}, now=NOW)
    assert [(r["id"], r["reason"]) for r in res["removed"]] == [(oldest, "over the cap"), (older, "over the cap"),
                                                               (newer, "over the cap")]
    assert ws.exists(in_use, tmp_path) and ws.exists(just_used, tmp_path)   # kept / used within the hour
    assert res["over_cap"] and 2000 < res["bytes_after"] < 2600 and res["bytes_before"] > 5000
    assert wc.removed_note(oldest, tmp_path)["reason"] == "over the cap"
    res = wc.sweep(tmp_path, days=0, cap_gb=1, now=NOW)
    assert res["removed"] == [] and not res["over_cap"]


def test_a_hard_linked_copy_counts_once_and_crash_leftovers_go(tmp_path):
    a = _make(tmp_path, 1, size=5000)
    b = ws.copy(a, tmp_path)                                   # the same upload, hard-linked
    (tmp_path / ".trash-leftover").mkdir()
    res = wc.sweep(tmp_path, days=14, cap_gb=0, now=NOW)
    assert 5000 <= res["bytes_before"] < 6000 and res["kept"] == 2 and ws.valid_id(b)
    assert not (tmp_path / ".trash-leftover").exists()


def test_settings_come_from_the_environment_and_bad_values_are_named(monkeypatch, tmp_path):
    monkeypatch.setenv(wc.TTL_ENV, "3.5")
    monkeypatch.setenv(wc.MAX_ENV, "0")
    assert wc.ttl_days() == 3.5 and wc.max_gb() == 0
    old = _make(tmp_path, 4)
    assert [r["id"] for r in wc.sweep(tmp_path, now=NOW)["removed"]] == [old]
    for bad in ("-1", "two weeks", "nan"):
        monkeypatch.setenv(wc.TTL_ENV, bad)
        with pytest.raises(DataError, match=wc.TTL_ENV):
            wc.ttl_days()
    monkeypatch.delenv(wc.TTL_ENV)
    monkeypatch.delenv(wc.MAX_ENV)
    assert (wc.ttl_days(), wc.max_gb()) == (wc.DEFAULT_TTL_DAYS, wc.DEFAULT_MAX_GB)


def test_the_command_line_cleans_says_what_and_refuses_bad_values(tmp_path, capsys):
    old, recent = _make(tmp_path, 30), _make(tmp_path, 1)
    assert cli(["workspaces", "clean", "--root", str(tmp_path), "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in dry["removed"]] == [old] and dry["dry_run"] and ws.exists(old, tmp_path)
    assert cli(["workspaces", "clean", "--root", str(tmp_path), "--ttl-days", "14"]) == 0
    out = capsys.readouterr().out
    assert f"removed {old}" in out and "unused for 30.0 days (expired)" in out and "1 kept" in out
    assert not (tmp_path / old).exists() and ws.exists(recent, tmp_path)
    assert cli(["workspaces", "clean", "--root", str(tmp_path), "--max-gb", "-2"]) == 2
    assert "--max-gb is -2.0" in capsys.readouterr().err
