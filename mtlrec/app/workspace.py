"""A visitor's workspace on disk, so that a reload, a bookmark or a server restart brings it back.

One folder per workspace under the workspaces root (env ``MTLREC_WORKSPACES``, default
``.mtlrec_workspaces``): ``workspace.json`` (which data, the column roles, preprocessing options,
tasks, model, training and text settings, the run folders and the selections), ``files/``
(the uploaded files as they came, so the data can be read again; the sample data is not copied)
and ``prepared/<key>/`` (the prepared dataset, so a reload finds it without preparing again).

Every save gives ``workspace.json`` the next ``version``. A save that names the version its copy
was loaded as (``expect``) is refused with `WorkspaceConflict` when another writer (a second tab on
the same workspace) saved in between: nothing is overwritten without the visitor's say.

A workspace id is 32 random hex digits (128 bits): only someone who has the link can open it, and
a new browser tab without an id gets a new, empty workspace. Ids of any other shape are refused,
so an id can never name a path outside the root.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import threading
import time
from pathlib import Path

from mtlrec.diskio import on_full_disk, write_bytes
from mtlrec.errors import DataError

FORMAT = "mtlrec-workspace/1"
_ID = re.compile(r"^[0-9a-f]{32}$")
_KEY = re.compile(r"^[0-9a-f]{8,64}$")
_SAFE_FILE = re.compile(r"[^A-Za-z0-9._-]+")
_SAVE_LOCK = threading.Lock()       # where fcntl is missing: one writer at a time in this process


class WorkspaceConflict(DataError):
    """The workspace on disk is newer than the copy being saved (another tab saved it meanwhile)."""

    def __init__(self, version: int, saved_at: float | None):
        self.version, self.saved_at = int(version), saved_at
        super().__init__(f"this workspace was saved elsewhere (version {self.version}) since this copy was "
                         "loaded", fix="load the newer version, or keep this one (replacing it or as a new "
                         "workspace)")


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
    write_bytes(path, data)             # no temporary file left; a full disk: DiskFullError naming the folder


KEEP_UPLOADS = 4        # upload folders kept per workspace (the newest; another tab may still use one)


def save_files(ws_id: str, files: list[tuple[str, bytes]], root=None) -> dict:
    """Keep the uploaded files of a workspace in a folder of their own, named by their content (two
    tabs' uploads never mix); returns what the document keeps: ``{"dir", "names"}`` (stored names).
    The newest `KEEP_UPLOADS` uploads are kept, older ones removed."""
    import hashlib
    h = hashlib.sha256()
    for name, data in files:
        h.update(str(name).encode("utf-8", "replace") + b"\0" + str(len(data)).encode() + b"\0")
        h.update(bytes(data))
    digest = h.hexdigest()[:32]
    base = _dir(ws_id, root) / "files"
    d = base / digest
    names = []
    for k, (name, _) in enumerate(files):
        safe = _SAFE_FILE.sub("_", Path(str(name)).name).lstrip(".") or f"file{k}"
        names.append(f"{k}_{safe}" if safe in names else safe)
    if not (d / "names.json").is_file():
        tmp = base / f".{digest}.{os.getpid()}.{secrets.token_hex(4)}"
        with on_full_disk(base, outer=True):         # a full disk: said, and the partial folder removed
            tmp.mkdir(parents=True)
            try:
                for safe, (_, data) in zip(names, files):
                    (tmp / safe).write_bytes(bytes(data))
                (tmp / "names.json").write_text(json.dumps(dict(zip(names, [str(n) for n, _ in files]))),
                                                encoding="utf-8")
                shutil.rmtree(d, ignore_errors=True)
                os.replace(tmp, d)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    os.utime(d)                                         # the newest upload
    uploads = sorted((p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for old in uploads[KEEP_UPLOADS:]:
        if old != d:
            shutil.rmtree(old, ignore_errors=True)
    return {"dir": digest, "names": names}


def _read_folder(d: Path) -> list[tuple[str, bytes]]:
    try:
        names = json.loads((d / "names.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        names = {}
    return [(names.get(p.name, p.name), p.read_bytes()) for p in sorted(d.iterdir())
            if p.is_file() and p.name != "names.json" and not p.name.startswith(".")]


def load_files(ws_id: str, root=None, *, ref=None) -> list[tuple[str, bytes]]:
    """The uploaded files of a workspace as ``(original name, bytes)``: those of ``ref`` (what
    `save_files` returned), else of the newest upload (or of a workspace saved before uploads had
    folders of their own)."""
    base = _dir(ws_id, root) / "files"
    if not base.is_dir():
        return []
    if isinstance(ref, dict):
        digest = str(ref.get("dir", ""))
        if not _ID.match(digest) or not (base / digest).is_dir():
            return []
        return _read_folder(base / digest)
    uploads = sorted((p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    return _read_folder(uploads[0]) if uploads and ref is None else _read_folder(base)


@contextlib.contextmanager
def _locked(d: Path):
    """Hold the workspace's lock file: one compare-and-save at a time, across threads and processes."""
    try:
        import fcntl
    except ImportError:                 # pragma: no cover - not POSIX
        with _SAVE_LOCK:
            yield
        return
    with open(d / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _saved(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def saved_version(ws_id: str, root=None) -> tuple[int, float | None]:
    """``(version, saved_at)`` of the workspace on disk; ``(0, None)`` when it was never saved."""
    doc = _saved(_dir(ws_id, root) / "workspace.json") or {}
    return int(doc.get("version") or 0), doc.get("saved_at")


def save(ws_id: str, doc: dict, root=None, *, expect: int | None = None) -> int:
    """Write ``workspace.json`` atomically (``doc``: plain JSON values) as the next version; returns it.

    ``expect``: the version this copy was loaded as or last saved. When the file holds another one,
    someone else saved in between: nothing is written and `WorkspaceConflict` names the newer version.
    ``None`` overwrites whatever is there (the visitor chose to keep this copy)."""
    d = _dir(ws_id, root)
    d.mkdir(parents=True, exist_ok=True)
    path = d / "workspace.json"
    with _locked(d):
        current = _saved(path)
        version = int((current or {}).get("version") or 0)
        if expect is not None and current is not None and version != int(expect):
            raise WorkspaceConflict(version, current.get("saved_at"))
        body = {"format": FORMAT, **doc, "version": version + 1, "saved_at": time.time()}
        _write_atomic(path, json.dumps(body, indent=1, default=str).encode("utf-8"))
    return version + 1


def copy(ws_id: str, root=None) -> str:
    """A new workspace holding the files and prepared datasets of ``ws_id`` (its document is the
    caller's to save); returns the new id. Large files are hard-linked where the disk allows."""
    src, new_id = _dir(ws_id, root), new_workspace_id()
    dst = _dir(new_id, root)
    dst.mkdir(parents=True)

    def link_or_copy(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)
    for part in ("files", "prepared"):
        if (src / part).is_dir():
            shutil.copytree(src / part, dst / part, copy_function=link_or_copy,
                            ignore=shutil.ignore_patterns(".*"))
    return new_id


# ---------------------------------------------------------------------------- prepared datasets
def _prepared_dir(ws_id: str, key: str, root=None) -> Path:
    if not isinstance(key, str) or not _KEY.match(key):
        raise DataError(f"'{str(key)[:40]}' is not a prepared-dataset key")
    return _dir(ws_id, root) / "prepared" / key


def save_dataset(ws_id: str, dataset, key: str, root=None) -> Path:
    """Keep the prepared dataset of a workspace under ``key`` (`mtlrec.app.workflow.dataset_key`), replacing
    the ones kept under other keys. Written to a temporary folder and renamed: a folder under its
    key is always complete."""
    target = _prepared_dir(ws_id, key, root)
    base = target.parent
    if not (target / "dataset.json").is_file():
        base.mkdir(parents=True, exist_ok=True)
        tmp = base / f".{key}.{os.getpid()}.{secrets.token_hex(4)}"
        shutil.rmtree(target, ignore_errors=True)          # an incomplete folder (a crash while renaming)
        try:
            with on_full_disk(target, outer=True):
                dataset.save(tmp)
            try:
                os.replace(tmp, target)
            except OSError:                                 # another writer renamed the same key first
                if not (target / "dataset.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    for old in base.iterdir():
        if old.name != key and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)
    return target


def load_dataset(ws_id: str, key: str, root=None):
    """The prepared dataset kept under ``key`` (memory-mapped), or None when there is none (or it is
    damaged: the caller prepares again)."""
    from mtlrec.dataset import PreparedDataset
    try:
        d = _prepared_dir(ws_id, key, root)
    except DataError:
        return None
    if not (d / "dataset.json").is_file():
        return None
    try:
        return PreparedDataset.load(d)
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
    try:
        with on_full_disk(path.parent, path.name):
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
