"""Data-parallel training across processes: ``torch.distributed`` started by ``torchrun``.

    torchrun --nproc-per-node 2 -m mtlrec train --config C.json --out runs/x
    python -m mtlrec train --nproc 2 --config C.json --out runs/x      # the same, launched for you

Every process (rank) runs the same pipeline on the same prepared dataset; `Dist` is what the
training loop needs to know about the others:

* **Backend**: NCCL when the ranks train on CUDA (each on ``cuda:<LOCAL_RANK>``), gloo on CPU
  (`init_from_env` chooses; ``train.device`` still says which kind of device).
* **Batches**: all ranks draw the same seeded permutation of the training rows per epoch and
  cut every global batch of ``train.batch_size`` rows into ``world`` disjoint, contiguous shares
  (`share`); each rank trains on its share. ``train.batch_size`` is therefore the *global* batch:
  2 processes at batch 1024 make the same optimiser steps, on the same rows, as 1 process at 1024.
  A rank's task losses are scaled by ``rows_r * world / rows_batch`` (`share`), so the
  averaged gradient is the gradient of the global batch mean even when the last batch is uneven.
* **Gradients**: the model is wrapped in ``DistributedDataParallel`` (it broadcasts rank 0's
  initial weights and averages gradients in buckets during ``backward``). Gradient-based loss
  weightings (PCGrad, MGDA, GradNorm, ...) average their per-task Jacobian with `all_reduce_mean`
  before they aggregate it (`mtlrec.weighting.base.WeightingStrategy.reduce`), so every rank
  aggregates the same global per-task gradients; learnable weighting parameters (uncertainty,
  GradNorm) have their gradients averaged by the trainer. Stateful strategies stay identical:
  DWA gets the all-reduced epoch losses, RLW draws from its own identically seeded generator.
* **Validation and test**: each rank scores a contiguous block of the split (`block`), the
  predictions and labels are gathered (`gather_rows`) so that every metric is computed on the
  *whole* split, never averaged per rank.
* **Decisions**: rank 0 decides early stopping and the best epoch and broadcasts them
  (`broadcast_flags`); a stop request (cancel, SIGTERM) on any rank stops every rank at the same
  batch (`any_flag`, checked before every batch).
* **Files**: rank 0 alone writes the run folder (the same files as a one-process run, plus
  ``ranks/rank<r>.json`` with each rank's peak memory and throughput).

``world == 1`` under torchrun is a real (single-member) process group: the NCCL/gloo path is
exercised on one device (``bench/gpu_check.py``).
"""
from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
TIMEOUT_S = float(os.environ.get("MTLREC_DIST_TIMEOUT_S", 7200))   # ranks wait for rank 0's ranking, ...


