"""A spare training worker, started ahead of time (issue 25): Start trains within a second or two.

A fresh worker process (`mtlrec.training.worker`) spends its first seconds importing -- torch,
then, inside `run_training`, cvxpy (``mtlrec.weighting``'s Nash-MTL), ``torch._dynamo`` (the first
optimizer), scikit-learn -- and its first backward pass starts autograd's threads: 3-4 s on a quiet
2-core machine, 15-23 s under load. A spare is that process started early: it imports all of it
(`PRELOAD`), runs one tiny step on zeros (no random numbers drawn: runs stay as reproducible as
before), and waits for a job. `mtlrec.training.jobs.TrainingJob` takes it at Start, sends it the job
(config, run folder, dataset) and it trains exactly as a fresh worker does: the same
`worker.child_main`, pipe, cancel event, run folder and lifeline. One process trains one run and
exits, so runs never share a process.

    pool = start_pool()          # once per server (idempotent): a keeper thread spawns the spare
    spare = pool.take()          # a live spare (the pool then has none), or None: start a fresh worker
    pool.refill()                # the run has started: spawn the next spare

Safety: at most one idle spare per pool and one pool per process; the spare dies with the process
that started it (`lifeline.die_with_parent`: the keeper thread that spawns it lives as long as the
server, so the kernel's parent-death signal fires only when the server goes) and exits when its job
pipe closes; the keeper replaces a spare that died (with a growing pause when spares keep dying) and
`take` never returns a dead one. A spare started under another environment than the current one
(variables other than ``MTLREC_*``) is not used; the ``MTLREC_*`` variables, the working folder and
``sys.path`` travel with the job. This module never imports streamlit.
"""
from __future__ import annotations

import os
import sys
import threading
import time

# what a worker imports before its first batch (profiled with cProfile on a 2-core machine under load:
# torch 4.3-4.7 s, torch._dynamo -- Adam's first construction -- 7.2 s, cvxpy 5.6 s, the rest < 1 s)
PRELOAD = ("torch", "torch._dynamo", "torch.optim", "mtlrec.config", "mtlrec.device", "mtlrec.weighting",
           "mtlrec.models", "mtlrec.models.terms", "mtlrec.metrics", "mtlrec.tasks", "mtlrec.data",
           "mtlrec.data.label_dependence", "mtlrec.prep.negatives", "mtlrec.training.pipeline",
           "mtlrec.training.trainer", "mtlrec.training.resume", "mtlrec.training.dynamics",
           "mtlrec.training.distributed", "mtlrec.runs.folder", "sklearn.metrics", "pyarrow.parquet")
POLL_S = 0.5              # the keeper checks its spare this often
RETRY_S = (1.0, 60.0)     # the pause after a spare died young: doubles from the first up to the second
YOUNG_S = 30.0            # a spare that dies sooner than this after its start counts as a failure
ENV_PREFIX = "MTLREC_"


def _env_key() -> dict:
    """The environment a spare must share with the job that takes it (all but ``MTLREC_*``)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}


def job_context() -> dict:
    """What travels with a job to a spare: this process's ``MTLREC_*`` variables, folder and sys.path."""
    return {"env": {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)},
            "cwd": os.getcwd(), "sys_path": list(sys.path)}


def _apply_context(ctx: dict) -> None:
    for k in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        del os.environ[k]
    os.environ.update(ctx.get("env") or {})
    if ctx.get("cwd"):
        os.chdir(ctx["cwd"])
    if ctx.get("sys_path"):
        sys.path[:] = ctx["sys_path"]


def _warm_up() -> None:
    """One step of Adam on zeros: starts autograd's engine and the optimizer's lazy imports; draws no
    random numbers (torch's global generator is left as a fresh process has it)."""
    import torch
    w = torch.zeros(4, 2, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.1)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(torch.zeros(3, 4) @ w, torch.zeros(3, 2))
    loss.backward()
    opt.step()


