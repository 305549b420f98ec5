"""The run library: every run folder under the runs root, listed, renamed, tagged, cancelled and deleted.

The runs root is ``$MTLREC_RUNS_DIR`` (the app sets it) or ``runs``. This module sees every
folder (the command line is the operator's tool); the app shows a visitor only the runs
`mtlrec.runs.access` allows. Nothing here imports torch: listing reads the small JSON files of each folder
(a cheap structural check of ``model.pt``; `mtlrec.runs.load.load_run` is the full one).

* `list_run_rows(root)`: one dict per run folder, newest first; a folder with a missing or
  damaged file is listed with ``problems`` (never an exception); folders that are not runs
  (no config.json / model.json / status.json / model.pt) and hidden ones are skipped.
* `set_meta(run, root, name=..., tags=...)`: the display name and tags, kept in ``meta.json``
  inside the run folder (the folder itself never moves); `delete_run(run, root)`.
  ``run`` is a folder name or path; it must lie inside ``root`` (`resolve_run`).
* `read_obj`, `finite`, `direction`: the small readers every run view shares (`mtlrec.runs.compare`
  compares runs, `mtlrec.runs.report` writes one run's report).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

from mtlrec.errors import DataError

RUN_MARKERS = ("config.json", "model.json", "status.json", "model.pt")
META_FILE = "meta.json"
MAX_NAME = 80           # characters of a display name
MAX_TAG = 30            # characters of one tag
MAX_TAGS = 12
HYPER_KEYS = ("epochs", "batch_size", "lr", "l2")


def runs_root() -> Path:
    """The runs root: ``$MTLREC_RUNS_DIR`` or ``runs`` (relative to the working folder)."""
    return Path(os.environ.get("MTLREC_RUNS_DIR") or "runs")


# ---- small readers ---------------------------------------------------------------------------
def read_obj(p: Path, problems: list | None = None, *, required: bool = False, what: str = "") -> dict | None:
    """The JSON object in ``p``; None (and a line in ``problems``) when missing or damaged."""
    if not p.is_file():
        if required and problems is not None:
            problems.append(f"{p.name} is missing{what}")
        return None
    try:
        v = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        if problems is not None:
            problems.append(f"{p.name} is damaged (not valid JSON)")
        return None
    if not isinstance(v, dict):
        if problems is not None:
            problems.append(f"{p.name} is damaged (not a JSON object)")
        return None
    return v


def model_file_problem(p: Path) -> str | None:
    """A cheap check of a model.pt without unpickling anything: a file ``torch.save`` writes is a
    zip archive with a ``data.pkl``; a cut-short or foreign file is not. None when it looks fine."""
    if not p.is_file():
        return "model.pt is missing"
    try:
        with zipfile.ZipFile(p) as z:
            if not any(n.endswith("data.pkl") for n in z.namelist()):
                return "model.pt is damaged (not a PyTorch weights file)"
    except (OSError, zipfile.BadZipFile, ValueError):
        return "model.pt is damaged (cut short or not a PyTorch weights file)"
    return None


def looks_like_run(d: Path) -> bool:
    """A visible folder holding at least one of the files training writes."""
    return d.is_dir() and not d.name.startswith(".") and any((d / m).exists() for m in RUN_MARKERS)


def clean_text(s: Any, limit: int) -> str:
    """``s`` as one line of plain text: control and format characters (newlines, bidi overrides,
    NUL) dropped, spaces collapsed, at most ``limit`` characters. Markup stays text: whoever shows
    it escapes it (the app's md_text, the report's html.escape)."""
    s = unicodedata.normalize("NFC", "" if s is None else str(s))
    s = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in s)
    return " ".join(s.split())[:limit].strip()


def clean_tags(tags) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    out: list[str] = []
    for t in tags:
        c = clean_text(t, MAX_TAG)
        if c and c not in out:
            out.append(c)
    return out[:MAX_TAGS]


def read_meta(run_dir) -> dict:
    """``{"name": str or None, "tags": [...]}`` from meta.json (cleaned again: the file is data)."""
    doc = read_obj(Path(run_dir) / META_FILE) or {}
    name = clean_text(doc.get("name"), MAX_NAME) or None
    return {**{k: v for k, v in doc.items() if k not in ("name", "tags")}, "name": name,
            "tags": clean_tags(doc.get("tags") if isinstance(doc.get("tags"), (list, str)) else None)}


def task_metrics(info: dict | None, config: dict | None) -> list[tuple[str, str, str]]:
    """[(task, type, headline metric)] from model.json (resolved) or config.json (defaults filled)."""
    from mtlrec.tasks import DEFAULT_METRIC
    out = []
    for src in (info, config):
        tasks = (src or {}).get("tasks")
        if not isinstance(tasks, list):
            continue
        for t in tasks:
            if isinstance(t, dict) and isinstance(t.get("name"), str):
                ttype = t.get("type") if t.get("type") in DEFAULT_METRIC else "binary"
                out.append((t["name"], ttype, str(t.get("metric") or DEFAULT_METRIC[ttype])))
        if out:
            return out
    return out


def finite(v) -> float | None:
    """``v`` as a float when it is a finite number (not a bool), else None."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def direction(metric: str) -> bool | None:
    """Whether a higher value of ``metric`` is better; None for a name that is not a known metric."""
    from mtlrec.metrics import higher_is_better
    try:
        return higher_is_better(metric)
    except ValueError:
        return None


