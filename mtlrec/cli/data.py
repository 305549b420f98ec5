"""``python -m mtlrec data check PATH [PATH ...] [--json]``: read, suggest roles, validate, summarise.

Labels that are a property of the item or of the user (`mtlrec.data.label_dependence`) are named: in
the text output as a note, with --json as ``"label_dependence": {label: "item" | "user"}``.
Exit status 0 when the data is usable, 2 on a DataError (the message says what, where and
how to fix it; with --json it is printed as {"error": "..."}). Bad data never gives a traceback.
"""
from __future__ import annotations

import sys

from mtlrec.cli.emit import dumps


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["check"], help="check: read the data and print a summary")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="a data file, several files (interactions, users, items) or a folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--sep", default=None, help="delimiter of text files (default: detected)")
    parser.add_argument("--missing-items", choices=["drop", "keep", "error"], default="drop",
                        help="interactions whose item is not in the items table (default: drop)")
    parser.add_argument("--min-rows", type=int, default=20, help="fewest rows that can be split (default 20)")


def _emit_error(msg: str, as_json: bool) -> int:
    if as_json:
        print(dumps({"error": msg}))
    else:
        print(f"Data error: {msg}", file=sys.stderr)
    return 2


def run(args) -> int:
    from mtlrec.errors import DataError
    try:
        from mtlrec.data.readers import load_data
        from mtlrec.data.suggest import suggest_spec
        from mtlrec.data.summary import format_summary, summarize
        from mtlrec.data.validate import validate

        raw = load_data(args.paths, sep=args.sep)
        spec = suggest_spec(raw)
        report = validate(raw, spec, missing_items=args.missing_items, min_rows=args.min_rows)
        summary = summarize(raw, spec, report)
        from mtlrec.data.label_dependence import label_dependence
        dependent = {lab: who for lab, who in label_dependence(raw, spec).items() if who}
    except DataError as e:
        return _emit_error(str(e), args.json)
    except (UnicodeError, OSError, MemoryError) as e:  # reader-level problems not already converted
        name = getattr(e, "filename", None) or ", ".join(map(str, args.paths))
        return _emit_error(str(DataError(f"the data cannot be read ({type(e).__name__}: {e})", file=name,
                                         fix="export the data as CSV in UTF-8")), args.json)
    if args.json:
        print(dumps({**summary, "label_dependence": dependent}))
    else:
        print(format_summary(summary))
        from mtlrec.data.label_dependence import dependence_message
        for lab, who in dependent.items():
            print(f"note: {dependence_message(None, who, label=lab)}")
    return 0
