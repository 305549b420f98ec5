"""``python -m mtlrec report --run RUN_DIR --out report.html [--title T] [--k 5] [--no-explain] [--csv m.csv]
[--predictions p.csv]``.

Writes one self-contained HTML report of the run (opens offline; see `mtlrec.runs.report`), with
``--csv`` the metrics as a formula-safe CSV, and with ``--predictions`` the test predictions per row
(``row_id``: the row of the interactions file it came from; see `mtlrec.runs.report.predictions_csv`). A missing or damaged run folder: the message on
stderr, exit status 2.
"""
from __future__ import annotations

import sys
from pathlib import Path

from mtlrec.cli.emit import dumps


def add_arguments(p) -> None:
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--out", required=True, help="HTML file to write")
    p.add_argument("--title", default=None, help="title of the report (default: the run's name)")
    p.add_argument("--k", type=int, default=5, help="example recommendations (default 5)")
    p.add_argument("--no-explain", action="store_true", help="leave out the SHAP explanation")
    p.add_argument("--csv", default=None, help="also write the metrics to this CSV file")
    p.add_argument("--predictions", default=None, metavar="CSV",
                   help="also write the test predictions (one row per test row, with its row_id) to this CSV file")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    from mtlrec.diskio import write_bytes, write_text
    from mtlrec.errors import DataError, TrainingError
    try:
        from mtlrec.runs.report import metrics_csv, predictions_csv, report_html
        if args.k < 1:
            raise DataError(f"--k must be at least 1, not {args.k}")
        html = report_html(args.run, title=args.title, k=args.k, explain=not args.no_explain)
        write_text(args.out, html)          # a full disk: DiskFullError, no half-written file
        if args.csv:
            write_bytes(args.csv, metrics_csv(args.run))
        if args.predictions:
            write_bytes(args.predictions, predictions_csv(args.run, "test"))
    except (DataError, TrainingError) as e:
        print(f"mtlrec report: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"mtlrec report: cannot write {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
    size = Path(args.out).stat().st_size
    if args.json:
        print(dumps({"out": args.out, "bytes": size, "csv": args.csv, "predictions": args.predictions}))
    else:
        print(f"wrote {args.out} ({size / 1e6:.1f} MB, self-contained)")
    return 0
