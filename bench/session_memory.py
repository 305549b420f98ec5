"""Server memory and workspace disk use over browser sessions that each upload a large table (issue 27).

    .venv/bin/python bench/session_memory.py [--sessions 12] [--rows 1000000] [--app-dir DIR] [--json]

Serves the app as ``make run`` does (worker-process training), in headless Chromium opens one browser
context per session: Data → Upload files → a generated ``interactions.csv`` of ``--rows`` rows
(`mtlrec.data.sample.synthetic_interactions`: user, item, timestamp, click, rating, device; ~32 MB at 1M
rows) → waits until the Data page has drawn its statistics → closes the context. The server's
resident set (VmRSS of the streamlit process, /proc/<pid>/status) is read before the first session
(after one warm-up session that opens Data without data), after each closed session, and after
the closed sessions have ended: Streamlit keeps a disconnected session for
``server.disconnectedSessionTTL`` seconds (``--session-ttl``, default 10 s here; 120 s by default
in a served app) in case the tab reconnects; the script then waits ``--settle`` seconds more and
reports the lowest RSS seen in the last 5 s (the app frees ended sessions in a periodic sweep,
``MTLREC_SESSION_SWEEP_S``). The disk use of the workspaces folder is reported at the end.

``--app-dir`` serves another checkout (e.g. the base commit, for the "before" figure).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(ROOT))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


def du_mb(path: Path) -> float:
    if not path.exists():
        return 0.0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def write_table(folder: Path, rows: int) -> Path:
    from mtlrec.data.sample import synthetic_interactions
    inter, _, _ = synthetic_interactions(rows, n_users=max(1000, rows // 20), n_items=max(500, rows // 50), seed=0)
    path = folder / "interactions.csv"
    inter.to_csv(path, index=False)
    return path


def one_session(browser, url: str, csv: Path | None, rows: int) -> None:
    import appdriver as drv
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(300_000)
    try:
        page = ctx.new_page()
        if csv is None:
            drv.open_app(page, url)
            drv.go(page, "Data")
            return
        uploader = drv.open_uploader(page, url)
        uploader.set_input_files(str(csv))
        page.locator("h3", has_text="Preview — interactions.csv").wait_for()
        page.locator('[data-testid="stMetricValue"]', has_text=f"{rows:,}").first.wait_for()
        drv.wait_idle(page)
        drv.assert_no_exception(page, "after the upload")
    finally:
        ctx.close()


def settle(pid: int, seconds: float) -> float:
    """The lowest RSS seen over the last 5 s of ``seconds`` (sampled every 0.5 s)."""
    end, tail = time.time() + seconds, []
    while time.time() < end:
        tail.append((time.time(), rss_mb(pid)))
        time.sleep(0.5)
    return min(v for t, v in tail if t >= end - 5.5)


def expire_later(app_dir: Path, root: Path) -> float | None:
    """The workspaces' disk use after the app's sweep as it would run 15 days later (default time to
    live: 14 days); None for a checkout without workspace expiry (the "before" figure)."""
    if not (Path(app_dir) / "mtlrec" / "workspace_clean.py").exists():
        return None
    from mtlrec.app.workspace_clean import DEFAULT_TTL_DAYS, sweep
    sweep(root, days=DEFAULT_TTL_DAYS, cap_gb=0, now=time.time() + 15 * 86400)
    return round(du_mb(root), 1)


def main(argv=None) -> int:
    import appdriver as drv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=12)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--app-dir", type=Path, default=ROOT, help="the checkout to serve (default: this one)")
    ap.add_argument("--session-ttl", type=int, default=10, help="server.disconnectedSessionTTL, seconds")
    ap.add_argument("--sweep", type=float, default=5.0, help="MTLREC_SESSION_SWEEP_S, seconds")
    ap.add_argument("--settle", type=float, default=30.0, help="seconds to watch RSS after the TTL")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="an environment variable for the server (e.g. MALLOC_ARENA_MAX=2); repeatable")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright
    tmp = Path(tempfile.mkdtemp(prefix="mtlrec-session-mem-"))
    try:
        csv = write_table(tmp, args.rows)
        runs = tmp / "runs"
        runs.mkdir()
        env = {"STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(args.session_ttl),
               "MTLREC_SESSION_SWEEP_S": str(args.sweep), **dict(e.split("=", 1) for e in args.env)}
        port = drv.free_port()
        proc = drv.start_server(port, runs, tmp / "server.log", app_dir=args.app_dir, env=env)
        url = f"http://127.0.0.1:{port}"
        res = {"rows": args.rows, "csv_mb": round(csv.stat().st_size / 1e6, 1), "sessions": args.sessions,
               "session_ttl_s": args.session_ttl, "app_dir": str(args.app_dir), "env": args.env}
        try:
            drv.wait_healthy(url, proc)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=drv.CHROMIUM, args=drv.CHROMIUM_ARGS)
                one_session(browser, url, None, args.rows)              # warm-up: imports, first page
                res["rss_start_mb"] = round(settle(proc.pid, args.session_ttl + args.settle), 1)
                per = []
                t0 = time.time()
                for _ in range(args.sessions):
                    one_session(browser, url, csv, args.rows)
                    per.append(round(rss_mb(proc.pid), 1))
                    if not args.json:
                        print(f"session {len(per)}: RSS {per[-1]:.0f} MB", flush=True)
                res["sessions_s"] = round(time.time() - t0, 1)
                res["rss_after_each_mb"] = per
                browser.close()
            res["rss_end_mb"] = round(settle(proc.pid, args.session_ttl + args.settle), 1)
            res["rss_growth_per_session_mb"] = round((res["rss_end_mb"] - res["rss_start_mb"]) / args.sessions, 1)
            res["workspaces_mb"] = round(du_mb(drv.workspaces_dir(runs)), 1)
            res["workspaces_mb_15_days_later"] = expire_later(args.app_dir, drv.workspaces_dir(runs))
        finally:
            drv.stop_server(proc)
        log = (tmp / "server.log").read_text(errors="replace")
        res["swept_lines"] = sum("MTLREC-SESSIONS-SWEPT" in line for line in log.splitlines())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(res, indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
