"""Scale benchmark (issue 16): ingest + prepare + one training epoch of a large synthetic log.

    .venv/bin/python bench/scale.py [--rows 10000000] [--users N] [--items M] [--format csv|parquet]
                                    [--nproc 1,2] [--workdir /tmp/mtlrec-scale] [--keep] [--json]

Steps, each in its own process (peak RSS = that process's ``ru_maxrss`` from ``os.wait4``; for
training also each rank's own figure from ``RUN/ranks/rank<r>.json``):

1. **generate**: interactions (user_id, item_id, timestamp, device, click, like, rating, dwell_s:
   two binary and two regression labels, one context feature) plus a users table (user_id, age,
   gender, country) and an items table (item_id, category, brand, price), deterministic from
   ``--seed``. The interactions are written in blocks of ``--block`` rows (default 500,000) so the
   generator stays small whatever ``--rows`` is. The default format is **CSV**: the format people
   export and upload, and the costly one to ingest (text to parse); ``--format parquet`` measures
   the columnar path.
2. **prepare**: ``python -m mtlrec prepare DATA --roles roles.json --config prep.json --out PREPARED``.
3. **train** (for each N of ``--nproc``): ``python -m mtlrec train --config C.json --dataset PREPARED
   --out RUN --epochs 1 --nproc N --json``; samples/s and peak RSS per rank come from the run folder.
   A step that fails is reported with its error (and the rest still runs). ``samples_per_s`` is the
   run's training throughput (every rank reports the rows of the global batches per second, so
   rank 0's figure, not a sum); ``epoch_train_s`` the training loop's seconds (history.json); the
   step's ``seconds`` also count start-up, loading, rank 0 copying the dataset into the run folder
   and the validation / test evaluation. Peak RSS: each rank's own figure, ``launcher_peak_rss_mb``
   (the ``mtlrec train`` process that starts torchrun) and ``children`` (VmHWM of every process
   under it, torchrun included, read while they run).

Aims (issue 16): prepare <= 120 s and every process <= 2 GB peak RSS on the 2-core box at 10M rows.
``--rows 200000`` is a quick mode (well under a minute).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

AIM_PREPARE_S = 120.0
AIM_RSS_MB = 2048.0
DEVICES = ["mobile", "desktop", "tv", "tablet"]
COUNTRIES = ["US", "DE", "FR", "IN", "BR", "JP", "GB", "ES", "IT", "CA", "MX", "KR"]
GENDERS = ["F", "M", "X"]
CATEGORIES = ["books", "music", "video", "games", "apps", "news", "sports", "food", "travel", "fashion",
              "home", "kids", "science", "health", "finance", "autos"]


# ---------------------------------------------------------------------------------------------
# generation (runs in a child process)
# ---------------------------------------------------------------------------------------------
def _latent(n: int, seed: int, salt: int):
    import numpy as np
    return np.random.default_rng([seed, salt]).normal(size=(n, 4)).astype(np.float32)


def generate(out: Path, rows: int, n_users: int, n_items: int, seed: int, fmt: str, block: int) -> dict:
    """Write interactions / users / items to ``out``; the interactions block by block."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    u_f, i_f = _latent(n_users, seed, 1), _latent(n_items, seed, 2)
    rng = np.random.default_rng([seed, 3])
    pop = rng.permutation(n_items)          # item popularity rank -> item index
    users = pa.table({
        "user_id": np.arange(1, n_users + 1, dtype=np.int64),
        "age": rng.integers(16, 80, n_users),
        "gender": pa.array(np.array(GENDERS)[rng.choice(3, n_users, p=[0.48, 0.48, 0.04])]),
        "country": pa.array(np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n_users)])})
    items = pa.table({
        "item_id": np.arange(1, n_items + 1, dtype=np.int64),
        "category": pa.array(np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), n_items)]),
        "brand": pa.array(np.char.add("b", rng.integers(0, max(n_items // 50, 2), n_items).astype(str))),
        "price": np.round(rng.gamma(2.0, 5.0, n_items), 2)})

    def block_table(k: int, n: int):
        r = np.random.default_rng([seed, 100 + k])
        u = r.integers(0, n_users, n)
        it = pop[np.minimum((r.pareto(1.2, n) * n_items / 20).astype(np.int64), n_items - 1)]
        match = np.einsum("ij,ij->i", u_f[u], i_f[it]) / 2
        click = (r.random(n) < 1 / (1 + np.exp(-(match - 0.3)))).astype(np.int8)
        rating = np.clip(np.round(3 + match + r.normal(0, 0.8, n)), 1, 5).astype(np.int8)
        like = ((rating >= 4) & (r.random(n) < 0.8)).astype(np.int8)
        dwell = np.round(np.exp(2.5 + 0.4 * match + r.normal(0, 0.6, n)) * click, 1)
        ts = 1546300800 + r.integers(0, 4 * 365 * 86400, n)
        return pa.table({"user_id": u + 1, "item_id": it + 1, "timestamp": ts,
                         "device": pa.array(np.array(DEVICES)[r.integers(0, 4, n)]).dictionary_encode(),
                         "click": click, "like": like, "rating": rating, "dwell_s": dwell})

    ext = ".csv" if fmt == "csv" else ".parquet"
    for name, tab in (("users", users), ("items", items)):
        if fmt == "csv":
            pacsv.write_csv(tab, out / f"{name}{ext}")
        else:
            pq.write_table(tab, out / f"{name}{ext}")
    path = out / f"interactions{ext}"
    writer = None
    done, k = 0, 0
    while done < rows:
        n = min(block, rows - done)
        tab = block_table(k, n)
        tab = tab.set_column(3, "device", tab.column("device").cast(pa.string()))
        if writer is None:
            writer = (pacsv.CSVWriter(path, tab.schema) if fmt == "csv"
                      else pq.ParquetWriter(path, tab.schema))
        writer.write_table(tab)
        done, k = done + n, k + 1
    writer.close()
    return {p.name: p.stat().st_size for p in sorted(out.iterdir())}


# ---------------------------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------------------------
ROLES = {"user_id": "user_id", "item_id": "item_id", "timestamp": "timestamp",
         "labels": {"click": "binary", "like": "binary", "rating": "regression", "dwell_s": "regression"},
         "categorical": {"device": "context", "gender": "user", "country": "user", "category": "item",
                         "brand": "item"},
         "numeric": {"age": "user", "price": "item"}, "text": {}, "multilabel_sep": "|"}
PREP = {"split": "random", "valid_frac": 0.05, "test_frac": 0.05, "seed": 42}


def run_config(batch_size: int) -> dict:
    return {"name": "scale-bench",
            "data": {"paths": [], "roles": ROLES, "prep": PREP},
            "tasks": [{"name": "click", "type": "binary", "label": "click", "weight": 1.0, "metric": "auc"},
                      {"name": "like", "type": "binary", "label": "like", "weight": 1.0, "metric": "auc"},
                      {"name": "rating", "type": "regression", "label": "rating", "weight": 0.2, "metric": "rmse"},
                      {"name": "dwell_s", "type": "regression", "label": "dwell_s", "weight": 0.1,
                       "metric": "rmse"}],
            "model": {"arch": "mmoe"},
            "train": {"epochs": 1, "batch_size": batch_size, "device": "cpu", "amp": False, "seed": 0,
                      "early_stopping": {"patience": 0}, "dynamics_every": 0, "ranking_k": 0, "log_every": 1000},
            "text": {"enabled": False, "columns": []}}


# ---------------------------------------------------------------------------------------------
# measuring a child process
# ---------------------------------------------------------------------------------------------
def _hwm_mb(pid: int) -> float | None:
    """The peak RSS so far (VmHWM) of process ``pid`` alone, MB; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        q = todo.pop()
        try:
            kids = [int(k) for t in os.listdir(f"/proc/{q}/task")
                    for k in open(f"/proc/{q}/task/{t}/children").read().split()]
        except (OSError, ValueError):
            kids = []
        out += kids
        todo += kids
    return out


def _what(pid: int) -> str:
    try:
        args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        return "?"
    text = b" ".join(args).decode(errors="replace")
    return "torchrun" if "torch.distributed.run" in text else ("mtlrec " + text.split(" -m mtlrec ", 1)[-1][:40]
                                                             if " -m mtlrec " in text else text[:60])


def measure(cmd: list[str], log: Path, timeout: float) -> dict:
    """Run ``cmd``; wall seconds, exit status and its peak RSS (ru_maxrss of the process tree's
    largest process, from wait4), the started process's own peak (``own_peak_rss_mb``: its VmHWM,
    read while it runs: for training the torchrun launcher, whose ranks are its children), stdout's
    last JSON line if any."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t = time.perf_counter()
    with open(log, "w") as err, open(log.with_suffix(".out"), "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=str(ROOT), env=env)
        deadline = t + timeout
        own = 0.0
        procs: dict[int, dict] = {}       # descendant pid -> what it is, its peak RSS (VmHWM) seen
        while True:
            hwm = _hwm_mb(p.pid)
            own = max(own, hwm or 0.0)
            for d in _descendants(p.pid):
                h = _hwm_mb(d)
                if h is not None:
                    rec = procs.setdefault(d, {"pid": d, "what": _what(d), "peak_rss_mb": 0.0})
                    rec["peak_rss_mb"] = round(max(rec["peak_rss_mb"], h), 1)
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.05)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    res = {"seconds": round(wall, 2), "rc": p.returncode, "peak_rss_mb": round(ru.ru_maxrss / 1024.0, 1),
           "own_peak_rss_mb": round(own, 1)}
    if procs:
        res["children"] = list(procs.values())
    text = log.with_suffix(".out").read_text(errors="replace").strip()
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                res["stdout_json"] = json.loads(line)
            except ValueError:
                pass
            break
    if p.returncode != 0:
        tail = (log.read_text(errors="replace").strip().splitlines() or [text[-300:]])[-3:]
        res["error"] = (f"exit {p.returncode}" + (" (timed out)" if wall >= timeout else "") + ": "
                        + " | ".join(tail))[-600:]
    return res


def _ranks(run: Path) -> list[dict]:
    out = []
    for f in sorted((run / "ranks").glob("rank*.json")):
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        out.append({k: d.get(k) for k in ("rank", "world", "rows", "peak_rss_mb", "samples_per_s")})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--users", type=int, default=None, help="default: rows / 50 (at least 1,000)")
    ap.add_argument("--items", type=int, default=None, help="default: rows / 200 (at least 500)")
    ap.add_argument("--format", default="csv", choices=["csv", "parquet"])
    ap.add_argument("--nproc", default="1,2", help="comma-separated process counts for training ('' = skip)")
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--block", type=int, default=500_000, help="rows per generated block")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="default: a new folder under /tmp (removed unless --keep)")
    ap.add_argument("--keep", action="store_true", help="keep the generated data and outputs")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per step")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--child-generate", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    users = args.users or max(1000, args.rows // 50)
    items = args.items or max(500, args.rows // 200)
    if args.child_generate:
        sizes = generate(Path(args.child_generate), args.rows, users, items, args.seed, args.format, args.block)
        print(json.dumps({"bytes": sizes}))
        return 0

    import tempfile
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="mtlrec-scale-"))
    for sub in ("data", "prepared", "logs") + tuple(f"run{n}" for n in range(1, 9)):
        shutil.rmtree(work / sub, ignore_errors=True)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    data, prepared = work / "data", work / "prepared"
    (work / "roles.json").write_text(json.dumps(ROLES, indent=2))
    (work / "prep.json").write_text(json.dumps(PREP, indent=2))
    (work / "train.json").write_text(json.dumps(run_config(args.batch_size), indent=2))
    res: dict = {"rows": args.rows, "users": users, "items": items, "format": args.format, "seed": args.seed,
                 "cpu_count": os.cpu_count(), "workdir": str(work),
                 "aims": {"prepare_s": AIM_PREPARE_S, "peak_rss_mb": AIM_RSS_MB}, "steps": {}}
    py = sys.executable
    gen = measure([py, str(Path(__file__).resolve()), "--child-generate", str(data), "--rows", str(args.rows),
                   "--users", str(users), "--items", str(items), "--format", args.format, "--block",
                   str(args.block), "--seed", str(args.seed)], work / "logs" / "generate.log", args.timeout)
    sizes = gen.pop("stdout_json", {}).get("bytes", {})
    res["file_mb"] = {k: round(v / 1e6, 1) for k, v in sizes.items()}
    res["steps"]["generate"] = gen
    if gen["rc"] == 0:
        prep = measure([py, "-m", "mtlrec", "prepare", str(data), "--out", str(prepared), "--roles",
                        str(work / "roles.json"), "--config", str(work / "prep.json"), "--json"],
                       work / "logs" / "prepare.log", args.timeout)
        rep = (prep.pop("stdout_json", None) or {}).get("report") or {}
        if rep:
            prep["rows_out"] = rep.get("rows")
            prep["breakdown_s"] = rep.get("timing_s")
        if prep["rc"] == 0 and prepared.exists():
            prep["prepared_mb"] = round(sum(f.stat().st_size for f in prepared.rglob("*") if f.is_file()) / 1e6, 1)
        prep["within_aims"] = bool(prep["rc"] == 0 and prep["seconds"] <= AIM_PREPARE_S
                                   and prep["peak_rss_mb"] <= AIM_RSS_MB)
        res["steps"]["prepare"] = prep
        for n in [int(x) for x in args.nproc.split(",") if x.strip()]:
            run = work / f"run{n}"
            tr = measure([py, "-m", "mtlrec", "train", "--config", str(work / "train.json"), "--dataset",
                          str(prepared), "--out", str(run), "--epochs", "1", "--nproc", str(n), "--json", "--quiet"],
                         work / "logs" / f"train{n}.log", args.timeout) if prep["rc"] == 0 else \
                {"error": "skipped: prepare failed"}
            tr.pop("stdout_json", None)
            tr["nproc"] = n
            tr["peak_rss_mb_tree"] = tr.pop("peak_rss_mb", None)
            tr["launcher_peak_rss_mb"] = tr.pop("own_peak_rss_mb", None)
            ranks = _ranks(run)
            tr["ranks"] = ranks
            if ranks:
                # every rank reports the run's throughput (rows of the global batches per second of
                # training), not its own share: the run's figure is rank 0's, not the sum
                sps = [r["samples_per_s"] for r in ranks if isinstance(r.get("samples_per_s"), (int, float))]
                tr["samples_per_s"] = round(sps[0], 1) if sps else None
                try:
                    ep = json.loads((run / "history.json").read_text())["epochs"]
                    tr["epoch_train_s"] = round(sum(e.get("time_s", 0.0) for e in ep), 1)
                except (OSError, ValueError, KeyError, TypeError):
                    pass
                rss = [r["peak_rss_mb"] for r in ranks if isinstance(r.get("peak_rss_mb"), (int, float))]
                tr["max_rank_peak_rss_mb"] = max(rss) if rss else None
            elif "error" not in tr:
                tr["error"] = f"no per-rank figures in {run / 'ranks'}"
            res["steps"][f"train_nproc{n}"] = tr
    if not args.keep and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
        res["workdir"] += " (removed)"
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{args.rows:,} interactions, {users:,} users, {items:,} items ({args.format}: "
          + ", ".join(f"{k} {v:.0f} MB" for k, v in res["file_mb"].items()) + f"), {os.cpu_count()} CPUs")
    print(f"  {'step':<14} {'seconds':>8} {'peak RSS MB':>12} {'samples/s':>10}  note")
    for name, s in res["steps"].items():
        rss = s.get("peak_rss_mb", s.get("max_rank_peak_rss_mb", s.get("peak_rss_mb_tree")))
        sps = s.get("samples_per_s")
        note = s.get("error", "")
        if name == "prepare" and "rc" in s and s["rc"] == 0:
            note = ("within" if s["within_aims"] else "OUTSIDE") + f" aims (<= {AIM_PREPARE_S:.0f} s, <= " \
                   f"{AIM_RSS_MB:.0f} MB); " + ", ".join(f"{k} {v}" for k, v in (s.get("breakdown_s") or {}).items())
        if s.get("ranks"):
            note = "ranks: " + "; ".join(f"r{r['rank']} {r['peak_rss_mb']} MB {r['samples_per_s']}/s"
                                          for r in s["ranks"]) + (f"  {note}" if note else "")
        print(f"  {name:<14} {s.get('seconds', float('nan')):>8.1f} "
              f"{(rss if rss is not None else float('nan')):>12.0f} "
              f"{(sps if sps is not None else float('nan')):>10.0f}  {note[:200]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
