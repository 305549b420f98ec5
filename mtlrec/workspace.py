"""A visitor's workspace on disk, so that a reload, a bookmark or a server restart brings it back.

One folder per workspace under the workspaces root (env ``MTLREC_WORKSPACES``, default
``.mtlrec_workspaces``): ``workspace.json`` (which data, the column roles, preprocessing options,
tasks, model, training and text settings, the run folders and the selected run) and ``files/``
(the uploaded files as they came, so the data can be read again; the sample data is not copied).

A workspace id is 32 random hex digits (128 bits): only someone who has the link can open it, and
a new browser tab without an id gets a new, empty workspace. Ids of any other shape are refused,
so an id can never name a path outside the root.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path

from mtlrec.errors import DataError

FORMAT = "mtlrec-workspace/1"
_ID = re.compile(r"^[0-9a-f]{32}$")
_SAFE_FILE = re.compile(r"[^A-Za-z0-9._-]+")


def workspaces_root() -> Path:
    return Path(os.environ.get("MTLREC_WORKSPACES") or ".mtlrec_workspaces")


def new_workspace_id() -> str:
    return secrets.token_hex(16)


def valid_id(ws_id) -> bool:
    return isinstance(ws_id, str) and bool(_ID.match(ws_id))


def _dir(ws_id: str, root=None) -> Path:
    if not valid_id(ws_id):
        raise DataError(f"'{str(ws_id)[:40]}' is not a workspace id",
                        fix="open the app without ?ws= to start a new workspace")
    return (Path(root) if root is not None else workspaces_root()) / ws_id


def exists(ws_id: str, root=None) -> bool:
    return valid_id(ws_id) and (_dir(ws_id, root) / "workspace.json").is_file()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_files(ws_id: str, files: list[tuple[str, bytes]], root=None) -> list[str]:
    """Keep the uploaded files of a workspace (replacing earlier ones); returns their stored names."""
    d = _dir(ws_id, root) / "files"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    names = []
    for k, (name, data) in enumerate(files):
        safe = _SAFE_FILE.sub("_", Path(str(name)).name).lstrip(".") or f"file{k}"
        if safe in names:
            safe = f"{k}_{safe}"
        _write_atomic(d / safe, bytes(data))
        names.append(safe)
    (d / "names.json").write_text(json.dumps(dict(zip(names, [str(n) for n, _ in files]))), encoding="utf-8")
    return names


def load_files(ws_id: str, root=None) -> list[tuple[str, bytes]]:
    """The uploaded files of a workspace as ``(original name, bytes)``."""
    d = _dir(ws_id, root) / "files"
    if not d.is_dir():
        return []
    try:
        names = json.loads((d / "names.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        names = {}
    return [(names.get(p.name, p.name), p.read_bytes()) for p in sorted(d.iterdir())
            if p.is_file() and p.name != "names.json" and not p.name.startswith(".")]


def save(ws_id: str, doc: dict, root=None) -> Path:
    """Write ``workspace.json`` atomically (``doc``: plain JSON values)."""
    d = _dir(ws_id, root)
    d.mkdir(parents=True, exist_ok=True)
    path = d / "workspace.json"
    _write_atomic(path, json.dumps({"format": FORMAT, **doc}, indent=1, default=str).encode("utf-8"))
    return path


def load(ws_id: str, root=None) -> dict:
    """``workspace.json`` of a workspace; DataError (naming the file) when missing or damaged."""
    path = _dir(ws_id, root) / "workspace.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("this workspace does not exist (any more)", file=str(path),
                        fix="open the app without ?ws= to start a new workspace") from None
    except (OSError, ValueError) as e:
        raise DataError(f"the saved workspace is damaged ({e.__class__.__name__})", file=str(path),
                        fix="open the app without ?ws= to start a new workspace") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DataError("the saved workspace has an unknown format", file=str(path),
                        fix="open the app without ?ws= to start a new workspace")
    return doc


_PART = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def _part_path(ws_id: str, name: str, root=None) -> Path:
    if not _PART.match(str(name)):
        raise ValueError(f"'{name}' is not a workspace part name (lower-case letters, digits, _)")
    return _dir(ws_id, root) / f"{name}.json"


def _create_empty(path: Path) -> None:
    """An empty ``workspace.json`` where there is none; never replaces one written meanwhile."""
    if path.is_file():
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    tmp.write_text(json.dumps({"format": FORMAT}), encoding="utf-8")
    try:
        os.link(tmp, path)           # atomic, and fails when the page saved the workspace first
    except FileExistsError:
        pass
    except OSError:                  # a file system without hard links
        if not path.exists():
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_part(ws_id: str, name: str, doc: dict, root=None) -> Path:
    """Write ``<name>.json`` beside ``workspace.json``: a page's own results that are not settings
    (e.g. the Lab's experiments). A workspace without ``workspace.json`` yet gets an empty one, so
    that the id in the URL is kept on reload."""
    path = _part_path(ws_id, name, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    _create_empty(path.parent / "workspace.json")
    _write_atomic(path, json.dumps(doc, default=str).encode("utf-8"))
    return path


def load_part(ws_id: str, name: str, root=None) -> dict | None:
    """``<name>.json`` of `save_part`, or None when the workspace has none (or it is unreadable)."""
    if not valid_id(ws_id):
        return None
    try:
        doc = json.loads(_part_path(ws_id, name, root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
