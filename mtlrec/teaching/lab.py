"""The lab: Ma et al.'s (KDD 2018, §3.2) synthetic experiment, small enough to run live.

Two regression tasks whose correlation is set by ``p`` (`mtlrec.data.sample.synthetic_tasks`) are
learned by shared-bottom, MMoE and PLE on the same data (same split, same seed, same training
settings). The paper's finding: the less related the tasks (lower ``p``), the more MMoE gains
over a shared bottom -- a shared bottom must squeeze both tasks through one representation,
MMoE's gates can give each task its own mix of experts.

    ds = lab_dataset(p=0.5)                      # PreparedDataset: x0..x15 -> y1, y2
    out = compare_architectures(ds)              # {arch: {"test": {task: {rmse, mae}}, "history", ...}}
    sw = sweep(ps=(0.5, 0.9, 1.0), seeds=(0, 1, 2))
    sw["summary"]["mmoe"][0.5]                   # mean test RMSE (over both tasks and the seeds)
    mmoe_advantage(sw)                           # {p: shared-bottom RMSE - MMoE RMSE}
    verdict(sw)                                  # the sentence judging it against the paper

The prepared sweep of the Lab page is exactly `bench/lab.py`'s (``SWEEP_PS``, ``SWEEP_SEEDS``,
``LAB_N`` rows, ``LAB_TRAIN``'s 12 epochs): 27 small runs, about 20 s on a 2-core CPU.

``LabJob`` runs any of these in a daemon thread for the app (the TrainingJob shape: a lock,
``snapshot()``, ``cancel()``, an error message). Never imports streamlit.
"""
from __future__ import annotations

import copy
import logging
import math
import threading
import time
import traceback

import numpy as np

from mtlrec.training.threaded import ThreadedJob

_LOG = logging.getLogger("mtlrec.teaching.lab")

ARCHS = ("shared_bottom", "mmoe", "ple")
ARCH_LABELS = {"shared_bottom": "shared-bottom", "mmoe": "MMoE", "ple": "PLE"}
TASKS = ("y1", "y2")
METRIC = "rmse"        # test metric of the lab (lower is better)

# small models of about the same size (the paper compares models of similar capacity)
LAB_MODELS = {
    "shared_bottom": {"shared_dims": [32], "tower_dims": [16]},
    "mmoe": {"n_experts": 4, "expert_dims": [16], "tower_dims": [16]},
    "ple": {"n_levels": 1, "n_shared_experts": 2, "n_specific_experts": 1, "expert_dims": [16],
            "tower_dims": [16]},
}
# training settings of every lab run: short, on the CPU, no early stopping, no ranking; gradient
# dynamics on one batch in 4 (~8 of the ~33 batches of an epoch: the conflict share of an epoch is
# then not read off 2 batches)
LAB_TRAIN = {"epochs": 12, "batch_size": 64, "lr": 1e-2, "embedding_l2": 0.0, "device": "cpu",
             "ranking_k": 0, "early_stopping": {"patience": 0}, "dynamics_every": 4}
LAB_N = 3000           # rows of one lab data set (70% train, 10% valid, 20% test)
SWEEP_PS = (0.5, 0.9, 1.0)
SWEEP_SEEDS = (0, 1, 2)


# ---- data ---------------------------------------------------------------------------------
def lab_dataset(p: float, n: int = LAB_N, dim: int = 16, seed: int = 0, noise: float = 0.01):
    """A PreparedDataset of ``synthetic_tasks(n, dim, p, seed=seed)``: ``dim`` numeric (context)
    features x0.. and two regression labels y1, y2; random split 70/10/20 with ``seed``."""
    from mtlrec.data.raw import RawData
    from mtlrec.data.roles import DataSpec
    from mtlrec.prep import prepare
    from mtlrec.data.sample import synthetic_tasks
    df = synthetic_tasks(n=int(n), dim=int(dim), p=float(p), seed=int(seed), noise=noise)
    spec = DataSpec(labels={t: "regression" for t in TASKS},
                    numeric={f"x{j}": "context" for j in range(int(dim))})
    ds = prepare(RawData(interactions=df, sources={"interactions": f"synthetic_tasks(p={p})"}), spec,
                 {"split": "random", "valid_frac": 0.1, "test_frac": 0.2, "seed": int(seed)})
    ds.meta["lab"] = {"p": float(p), "n": int(n), "dim": int(dim), "seed": int(seed)}
    return ds


