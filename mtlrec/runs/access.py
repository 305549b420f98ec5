"""Who may see a run in the app: every run folder the app creates has an owner.

A run trained in the app (Train; a resume, its single-task baselines, cross-validation and a
data-parallel launch all write the same folder) or imported on the Runs page belongs to the
visitor's workspace. ``access.json`` in the run folder records it as a digest of the workspace id
(`owner_key`), never the id itself: the id opens the workspace and its uploaded data. The app
shows a visitor only

* **their own runs** (``"yours"``): open, rename/tag, delete, resume, cancel, export, share;
* **runs shared with them** (``"shared"``) through a share link the owner made (`create_share`;
  `accept_share` when the visitor opens it): open, report, downloads; read-only. The owner can
  stop sharing (`revoke_share`), which takes the run away from everyone it was shared with;
* **local runs** (``"local"``): folders without an owner -- trained with ``python -m mtlrec
  train``, imported with ``runs import``, or written before runs had owners -- only when the
  operator allows it with ``MTLREC_LOCAL_RUNS`` (`local_mode`): ``read`` shows them read-only,
  ``manage`` as if they were the visitor's own. Off by default, so a server others can reach
  shows nobody's runs to anybody else.

The check is `check_access` (raises `RunAccessError`, a DataError saying the same thing whether
the folder exists or not, so guessing names tells nothing); `level` is its quiet form and
`visible_run_rows` the Runs page's listing. A damaged ``access.json`` opens to nobody in the app.
The command line (``python -m mtlrec runs ...``) is the operator's tool and sees every run.

``access.json``: ``{"format": "mtlrec-access/1", "owners": [digest, ...], "claimed": bool,
"share": {"token", "created", "viewers": [digest, ...]} or null}``. ``claimed``: the owners came
from workspaces saved before runs had owners (`claim`), each of which may still add itself.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from pathlib import Path

from mtlrec.errors import DataError

ACCESS_FILE = "access.json"
FORMAT = "mtlrec-access/1"
LOCAL_ENV = "MTLREC_LOCAL_RUNS"
LOCAL_MODES = ("off", "read", "manage")
LEVELS = {"yours": "yours", "shared": "shared with you", "local": "local"}    # level -> words for the page
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")
_LOCK = threading.Lock()        # one read-modify-write of an access.json at a time in this process


class RunAccessError(DataError):
    """The visitor may not see (or may not change) this run."""


def owner_key(ws_id: str) -> str:
    """The digest of a workspace id that run folders record (the id itself opens the workspace)."""
    return hashlib.sha256(f"mtlrec-run-owner:{ws_id}".encode()).hexdigest()


def local_mode(value: str | None = None) -> str:
    """``MTLREC_LOCAL_RUNS`` (or ``value``): "read", "manage", else "off" (unset, empty, unknown)."""
    v = (os.environ.get(LOCAL_ENV, "") if value is None else value).strip().lower()
    return v if v in LOCAL_MODES else "off"


def _read(d: Path) -> dict | None:
    """access.json of ``d``: {} when there is none (a local run), None when it is damaged."""
    p = d / ACCESS_FILE
    if not p.exists():
        return {}
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("owners"), list):
        return None
    return doc


def _write(d: Path, doc: dict) -> None:
    from mtlrec.runs.folder import write_json_atomic
    write_json_atomic(d / ACCESS_FILE, {"format": FORMAT, **doc})


def _viewers(doc: dict) -> list:
    share = doc.get("share")
    return share.get("viewers") or [] if isinstance(share, dict) else []


def level(run_dir, ws_id: str | None, local: str | None = None) -> str | None:
    """What the workspace ``ws_id`` may do with the run folder ``run_dir``: "yours", "shared"
    (read-only), "local" (an unowned folder, when ``local`` -- default `local_mode()` -- is not
    "off"), or None (nothing: not theirs, not a folder, or a damaged access.json)."""
    d = Path(run_dir)
    if not d.is_dir():
        return None
    doc = _read(d)
    if doc is None:
        return None
    if not doc.get("owners"):
        return "local" if local_mode(local) != "off" else None
    if not ws_id:
        return None
    key = owner_key(ws_id)
    if key in doc["owners"]:
        return "yours"
    return "shared" if key in _viewers(doc) else None


def can_manage(lvl: str | None, local: str | None = None) -> bool:
    """Rename/tag, delete, resume and cancel: the owner's, and everyone's for local runs under
    ``MTLREC_LOCAL_RUNS=manage``."""
    return lvl == "yours" or (lvl == "local" and local_mode(local) == "manage")


def check_access(run_dir, ws_id: str | None, *, manage: bool = False, local: str | None = None) -> str:
    """The visitor's `level` for ``run_dir``; RunAccessError when there is none, or when ``manage``
    is asked of a run they may only read. The message is the same for a folder that does not exist."""
    lvl = level(run_dir, ws_id, local)
    name = Path(str(run_dir)).name[:80]
    if lvl is None:
        raise RunAccessError(f"'{name}' is not one of your runs", fix="open a run this workspace trained or "
                             "imported (Runs page), or ask the run's owner for a share link")
    if manage and not can_manage(lvl, local):
        why = ("it was shared with you read-only" if lvl == "shared" else
               "it is a local run of this server, shown read-only")
        raise RunAccessError(f"'{name}' cannot be changed here: {why}",
                             fix="export it (Run folder zip) and import it to have a copy of your own")
    return lvl


def visible_run_rows(root, ws_id: str | None, local: str | None = None) -> list[dict]:
    """`mtlrec.runs.library.list_run_rows` of the runs the workspace may see, each with ``access``
    (its `level`) and ``manage`` (`can_manage`). Other folders are not even read."""
    from mtlrec.runs.library import list_run_rows
    levels: dict[str, str] = {}

    def keep(d: Path) -> bool:
        lvl = level(d, ws_id, local)
        if lvl is not None:
            levels[str(d)] = lvl
        return lvl is not None

    rows = list_run_rows(root, keep=keep)
    for r in rows:
        r["access"] = levels.get(r["path"])
        r["manage"] = can_manage(r["access"], local)
    return rows


# ---- owners --------------------------------------------------------------------------------------
def record_owner(run_dir, ws_id: str) -> None:
    """Make the workspace ``ws_id`` the owner of a run folder it creates (training, import)."""
    if not ws_id:
        raise ValueError("a run's owner needs a workspace id")
    with _LOCK:
        _write(Path(run_dir), {"owners": [owner_key(ws_id)], "claimed": False, "share": None})


def claim(run_dir, ws_id: str) -> bool:
    """A workspace saved before runs had owners claims a run it trained (its document lists it):
    the run becomes its own when the folder has no owner yet, or when its owners came from such
    claims too (workspaces copied with "keep both" list the same runs). True when it is its own now."""
    d = Path(run_dir)
    with _LOCK:
        if not d.is_dir() or not any((d / m).exists() for m in ("config.json", "status.json")):
            return False
        doc = _read(d)
        key = owner_key(ws_id)
        if doc is None or (doc.get("owners") and not doc.get("claimed")):
            return bool(doc) and key in doc["owners"]
        if key not in (doc.get("owners") or []):
            _write(d, {"share": None, **doc, "owners": (doc.get("owners") or []) + [key], "claimed": True})
    return True


def copy_access(run_dir, from_ws: str, to_ws: str) -> None:
    """Give the workspace ``to_ws`` what ``from_ws`` may do with a run (a workspace copied as a new
    one keeps its runs): an owner's copy becomes an owner, a viewer's a viewer."""
    d = Path(run_dir)
    with _LOCK:
        doc = _read(d) if d.is_dir() else None
        if not doc or not doc.get("owners"):
            return
        old, new = owner_key(from_ws), owner_key(to_ws)
        if old in doc["owners"] and new not in doc["owners"]:
            doc["owners"] = doc["owners"] + [new]
        elif old in _viewers(doc) and new not in _viewers(doc):
            doc["share"]["viewers"] = _viewers(doc) + [new]
        else:
            return
        _write(d, doc)


# ---- share links -------------------------------------------------------------------------------
def share_token(run_dir) -> str | None:
    """The run's share token, None when it is not shared (or unreadable)."""
    share = (_read(Path(run_dir)) or {}).get("share")
    tok = share.get("token") if isinstance(share, dict) else None
    return tok if isinstance(tok, str) and _TOKEN.match(tok) else None