def _data_source(config: dict | None, ds_doc: dict | None) -> str:
    """The run's data as the Runs list shows it: its files (or where it was prepared) and its split,
    e.g. "u.data, u.item, u.user [ml-100k] · random 80/10/10" or "u1.base, u1.test [ml-100k] ·
    predefined: u1.base/u1.test"."""
    split = split_text(config, ds_doc)
    return _data_files(config, ds_doc) + (f" · {split}" if split else "")


def _data_files(config: dict | None, ds_doc: dict | None) -> str:
    data = (config or {}).get("data") or {}
    paths = data.get("paths") if isinstance(data, dict) else None
    splits = data.get("splits") if isinstance(data, dict) else None
    if isinstance(splits, dict) and splits:       # one file per split (+ side tables in paths)
        paths = [str(p) for p in splits.values()] + (paths if isinstance(paths, list) else [])
    if isinstance(paths, list) and paths:
        names = [Path(str(p)).name or str(p) for p in paths]
        s = ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")
        fmt = data.get("format")
        return s + (f" [{fmt}]" if fmt else "")
    rep = ((ds_doc or {}).get("meta") or {}).get("report") or {}
    if isinstance(rep, dict) and rep.get("rows"):
        return "prepared in the app"
    return "prepared dataset"


def split_text(config: dict | None, ds_doc: dict | None) -> str:
    """How the run's rows were split, in a few words: "random 80/10/10", "temporal (per user)",
    "cold items 20 % (random 80/10/10 of the rest)", "predefined: u1.base/u1.test" (split files),
    "predefined: column fold"; "" when unknown. From the preparation the dataset records (else the
    configuration's ``data.prep``)."""
    meta = (ds_doc or {}).get("meta") if isinstance((ds_doc or {}).get("meta"), dict) else {}
    prep = meta.get("prep") if isinstance(meta.get("prep"), dict) else None
    if prep is None:
        data = (config or {}).get("data") if isinstance((config or {}).get("data"), dict) else {}
        prep = data.get("prep") if isinstance(data.get("prep"), dict) else None
    if prep is None:
        return ""
    kind = prep.get("split", "random")
    valid, test = finite(prep.get("valid_frac", 0.1)), finite(prep.get("test_frac", 0.1))
    shares = (f"{100 - round(100 * valid) - round(100 * test)}/{round(100 * valid)}/{round(100 * test)}"
              if valid is not None and test is not None else "")
    if kind == "random":
        return f"random {shares}".strip()
    if kind == "temporal":
        return "temporal (per user: last → test, second last → valid)"
    if kind == "cold_item":
        cold = finite(prep.get("cold_item_frac", 0.2))
        return f"cold items {round(100 * cold) if cold is not None else '?'} %"
    if kind == "column":
        files = [clean_text(s.get("file"), 60) for s in meta.get("row_sources") or []
                 if isinstance(s, dict) and s.get("split") and s.get("file")]
        if len(files) > 1:
            return "predefined: " + "/".join(files)
        return f"predefined: column {clean_text(prep.get('split_column'), 40) or 'split'}"
    return clean_text(kind, 40)