def task_correlation(ds, split: str = "train") -> float:
    """Pearson correlation of the two labels on ``split``."""
    r = ds.rows[split]
    return float(np.corrcoef(np.asarray(r["label:y1"], float), np.asarray(r["label:y2"], float))[0, 1])


def lab_config(arch: str, seed: int = 0, weighting: str = "static", **train):
    """The RunConfig of one lab run: ``arch`` with its LAB_MODELS size, LAB_TRAIN (``train``
    overrides any of its keys), both tasks with weight 1."""
    from mtlrec.config import RunConfig
    t = copy.deepcopy(LAB_TRAIN)
    t.update({"seed": int(seed), "weighting": weighting})
    t.update({k: v for k, v in train.items() if v is not None})
    return RunConfig.from_dict({
        "name": f"lab-{arch}",
        "tasks": [{"name": k, "type": "regression", "label": k, "metric": METRIC} for k in TASKS],
        "model": {"arch": arch, **copy.deepcopy(LAB_MODELS.get(arch, {}))},
        "train": t})


def _finite(v):
    return None if v is None or not math.isfinite(float(v)) else float(v)


def run_one(ds, arch: str = "mmoe", *, seed: int = 0, weighting: str = "static", stop_event=None,
            history=None, **train) -> dict:
    """Train one lab model on ``ds`` -> ``{"status", "test": {task: {rmse, mae}}, "metric": mean test
    RMSE, "history": {"epochs": [...]}, "time_s"}`` (nothing written to disk)."""
    from mtlrec.training.history import History
    from mtlrec.training.pipeline import run_training
    history = history if history is not None else History()
    t0 = time.perf_counter()
    res = run_training(lab_config(arch, seed=seed, weighting=weighting, **train), None, dataset=ds,
                       stop_event=stop_event, history=history, write_dataset=False)
    test = res.metrics.get("test") or {}
    vals = [_finite((test.get(k) or {}).get(METRIC)) for k in TASKS]
    vals = [v for v in vals if v is not None]
    return {"status": res.status, "arch": arch, "weighting": weighting, "test": copy.deepcopy(test),
            "metric": float(np.mean(vals)) if vals and len(vals) == len(TASKS) else None,
            "history": {"epochs": copy.deepcopy(list(history.epochs))},
            "time_s": round(time.perf_counter() - t0, 2)}


def compare_architectures(ds, archs=ARCHS, *, seed: int = 0, stop_event=None, **train) -> dict:
    """{arch: run_one(...)} for each architecture, on the same data with the same seed."""
    out = {}
    for a in archs:
        out[a] = run_one(ds, a, seed=seed, stop_event=stop_event, **train)
        if out[a]["status"] != "finished":
            break
    return out


def compare_weightings(ds, methods, arch: str = "mmoe", *, seed: int = 0, stop_event=None, **train) -> dict:
    """{method: run_one(...)} for each loss-weighting method (`mtlrec.weighting.WEIGHTINGS`)."""
    out = {}
    for m in methods:
        out[m] = run_one(ds, arch, seed=seed, weighting=m, stop_event=stop_event, **train)
        if out[m]["status"] != "finished":
            break
    return out


# ---- the correlation sweep ----------------------------------------------------------------
def sweep_plan(ps=SWEEP_PS, seeds=SWEEP_SEEDS, archs=ARCHS) -> list[tuple[float, int, str]]:
    return [(float(p), int(s), a) for p in ps for s in seeds for a in archs]


