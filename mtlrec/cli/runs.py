"""``python -m mtlrec runs list|compare|rename|tag|delete|export|import ...``: the run library.

* ``runs list [--root R] [--json]``: every run folder under the runs root (default
  ``$MTLREC_RUNS_DIR`` or ``runs``), newest first, with status, tasks, headline test metrics,
  multi-task gain and problems of damaged folders.
* ``runs compare A B [C ...] [--reference A] [--json]``: configuration differences, per-task test
  metrics (best marked by the metric's direction) and Δm against the reference (percent).
* ``runs rename RUN NAME``, ``runs tag RUN TAG,TAG``, ``runs delete RUN --yes`` (RUN: a folder
  name inside the root), ``runs export RUN --out run.zip``, ``runs import run.zip``.
* ``runs cancel RUN``: stop a run that trains in another process of this machine (an app's
  worker, another command line) at its next batch, as the app's Cancel button does.
* ``runs export-mlflow [RUN ...] --tracking-uri URI [--experiment NAME] [--no-explain]``: log runs to
  MLflow (params, per-epoch metrics, dynamics, test metrics, tags, report and model as artifacts);
  ``runs export-tensorboard [RUN ...] --logdir DIR``: the same scalars as TensorBoard event files.
  No RUN: every run under the root. Optional extras (``pip install -r requirements-extras.txt``);
  see docs/tracking.md and `mtlrec.tracking`.
Bad input: the message on stderr, exit status 2.
"""
from __future__ import annotations

import sys
from pathlib import Path

from mtlrec.cli.emit import dumps


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="list the run folders, newest first")
    cmp_ = sub.add_parser("compare", help="compare two or more runs")
    cmp_.add_argument("runs", nargs="+", help="run folders (paths, or folder names inside the root)")
    cmp_.add_argument("--reference", default=None, help="the run Δm is measured against (default: the first)")
    rn = sub.add_parser("rename", help="set a run's display name (the folder does not move)")
    rn.add_argument("run")
    rn.add_argument("name")
    tg = sub.add_parser("tag", help="set a run's tags (comma-separated; '' clears them)")
    tg.add_argument("run")
    tg.add_argument("tags")
    rm = sub.add_parser("delete", help="delete a run folder")
    rm.add_argument("run")
    rm.add_argument("--yes", action="store_true", help="really delete")
    ex = sub.add_parser("export", help="write a run folder as a zip")
    ex.add_argument("run")
    ex.add_argument("--out", required=True)
    im = sub.add_parser("import", help="add a run from a zip written by 'runs export'")
    im.add_argument("zip")
    im.add_argument("--name", default=None, help="display name of the imported run")
    cn = sub.add_parser("cancel", help="stop a run that trains in another process of this machine")
    cn.add_argument("run")
    ml, tb = _tracking_parsers(sub)
    for q in (ls, cmp_, rn, tg, rm, ex, im, cn, ml, tb):
        q.add_argument("--root", default=None, help="runs folder (default $MTLREC_RUNS_DIR or runs)")
        q.add_argument("--json", action="store_true", help="print JSON")


def _tracking_parsers(sub):
    import os
    ml = sub.add_parser("export-mlflow", help="log runs to MLflow (optional extra: mlflow-skinny)")
    ml.add_argument("runs", nargs="*", metavar="RUN", help="run folders (default: every run under the root)")
    ml.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                    help="file:/path/to/mlruns (a folder) or http://host:5000 (default $MLFLOW_TRACKING_URI)")
    ml.add_argument("--experiment", default="mtlrec", help="MLflow experiment (default mtlrec; created if missing)")
    ml.add_argument("--no-explain", action="store_true", help="leave the SHAP explanation out of the report artifact")
    tb = sub.add_parser("export-tensorboard", help="write runs as TensorBoard event files (optional extra: tensorboard)")
    tb.add_argument("runs", nargs="*", metavar="RUN", help="run folders (default: every run under the root)")
    tb.add_argument("--logdir", required=True, help="folder of the event files (one sub-folder per run)")
    return ml, tb