def launched_by_torchrun() -> bool:
    """True in a process started by torchrun (or with the same environment variables)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


@dataclass
class Dist:
    rank: int
    world: int
    local_rank: int
    backend: str
    device: object                       # torch.device of this rank

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ---- who takes which rows --------------------------------------------------------------
    def share(self, idx):
        """(rows, weight): this rank's disjoint, contiguous share of one global batch ``idx`` (a 1-D
        tensor; shares differ by at most one row) and the factor on its mean loss that makes the
        gradients DDP averages equal the gradient of the mean loss over the whole batch
        (``rows_r * world / rows_batch``). A rank whose share would be empty (a last batch with fewer
        rows than ranks) gets the batch's first row with weight 0."""
        mine = idx.tensor_split(self.world)[self.rank]
        weight = len(mine) * self.world / max(len(idx), 1)
        return (mine, weight) if len(mine) else (idx[:1], 0.0)

    def block(self, n: int) -> tuple[int, int]:
        """[start, end) of this rank's contiguous block of ``n`` rows (evaluation)."""
        base, extra = divmod(int(n), self.world)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (1 if self.rank < extra else 0)

    def block_sizes(self, n: int) -> list[int]:
        base, extra = divmod(int(n), self.world)
        return [base + (1 if r < extra else 0) for r in range(self.world)]

    # ---- collectives -------------------------------------------------------------------------
    def _dev(self, t):
        return t.to(self.device) if self.backend == "nccl" else t.cpu()

    def all_reduce_mean(self, t):
        """The mean of ``t`` over the ranks (a new tensor on ``t``'s device)."""
        import torch.distributed as dist
        buf = self._dev(t.detach().clone())
        dist.all_reduce(buf)
        return (buf / self.world).to(t.device)

    def all_reduce_sum(self, t):
        import torch.distributed as dist
        buf = self._dev(t.detach().clone())
        dist.all_reduce(buf)
        return buf.to(t.device)

    def any_flag(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on any rank."""
        import torch
        import torch.distributed as dist
        t = self._dev(torch.tensor([1 if flag else 0], dtype=torch.int32))
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def broadcast_flags(self, *flags: bool) -> tuple[bool, ...]:
        """Rank 0's ``flags`` on every rank."""
        import torch
        import torch.distributed as dist
        t = self._dev(torch.tensor([1 if f else 0 for f in flags], dtype=torch.int32))
        dist.broadcast(t, src=0)
        return tuple(bool(v) for v in t.tolist())

    def broadcast_text(self, text: str | None) -> str:
        """Rank 0's string on every rank (e.g. the run folder it chose)."""
        import torch
        import torch.distributed as dist
        data = (text or "").encode() if self.is_main else b""
        n = self._dev(torch.tensor([len(data)], dtype=torch.int64))
        dist.broadcast(n, src=0)
        buf = torch.zeros(int(n.item()), dtype=torch.uint8)
        if self.is_main and data:
            buf = torch.frombuffer(bytearray(data), dtype=torch.uint8).clone()
        buf = self._dev(buf)
        if int(n.item()):
            dist.broadcast(buf, src=0)
        return bytes(buf.cpu().tolist()).decode()

    def gather_rows(self, t, n: int):
        """All ranks' blocks of a split, in order: ``t`` holds this rank's block of `block(n)`
        (rows along dim 0); returns the ``n`` rows of the whole split on every rank."""
        import torch
        import torch.distributed as dist
        sizes = self.block_sizes(n)
        big = max(sizes)
        buf = self._dev(t.detach())
        if buf.shape[0] < big:
            pad = torch.zeros((big - buf.shape[0], *buf.shape[1:]), dtype=buf.dtype, device=buf.device)
            buf = torch.cat([buf, pad])
        parts = [torch.empty_like(buf) for _ in range(self.world)]
        dist.all_gather(parts, buf.contiguous())
        return torch.cat([p[:s] for p, s in zip(parts, sizes)]).to(t.device)

    def barrier(self) -> None:
        import torch.distributed as dist
        if self.backend == "nccl":
            dist.barrier(device_ids=[self.device.index or 0])
        else:
            dist.barrier()


@dataclass
class Solo:
    """The process group of a process that trains alone: `Dist`'s methods, each what it gives in a
    group of one (this process takes every row, a mean over one process is the value itself, its
    flags are everyone's), so that the training loop calls them without asking whether it is
    distributed. ``share`` gives weight 1.0, so the loop leaves the losses as they are."""
    device: object
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str = "none"

    @property
    def is_main(self) -> bool:
        return True

    def share(self, idx):
        return idx, 1.0

    def block(self, n: int) -> tuple[int, int]:
        return 0, int(n)

    def block_sizes(self, n: int) -> list[int]:
        return [int(n)]

    def all_reduce_mean(self, t):
        return t

    def all_reduce_sum(self, t):
        return t

    def any_flag(self, flag: bool) -> bool:
        return flag

    def broadcast_flags(self, *flags: bool) -> tuple[bool, ...]:
        return flags

    def broadcast_text(self, text: str | None) -> str:
        return text or ""

    def gather_rows(self, t, n: int):
        return t

    def barrier(self) -> None:
        pass


_CURRENT: Dist | None = None
_IN_LOOP = False


def in_training_loop() -> bool:
    """True while a data-parallel training loop runs its batches (a stop request then sets the
    stop event, checked by every rank at the same batch, instead of interrupting)."""
    return _IN_LOOP


def set_in_training_loop(flag: bool) -> None:
    global _IN_LOOP
    _IN_LOOP = bool(flag)


def current() -> Dist | None:
    """The process group this process trains in (None when training alone)."""
    return _CURRENT


def backend_for(device_type: str) -> str:
    return "nccl" if device_type == "cuda" else "gloo"


def init_from_env(device_pref: str | None = "auto") -> Dist | None:
    """Join the process group described by torchrun's environment (None outside torchrun).

    The device: ``cuda:<LOCAL_RANK>`` when ``device_pref`` (``train.device``) resolves to CUDA,
    else the CPU; the backend follows (NCCL / gloo). Idempotent."""
    global _CURRENT
    if _CURRENT is not None:
        return _CURRENT
    if not launched_by_torchrun():
        return None
    import torch
    import torch.distributed as dist

    from mtlrec.device import pick_device
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    kind = pick_device(device_pref).type
    if kind == "cuda":
        if local >= torch.cuda.device_count():
            from mtlrec.errors import TrainingError
            raise TrainingError(f"local rank {local} has no GPU: this machine has {torch.cuda.device_count()}. "
                                f"Fix: start at most {torch.cuda.device_count()} processes per node")
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    elif kind == "mps":      # no distributed backend for Apple's GPU: train on the CPU with gloo
        device = torch.device("cpu")
    else:
        device = torch.device(kind)
    backend = backend_for(device.type)
    if not dist.is_initialized():
        kw = {"backend": backend, "timeout": datetime.timedelta(seconds=TIMEOUT_S)}
        if backend == "nccl":
            kw["device_id"] = device
        dist.init_process_group(**kw)
    _CURRENT = Dist(rank=rank, world=world, local_rank=local, backend=backend, device=device)
    return _CURRENT


def shutdown() -> None:
    """Leave the process group (end of the run)."""
    global _CURRENT
    _CURRENT = None
    try:
        import gc

        import torch.distributed as dist
        gc.collect()            # DDP wrappers left in reference cycles go while the group still exists
        if dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - the run's result is already written
        pass


def leave(code: int) -> None:
    """End a torchrun rank after `shutdown`: flush the streams and exit at once with ``code``.

    The interpreter's normal finalization is skipped on purpose. DistributedDataParallel keeps
    Python references to the process group after it is destroyed (10 per process in torch 2.13,
    measured with ``sys.getrefcount``), so the gloo group outlives ``destroy_process_group`` and
    is torn down during finalization, where it sometimes aborted the rank ("terminate called
    without an active exception", SIGABRT) after the run's results were written: torchrun then
    reported a failed run. Everything a rank writes is written and closed before this is called."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream has nothing left to flush
            pass
    os._exit(int(code))


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB): VmHWM, else ru_maxrss."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
