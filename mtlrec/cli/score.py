"""``python -m mtlrec score --run RUN --pairs pairs.csv --out scores.csv [--weights click=1,rating=0.5]
[--chunk-rows 100000] [--json]`` and ``python -m mtlrec recommend --run RUN --users users.csv --k 10 --out recs.csv``
(`run_users`, called by ``recommend``).

``score``: every (user, item) row of the pairs file scored by every task, with the fused score ``recommend``
ranks by, in the file's order (`mtlrec.serve.batch.score_file`); the user column is the run's own user-id column
name or ``user``, the item column likewise (``item``); context features by their column names. An unknown user
or item is scored as a cold start (``user_known`` / ``item_known`` false). Progress on stderr; with ``--json``
one summary object on stdout: ``{"out", "rows", "unknown_user_rows", "unknown_item_rows", "seconds",
"rows_per_s", "columns", "context_columns", "ranked_by", "warning"}``.

``recommend --users``: the top-K list of every user of the users file (a column named like the run's user ids
or ``user``), one row per (user, rank) in the file's order (`mtlrec.serve.batch.recommend_users`); ``--json``:
``{"out", "users", "unknown_users", "rows", "k", "seconds", "users_per_s", "ranked_by", "warning"}``.

A bad file (missing column, missing id, a context value that is no number, a row with too many fields): the
message -- file, row, column, fix -- on stderr (with ``--json`` also ``{"error": ...}`` on stdout), exit status
2, and no output file.
"""
from __future__ import annotations

import sys
import time


def add_arguments(p) -> None:
    p.add_argument("--run", required=True, help="run folder written by 'python -m mtlrec train'")
    p.add_argument("--pairs", required=True, help="CSV of (user, item) rows: columns named like the run's ids, "
                                                  "or 'user' and 'item'; context features by their names")
    p.add_argument("--out", required=True, help="CSV to write (written whole or not at all)")
    p.add_argument("--weights", default=None, help="fusion weights per task, e.g. click=1,rating=0.5")
    p.add_argument("--chunk-rows", type=int, default=None, help="rows read and scored at a time (default 100000)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    add_threads(p)
    p.add_argument("--json", action="store_true", help="print one JSON summary object")


def add_threads(p) -> None:
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's, all cores; 1 on a busy shared machine)")


def set_threads(n) -> None:
    from mtlrec.errors import DataError
    if n is None:
        return
    if int(n) < 1:
        raise DataError(f"--threads must be at least 1, not {n}")
    import torch
    torch.set_num_threads(int(n))


class Progress:
    """Progress lines on stderr, at most one a second (and the last one)."""

    def __init__(self, command: str, unit: str):
        self.command, self.unit, self.t0 = command, unit, time.perf_counter()
        self.last, self.shown = self.t0, None

    def __call__(self, done: int, share: float | None = None, final: bool = False) -> None:
        now = time.perf_counter()
        if (not final and now - self.last < 1.0) or (final and done == self.shown):
            return
        self.last, self.shown = now, done
        rate = done / max(now - self.t0, 1e-9)
        part = f"{share:.0%} of the file, " if share is not None and share < 1 else ""
        print(f"mtlrec {self.command}: {part}{done:,} {self.unit} ({rate:,.0f} {self.unit}/s)",
              file=sys.stderr, flush=True)


def run(args) -> int:
    from mtlrec.cli.emit import attempt, dumps, parse_weights

    def work():
        from mtlrec.serve.batch import CHUNK_ROWS, score_file
        from mtlrec.device import pick_device
        from mtlrec.runs.load import load_run as load
        from mtlrec.serve.recommend import ranked_by
        set_threads(args.threads)
        r = load(args.run, device=pick_device(args.device))
        if r.warning:
            print(f"mtlrec score: warning: {r.warning}", file=sys.stderr)
        weights = parse_weights(args.weights)
        progress = Progress("score", "rows")
        s = score_file(r, args.pairs, args.out, weights=weights, chunk_rows=_positive(args.chunk_rows, CHUNK_ROWS),
                       on_progress=progress)
        progress(s.rows, final=True)
        return {"out": str(args.out), **s.as_dict(), "ranked_by": ranked_by(r, weights), "warning": r.warning}
    doc, code = attempt("score", args.json, work)
    if code is not None:
        return code
    if args.json:
        print(dumps(doc))
    else:
        print(f"wrote {doc['rows']:,} rows to {doc['out']} ({doc['unknown_user_rows']:,} with an unknown user, "
              f"{doc['unknown_item_rows']:,} with an unknown item, scored as a cold start)")
    return 0


def _positive(v, default: int) -> int:
    from mtlrec.errors import DataError
    if v is None:
        return default
    if int(v) < 1:
        raise DataError(f"the chunk size must be at least 1, not {v}")
    return int(v)


def run_users(args) -> int:
    """``recommend --users FILE --out CSV``: top-K lists of every user of FILE."""
    from mtlrec.cli.emit import attempt, dumps, load_run
    from mtlrec.cli.emit import parse_weights

    def work():
        from mtlrec.errors import DataError
        from mtlrec.serve.recommend import ranked_by
        if not args.out:
            raise DataError("--users needs --out FILE.csv for the lists")
        set_threads(args.threads)
        r = load_run("recommend", args.run)
        weights = parse_weights(args.weights)
        progress = Progress("recommend", "users")
        s = write_lists(r, args.users, args.out, k=args.k, weights=weights, exclude_seen=not args.include_seen,
                        on_progress=progress)
        progress(s["users"], final=True)
        return {"out": str(args.out), **s, "k": args.k, "ranked_by": ranked_by(r, weights), "warning": r.warning}
    doc, code = attempt("recommend", args.json, work)
    if code is not None:
        return code
    if args.json:
        print(dumps(doc))
    else:
        print(f"wrote the top {args.k} of {doc['users']:,} users ({doc['unknown_users']:,} unknown, given the "
              f"cold-start list) to {doc['out']}")
    return 0


def write_lists(run, users_path, out, *, k: int, weights, exclude_seen: bool, on_progress=None) -> dict:
    """Write the lists of `mtlrec.serve.batch.recommend_users` for the users of ``users_path`` to ``out``."""
    from pathlib import Path

    from mtlrec.diskio import write_atomic
    from mtlrec.errors import DataError
    from mtlrec.serve.batch import header_line, list_rows, read_user_ids, recommend_users, write_rows
    if not Path(out).parent.is_dir():
        raise DataError("the output's folder does not exist", file=str(out), fix="create the folder first")
    users = read_user_ids(run, users_path)
    t0, stats = time.perf_counter(), {"users": 0, "unknown_users": 0, "rows": 0}

    def fill(fh):
        fh.write(header_line(list_rows(run, []).columns))
        for block in _blocks(recommend_users(run, users, k, weights=weights, exclude_seen=exclude_seen), 1024):
            df = list_rows(run, block)
            write_rows(fh, {c: df[c].to_numpy() for c in df.columns})
            stats["users"] += len(block)
            stats["unknown_users"] += sum(1 for _, known, _ in block if not known)
            stats["rows"] += len(df)
            if on_progress is not None:
                on_progress(stats["users"], stats["users"] / max(1, len(users)))
    write_atomic(out, fill)
    secs = time.perf_counter() - t0
    return {**stats, "seconds": round(secs, 3), "users_per_s": round(stats["users"] / secs, 1) if secs > 0 else None}


def _blocks(it, n: int):
    block = []
    for x in it:
        block.append(x)
        if len(block) >= n:
            yield block
            block = []
    if block:
        yield block
