"""Workspaces expire: the ones nobody used for a while are removed, and the disk they take is capped.

A workspace (`mtlrec.app.workspace`: its settings, uploaded files, kept prepared dataset and Lab
results, all in one folder) is *used* when a visitor opens it, when it is saved, and, in the app's
server, every sweep while a browser session has it open or one of its training or Lab jobs runs
(`touch`). `sweep` removes

* every workspace idle for longer than its time to live (``MTLREC_WORKSPACE_TTL_DAYS``, default
  14 days; 0 keeps workspaces for ever), then
* while the workspaces take more than the cap (``MTLREC_WORKSPACES_MAX_GB``, default 10 GB; 0: no
  cap), the longest idle ones first -- never one used within the last hour (`GRACE_S`), so that a
  visitor who is working keeps their workspace even on a full disk.

Workspaces named in ``keep`` (the server's: open in a live session, or with a running job) are
never removed. Runs are not workspaces: run folders are never touched here. A removed workspace is
first renamed (readers see it gone at once), then deleted; what a crash leaves of that is removed
by the next sweep.

The app's server sweeps at start and every 10 minutes (pages/ui/sessions.py); operators run
``python -m mtlrec workspaces clean [--dry-run] [--json]``.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from pathlib import Path

from mtlrec.errors import DataError

TTL_ENV = "MTLREC_WORKSPACE_TTL_DAYS"
MAX_ENV = "MTLREC_WORKSPACES_MAX_GB"
DEFAULT_TTL_DAYS = 14.0
DEFAULT_MAX_GB = 10.0
GRACE_S = 3600.0            # the disk cap never removes a workspace used this recently
USED_MARK = ".last_used"    # touched on every use (beside workspace.json)
NOTE_DAYS = 90.0            # a removed workspace's link says why for this long
_TRASH = ".trash-"
_NOTES = ".removed"         # <root>/.removed/<id>: why the workspace was removed


def _env_number(name: str, default: float) -> float:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value >= 0) or value == float("inf"):
        raise DataError(f"the environment variable {name} is {raw[:40]!r}, not a number of at least 0",
                        fix=f"set {name} to a number such as {default:g} (0: no limit), or unset it")
    return value


def ttl_days() -> float:
    """Days a workspace may stay unused (``MTLREC_WORKSPACE_TTL_DAYS``); 0: no expiry."""
    return _env_number(TTL_ENV, DEFAULT_TTL_DAYS)


def max_gb() -> float:
    """Gigabytes (10⁹ bytes) all workspaces may take (``MTLREC_WORKSPACES_MAX_GB``); 0: no cap."""
    return _env_number(MAX_ENV, DEFAULT_MAX_GB)


def _root(root) -> Path:
    from mtlrec.app.workspace import workspaces_root
    return Path(root) if root is not None else workspaces_root()


def touch(ws_id: str, root=None) -> None:
    """Mark a workspace as used now (nothing happens for a workspace that is not on disk)."""
    from mtlrec.app.workspace import valid_id
    if not valid_id(ws_id):
        return
    d = _root(root) / ws_id
    if d.is_dir():
        try:
            (d / USED_MARK).touch()
        except OSError:
            pass


def last_used(d: Path) -> float:
    """When a workspace folder was last used: the newest change of the folder or of anything at its top."""
    newest = d.stat().st_mtime
    with os.scandir(d) as it:
        for e in it:
            try:
                newest = max(newest, e.stat(follow_symlinks=False).st_mtime)
            except OSError:
                pass
    return newest


def _size(d: Path, seen: set) -> int:
    """Bytes of the files under ``d``; a file hard-linked into several workspaces counts once."""
    total = 0
    for folder, _, files in os.walk(d):
        for name in files:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _remove(d: Path, note: dict) -> bool:
    """Rename the folder out of the way (a visitor opening it now finds nothing), note why it went
    (`removed_note`), then delete it."""
    gone = d.with_name(f"{_TRASH}{d.name}-{secrets.token_hex(4)}")
    try:
        os.rename(d, gone)
    except OSError:
        return False
    try:
        (d.parent / _NOTES).mkdir(exist_ok=True)
        (d.parent / _NOTES / d.name).write_text(json.dumps(note), encoding="utf-8")
    except OSError:                 # the visitor is then told less, nothing else
        pass
    shutil.rmtree(gone, ignore_errors=True)
    return True


def removed_note(ws_id: str, root=None) -> dict | None:
    """Why a workspace that is gone was removed: ``{"reason": "expired" | "over the cap", "idle_days",
    "removed_at"}``, or None (never removed by a sweep, or too long ago)."""
    from mtlrec.app.workspace import valid_id
    if not valid_id(ws_id):
        return None
    try:
        note = json.loads((_root(root) / _NOTES / ws_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) else None


def _forget_old_notes(root: Path, now: float) -> None:
    notes = root / _NOTES
    if notes.is_dir():
        for p in notes.iterdir():
            try:
                if now - p.stat().st_mtime > NOTE_DAYS * 86400:
                    p.unlink()
            except OSError:
                pass


def _entries(root: Path, seen: set) -> list[dict]:
    from mtlrec.app.workspace import valid_id
    out = []
    for d in root.iterdir():
        if valid_id(d.name) and d.is_dir():
            try:
                out.append({"id": d.name, "path": d, "last_used": last_used(d), "bytes": _size(d, seen)})
            except OSError:         # removed meanwhile
                continue
    return sorted(out, key=lambda e: e["last_used"])


def sweep(root=None, *, days: float | None = None, cap_gb: float | None = None, keep=(),
          now: float | None = None, dry_run: bool = False, grace_s: float = GRACE_S) -> dict:
    """Remove expired workspaces, then the longest idle ones while all of them take more than the cap.

    ``days`` (time to live) / ``cap_gb``: None reads the environment (`ttl_days`, `max_gb`); 0: no limit.
    ``keep``: ids never removed. ``dry_run``: only say what would be removed. Returns ``{"root",
    "removed": [{"id", "mb", "idle_days", "reason": "expired" | "over the cap", "removed_at"}], "kept", "mb_before",
    "mb_after", "bytes_before", "bytes_after", "ttl_days", "max_gb", "over_cap", "dry_run"}`` (``over_cap``: the cap is still
    exceeded by workspaces in use)."""
    root = _root(root)
    ttl = ttl_days() if days is None else float(days)
    cap = max_gb() if cap_gb is None else float(cap_gb)
    now = time.time() if now is None else float(now)
    keep = set(keep)
    res = {"root": str(root), "removed": [], "kept": 0, "mb_before": 0.0, "mb_after": 0.0, "bytes_before": 0,
           "bytes_after": 0, "ttl_days": ttl, "max_gb": cap, "over_cap": False, "dry_run": bool(dry_run)}
    if not root.is_dir():
        return res
    if not dry_run:
        for d in root.glob(f"{_TRASH}*"):        # left by a crash in the middle of a removal
            shutil.rmtree(d, ignore_errors=True)
        _forget_old_notes(root, now)
    entries = _entries(root, set())
    total = sum(e["bytes"] for e in entries)
    res["mb_before"], res["bytes_before"] = round(total / 1e6, 1), total

    def drop(e, reason) -> None:
        nonlocal total
        note = {"reason": reason, "idle_days": round((now - e["last_used"]) / 86400, 2), "removed_at": now}
        if dry_run or _remove(e["path"], note):
            total -= e["bytes"]
            res["removed"].append({"id": e["id"], "mb": round(e["bytes"] / 1e6, 1), **note})
            entries.remove(e)

    for e in list(entries):
        if ttl > 0 and e["id"] not in keep and now - e["last_used"] > ttl * 86400:
            drop(e, "expired")
    if cap > 0:
        for e in list(entries):                      # the longest idle first
            if total <= cap * 1e9:
                break
            if e["id"] not in keep and now - e["last_used"] >= grace_s:
                drop(e, "over the cap")
        res["over_cap"] = total > cap * 1e9
    res["kept"], res["mb_after"], res["bytes_after"] = len(entries), round(total / 1e6, 1), total
    return res