def create_share(run_dir, ws_id: str) -> str:
    """A share token for the owner's run (the one it has, else a new random one): whoever opens the
    app with ``?share=<token>`` gets the run read-only in their workspace, until `revoke_share`."""
    check_access(run_dir, ws_id, manage=True, local="off")
    d = Path(run_dir)
    with _LOCK:
        doc = _read(d) or {}
        if share_token(d) is None:
            doc["share"] = {"token": secrets.token_urlsafe(24), "created": time.time(), "viewers": []}
            _write(d, doc)
    return share_token(d)


def revoke_share(run_dir, ws_id: str) -> None:
    """Stop sharing the owner's run: the link no longer works and everyone it was shared with loses it."""
    check_access(run_dir, ws_id, manage=True, local="off")
    d = Path(run_dir)
    with _LOCK:
        doc = _read(d) or {}
        if doc.get("share") is not None:
            doc["share"] = None
            _write(d, doc)


def valid_token(token) -> bool:
    return isinstance(token, str) and bool(_TOKEN.match(token))


def accept_share(token: str, ws_id: str, root=None) -> Path | None:
    """The run that ``token`` shares, now readable by the workspace ``ws_id`` (recorded as a viewer;
    an owner stays an owner); None when no run of ``root`` is shared with that token."""
    from mtlrec.runs.library import looks_like_run, runs_root
    r = Path(root) if root is not None else runs_root()
    if not valid_token(token) or not ws_id or not r.is_dir():
        return None
    for d in r.iterdir():
        if d.is_symlink() or not looks_like_run(d):
            continue
        have = share_token(d)
        if have is None or not hmac.compare_digest(have, token):
            continue
        with _LOCK:
            doc = _read(d) or {}
            share = doc.get("share")
            if not isinstance(share, dict) or share.get("token") != token:      # revoked meanwhile
                return None
            key = owner_key(ws_id)
            if key not in doc["owners"] and key not in _viewers(doc):
                share["viewers"] = _viewers(doc) + [key]
                _write(d, doc)
        return d
    return None