def summarize_sweep(rows: list[dict]) -> dict:
    """{arch: {p: mean metric over seeds}} of the finished sweep rows."""
    acc: dict = {}
    for r in rows:
        if r.get("metric") is None:
            continue
        acc.setdefault(r["arch"], {}).setdefault(float(r["p"]), []).append(r["metric"])
    return {a: {p: float(np.mean(v)) for p, v in sorted(d.items())} for a, d in acc.items()}


def mmoe_advantage(sw: dict, other: str = "mmoe", base: str = "shared_bottom") -> dict:
    """{p: base metric - ``other`` metric} (RMSE: positive = ``other`` is better)."""
    s = sw["summary"] if "summary" in sw else sw
    return {p: s[base][p] - s[other][p] for p in s.get(base, {}) if p in s.get(other, {})}


def paper_ordering(sw: dict) -> dict:
    """Does the sweep reproduce Ma et al.? From the summary it draws (``sw["summary"]``):
    ``{"holds", "ahead_everywhere", "grows", "behind", "low_p", "high_p", "advantage": {p: gap}}``.
    The paper's finding has two parts, and it holds only when both do: MMoE is ahead of
    shared-bottom at every p (``behind``: the p where it is not), and its lead is larger at the
    lowest p than at the highest (``grows``). ``holds`` is None with fewer than two p."""
    adv = mmoe_advantage(sw)
    if len(adv) < 2:
        return {"holds": None, "advantage": adv, "low_p": None, "high_p": None, "behind": [],
                "ahead_everywhere": None, "grows": None}
    lo, hi = min(adv), max(adv)
    behind = sorted(p for p, v in adv.items() if not v > 0)
    grows = bool(adv[lo] > adv[hi])
    return {"holds": bool(grows and not behind), "ahead_everywhere": not behind, "grows": grows,
            "behind": behind, "advantage": adv, "low_p": lo, "high_p": hi}


def sweep_complete(sw: dict) -> bool:
    """True when every planned run of the sweep finished (a verdict needs all of them)."""
    planned = len(sweep_plan(sw.get("ps") or (), sw.get("seeds") or (), sw.get("archs") or ()))
    return sw.get("status") == "finished" and planned > 0 and len(sw.get("rows") or []) == planned


def verdict(sw: dict) -> str | None:
    """The sentence that judges the sweep against the paper, from the numbers it draws (None while
    runs are missing: a partial sweep gets no verdict)."""
    if not sweep_complete(sw):
        return None
    o = paper_ordering(sw)
    if o["holds"] is None:
        return None
    adv = o["advantage"]
    lo, hi = o["low_p"], o["high_p"]
    gaps = f"{adv[lo]:+.4f} at p = {lo:g} against {adv[hi]:+.4f} at p = {hi:g}"
    if o["holds"]:
        return (f"The paper's ordering holds on this sweep: MMoE is ahead of shared-bottom at every p, "
                f"and most where the tasks are least related ({gaps}).")
    if o["ahead_everywhere"]:
        return (f"The paper's ordering holds only in part on this sweep: MMoE is ahead of shared-bottom at "
                f"every p, but its lead does not grow as the tasks drift apart ({gaps}).")
    where = ", ".join(f"{p:g}" for p in o["behind"])
    return (f"The paper's ordering does not hold on this sweep: MMoE is not ahead of shared-bottom at "
            f"p = {where} ({gaps}).")


def sweep_size(sw: dict) -> str:
    """How large the sweep is, in words (for its chart): rows per data set, seeds, epochs."""
    n = int(sw.get("n") or LAB_N)
    seeds = len(sw.get("seeds") or ())
    epochs = int(sw.get("epochs") or LAB_TRAIN["epochs"])
    return (f"{n:,} rows per p and seed ({int(round(n * 0.7)):,} to train on), "
            f"{seeds} seed{'s' if seeds != 1 else ''}, {epochs} epochs per run")


