"""``python -m mtlrec recommend --run RUN_DIR --user USER_ID [--k 10] [--json] [--weights click=1,rating=0.5]``.

With ``--json``: ``{"user": ..., "items": [{"item": ..., "score": ..., "support": training interactions
of the item, "tasks": {task: value}, ...}],
"warning": null or one line (an interrupted, failed or still running run; also on stderr)}``.
A missing or damaged run folder: the message (file, fix) on stderr, exit status 2.
"""
from __future__ import annotations

import json
import sys


def add_arguments(p) -> None:
    p.add_argument("--run", required=True, help="run folder written by 'python -m mtlrec train'")
    p.add_argument("--user", required=True, help="user id as in the data")
    p.add_argument("--k", type=int, default=10, help="number of items (default 10)")
    p.add_argument("--weights", default=None, help="fusion weights per task, e.g. click=1,rating=0.5")
    p.add_argument("--include-seen", action="store_true", help="do not leave out items the user interacted with")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _weights(s: str | None):
    from mtlrec.errors import DataError
    if not s:
        return None
    out = {}
    for part in s.split(","):
        if "=" not in part:
            raise DataError(f"bad --weights entry '{part}'", fix="write task=weight pairs, e.g. click=1,rating=0.5")
        k, v = part.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise DataError(f"bad weight '{v}' for task '{k}'", fix="weights are numbers, e.g. 0.5") from None
    return out


def run(args) -> int:
    from mtlrec.errors import DataError, TrainingError
    try:
        from mtlrec.recommend import recommend
        from mtlrec.runs import load_run
        r = load_run(args.run)
        if r.warning:   # interrupted / failed / still running: say so, but serve the saved model
            print(f"mtlrec recommend: warning: {r.warning}", file=sys.stderr)
        items = recommend(r, args.user, k=args.k, weights=_weights(args.weights), exclude_seen=not args.include_seen)
    except (DataError, TrainingError) as e:
        print(f"mtlrec recommend: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"user": str(args.user), "items": items, "warning": r.warning}, default=str))
        return 0
    print(f"top {len(items)} for user {args.user} (support: the item's number of training interactions):")
    for i, it in enumerate(items, 1):
        title = it.get("title")
        tasks = ", ".join(f"{k}={v:.3f}" for k, v in it["tasks"].items() if isinstance(v, float))
        print(f"{i:>3}. {it['item']}{' ' + str(title) if title is not None else ''}  score={it['score']:.3f}  {tasks}"
              f"  support={it.get('support', '?')}")
    return 0
