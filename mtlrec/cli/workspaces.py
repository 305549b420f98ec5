"""``python -m mtlrec workspaces clean [--dry-run] [--json]``: expire the app's visitor workspaces.

Removes the workspaces (under ``--root``, default ``$MTLREC_WORKSPACES`` or ``.mtlrec_workspaces``)
unused for longer than ``--ttl-days`` (default ``$MTLREC_WORKSPACE_TTL_DAYS`` or 14), then the
longest idle ones while all of them take more than ``--max-gb`` (default ``$MTLREC_WORKSPACES_MAX_GB``
or 10; never one used within the last hour); see `mtlrec.app.workspace_clean`. Run folders are never
touched. The app's server does the same at start and every 10 minutes. Bad input: the message on
stderr, exit status 2.
"""
from __future__ import annotations

import json
import sys


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="workspaces_command", metavar="ACTION", required=True)
    c = sub.add_parser("clean", help="remove expired workspaces and the oldest beyond the disk cap")
    c.add_argument("--root", default=None, help="workspaces folder (default $MTLREC_WORKSPACES or .mtlrec_workspaces)")
    c.add_argument("--ttl-days", type=float, default=None,
                   help="days a workspace may stay unused (default $MTLREC_WORKSPACE_TTL_DAYS or 14; 0: for ever)")
    c.add_argument("--max-gb", type=float, default=None,
                   help="disk cap of all workspaces in GB (default $MTLREC_WORKSPACES_MAX_GB or 10; 0: none)")
    c.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    c.add_argument("--json", action="store_true", help="print JSON")


def run(args) -> int:
    from mtlrec.errors import DataError
    from mtlrec.app.workspace_clean import sweep
    for name in ("ttl_days", "max_gb"):
        v = getattr(args, name)
        if v is not None and not v >= 0:
            print(f"mtlrec workspaces clean: --{name.replace('_', '-')} is {v}; give a number of at least 0",
                  file=sys.stderr)
            return 2
    try:
        res = sweep(args.root, days=args.ttl_days, cap_gb=args.max_gb, dry_run=args.dry_run)
    except (DataError, OSError) as e:
        msg = str(e) if not isinstance(e, OSError) else f"{e.filename or ''}: {e.strerror or e}"
        print(f"mtlrec workspaces clean: {msg}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res))
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for r in res["removed"]:
        print(f"{verb} {r['id']}  {r['mb']:.1f} MB, unused for {r['idle_days']:.1f} days ({r['reason']})")
    freed = res["mb_before"] - res["mb_after"]
    print(f"{verb} {len(res['removed'])} workspace(s), {freed:.1f} MB; {res['kept']} kept, {res['mb_after']:.1f} MB "
          f"(time to live {res['ttl_days']:g} days, cap {res['max_gb']:g} GB)")
    if res["over_cap"]:
        print("still over the cap: the rest are in use or were used within the last hour", file=sys.stderr)
    return 0