def sweep_result(rows: list[dict], status: str, *, n: int = LAB_N, ps=SWEEP_PS, seeds=SWEEP_SEEDS,
                 archs=ARCHS, epochs: int | None = None) -> dict:
    """The sweep's record from its rows: ``{"rows", "summary", "ordering", "status", "n", "ps", "seeds",
    "archs", "epochs"}`` (what `sweep` returns and what a stored sweep is rebuilt into)."""
    out = {"rows": list(rows), "summary": summarize_sweep(rows), "status": status, "n": int(n),
           "ps": [float(p) for p in ps], "seeds": [int(s) for s in seeds], "archs": list(archs),
           "epochs": int(epochs if epochs is not None else LAB_TRAIN["epochs"])}
    out["ordering"] = paper_ordering(out)
    return out


def sweep(ps=SWEEP_PS, seeds=SWEEP_SEEDS, archs=ARCHS, *, n: int = LAB_N, stop_event=None,
          on_row=None, **train) -> dict:
    """Train every architecture on ``synthetic_tasks`` for each p and seed (one data set per
    (p, seed), shared by the architectures) -> `sweep_result`: ``{"rows": [{p, seed, arch, metric,
    test, time_s}], "summary": {arch: {p: mean test RMSE}}, "ordering": paper_ordering(...), "status",
    ...}``. ``on_row(row, done, total)`` is called after each run."""
    plan = sweep_plan(ps, seeds, archs)
    rows: list[dict] = []
    status = "finished"
    cache: dict = {}
    train.setdefault("dynamics_every", 0)     # the sweep reads test errors only (measuring changes nothing)
    for i, (p, s, a) in enumerate(plan):
        if stop_event is not None and stop_event.is_set():
            status = "cancelled"
            break
        if (p, s) not in cache:
            cache.clear()
            cache[(p, s)] = lab_dataset(p, n=n, seed=s)
        r = run_one(cache[(p, s)], a, seed=s, stop_event=stop_event, **train)
        if r["status"] != "finished":
            status = r["status"]
            break
        row = {"p": p, "seed": s, "arch": a, "metric": r["metric"], "test": r["test"], "time_s": r["time_s"]}
        rows.append(row)
        if on_row is not None:
            on_row(row, i + 1, len(plan))
    return sweep_result(rows, status, n=n, ps=ps, seeds=seeds, archs=archs, epochs=train.get("epochs"))


# ---- reading histories --------------------------------------------------------------------
def curve_rows(runs: dict, key: str = "valid", metric: str = METRIC) -> list[dict]:
    """Long-format rows ``{"run", "task", "epoch", "value"}`` of each run's per-epoch ``key``
    (``"valid"`` with ``metric``, or ``"train_loss"`` / ``"valid_loss"``) for a chart."""
    out = []
    for name, r in runs.items():
        for e in (r.get("history") or {}).get("epochs") or []:
            for task, v in (e.get(key) or {}).items():
                if isinstance(v, dict):
                    v = v.get(metric)
                if isinstance(v, (int, float)) and math.isfinite(v):
                    out.append({"run": name, "task": task, "epoch": int(e.get("epoch", 0)), "value": float(v)})
    return out


def test_table(runs: dict) -> list[dict]:
    """One row per run: the test RMSE and MAE of each task and their mean."""
    out = []
    for name, r in runs.items():
        row = {"run": name}
        for k in TASKS:
            for m in ("rmse", "mae"):
                v = ((r.get("test") or {}).get(k) or {}).get(m)
                row[f"{k} {m}"] = None if v is None else float(v)
        row["mean rmse"] = r.get("metric")
        out.append(row)
    return out