def _fmt(v, nd=4) -> str:
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def _path(run: str, root) -> Path:
    p = Path(run)
    if len(p.parts) == 1 and (root / p).is_dir():     # a folder name inside the root first
        return root / p
    if p.is_dir():                                    # read-only actions also take any run folder path
        return p
    from mtlrec.runs.library import resolve_run
    return resolve_run(run, root)


def run(args) -> int:
    from mtlrec.errors import DataError, TrainingError
    from mtlrec.runs import library as runlib
    root = Path(args.root) if args.root else runlib.runs_root()
    try:
        return _ACTIONS[args.runs_command](args, root, runlib)
    except (DataError, TrainingError, OSError) as e:     # a full disk (DiskFullError) says so itself
        msg = str(e) if not isinstance(e, OSError) or isinstance(e, TrainingError) \
            else f"{e.filename or ''}: {e.strerror or e}"
        print(f"mtlrec runs {args.runs_command}: {msg}", file=sys.stderr)
        return 2


def _list(args, root, runlib) -> int:
    rows = runlib.list_run_rows(root)
    if args.json:
        print(dumps({"root": str(root), "runs": rows}))
        return 0
    if not rows:
        print(f"no runs in {root}")
        return 0
    for r in rows:
        mets = ", ".join(f"{t} {m['metric']}={_fmt(m['value'])}" for t, m in r["metrics"].items())
        gain = ", ".join(f"{t} {_fmt(g['gain'], 4)}" for t, g in r["gain"].items())
        tags = f" [{', '.join(r['tags'])}]" if r["tags"] else ""
        print(f"{r['created_text']}  {r['status']:<11} {r['run']}  \"{r['name']}\"{tags}")
        print(f"    {r['arch']} on {r['data']}; {mets or 'no test metrics'}"
              f"{'; gain ' + gain if gain else ''}; device {r['device'] or '?'}, "
              f"{_fmt(r['duration_s'], 1)} s")
        for p in r["problems"]:
            print(f"    problem: {p}")
    return 0


def _compare(args, root, runlib) -> int:
    paths = [_path(x, root) for x in args.runs]
    ref = args.reference
    if ref is not None and not Path(ref).is_dir() and ref not in [p.name for p in paths]:
        ref = str(_path(ref, root))
    from mtlrec.runs.compare import compare_runs
    c = compare_runs(paths, reference=ref)
    if args.json:
        print(dumps(c))
        return 0
    labels = [r["label"] for r in c["runs"]]
    print("configuration differences:" if c["config_diff"] else "configuration: no differences")
    for d in c["config_diff"]:
        print(f"  {d['key']}: " + "; ".join(f"{lab}={dumps(d['values'][lab])}" for lab in labels))
    print("test metrics (* = best):")
    for m in c["metrics"]:
        arrow = {True: "higher is better", False: "lower is better"}.get(m["higher_is_better"], "?")
        vals = "; ".join(f"{lab}={_fmt(m['values'][lab])}{'*' if lab in m['best'] else ''}" for lab in labels)
        print(f"  {m['task']} {m['metric']} ({arrow}): {vals}")
    print(f"Δm vs {c['reference']} (%): " + "; ".join(
        f"{lab}={_fmt(c['delta_m'][lab], 2)}" for lab in labels))
    return 0


def _rename(args, root, runlib) -> int:
    meta = runlib.set_meta(args.run, root, name=args.name)
    print(dumps(meta) if args.json else f"renamed: {meta['name']}")
    return 0


def _tag(args, root, runlib) -> int:
    meta = runlib.set_meta(args.run, root, tags=args.tags)
    print(dumps(meta) if args.json else f"tags: {', '.join(meta['tags']) or '(none)'}")
    return 0


def _delete(args, root, runlib) -> int:
    if not args.yes:
        d = runlib.resolve_run(args.run, root)
        print(f"would delete {d}; add --yes to delete it", file=sys.stderr)
        return 2
    d = runlib.delete_run(args.run, root)
    print(dumps({"deleted": str(d)}) if args.json else f"deleted {d}")
    return 0


