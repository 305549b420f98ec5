"""Start -> first batch of a run in a worker process, with and without the spare worker (issue 25):
``python bench/worker_start.py [--json] [--launches 3] [--busy 2]``.

What a visitor waits for after pressing Start: `TrainingJob.start()` -> the job's first trained
batch (its snapshot's ``batch`` >= 1, polled every 10 ms), for the shipped sample with
``sample_data/config_mmoe.json`` (the app hands the worker the prepared dataset, as here), in two modes:

* ``fresh``: no spare; the job spawns its worker (a fresh interpreter importing torch, mtlrec, cvxpy,
  torch._dynamo) -- the behaviour before issue 25;
* ``spare``: `mtlrec.training.jobs.start_spare_worker` ran earlier (the app calls it when it starts)
  and its spare has imported everything; the job hands it the run. The spare is ready before the
  clock starts, as it is when a visitor presses Start a while after the page opened.

Each under two loads: ``quiet`` (nothing else of ours running) and ``busy`` (``--busy`` processes
spinning pure-Python loops, started before the spare). Medians of ``--launches`` runs; every run in
its own folder. ``worker_start_s``: handing over / spawn -> the worker's first message. The load
average is printed: on a shared machine "quiet" is only as quiet as the others let it be.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _spin(stop) -> None:
    while not stop.is_set():
        for _ in range(100000):
            pass


class Busy:
    """``n`` processes spinning Python loops until the block ends."""

    def __init__(self, n: int):
        self.n, self.ctx = n, mp.get_context("spawn")
        self.stop = self.ctx.Event()
        self.procs = [self.ctx.Process(target=_spin, args=(self.stop,), daemon=True) for _ in range(n)]

    def __enter__(self):
        for p in self.procs:
            p.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for p in self.procs:
            p.join(10)


def one_start(cfg, ds, run_dir: Path, spare: bool, timeout: float = 600) -> dict:
    from mtlrec.training import spare as spare_mod
    from mtlrec.training.jobs import TrainingJob, start_spare_worker
    if spare:
        os.environ.pop("MTLREC_SPARE_WORKER", None)
        assert start_spare_worker(), "the spare worker is off here (MTLREC_TRAIN_ISOLATION?)"
        if not spare_mod.current_pool().wait_ready(timeout):
            raise RuntimeError("no spare became ready")
    else:
        spare_mod.stop_pool()
    t0 = time.perf_counter()
    job = TrainingJob(cfg, run_dir, dataset=ds, isolate="process").start()
    first = None
    while first is None and time.perf_counter() - t0 < timeout:
        s = job.snapshot(include_batches=False)
        if s["batch"] or s["epoch"] > 1:
            first = time.perf_counter() - t0
        elif s["status"] not in ("queued", "running"):
            raise RuntimeError(f"the run ended before its first batch: {s['status']} {s['error']}")
        else:
            time.sleep(0.01)
    job.cancel()
    job.join(120)
    return {"first_batch_s": first, "worker_start_s": job.worker_start_s, "from_spare": job.from_spare}


def measure(launches: int, busy: int, threads: int | None) -> dict:
    from mtlrec.config import RunConfig
    from mtlrec.training import spare as spare_mod
    from mtlrec.training.pipeline import build_dataset
    os.environ["MTLREC_TRAIN_ISOLATION"] = "process"
    cfg = RunConfig.load(ROOT / "sample_data" / "config_mmoe.json")
    cfg.train.epochs, cfg.train.device, cfg.train.baselines = 1000, "cpu", False
    if threads:
        cfg.train.threads = threads
    ds = build_dataset(cfg)
    out = {"cpus": os.cpu_count(), "launches": launches, "busy_processes": busy, "config": "sample_data/config_mmoe.json"}
    with tempfile.TemporaryDirectory(prefix="mtlrec-worker-start-") as tmp:
        for load in ("quiet", "busy"):
            per = {"fresh": [], "spare": []}
            with Busy(busy if load == "busy" else 0):
                for i in range(launches):
                    for mode in (("fresh", "spare") if i % 2 == 0 else ("spare", "fresh")):
                        r = one_start(cfg, ds, Path(tmp) / f"{load}-{mode}-{i}", mode == "spare")
                        per[mode].append(r)
                        print(f"{load} {mode} {i}: {r}", file=sys.stderr, flush=True)
            spare_mod.stop_pool()
            for mode, rs in per.items():
                out[f"{load}_{mode}"] = {
                    "first_batch_s": round(statistics.median(r["first_batch_s"] for r in rs), 2),
                    "all_first_batch_s": [round(r["first_batch_s"], 2) for r in rs],
                    "worker_start_s": round(statistics.median(r["worker_start_s"] for r in rs), 3),
                    "from_spare": [r["from_spare"] for r in rs]}
            out[f"{load}_load_average"] = [round(x, 2) for x in os.getloadavg()]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--launches", type=int, default=3, help="runs per mode and load (median)")
    ap.add_argument("--busy", type=int, default=2, help="busy-loop processes for the 'busy' load")
    ap.add_argument("--threads", type=int, default=None, help="train.threads (default: the worker's own choice)")
    ap.add_argument("--json", action="store_true", help="print only the JSON result")
    args = ap.parse_args(argv)
    out = measure(args.launches, args.busy, args.threads)
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
