"""``python -m mtlrec recommend --run RUN_DIR --user USER_ID [--k 10] [--json] [--weights click=1,rating=0.5]``
``python -m mtlrec recommend --run RUN_DIR --features '{"age": 24, "occupation": "student"}' [--user USER_ID]``.
``python -m mtlrec recommend --run RUN_DIR --users users.csv [--k 10] --out recs.csv [--json]``: the lists of
every user of a file at once, through the item-side cache (`mtlrec.cli.score.run_users`, docs/scoring.md).

``--features`` (what if): the list of a *hypothetical* user -- ``--user`` with those features
changed, or without ``--user`` a new user known only by them (user cold start); values in raw
terms (numbers on their original scale, categories by name; `mtlrec.serve.whatif`). Nothing is saved.
With ``--json`` it prints ``{"hypothetical": true, "user", "new_user", "edits", "features",
"filled": {feature: {"value", "source": "given" | "default" | "data", "how"}}, "defaults",
"items": [{"item", "rank", "score", "support", "tasks", ...}], "warning", "warnings": [a number outside
the training range, also on stderr]}``; the text output names every value a new user was given by
default and how it was chosen. A value the model cannot score (far outside the training range, NaN,
true/false for a number), JSON nested or too large, or anything but an object: the message on
stderr (with ``--json`` also ``{"error": ...}`` on stdout), exit status 2.

With ``--json``: ``{"user": ..., "items": [{"item": ..., "score": ..., "support": training interactions
of the item, "tasks": {task: value}, "history_reason": {"item", "name", "value_text", "contribution",
"text"} | null (a run with a history input: the user's history item that raises the item's score most,
by ablation, `mtlrec.explain.history`), ...}],
"warning": null or one line (an interrupted, failed or still running run; also on stderr)}``.
A missing or damaged run folder: the message (file, fix) on stderr, exit status 2. JSON output is
strict: a missing number is ``null``, never ``NaN``.
"""
from __future__ import annotations

import sys

from mtlrec.cli.emit import dumps, parse_weights  # noqa: F401 - parse_weights: also read by explain


def add_arguments(p) -> None:
    p.add_argument("--run", required=True, help="run folder written by 'python -m mtlrec train'")
    p.add_argument("--user", default=None, help="user id as in the data (needed unless --features or --users is given)")
    p.add_argument("--users", default=None, metavar="CSV",
                   help="many users at once: a CSV with a user-id column (the run's name for it, or 'user'); needs --out")
    p.add_argument("--out", default=None, metavar="CSV", help="with --users: the CSV to write the lists to")
    p.add_argument("--threads", type=int, default=None, help="with --users: CPU threads for torch (default: all cores)")
    p.add_argument("--features", default=None,
                   help='what if: user features as JSON in raw terms, e.g. \'{"age": 24, "occupation": "student"}\'; '
                        "without --user: a new user known only by these features")
    p.add_argument("-k", "--k", type=int, default=10, help="number of items (default 10)")
    p.add_argument("--weights", default=None, help="fusion weights per task, e.g. click=1,rating=0.5")
    p.add_argument("--include-seen", action="store_true", help="do not leave out items the user interacted with")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _print_whatif(res: dict, warning, as_json: bool) -> int:
    for w in res.get("warnings") or []:
        print(f"mtlrec recommend: warning: {w}", file=sys.stderr)
    if as_json:
        print(dumps({**res, "warning": warning}))
        return 0
    who = "a new user" if res["new_user"] else f"user {res['user']}"
    feats = ", ".join(f"{k}={v}" for k, v in res["edits"].items())
    print(f"hypothetical (not saved): top {len(res['items'])} for {who} with {feats}:")
    left = [f"{k}={v['value']} ({v['how']})" for k, v in (res.get("filled") or {}).items() if v["source"] == "default"]
    if left:
        print("  left at their default (give them in --features to choose): " + "; ".join(left))
    _print_items(res["items"])
    return 0


def _print_items(items) -> None:
    for i, it in enumerate(items, 1):
        title = it.get("title")
        tasks = ", ".join(f"{k}={v:.3f}" for k, v in it["tasks"].items() if isinstance(v, float))
        print(f"{i:>3}. {it['item']}{' ' + str(title) if title is not None else ''}  score={it['score']:.3f}  {tasks}"
              f"  support={it.get('support', '?')}")
        reason = it.get("history_reason")
        if reason:
            print(f"       {reason['text']} ({reason['contribution']:+.3g} to the score)")


def run(args) -> int:
    if getattr(args, "users", None) is not None:
        from mtlrec.cli.score import run_users
        return run_users(args)
    from mtlrec.cli.emit import fail
    from mtlrec.errors import DataError, TrainingError
    from mtlrec.serve.whatif_input import parse_edits
    try:
        from mtlrec.serve.recommend import ranked_by, recommend
        from mtlrec.runs.load import load_run
        r = load_run(args.run)
        if r.warning:   # interrupted / failed / still running: say so, but serve the saved model
            print(f"mtlrec recommend: warning: {r.warning}", file=sys.stderr)
        edits = None if args.features is None else parse_edits(args.features, "--features")
        if edits is None and args.user is None:
            raise DataError("no user given", fix="give --user USER_ID, or --features '{...}' for a new user")
        if edits is not None:
            from mtlrec.serve.whatif import whatif_recommend
            res = whatif_recommend(r, args.user, edits, k=args.k, weights=parse_weights(args.weights),
                                   exclude_seen=not args.include_seen)
            return _print_whatif(res, r.warning, args.json)
        items = recommend(r, args.user, k=args.k, weights=parse_weights(args.weights), exclude_seen=not args.include_seen)
        from mtlrec.explain.history import with_history_reasons
        items = with_history_reasons(r, args.user, items, parse_weights(args.weights))
        ranked = ranked_by(r, parse_weights(args.weights))
    except (DataError, TrainingError) as e:
        return fail("recommend", e, args.json)
    if args.json:
        print(dumps({"user": str(args.user), "items": items, "ranked_by": ranked, "warning": r.warning}))
        return 0
    print(f"top {len(items)} for user {args.user} (support: the item's number of training interactions):")
    _print_items(items)
    print(ranked)
    return 0