def run_row(d: Path) -> dict:
    """One listing row of run folder ``d`` (see `list_run_rows`); never raises on damaged files."""
    from mtlrec.runs.load import run_status
    d = Path(d)
    problems: list[str] = []
    config = read_obj(d / "config.json", problems, required=True, what="; the configuration is unknown")
    info = read_obj(d / "model.json", problems)
    status_doc = read_obj(d / "status.json", problems) or {}
    metrics = read_obj(d / "metrics.json")
    state = run_status(d)
    st = state["status"]
    mp = model_file_problem(d / "model.pt")
    if mp and not (mp.endswith("missing") and st in ("failed", "cancelled", "running", "interrupted")):
        problems.append(mp)
    elif mp:
        problems.append(f"no model was saved (the run is {st} before its first epoch ended)"
                        if st == "running" else f"no model was saved (the run {st} before its first epoch ended)")
    if metrics is None:
        if (d / "metrics.json").exists():
            problems.append("metrics.json is damaged (not valid JSON or not an object); metrics unknown")
        elif st == "finished":
            problems.append("metrics.json is missing; metrics unknown")
        metrics = {}
    ds_doc = None
    if (d / "dataset" / "dataset.json").is_file():
        try:
            ds_doc = json.loads((d / "dataset" / "dataset.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            problems.append("dataset/dataset.json is damaged")
    elif config is not None:
        problems.append("dataset/ is missing")
    meta = read_meta(d)
    tm = task_metrics(info, config)
    test = metrics.get("test") if isinstance(metrics.get("test"), dict) else {}
    headline = {}
    for name, _type, m in tm:
        v = finite(((test.get(name) or {}) if isinstance(test.get(name), dict) else {}).get(m))
        headline[name] = {"metric": m, "value": v, "higher_is_better": direction(m)}
    gain = {}
    for name, g in (metrics.get("gain") or {}).items() if isinstance(metrics.get("gain"), dict) else []:
        if isinstance(g, dict) and finite(g.get("gain")) is not None:
            gain[str(name)] = {"metric": g.get("metric"), "gain": finite(g.get("gain"))}
    train = (config or {}).get("train") if isinstance((config or {}).get("train"), dict) else {}
    model_cfg = (config or {}).get("model") if isinstance((config or {}).get("model"), dict) else {}
    hparams = {k: train.get(k) for k in HYPER_KEYS if k in train}
    hp = (info or {}).get("hparams") if isinstance((info or {}).get("hparams"), dict) else {}
    hparams.update({k: v for k, v in {**hp, **{k: v for k, v in model_cfg.items() if k != "arch"}}.items()
                    if isinstance(v, (int, float, str, list)) and not isinstance(v, bool)})
    started = finite(status_doc.get("started_at"))
    created = started if started is not None else d.stat().st_mtime
    end = finite(status_doc.get("ended_at")) or (finite(status_doc.get("heartbeat")) if st == "running" else None)
    duration = (end - started) if (started is not None and end is not None and end >= started) else None
    cfg_name = clean_text((config or {}).get("name"), MAX_NAME) or None
    return {
        "run": d.name, "path": str(d), "name": meta["name"] or cfg_name or d.name, "tags": meta["tags"],
        "created": created, "created_text": time.strftime("%Y-%m-%d %H:%M", time.localtime(created)),
        "status": st, "usable": bool(state["usable"]) and not mp, "error": state.get("error"),
        "reason": state.get("reason"),
        "data": _data_source(config, ds_doc),
        "arch": str((info or {}).get("arch") or model_cfg.get("arch") or metrics.get("arch") or "?"),
        "tasks": [t[0] for t in tm], "weighting": train.get("weighting"), "hparams": hparams,
        "metrics": headline, "gain": gain, "best_epoch": metrics.get("best_epoch"),
        "duration_s": duration, "device": _device_text(status_doc.get("device") or metrics.get("device"), metrics),
        "problems": problems,
    }


def _device_text(device, metrics: dict):
    """The device, with the process count of a data-parallel run ("cpu × 2 processes (gloo)")."""
    dist = metrics.get("distributed") if isinstance(metrics, dict) else None
    n = dist.get("world_size") if isinstance(dist, dict) else None
    if device and isinstance(n, int) and n > 1:
        return f"{device} × {n} processes ({clean_text(dist.get('backend'), 10) or '?'})"
    return device


def list_run_rows(root=None, keep=None) -> list[dict]:
    """One row per run folder under ``root`` (default `runs_root`), newest first (``keep``: a
    predicate on the folder; those it refuses are not read -- `mtlrec.runs.access.visible_run_rows`)::

        {run (folder name), path, name (display name), tags, created (epoch s), created_text,
         status (finished|failed|cancelled|interrupted|running|queued|unknown), usable, error, reason,
         data, arch, tasks, weighting, hparams, metrics {task: {metric, value, higher_is_better}},
         gain {task: {metric, gain}}, best_epoch, duration_s, device, problems [one line each]}
    """
    r = Path(root) if root is not None else runs_root()
    if not r.is_dir():
        return []
    rows = []
    for d in r.iterdir():
        try:
            if d.is_symlink() or not looks_like_run(d) or (keep is not None and not keep(d)):
                continue
            rows.append(run_row(d))
        except OSError as e:           # a folder that vanished or cannot be read while we list
            rows.append({"run": d.name, "path": str(d), "name": d.name, "tags": [], "created": 0.0,
                         "created_text": "", "status": "unknown", "usable": False, "error": None, "reason": None,
                         "data": "", "arch": "?", "tasks": [], "weighting": None, "hparams": {}, "metrics": {},
                         "gain": {}, "best_epoch": None, "duration_s": None, "device": None,
                         "problems": [f"the folder cannot be read ({e.__class__.__name__})"]})
    return sorted(rows, key=lambda x: (x["created"], x["run"]), reverse=True)


# ---- manage ----------------------------------------------------------------------------------
def resolve_run(run, root=None) -> Path:
    """The run folder ``run`` (a folder name or a path) resolved, after checking that it lies
    directly inside ``root`` and looks like a run folder. DataError otherwise (e.g. ``../../x``)."""
    from mtlrec.errors import TrainingError
    from mtlrec.runs.folder import confine
    r = Path(root) if root is not None else runs_root()
    p = Path(str(run))
    if not p.is_absolute() and len(p.parts) == 1:      # a folder name: inside the root
        p = r / p
    try:
        rp = confine(p, r)
    except TrainingError:
        raise DataError(f"'{run}' is not a run folder inside the runs folder", file=str(r),
                        fix="name a run folder listed by 'python -m mtlrec runs list'") from None
    if rp.parent != r.resolve() or not looks_like_run(rp):
        raise DataError(f"'{run}' is not a run folder inside the runs folder", file=str(r),
                        fix="name a run folder listed by 'python -m mtlrec runs list'")
    return rp


def set_meta(run, root=None, *, name: str | None = None, tags=None) -> dict:
    """Set the display name and/or tags of a run (meta.json in its folder; the folder never
    moves). Text is cleaned (`clean_text`: one line, ≤ 80 characters; ≤ 12 tags of ≤ 30).
    ``name=""`` clears the display name. Returns the new meta."""
    from mtlrec.runs.folder import write_json_atomic
    d = resolve_run(run, root)
    doc = read_obj(d / META_FILE) or {}
    if name is not None:
        doc["name"] = clean_text(name, MAX_NAME) or None
    if tags is not None:
        doc["tags"] = clean_tags(tags)
    write_json_atomic(d / META_FILE, doc)
    return read_meta(d)


def cancel_problem(run_dir) -> str | None:
    """Why `cancel_run` cannot stop this run from here, and what to do instead (one sentence);
    None when it can. A run trained by a process of this machine that stops on SIGTERM (the
    app's worker processes, ``python -m mtlrec train``, a torchrun rank 0: status.json's
    ``cancel`` is ``sigterm``) can be cancelled by anyone; a run trained inside another app
    server's own process (thread mode), or on another machine, only there."""
    import socket

    from mtlrec.runs.load import owner_alive, run_status
    d = Path(run_dir)
    st = run_status(d)["status"]
    if st not in ("running", "queued"):
        return f"this run is not training (it is {st})"
    doc = read_obj(d / "status.json") or {}
    host = doc.get("hostname")
    if host and host != socket.gethostname():
        return f"this run trains on another machine ({clean_text(host, 60)}): cancel it there"
    if owner_alive(doc)[0] is not True or not isinstance(doc.get("pid"), int):
        return ("the process that trains this run cannot be told apart (an old run folder): wait until it is "
                "reported interrupted")
    if doc.get("cancel") != "sigterm" and doc["pid"] == os.getpid():
        return ("this run trains inside this server's own process, for another session: cancel it on that "
                "session's Train page")
    if doc.get("cancel") != "sigterm":
        return (f"this run trains inside another app server's own process (pid {doc['pid']}): cancel it on that "
                "app's Train page, or stop that server (the run then reads interrupted and can be resumed)")
    return None


def cancel_run(run, root=None) -> str:
    """Cancel a run that trains in another process of this machine -- another app server's worker,
    a command line, a torchrun launch -- as the Cancel button does: SIGTERM to the process that
    status.json names (its pid and start time checked), which stops at its next batch and
    records "cancelled" (the run keeps its checkpoint and can be resumed). Returns a sentence;
    DataError with the reason and what to do when it cannot be done from here (`cancel_problem`)."""
    import signal
    d = resolve_run(run, root)
    why = cancel_problem(d)
    if why is not None:
        raise DataError(why, file=d.name)
    pid = int((read_obj(d / "status.json") or {})["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "the run had already ended"
    except PermissionError:
        raise DataError(f"this server may not signal the process that trains the run (pid {pid})", file=d.name,
                        fix="cancel it as the user who started it, or wait until it ends") from None
    return "asked to stop: the run ends after its current batch (cancelled, resumable)"


def delete_run(run, root=None) -> Path:
    """Delete a run folder inside ``root`` (refused for a run still training). The folder is first
    renamed to a hidden name, so a listing never shows it half deleted. Returns the path removed."""
    from mtlrec.runs.load import run_status
    d = resolve_run(run, root)
    st = run_status(d)["status"]
    if st in ("running", "queued"):
        why = cancel_problem(d)
        raise DataError("this run is still training", file=d.name,
                        fix=("cancel it first (Cancel on the Runs page, or python -m mtlrec runs cancel RUN), "
                             "then delete it" if why is None else why))
    trash = d.with_name(f".deleting-{d.name}-{os.getpid()}-{int(time.time() * 1000)}")
    os.replace(d, trash)
    shutil.rmtree(trash, ignore_errors=True)
    return d
