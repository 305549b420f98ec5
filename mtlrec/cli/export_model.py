"""``python -m mtlrec export --run RUN_DIR --format torchscript|onnx --out FILE [--no-check] [--json]``.

Writes the run's model as a self-contained file a service can load without mtlrec (TorchScript for
torch, ONNX for onnxruntime and other runtimes) and its sidecar ``FILE.json``: the inputs (names,
dtypes, shapes, what each means, the vocabularies and scalers that encode raw values), the outputs
(one tensor of logits per task, and how each becomes a probability or a value). Then, unless
``--no-check``, it scores the run's test split with the written file and says how far its logits are
from mtlrec's own (``max_abs_diff``). See docs/export.md.

With ``--json``: ``{"model", "sidecar", "format", "bytes", "inputs": [names], "outputs": [names],
"check": {"split", "rows", "max_abs_diff"} | null, "warning"}``. An unknown or damaged run folder, an
unsupported format, an output that cannot be written or a missing optional package: the message on
stderr (with ``--json`` also ``{"error": ...}`` on stdout), exit status 2.
"""
from __future__ import annotations

import sys

from mtlrec.cli.emit import attempt, dumps, load_run


def add_arguments(p) -> None:
    p.add_argument("--run", required=True, help="run folder written by 'python -m mtlrec train'")
    p.add_argument("--format", required=True, help="torchscript or onnx")
    p.add_argument("--out", required=True, metavar="FILE", help="the model file to write (its sidecar: FILE.json)")
    p.add_argument("--no-check", action="store_true", help="do not score the test split with the written file")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _check(check_export, r, path):
    """The check's figures, or why it was skipped (onnxruntime not installed: the file is written)."""
    from mtlrec.errors import DataError
    try:
        return check_export(r, path)
    except DataError as e:
        print(f"mtlrec export: warning: not checked: {e}", file=sys.stderr)
        return {"skipped": str(e)}


def run(args) -> int:
    def work():
        from mtlrec.serve.export_model import FORMATS, check_export, export_model
        from mtlrec.errors import DataError
        if args.format not in FORMATS:     # before loading the run: say it at once
            raise DataError(f"unsupported export format '{args.format}'", fix=f"use one of: {', '.join(FORMATS)}")
        r = load_run("export", args.run)
        res = export_model(r, args.format, args.out)
        res["check"] = None if args.no_check else _check(check_export, r, res["model"])
        res["warning"] = r.warning
        return res

    doc, code = attempt("export", args.json, work)
    if code is not None:
        return code
    if args.json:
        print(dumps(doc))
        return 0
    print(f"wrote {doc['model']} ({doc['format']}, {doc['bytes']:,} bytes) and {doc['sidecar']}")
    print(f"  inputs: {', '.join(doc['inputs'])}")
    print(f"  outputs (logits): {', '.join(doc['outputs'])}")
    c = doc["check"]
    if c and "skipped" not in c:
        print(f"  checked on {c['rows']} {c['split']} rows: largest difference from mtlrec's logits "
              f"{c['max_abs_diff']:.3g}")
    return 0