def _export(args, root, runlib) -> int:
    from mtlrec.runs.archive import export_zip
    data = export_zip(_path(args.run, root))
    from mtlrec.diskio import write_bytes
    write_bytes(args.out, data)             # nothing half-written is left when the disk is full
    print(dumps({"out": args.out, "bytes": len(data)}) if args.json else f"wrote {args.out} ({len(data)} bytes)")
    return 0


def _import(args, root, runlib) -> int:
    from mtlrec.runs.archive import import_zip
    p = Path(args.zip)
    if not p.is_file():
        from mtlrec.errors import DataError
        raise DataError("file not found", file=str(p), fix="give a zip written by 'runs export'")
    d = import_zip(p.read_bytes(), root, name=args.name, source=str(p))
    print(dumps({"run_dir": str(d)}) if args.json else f"imported as {d}")
    return 0


def _cancel(args, root, runlib) -> int:
    said = runlib.cancel_run(args.run, root)
    print(dumps({"run": args.run, "cancel": said}) if args.json else said)
    return 0


def _tracked_runs(args, root) -> list[Path]:
    if args.runs:
        return [_path(x, root) for x in args.runs]
    from mtlrec.runs.library import looks_like_run
    runs = sorted(p for p in root.iterdir() if p.is_dir() and looks_like_run(p)) if root.is_dir() else []
    if not runs:
        from mtlrec.errors import DataError
        raise DataError("no run folders to export", file=str(root), fix="give RUN folders or --root")
    return runs


def _export_each(args, root, export, line) -> tuple[list, int]:
    """``export(run_dir)`` for every run; a run that cannot be exported is said and the others go on (exit 2)."""
    from mtlrec.errors import DataError
    done, failed = [], 0
    for d in _tracked_runs(args, root):
        try:
            r = export(d)
        except (DataError, OSError) as e:
            failed += 1
            print(f"mtlrec runs {args.runs_command}: {d.name}: {e}", file=sys.stderr)
            continue
        done.append(r)
        if not args.json:
            print(line(r))
    return done, (2 if failed else 0)


def _export_mlflow(args, root, runlib) -> int:
    from mtlrec.tracking import require
    from mtlrec.tracking.mlflow_log import client_for, export_mlflow
    require("mlflow")
    client_for(args.tracking_uri)           # a missing URI said once, before any run
    done, code = _export_each(
        args, root, lambda d: export_mlflow(d, args.tracking_uri, args.experiment, explain=not args.no_explain),
        lambda r: (f"{r['run']}: MLflow run {r['mlflow_run_id']} ({'new' if r['created'] else 'updated'}): "
                   f"{r['params']} params and {r['metric_points']} metric points logged, "
                   f"{len(r['artifacts'])} artifacts, {r['status']}"))
    if args.json:
        print(dumps({"tracking_uri": args.tracking_uri, "experiment": args.experiment, "runs": done}))
    elif done:
        print(f"see them with: mlflow ui --backend-store-uri {args.tracking_uri}   (experiment '{args.experiment}')")
    return code


def _export_tensorboard(args, root, runlib) -> int:
    from mtlrec.tracking import require
    from mtlrec.tracking.tensorboard_log import export_tensorboard
    require("tensorboard")
    done, code = _export_each(
        args, root, lambda d: export_tensorboard(d, args.logdir),
        lambda r: f"{r['run']}: {r['scalars']} scalars in {r['logdir']}"
                  + (f" (replacing {r['replaced']} older event file(s))" if r["replaced"] else ""))
    if args.json:
        print(dumps({"logdir": args.logdir, "runs": done}))
    elif done:
        print(f"see them with: tensorboard --logdir {args.logdir}")
    return code


_ACTIONS = {"list": _list, "compare": _compare, "rename": _rename, "tag": _tag, "delete": _delete,
            "export": _export, "import": _import, "cancel": _cancel, "export-mlflow": _export_mlflow,
            "export-tensorboard": _export_tensorboard}