# ---- background job -----------------------------------------------------------------------
class LabJob(ThreadedJob):
    """One lab experiment in a daemon thread: ``kind`` "archs" (the architectures on one p),
    "weightings" (two or more weighting methods, one architecture) or "sweep".

        job = LabJob("archs", p=0.5).start()
        job.snapshot()   # {"status", "kind", "runs": {name: {"status", "history", "test", "metric"}},
                         #  "sweep": {...} (kind "sweep"), "done", "total", "error", ...}
        job.cancel()     # stops within one batch

    ``options``: ``n``, ``seed``, ``archs``, ``methods``, ``arch``, ``ps``, ``seeds``, ``threads``
    (torch threads of the job's own thread, default 1) and any LAB_TRAIN key (e.g. ``epochs``).
    ``on_done(snapshot)`` is called from the job's thread once it has ended (finished, cancelled or
    failed), e.g. to store the result (`to_json`); it must not touch any UI."""

    KINDS = ("archs", "weightings", "sweep")

    def __init__(self, kind: str = "archs", p: float = 0.5, on_done=None, **options):
        if kind not in self.KINDS:
            raise ValueError(f"unknown lab experiment '{kind}'; choose one of {', '.join(self.KINDS)}")
        self.kind = kind
        self.p = float(p)
        self.options = dict(options)
        self._on_done = on_done
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = "queued"
        self._error: str | None = None
        self._runs: dict[str, dict] = {}
        self._histories: dict = {}
        self._rows: list[dict] = []
        self._sweep: dict | None = None
        self._done = 0
        self._total = 0
        self._current: str | None = None
        self._started: float | None = None
        self._finished_at: float | None = None

    def start(self) -> "LabJob":
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("this job was already started")
            self._thread = threading.Thread(target=self._run, name=f"mtlrec-lab-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._stop.set()
        with self._lock:
            if self._status == "queued":
                self._status = "cancelled"

    # ---- the thread ----------------------------------------------------------------------
    def _train_opts(self) -> dict:
        return {k: v for k, v in self.options.items() if k in LAB_TRAIN or k == "threads"}

    def _run_named(self, ds, names_args: list[tuple[str, str, str]]) -> str:
        from mtlrec.training.history import History
        seed = int(self.options.get("seed", 0))
        with self._lock:
            self._total = len(names_args)
            for name, arch, w in names_args:
                self._runs[name] = {"status": "queued", "arch": arch, "weighting": w, "test": {}, "metric": None}
        for name, arch, w in names_args:
            h = History()
            with self._lock:
                self._current = name
                self._histories[name] = h
                self._runs[name]["status"] = "running"
            r = run_one(ds, arch, seed=seed, weighting=w, stop_event=self._stop, history=h, **self._train_opts())
            with self._lock:
                self._runs[name].update({"status": r["status"], "test": r["test"], "metric": r["metric"],
                                         "time_s": r["time_s"]})
                self._done += 1
            if r["status"] != "finished":
                return r["status"]
        return "finished"

    def _run(self) -> None:
        with self._lock:
            if self._stop.is_set():
                self._status = "cancelled"
                self._finished_at = time.time()
                return
            self._status = "running"
            self._started = time.time()
        try:
            o = self.options
            # the lab's models are tiny: more than one intra-op thread only adds contention (10x slower
            # on a loaded 2-core box). With torch's OpenMP backend this applies to this thread only.
            import torch
            torch.set_num_threads(int(o.get("threads") or 1))
            if self.kind == "sweep":
                def on_row(row, done, total):
                    with self._lock:
                        self._rows.append(copy.deepcopy(row))
                        self._done, self._total = done, total
                ps, seeds = o.get("ps", SWEEP_PS), o.get("seeds", SWEEP_SEEDS)
                archs = o.get("archs", ARCHS)
                with self._lock:
                    self._total = len(sweep_plan(ps, seeds, archs))
                sw = sweep(ps, seeds, archs, n=int(o.get("n", LAB_N)), stop_event=self._stop, on_row=on_row,
                           **self._train_opts())
                with self._lock:
                    self._sweep = sw
                status = sw["status"]
            else:
                ds = lab_dataset(self.p, n=int(o.get("n", LAB_N)), seed=int(o.get("seed", 0)))
                if self.kind == "archs":
                    plan = [(ARCH_LABELS.get(a, a), a, "static") for a in o.get("archs", ARCHS)]
                else:
                    arch = o.get("arch", "mmoe")
                    plan = [(m, arch, m) for m in o.get("methods", ("static", "uncertainty"))]
                status = self._run_named(ds, plan)
            with self._lock:
                self._status = status
        except Exception as e:  # noqa: BLE001 - shown to the user as a message
            msg = str(e) if e.__class__.__name__ in ("DataError", "TrainingError", "ValueError") \
                else f"{type(e).__name__}: {e}"
            with self._lock:
                self._status = "failed"
                self._error = msg
                self._traceback = traceback.format_exc()
        finally:
            with self._lock:
                self._finished_at = time.time()
                self._current = None
            self._report_done()

    def _report_done(self) -> None:
        if self._on_done is None:
            return
        try:
            self._on_done(self.snapshot())
        except Exception:  # noqa: BLE001 - storing the result must not turn a finished job into a failed one
            _LOG.warning("lab %s: on_done failed", self.kind, exc_info=True)

    # ---- reading -------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """A plain-dict copy of the job's state, safe to read from any thread."""
        with self._lock:
            runs = {}
            for name, r in self._runs.items():
                h = self._histories.get(name)
                # the training thread appends to the list; copying a list is atomic under the GIL
                epochs = copy.deepcopy(list(h.epochs)) if h is not None else []
                runs[name] = {**copy.deepcopy(r), "history": {"epochs": epochs}}
            rows = copy.deepcopy(self._rows)
            sw = copy.deepcopy(self._sweep)
            if sw is None and self.kind == "sweep":
                o = self.options
                sw = sweep_result(rows, self._status, n=int(o.get("n", LAB_N)), ps=o.get("ps", SWEEP_PS),
                                  seeds=o.get("seeds", SWEEP_SEEDS), archs=o.get("archs", ARCHS),
                                  epochs=o.get("epochs"))
            end = self._finished_at or time.time()
            return {"job": id(self), "kind": self.kind, "p": self.p, "status": self._status, "error": self._error,
                    "runs": runs, "sweep": sw, "done": self._done, "total": self._total,
                    "current": self._current, "options": copy.deepcopy(self.options),
                    "fraction": (self._done / self._total) if self._total else 0.0,
                    "elapsed_s": (end - self._started) if self._started else 0.0}


# ---- stored results -----------------------------------------------------------------------
def to_json(snap: dict) -> dict:
    """A finished job's snapshot as plain JSON values (the sweep keeps its rows and size; its
    summary and verdict are recomputed from them by `from_json`)."""
    d = copy.deepcopy(snap)
    if isinstance(d.get("sweep"), dict):
        d["sweep"] = {k: v for k, v in d["sweep"].items() if k not in ("summary", "ordering")}
    d["options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in (d.get("options") or {}).items()}
    return d


def from_json(d: dict) -> dict:
    """The snapshot of `to_json`'s record, with the sweep's summary and verdict rebuilt."""
    snap = copy.deepcopy(d)
    sw = snap.get("sweep")
    if isinstance(sw, dict):
        snap["sweep"] = sweep_result(sw.get("rows") or [], sw.get("status") or snap.get("status", "finished"),
                                     n=int(sw.get("n") or LAB_N), ps=sw.get("ps") or SWEEP_PS,
                                     seeds=sw.get("seeds") or SWEEP_SEEDS, archs=sw.get("archs") or ARCHS,
                                     epochs=sw.get("epochs"))
    snap.setdefault("runs", {})
    return snap


class StoredJob:
    """A lab result read back from disk, with the reading side of `LabJob` (``kind``, ``p``,
    ``status``, ``done``, ``snapshot()``; ``cancel``/``join`` do nothing): a reload shows it as the
    job left it."""

    def __init__(self, record: dict):
        self._snap = from_json(record)
        self.kind = str(self._snap.get("kind"))
        self.p = float(self._snap.get("p") or 0.0)
        self.status = str(self._snap.get("status") or "finished")
        self.done = True

    def snapshot(self) -> dict:
        return copy.deepcopy(self._snap)

    def cancel(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> bool:
        return True