def spare_main(conn, job_conn, stop_event, ready, parent_pid: int) -> None:
    """Entry point of a spare: die with ``parent_pid``, import and warm up, say so through ``ready``,
    then wait for one job on ``job_conn`` and train it with `worker.child_main` (messages on ``conn``).
    A closed ``job_conn`` or a None job ends it; SIGTERM ends it while it waits."""
    import importlib
    import signal
    import warnings

    from mtlrec.training import lifeline
    lifeline.die_with_parent(parent_pid)
    try:
        signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
    except (ValueError, OSError):     # pragma: no cover - not the main thread
        pass
    try:
        sys.stdout = open(os.devnull, "w")      # noqa: SIM115 - the spare's prints go nowhere
    except OSError:
        pass
    warnings.simplefilter("ignore")
    from mtlrec.training.worker import child_main, lower_priority, torch_threads_for_training
    lower_priority()                            # its imports must not slow the server's pages either
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    import torch
    torch.set_num_threads(torch_threads_for_training())
    _warm_up()
    ready.set()
    try:
        job = job_conn.recv()
    except (EOFError, OSError):
        return
    finally:
        job_conn.close()
    if not isinstance(job, dict):
        return
    _apply_context(job.pop("context", None) or {})
    job["parent_pid"] = None          # the lifeline is in place since the start
    child_main(conn, stop_event, job)


class Spare:
    """A started spare, seen from the server: its process, the job's message pipe (``conn``, as a fresh
    worker's), the pipe that sends it the job, its cancel event and the environment it started in."""

    def __init__(self, proc, conn, job_conn, stop, ready, env: dict):
        self.proc, self.conn, self.job_conn, self.stop, self.ready, self.env = proc, conn, job_conn, stop, ready, env
        self.started = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.is_alive()

    def hand_over(self, payload: dict) -> None:
        """Send the job (a worker payload); raises OSError / EOFError when the spare is gone."""
        try:
            self.job_conn.send({**payload, "context": job_context()})
        finally:
            self.job_conn.close()

    def discard(self) -> None:
        """End an idle spare (closing its job pipe ends it; kill makes sure) and reap it."""
        for c in (self.job_conn, self.conn):
            try:
                c.close()
            except OSError:
                pass
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)


def _running(proc) -> bool:
    """Whether ``proc`` has not ended, without reaping it (its job's thread does, and reads its exit code)."""
    from multiprocessing.connection import wait
    try:
        return not wait([proc.sentinel], 0)
    except (OSError, ValueError):
        return False


def _spawn(ctx) -> Spare:
    from mtlrec.training import worker
    recv, send = ctx.Pipe(duplex=False)          # worker -> server: the job's messages
    job_recv, job_send = ctx.Pipe(duplex=False)  # server -> spare: the job
    stop, ready = ctx.Event(), ctx.Event()
    env = _env_key()
    proc = worker.start_process(ctx, target=spare_main, args=(send, job_recv, stop, ready, os.getpid()),
                                name="mtlrec-spare-worker", daemon=True)
    send.close()              # the spare holds the only writer: its death is an EOF for the job
    job_recv.close()          # and the only reader of its job pipe: the server gone, it reads EOF
    return Spare(proc, recv, job_send, stop, ready, env)


