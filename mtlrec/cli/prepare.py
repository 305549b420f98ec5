"""``python -m mtlrec prepare PATH [PATH ...] --out DIR [--config prep.json] [--roles roles.json] [--json]``

Reads the data, takes the suggested column roles (or those of ``--roles``, a DataSpec JSON),
cleans, splits and encodes it with the preparation options of ``--config`` (a PrepConfig JSON;
a RunConfig JSON with a ``data.prep`` section works too) and saves the prepared dataset folder.
``--split column --split-column NAME`` uses the train / valid / test values of a column; data
read as a predefined split (MovieLens ``u1.base u1.test``) uses it unless a split is named.
Exit status 2 on a DataError, with the message and no traceback.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from mtlrec.cli.emit import dumps


def add_arguments(parser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="data file(s) or a folder")
    parser.add_argument("--out", required=True, help="output folder of the prepared dataset")
    parser.add_argument("--config", default=None, help="preparation options (PrepConfig JSON)")
    parser.add_argument("--roles", default=None, help="column roles (DataSpec JSON); default: suggested")
    parser.add_argument("--split", default=None, choices=["random", "temporal", "cold_item", "column"],
                        help="override the split of the config (column: a predefined split, see --split-column)")
    parser.add_argument("--split-column", default=None, metavar="NAME",
                        help="the interactions column holding train / valid / test (implies --split column)")
    parser.add_argument("--json", action="store_true", help="print the preparation report as JSON")


def _load_json(path: str, what: str) -> dict:
    from mtlrec.errors import DataError
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"the {what} file cannot be read as JSON ({e})", file=path,
                        fix=f"give a JSON file with the {what}") from None


def run(args) -> int:
    from mtlrec.errors import DataError, DiskFullError
    try:
        from mtlrec.data.readers import load_data
        from mtlrec.data.roles import DataSpec
        from mtlrec.prep import PrepConfig, prepare

        raw = load_data(args.paths)
        if args.roles:
            spec = DataSpec.from_dict(_load_json(args.roles, "column roles"))
        else:
            from mtlrec.data.suggest import suggest_spec
            spec = suggest_spec(raw)
        cfg = _load_json(args.config, "preparation options") if args.config else {}
        if isinstance(cfg.get("data"), dict):          # a whole run config
            cfg = cfg["data"].get("prep", {}) or {}
        if args.split:
            cfg["split"] = args.split
        if args.split_column:
            if args.split not in (None, "column"):
                raise DataError(f"--split-column goes with the split 'column', not '{args.split}'",
                                column=args.split_column, fix="leave out --split or write --split column")
            cfg["split"], cfg["split_column"] = "column", args.split_column
        from mtlrec.prep.splits import with_predefined_split
        cfg = with_predefined_split(cfg, raw)
        try:
            config = PrepConfig.from_dict(cfg)
        except (TypeError, ValueError) as e:
            raise DataError(str(e), file=args.config, fix="correct the preparation options") from None
        ds = prepare(raw, spec, config, release_input=True)   # raw is not used again: less memory
        ds.save(args.out)
    except (DataError, DiskFullError) as e:        # a full disk: the folder named, no temporary file left
        if args.json:
            print(dumps({"error": str(e)}))
        else:
            print(f"{'Data error' if isinstance(e, DataError) else 'mtlrec prepare'}: {e}", file=sys.stderr)
        return 2
    rep = ds.meta["report"]
    if args.json:
        print(dumps({"out": str(args.out), "report": rep}))
        return 0
    print(f"prepared dataset written to {args.out}")
    split = rep["split"] + (f" '{rep['predefined_split']['column']}'" if rep.get("predefined_split") else "")
    print(f"  rows: " + ", ".join(f"{s} {n}" for s, n in rep["rows"].items()) + f"  (split: {split})")
    for note in rep.get("notes", []):
        print(f"  note: {note}")
    print(f"  users {rep['users']}, items {rep['items']}, fields: "
          + ", ".join(f"{f.name} ({f.kind})" for f in ds.fields))
    print("  labels: " + ", ".join(f"{lab.name} ({lab.task_type})" for lab in ds.labels))
    if rep["duplicates"]["rows_removed"]:
        print(f"  duplicates: {rep['duplicates']['rows_removed']} rows removed ({rep['duplicates']['policy']})")
    for name, k in rep["dropped_missing_label"].items():
        print(f"  dropped {k} rows with a missing '{name}'")
    for reason, d in rep.get("dropped_rows", {}).items():
        more = " ..." if d["count"] > len(d["row_ids"]) else ""
        print(f"  dropped ({reason.replace('_', ' ')}): {d['count']} rows, row_id "
              + ", ".join(map(str, d["row_ids"])) + more)
    for col, k in rep["imputed"].items():
        print(f"  filled {k} missing values of '{col}'")
    if rep["negatives"]["sampled"]:
        print(f"  sampled negatives ({rep['negatives'].get('method', 'uniform')}; training ones drawn anew each "
              "epoch): " + ", ".join(f"{s} {n}" for s, n in rep["negatives"]["sampled"].items()))
        from mtlrec.prep.negatives import shortfall_text
        if shortfall_text(rep["negatives"]):
            print(f"  warning: {shortfall_text(rep['negatives'])}")
    for w in rep["warnings"]:
        print(f"  warning: {w}")
    return 0
