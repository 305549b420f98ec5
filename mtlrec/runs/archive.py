"""A run folder as a zip, for people without the app: `export_zip` writes one, `import_zip` reads one back.

* `export_zip(run_dir)` -> bytes: the run folder's known files only (`zip_members`: `ZIP_FILES`
  and the dataset's arrays: ``dataset/arrays/a<n>.npy``, or ``dataset/arrays.npz`` for runs of
  older versions); refused for a run still training. `export_stamp` says what such a zip would
  weigh and when it changes (the Runs page zips a big run on a click).
* `import_zip(data, root)` -> Path: a new run folder under ``root``. The import refuses anything
  else (unknown names, path traversal, links, too large, damaged JSON, a dataset of a newer format,
  weights that do not load with ``weights_only=True``) with a DataError and leaves nothing behind.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
import zipfile
from pathlib import Path

from mtlrec.diskio import is_disk_full
from mtlrec.errors import DataError, DiskFullError

ZIP_FILES = ("config.json", "status.json", "history.json", "metrics.json", "model.json", "model.pt",
             "meta.json", "dataset/dataset.json", "dataset/arrays.npz", "dataset/items.parquet",
             "dataset/users.parquet", "predictions_test.npz")
# besides ZIP_FILES: the arrays of a dataset of format 3, one .npy each (dataset/arrays/a0.npy, ...)
ZIP_ARRAY = re.compile(r"dataset/arrays/a[0-9]{1,9}\.npy")
ZIP_REQUIRED = ("config.json", "model.json", "model.pt", "dataset/dataset.json")
# and the dataset's arrays: dataset/arrays.npz (formats 1 and 2) or dataset/arrays/*.npy (format 3,
# each one its dataset.json names; checked when the unpacked folder is loaded)
MAX_ZIP_BYTES = 512 * 2**20          # the zip itself
MAX_UNPACKED_BYTES = 2 * 2**30       # all members unpacked together


# ---- export ----------------------------------------------------------------------------------
def zip_members(run_dir) -> list[str]:
    """The files of the run folder that `export_zip` writes: the known ones (`ZIP_FILES`, the
    dataset's array files) that exist as plain files."""
    from mtlrec.dataset import array_files
    d = Path(run_dir)
    arrays = tuple(a for a in (f"dataset/{n}" for n in array_files(d / "dataset")) if ZIP_ARRAY.fullmatch(a))
    return [n for n in ZIP_FILES + arrays if (d / n).is_file() and not (d / n).is_symlink()]


def export_stamp(run_dir) -> tuple[int, tuple]:
    """(bytes, stamp) of the zip `export_zip` would write: the total size of its files, and what
    changes when any of them changes (names, sizes, modification times)."""
    d = Path(run_dir)
    stats = [(n, (d / n).stat()) for n in zip_members(d)]
    return sum(st.st_size for _n, st in stats), tuple((n, st.st_size, st.st_mtime_ns) for n, st in stats)


def export_zip(run_dir) -> bytes:
    """The run folder's known files (`zip_members`) as a zip; refused for a run still training."""
    from mtlrec.dataset import array_files
    from mtlrec.runs.load import RunFolderError, run_status
    d = Path(run_dir)
    arrays = [f"dataset/{n}" for n in array_files(d / "dataset")]
    missing = [n for n in ZIP_REQUIRED + tuple(arrays) if not (d / n).is_file()]
    if missing:
        raise RunFolderError(f"{missing[0]} is missing, so this run cannot be exported", file=str(d / missing[0]),
                             fix="export a run that saved a model")
    if run_status(d)["status"] in ("running", "queued"):
        raise DataError("this run is still training", file=str(d), fix="wait until it ends or cancel it, then export")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n in zip_members(d):
            z.write(d / n, n)
    return buf.getvalue()


# ---- import: the checks ----------------------------------------------------------------------
def _zip_error(what: str, fix: str = "export the run again with mtlrec (Runs page or 'python -m mtlrec runs export')",
               file: str = "the uploaded zip") -> DataError:
    return DataError(what, file=file, fix=fix)


def _too_large(source: str) -> DataError:
    return _zip_error(f"the zip unpacks to more than {MAX_UNPACKED_BYTES // 2**30} GiB", file=source,
                      fix="export a smaller run")


def _check_zip_version(z: zipfile.ZipFile, source: str) -> None:
    """A zip whose dataset is in a format this mtlrec cannot read (written by a newer version) is
    refused naming that format, before its member names or files are judged by this version's layout."""
    from mtlrec.dataset import DatasetFileError, format_version
    try:
        info = z.getinfo("dataset/dataset.json")
    except KeyError:
        return                                   # said later: the zip lacks it
    if info.file_size > 64 * 2**20:
        raise _zip_error("dataset/dataset.json in the zip is implausibly large", file=source)
    try:
        doc = json.loads(z.read(info).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, OSError, zipfile.BadZipFile, EOFError):
        return                                   # said later: not valid JSON
    if not isinstance(doc, dict):
        return                                   # said later: not a JSON object
    try:
        format_version(doc, "dataset")
    except DatasetFileError as e:
        raise _zip_error(f"the run's {e.what}", file=source, fix="import it into the mtlrec version that exported "
                         "it, or export it again with this one") from None


def _open_zip(data, source: str) -> tuple[zipfile.ZipFile, list]:
    """(the zip, its members) of an upload of at most `MAX_ZIP_BYTES`, its dataset's format checked."""
    if not isinstance(data, (bytes, bytearray)):
        raise _zip_error("the upload is not a file", file=source)
    if len(data) > MAX_ZIP_BYTES:
        raise _zip_error(f"the zip is {len(data) / 2**20:.0f} MiB, more than the {MAX_ZIP_BYTES // 2**20} MiB "
                         "a run may have", file=source, fix="export a smaller run")
    try:
        z = zipfile.ZipFile(io.BytesIO(bytes(data)))
        infos = z.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        raise _zip_error("not a zip file (or a damaged one)", file=source) from None
    _check_zip_version(z, source)
    return z, infos


def _check_members(infos: list, source: str) -> set[str]:
    """The member names, once each checked against the layout of a run folder: only `ZIP_FILES` and
    `ZIP_ARRAY` names, no duplicates, encrypted members or links, every required file, and not more
    than `MAX_UNPACKED_BYTES` as the zip declares it."""
    from mtlrec.runs.library import clean_text
    seen: set[str] = set()
    for info in infos:
        n = info.filename
        if info.is_dir() and n in ("dataset/", "dataset/arrays/"):
            continue
        if n not in ZIP_FILES and not ZIP_ARRAY.fullmatch(n):
            raise _zip_error(f"the zip holds '{clean_text(n, 120)}', which is not a file of a run folder "
                             f"(expected only: {', '.join(ZIP_FILES)}, dataset/arrays/a<number>.npy)",
                             file=source)
        if n in seen:
            raise _zip_error(f"the zip holds '{n}' twice", file=source)
        seen.add(n)
        if info.flag_bits & 0x1:
            raise _zip_error(f"'{n}' in the zip is encrypted", file=source)
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise _zip_error(f"'{n}' in the zip is a symbolic link", file=source)
    missing = [n for n in ZIP_REQUIRED if n not in seen]
    if "dataset/arrays.npz" not in seen and not any(ZIP_ARRAY.fullmatch(n) for n in seen):
        missing.append("dataset/arrays.npz (or dataset/arrays/*.npy)")
    if missing:
        raise _zip_error(f"the zip lacks {', '.join(missing)}, which a run needs", file=source)
    if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
        raise _too_large(source)
    return seen


def _unpack(z: zipfile.ZipFile, infos: list, tmp: Path, source: str) -> None:
    """Write the members into ``tmp``, each confined to it, counting the bytes as they come (a zip
    may declare smaller sizes than it unpacks to)."""
    from mtlrec.runs.folder import confine
    (tmp / "dataset").mkdir(parents=True)
    total = 0
    for info in infos:
        if info.is_dir():
            continue
        dest = confine(tmp / info.filename, tmp)
        dest.parent.mkdir(exist_ok=True)            # dataset/arrays/ for a dataset of format 3
        with z.open(info) as src, open(dest, "wb") as out:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
                if total > MAX_UNPACKED_BYTES:
                    raise _too_large(source)
                out.write(chunk)


def _check_unpacked(tmp: Path, seen: set[str], source: str) -> None:
    """The unpacked folder judged as a run folder: every JSON file an object, a copy of a training
    run shown as interrupted, the whole folder loaded (`mtlrec.runs.load.load_run`: weights with
    ``weights_only=True``, arrays without pickle) and the stored test predictions readable."""
    from mtlrec.runs.folder import write_json_atomic
    from mtlrec.runs.load import load_run, read_predictions
    for n in seen:
        if n.endswith(".json"):
            try:
                v = json.loads((tmp / n).read_text(encoding="utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise _zip_error(f"{n} in the zip is not valid JSON", file=source) from None
            if not isinstance(v, dict):
                raise _zip_error(f"{n} in the zip is not a JSON object", file=source)
    status = json.loads((tmp / "status.json").read_text()) if "status.json" in seen else None
    if isinstance(status, dict) and status.get("status") in ("running", "queued"):
        # a copy is never trained by the process that wrote it: shown as interrupted
        for key in ("pid", "hostname", "process_start", "boot_id"):
            status.pop(key, None)
        status["heartbeat"] = 0.0
        write_json_atomic(tmp / "status.json", status)
    try:
        load_run(tmp)
    except DataError as e:
        what = getattr(e, "what", str(e))
        member = Path(getattr(e, "file", "") or "").relative_to(tmp).as_posix() \
            if getattr(e, "file", None) and str(e.file).startswith(str(tmp)) else None
        raise _zip_error(f"{member + ': ' if member else ''}{what}".replace(str(tmp), "<run>"),
                         file=source, fix="export the run again from a working run folder") from None
    if "predictions_test.npz" in seen and read_predictions(tmp, "test") is None:   # optional; never unpickled
        raise _zip_error("predictions_test.npz in the zip is damaged (not the stored test predictions)",
                         file=source)


def _place(tmp: Path, seen: set[str], root: Path, name: str | None, owner: str | None) -> Path:
    """Name and own the checked copy, then move it into a run folder of its own under ``root``."""
    from mtlrec.runs.folder import reserve_folder, safe_run_name, write_json_atomic
    from mtlrec.runs.library import clean_text
    meta = json.loads((tmp / "meta.json").read_text()) if "meta.json" in seen else {}
    cfg = json.loads((tmp / "config.json").read_text())
    label = clean_text(name, 80) or clean_text(meta.get("name"), 80) or clean_text(cfg.get("name"), 80) or "run"
    meta.update({"imported_at": time.time(), "name": meta.get("name") or (clean_text(name, 80) or None)})
    write_json_atomic(tmp / "meta.json", meta)
    if owner:                               # owned before it appears in the runs root
        from mtlrec.runs.access import record_owner
        record_owner(tmp, owner)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    # a folder of its own, reserved atomically (empty), then replaced by the unpacked copy
    final = reserve_folder(root, f"{stamp}-imported-{safe_run_name(label) or 'run'}")
    try:
        os.replace(tmp, final)
    except BaseException:
        final.rmdir()
        raise
    return final


def import_zip(data: bytes, root=None, *, name: str | None = None, source: str = "the uploaded zip",
               owner: str | None = None) -> Path:
    """Unpack a zip written by `export_zip` into a new run folder under ``root`` and return it;
    ``owner``: the workspace id of the app visitor importing it, who then owns the copy
    (`mtlrec.runs.access`; a zip never carries an owner). None: a local run (the command line).

    Checked before anything is accepted: the size (≤ 512 MiB zipped, ≤ 2 GiB unpacked, counted
    while reading), member names (only the `ZIP_FILES` and `ZIP_ARRAY` names, each once; no
    folders, links, absolute paths or '..'), JSON files, and the whole folder through `mtlrec.runs.load.load_run`
    (weights with ``torch.load(weights_only=True)``, arrays without pickle). Any problem: a
    DataError naming the member, and nothing is left in ``root``."""
    from mtlrec.runs.library import runs_root
    z, infos = _open_zip(data, source)
    try:
        seen = _check_members(infos, source)
        r = Path(root) if root is not None else runs_root()
        r.mkdir(parents=True, exist_ok=True)
        tmp = r / f".import-{os.getpid()}-{time.time_ns()}"
        try:
            _unpack(z, infos, tmp, source)
            _check_unpacked(tmp, seen, source)
            return _place(tmp, seen, r, name, owner)
        except BaseException as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if is_disk_full(e):                     # said of the runs folder, not of the half-unpacked copy
                raise DiskFullError(str(r), source and Path(str(source)).name) from e
            raise
    finally:
        z.close()
