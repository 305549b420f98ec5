"""What watching a training run costs it (issue 15): ``python bench/watch_overhead.py [--json]``.

Trains MMoE on the shipped sample data (``sample_data/config_mmoe.json``; 48k training rows,
batch ``--batch``) through `mtlrec.training.jobs.TrainingJob` and measures its training speed (samples/s
over a ``--seconds`` window after a warm-up, from the job's own progress: steps x batch size /
wall time; validation at the epoch ends included) in four cases:

* ``thread_alone``: the job in a thread of this process (``isolate="thread"``), nothing else running;
* ``thread_busy``: the same while another Python thread of this process does what a live page
  redraw does -- deep-copies a history-sized list of batch records and ``json.dumps`` it -- in a
  loop (``--busy`` threads; 2 = two watching sessions);
* ``process_busy``: the job in its worker process (``isolate="process"``), the same busy thread(s)
  in this process;
* ``process_alone``: the worker process, nothing else running;
* ``thread_busy_elsewhere``: the job in a thread, the same busy work in another *process* (a control:
  what the busy work costs through CPU time alone, without sharing the GIL).

``ratio`` = samples/s / thread_alone's. Both modes train on ``max(1, cpus - 1)`` torch threads
(the worker's setting; the thread cases set this process to the same). ``start_s``: start() ->
first step trained; ``worker_start_s``: spawn -> the worker's first message (importing torch and
mtlrec in a fresh interpreter, unpickling the dataset). The cases alternate over ``--rounds``;
medians. On a shared machine the figures are noisy: the load average is printed.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = ("thread_alone", "thread_busy", "process_busy", "process_alone", "thread_busy_elsewhere")


def history_like(n_batches: int = 2000, n_epochs: int = 20) -> dict:
    """A history the size a watched page copies: batch records of four tasks."""
    tasks = ["click", "like", "rating", "genres"]
    return {"batches": [{"epoch": 1 + i // 100, "batch": i % 100 + 1, "step": i + 1,
                         "train_loss": {t: 0.5 + i * 1e-4 for t in tasks},
                         "weights": {t: 1.0 for t in tasks}, "samples_per_s": 30000.0 + i}
                        for i in range(n_batches)],
            "epochs": [{"epoch": e + 1, "train_loss": {t: 0.5 for t in tasks}, "valid_loss": {t: 0.5 for t in tasks},
                        "valid": {t: {"auc": 0.7, "logloss": 0.6} for t in tasks}, "weights": {t: 1.0 for t in tasks},
                        "samples_per_s": 30000.0, "time_s": 1.5, "best": e == 0} for e in range(n_epochs)]}


class Busy:
    """Threads doing pure-Python redraw-like work (deepcopy + json.dumps of a history) until stopped."""

    def __init__(self, n: int):
        self.n, self.stop, self.threads, self.loops = n, threading.Event(), [], 0
        self.hist = history_like()

    def _work(self):
        while not self.stop.is_set():
            json.dumps(copy.deepcopy(self.hist))
            self.loops += 1

    def __enter__(self):
        for i in range(self.n):
            t = threading.Thread(target=self._work, name=f"busy-{i}", daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


def _busy_forever(stop, counter) -> None:
    hist = history_like()
    while not stop.is_set():
        json.dumps(copy.deepcopy(hist))
        with counter.get_lock():
            counter.value += 1


class BusyElsewhere:
    """The same busy work in ``n`` spawned processes (shares CPU time, not the GIL)."""

    def __init__(self, n: int):
        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        self.stop, self.counter = ctx.Event(), ctx.Value("q", 0)
        self.procs = [ctx.Process(target=_busy_forever, args=(self.stop, self.counter), daemon=True) for _ in range(n)]

    @property
    def loops(self) -> int:
        return self.counter.value

    def __enter__(self):
        for p in self.procs:
            p.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for p in self.procs:
            p.join(10)


def steps(s) -> int:
    return max(0, (s["epoch"] - 1)) * (s["n_batches"] or 0) + (s["batch"] or 0)


def one_case(case: str, cfg, ds, batch: int, seconds: float, busy: int, warmup_steps: int = 10) -> dict:
    from mtlrec.training.jobs import TrainingJob
    isolate = "thread" if case.startswith("thread") else "process"
    with tempfile.TemporaryDirectory(prefix="mtlrec-watch-") as tmp:
        n_busy = busy if "busy" in case else 0
        b = BusyElsewhere(n_busy) if case.endswith("elsewhere") else Busy(n_busy)
        with b:
            t0 = time.perf_counter()
            job = TrainingJob(cfg, Path(tmp) / "run", dataset=ds, isolate=isolate).start()
            first = None
            while True:
                s = job.snapshot(include_batches=False)
                if s["status"] not in ("queued", "running"):
                    raise RuntimeError(f"{case}: the job ended early: {s['status']} {s['error']}")
                if first is None and steps(s) > 0:
                    first = time.perf_counter() - t0
                if steps(s) >= warmup_steps:
                    break
                time.sleep(0.05)
            s1, t1 = steps(s), time.perf_counter()
            time.sleep(seconds)
            s2, t2 = steps(job.snapshot(include_batches=False)), time.perf_counter()
            job.cancel()
            job.join(120)
            loops = b.loops
    return {"samples_per_s": (s2 - s1) * batch / (t2 - t1), "steps": s2 - s1, "start_s": first,
            "worker_start_s": job.worker_start_s, "busy_loops_per_s": loops / max(t2 - t0, 1e-9) if n_busy else None}


def measure(rounds: int = 1, seconds: float = 8.0, batch: int = 256, busy: int = 1, cases=CASES) -> dict:
    import torch

    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import build_dataset
    from mtlrec.training.worker import torch_threads_for_training
    threads = torch_threads_for_training()
    torch.set_num_threads(threads)       # the thread cases train here with the worker's thread count
    cfg = RunConfig.load(ROOT / "sample_data" / "config_mmoe.json")
    cfg.train.epochs = 1000              # cancelled after the window
    cfg.train.batch_size = batch
    cfg.train.device = "cpu"
    cfg.train.baselines = False
    cfg.train.log_every = 20
    ds = build_dataset(cfg)
    per = {c: [] for c in cases}
    for r in range(rounds):
        order = list(cases) if r % 2 == 0 else list(reversed(cases))
        for c in order:
            per[c].append(one_case(c, cfg, ds, batch, seconds, busy))
    out = {"cpus": os.cpu_count(), "torch_threads": threads, "batch_size": batch, "window_s": seconds,
           "busy_threads": busy, "rounds": rounds, "train_rows": ds.n_rows("train")}
    base = statistics.median(x["samples_per_s"] for x in per[cases[0]]) if cases else None
    for c in cases:
        sps = statistics.median(x["samples_per_s"] for x in per[c])
        out[c] = {"samples_per_s": round(sps, 1), "ratio": round(sps / base, 3) if base else None,
                  "start_s": round(statistics.median(x["start_s"] for x in per[c]), 2),
                  "all_samples_per_s": [round(x["samples_per_s"], 1) for x in per[c]]}
        ws = [x["worker_start_s"] for x in per[c] if x["worker_start_s"] is not None]
        if ws:
            out[c]["worker_start_s"] = round(statistics.median(ws), 2)
        bl = [x["busy_loops_per_s"] for x in per[c] if x["busy_loops_per_s"] is not None]
        if bl:
            out[c]["busy_loops_per_s"] = round(statistics.median(bl), 1)
    try:
        out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=8.0, help="measuring window per case")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--busy", type=int, default=1, help="redraw-like busy threads (2 = two watching sessions)")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ", ".join(CASES))
    a = ap.parse_args(argv)
    cases = tuple(c.strip() for c in a.cases.split(",") if c.strip())
    bad = [c for c in cases if c not in CASES]
    if bad:
        ap.error(f"unknown case(s) {', '.join(bad)}; choose from {', '.join(CASES)}")
    out = measure(rounds=a.rounds, seconds=a.seconds, batch=a.batch, busy=a.busy, cases=cases)
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:16s} {v}")


if __name__ == "__main__":
    main()