class SparePool:
    """At most one idle spare, kept by a daemon thread (the only thread that spawns spares)."""

    def __init__(self, ctx=None):
        self.ctx = ctx            # None: torch's "spawn" context, made in the keeper thread (it imports torch)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._spare: Spare | None = None
        self._wanted = True
        self._closed = False
        self._retry_at = 0.0
        self._pause = RETRY_S[0]
        self.spawned = 0          # spares started so far
        self.taken = 0            # spares that took a job
        self._handed: list = []   # their processes (this keeper thread must outlive them)
        self._thread = threading.Thread(target=self._keep, name="mtlrec-spare-keeper", daemon=True)

    def start(self) -> "SparePool":
        if not self._thread.is_alive() and not self._closed:
            self._thread.start()
        return self

    @property
    def idle_pid(self) -> int | None:
        """The pid of the idle spare (started, maybe still importing), or None."""
        with self._lock:
            sp = self._spare
        return sp.pid if sp is not None and sp.alive() else None

    def wait_ready(self, timeout: float | None = None) -> int | None:
        """Wait until an idle spare has imported and warmed up; its pid (None after ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or time.monotonic() < deadline:
            with self._lock:
                sp = self._spare
            if sp is not None and sp.ready.wait(0.1) and sp.alive():
                return sp.pid
            if sp is None:
                time.sleep(0.1)
        return None

    def take(self) -> Spare | None:
        """The idle spare for a job (the pool keeps none until `refill`), or None: start a fresh worker.
        A dead spare, or one started under another environment, is discarded instead."""
        with self._lock:
            sp, self._spare = self._spare, None
            self._wanted = False
        if sp is None:
            return None
        if not sp.alive() or sp.env != _env_key():
            sp.discard()
            self.refill()
            return None
        self.taken += 1
        self._handed = [p for p in self._handed if _running(p)] + [sp.proc]
        return sp

    def refill(self) -> None:
        """Keep a spare again (a run that took one has started): the keeper spawns it at once."""
        with self._lock:
            self._wanted = True
        self._wake.set()

    def close(self) -> None:
        """Stop keeping spares and end the idle one."""
        with self._lock:
            self._closed, sp, self._spare = True, self._spare, None
        self._wake.set()
        if sp is not None:
            sp.discard()

    def _context(self):
        if self.ctx is None:
            import torch.multiprocessing as tmp
            self.ctx = tmp.get_context("spawn")
        return self.ctx

    def _keep(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    break
                sp = self._spare
            if sp is not None and not sp.alive():
                self._died(sp)
                sp = None
            if sp is None:
                self._maybe_spawn()
            self._wake.wait(POLL_S)
            self._wake.clear()
        # the kernel kills a process when the thread that started it ends (the lifeline): this thread
        # outlives the spares it started that train a run
        from multiprocessing.connection import wait
        for proc in self._handed:
            try:
                wait([proc.sentinel])       # not join(): the job's thread reaps it and reads its exit code
            except (OSError, ValueError):
                pass

    def _died(self, sp: Spare) -> None:
        with self._lock:
            if self._spare is not sp:     # taken meanwhile: its job starts a fresh worker instead
                return
            self._spare = None
        young = time.monotonic() - sp.started < YOUNG_S
        sp.discard()
        if young:        # dies at its start: wait longer each time before the next try
            self._retry_at = time.monotonic() + self._pause
            self._pause = min(self._pause * 2, RETRY_S[1])
        else:
            self._pause = RETRY_S[0]

    def _maybe_spawn(self) -> None:
        with self._lock:
            if not self._wanted or self._closed or time.monotonic() < self._retry_at:
                return
        try:
            sp = _spawn(self._context())
        except Exception:  # noqa: BLE001 - no spare then: Start spawns its own worker
            self._retry_at = time.monotonic() + RETRY_S[1]
            return
        with self._lock:       # (a job that took the last one meanwhile: this one is its successor)
            keep = not self._closed and self._spare is None
            if keep:
                self._spare = sp
                self.spawned += 1
        if not keep:
            sp.discard()


_POOL: SparePool | None = None
_POOL_LOCK = threading.Lock()


def start_pool(ctx=None) -> SparePool:
    """The process's pool of spare workers, started on the first call (later calls return it)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._closed:
            _POOL = SparePool(ctx).start()
        return _POOL


def current_pool() -> SparePool | None:
    """The running pool, or None when `start_pool` was not called (or the pool was closed)."""
    pool = _POOL
    return pool if pool is not None and not pool._closed else None


def stop_pool() -> None:
    """Close the process's pool (its idle spare ends); a later `start_pool` starts a new one."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.close()
