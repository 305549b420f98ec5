"""The training loop: Adam, batches by indexing device tensors, per-task history, early stopping.

Speed notes: per-task losses are kept on the device and read back (one sync) only every
``log_every`` batches and at the end of an epoch; the batch order comes from a seeded
``torch.Generator`` (``randperm`` on the device), so the loop does not touch the global
torch RNG. Validation runs in large batches under ``torch.inference_mode``. Every epoch starts with
``data.start_epoch(epoch, seed)`` where the data has it (`mtlrec.dataset.DeviceData`: fresh
training negatives, so the number of training rows may change from epoch to epoch).

Loss weighting: each batch's per-task losses go to ``weighting.backward(losses, shared_params,
scaler)`` (`mtlrec.weighting.base`), which fills the gradients -- by backpropagating a weighted
loss sum, or, for the gradient-based strategies, by aggregating per-task gradients of the shared
parameters; with AMP the gradients it leaves are scaled, and ``scaler.step`` unscales them.

Reproducibility: the same seed gives the same history on CPU. Model initialisation uses
torch's *global* RNG (``torch.manual_seed`` is process-wide), so ``seeded_build`` seeds and
builds under a lock; dropout layers also draw from the global RNG, so two jobs with dropout
running at the same time are not bit-reproducible (they still never share state).
"""
from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from mtlrec.config import OPTIMIZERS, TrainConfig
from mtlrec.errors import TrainingError
from mtlrec.training.early_stopping import EarlyStopping
from mtlrec.training.history import History

_BUILD_LOCK = threading.Lock()
_NULL = contextlib.nullcontext()


def seeded_build(seed: int, fn: Callable, *args, **kwargs):
    """Call ``fn`` (e.g. ``build_model``) right after ``torch.manual_seed(seed)``, under a lock
    so that concurrent jobs do not interleave their seeding and parameter initialisation."""
    with _BUILD_LOCK:
        torch.manual_seed(int(seed))
        return fn(*args, **kwargs)


CHECKPOINT_FORMAT = "mtlrec-checkpoint/1"


def _cpu(obj):
    """``obj`` with every tensor detached and moved to the CPU (dicts, lists, tuples walked)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_cpu(v) for v in obj]
    return obj


def rng_states() -> dict:
    """torch (CPU and CUDA), numpy and Python ``random`` global RNG states as tensors and plain
    lists/numbers only (a checkpoint must load with ``torch.load(weights_only=True)``)."""
    import random
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    out = {"torch": torch.get_rng_state(),
           "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                     "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
           "python": {"version": int(version), "state": [int(v) for v in internal], "gauss": gauss_next}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = list(torch.cuda.get_rng_state_all())
    return out


def set_rng_states(st: dict) -> None:
    """Put back what `rng_states` returned (CUDA states only where CUDA is in use)."""
    import random
    torch.set_rng_state(st["torch"])
    n = st["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = st["python"]
    g = p.get("gauss")
    random.setstate((p["version"], tuple(p["state"]), None if g is None else float(g)))
    if st.get("cuda") and torch.cuda.is_available() and len(st["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(st["cuda"])


class Cancelled(Exception):
    """Raised inside the loop when the stop event is set (handled by ``fit``)."""


@dataclass
class TrainResult:
    history: History
    status: str                               # "finished" | "cancelled"
    best_epoch: int | None
    best_value: float | None
    monitor: dict                             # {"task", "metric", "higher_is_better"}
    valid: dict = field(default_factory=dict)   # {task: {metric: v}} at the best epoch
    test: dict = field(default_factory=dict)    # {task: {metric: v}} with the best weights
    epochs_run: int = 0
    samples_per_s: float = 0.0
    device: str = "cpu"
    best_state: dict | None = None
    warnings: list = field(default_factory=list)   # plain sentences (e.g. the early-stopping fallback)

    def metrics_dict(self) -> dict:
        return {"status": self.status, "best_epoch": self.best_epoch, "best_value": self.best_value,
                "monitor": self.monitor, "valid": self.valid, "test": self.test,
                "epochs_run": self.epochs_run, "samples_per_s": self.samples_per_s, "device": self.device,
                "warnings": list(self.warnings)}


def metric_higher_is_better(metric: str, task=None) -> bool:
    """Direction of a metric, from mtlrec.metrics (``metric_info(name).higher_is_better``)."""
    from mtlrec.metrics import metric_info
    try:
        return bool(metric_info(metric).higher_is_better)
    except ValueError as e:
        raise TrainingError(str(e)) from None


def _make_optimizer(model, tasks, cfg: TrainConfig, device):
    """Adam (default). L2 = lambda*||theta_i||^2 on the task towers (``train.l2``) and
    mu*||E||^2 on the embedding table (``train.embedding_l2``), each as weight decay 2*lambda."""
    cls = getattr(torch.optim, OPTIMIZERS[cfg.optimizer])
    params = [p for p in model.parameters() if p.requires_grad]
    decayed: list[tuple[list, float]] = []
    taken: set[int] = set()

    def take(plist, wd):
        group = [p for p in plist if p.requires_grad and id(p) not in taken]
        taken.update(id(p) for p in group)
        if group:
            decayed.append((group, wd))

    if cfg.l2 > 0:
        take([p for plist in model.task_parameters().values() for p in plist], 2.0 * cfg.l2)
    inp = getattr(model, "input", None)
    tables = [m for m in (getattr(inp, "embedding", None), getattr(inp, "multihot", None)) if m is not None]
    if cfg.embedding_l2 > 0 and tables:      # the id/category table and the multihot (genres...) tables
        take([p for m in tables for p in m.parameters()], 2.0 * cfg.embedding_l2)
    if decayed:
        rest = [p for p in params if id(p) not in taken]
        groups = [{"params": rest, "weight_decay": 0.0}] + [{"params": g, "weight_decay": wd} for g, wd in decayed]
    else:
        groups = [{"params": params}]
    kw: dict[str, Any] = {"lr": cfg.lr}
    if cls in (torch.optim.Adam, torch.optim.AdamW) and torch.device(device).type in ("cpu", "cuda"):
        kw["fused"] = True          # one fused kernel per step (CPU and CUDA)
    return cls(groups, **kw)


@dataclass
class _FitState:
    """What `Trainer.fit` carries from epoch to epoch (restored from a checkpoint when resuming)."""
    n_train: int                          # training rows of the current epoch
    has_valid: bool
    window: torch.Tensor                  # per-batch task losses since the last batch record
    ep_sum: torch.Tensor                  # their sum over the epoch
    mon: dict = field(default_factory=dict)      # the monitor (see `Trainer.monitor`)
    stopper: EarlyStopping | None = None
    best_state: dict | None = None
    best_valid: dict = field(default_factory=dict)
    last_value: float | None = None
    step: int = 0
    epochs_run: int = 0
    t_total: float = 0.0
    samples_total: int = 0
    first_epoch: int = 1
    status: str = "finished"
    dynamics: Any = None                  # DynamicsRecorder, or None


@dataclass
class _Window:
    """The batches of an epoch since its last batch record."""
    every: int                            # batches per record
    t_log: float                          # when the last record was made
    n: int = 0                            # batches in the window
    first: int = 0                        # batches of the epoch before it
    seen: int = 0                         # training rows in it


class Trainer:
    """Trains one multi-task model on a DeviceData.

    Callbacks (all optional, called in the training thread):
    ``on_batch(epoch, batch, n_batches)`` every batch (cheap; no device sync),
    ``on_log(record)`` every ``log_every`` batches with the batch record,
    ``on_epoch(record, history)`` after each epoch's validation.
    ``on_warning(message)`` when something usable but suspicious is found (see below).
    ``stop_event`` (threading.Event) is checked before every batch: cancel takes effect
    within one batch and the history so far is kept.

    Checkpoints: when ``writer`` has ``write_checkpoint``, every finished epoch ends with
    ``writer.write_checkpoint(state)`` (`checkpoint_state`: model, optimiser, weighting,
    early-stopping state and monitor, best weights, history, counters, RNG states and the
    batch-order generator). ``fit(data, resume=state)`` continues from such a state at the next
    epoch; on the same machine and thread count the result equals the uninterrupted run.

    Early stopping and the best checkpoint follow ``train.early_stopping`` (task, metric; the
    direction comes from the metric) on the validation split. When that metric is not defined
    there (AUC of a validation split with one class, say), a warning is given before the
    first epoch and the *validation loss of the same task* (lower is better) is followed
    instead; the same switch happens if the metric turns out undefined (NaN) at an epoch
    before any best epoch was chosen. A run that ends with no best epoch at all (no finite
    validation value) raises TrainingError: it never ends "finished" without a model.
    """

    def __init__(self, model, tasks, cfg: TrainConfig | None = None, device=None, *,
                 stop_event: threading.Event | None = None,
                 on_batch: Callable | None = None, on_log: Callable | None = None,
                 on_epoch: Callable | None = None, writer=None, history: History | None = None,
                 log_prefix: str = "", on_warning: Callable[[str], None] | None = None, dist="current"):
        from mtlrec.device import pick_device
        from mtlrec.training import distributed
        self.cfg = cfg or TrainConfig()
        # data-parallel training (mtlrec.training.distributed): the process group this process
        # joined under torchrun; None when training alone. Its device wins over ``device``.
        self.dist = distributed.current() if dist == "current" else dist
        if self.dist is not None:
            device = self.dist.device
        self.device = torch.device(device) if device is not None else pick_device(self.cfg.device)
        # what the loop asks the other processes: the group, or its one-process stand-in
        self.group = self.dist if self.dist is not None else distributed.Solo(self.device)
        self.model = model.to(self.device)
        self.net = self.model              # what training batches run through (DDP-wrapped when distributed)
        self.own_rows = 0                  # training rows this process went through (its shares)
        self.tasks = list(tasks)
        self.names = [t.name for t in self.tasks]
        self.stop_event = stop_event
        self.on_batch, self.on_log, self.on_epoch = on_batch, on_log, on_epoch
        self.writer = writer
        self.history = history if history is not None else History()
        self.log_prefix = log_prefix
        self.on_warning = on_warning
        self.warnings: list[str] = []
        from mtlrec.weighting import get_weighting
        self.weighting = get_weighting(self.cfg.weighting, self.tasks)
        if isinstance(self.weighting, torch.nn.Module):
            self.weighting.to(self.device)
        self.optimizer = _make_optimizer(self.model, self.tasks, self.cfg, self.device)
        # shared parameters (all but the task towers): gradient-based weightings aggregate their
        # per-task gradients in ``weighting.backward``; towers get their own task's gradient
        tower = {id(p) for plist in self.model.task_parameters().values() for p in plist}
        self.shared_params = [p for p in self.model.parameters() if p.requires_grad and id(p) not in tower]
        wparams = [p for p in getattr(self.weighting, "parameters", lambda: [])() if p.requires_grad]
        if wparams:  # adaptive weighting strategies with learnable parameters
            self.optimizer.add_param_group({"params": wparams, "weight_decay": 0.0})
        self._wparams = wparams
        if self.dist is not None:
            from torch.nn.parallel import DistributedDataParallel
            self.net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            self.weighting.reduce = self.dist.all_reduce_mean
        self.use_amp = bool(self.cfg.amp) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if self.use_amp else None
        gdev = self.device if self.device.type == "cuda" else torch.device("cpu")
        self.generator = torch.Generator(device=gdev)
        self.generator.manual_seed(int(self.cfg.seed))
        self._gdev = gdev

    # ---- monitor ---------------------------------------------------------------------
    def monitor(self) -> dict:
        es = self.cfg.early_stopping
        task_name = es.task or self.names[0]
        if task_name not in self.names:
            raise TrainingError(f"early stopping task '{task_name}' is not a task; choose one of {', '.join(self.names)}")
        task = self.tasks[self.names.index(task_name)]
        metric = es.metric or task.metric
        hib = metric_higher_is_better(metric, task)
        return {"task": task_name, "metric": metric, "higher_is_better": hib}

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        if self.on_warning is not None:
            self.on_warning(message)

    @staticmethod
    def _loss_monitor(mon: dict) -> dict:
        return {"task": mon["task"], "metric": "loss", "higher_is_better": False,
                "fallback_from": mon.get("fallback_from", mon["metric"])}

    def _fallback_message(self, mon: dict, why: str) -> str:
        return (f"early stopping: the validation {mon['metric']} of task '{mon['task']}' is not defined ({why}); "
                f"the best epoch follows the validation loss of '{mon['task']}' instead (lower is better). "
                f"Fix: give the validation split more rows of both kinds (data.prep.valid_frac), or choose "
                f"another early-stopping task or metric (train.early_stopping)")

    def check_monitor(self, data, mon: dict) -> dict:
        """``mon``, or the validation-loss monitor (with a warning) when ``mon``'s metric is not
        defined on the validation labels (checked with random predictions: AUC needs both classes)."""
        from mtlrec.metrics import evaluate_task
        task = self.tasks[self.names.index(mon["task"])]
        key = "label:" + task.label
        if "valid" not in data.rows or key not in data.rows["valid"] or data.n_rows("valid") == 0:
            return mon
        y = data.rows["valid"][key].detach().float().cpu().numpy()
        rng = np.random.default_rng(0)
        p = rng.uniform(0.05, 0.95, size=y.shape)
        try:
            value = evaluate_task(task, y, p).get(mon["metric"]) if np.isfinite(y).all() else float("nan")
        except ValueError:
            return mon
        if value is None or math.isfinite(value):   # defined (or not computed at all: reported by the loop)
            if value is not None and task.type == "binary":
                pos = int((y > 0.5).sum())
                few = min(pos, y.size - pos)
                if few < 5:
                    kind = "positive" if pos == few else "negative"
                    self._warn(f"early stopping: the validation split has only {few} {kind} row"
                               f"{'s' if few != 1 else ''} of task '{mon['task']}' in {y.size}, so its validation "
                               f"{mon['metric']} (which picks the best epoch) is very noisy. Fix: give the validation "
                               f"split more rows (data.prep.valid_frac) or choose another early-stopping task")
            return mon
        yf = y[np.isfinite(y)]
        if task.type == "binary":
            pos = int((yf > 0.5).sum())
            why = (f"the validation split has {pos} positive{'s' if pos != 1 else ''} in {y.size} rows: "
                   f"only one class")
        elif task.type == "multilabel":
            why = "no class of the validation split has both positive and negative rows"
        elif task.type == "distribution":
            why = "no validation row has a known distribution (every row is all zeros)"
        else:
            why = f"the validation labels give no finite {mon['metric']} ({y.size - yf.size} of {y.size} are missing)"
        self._warn(self._fallback_message(mon, why))
        return self._loss_monitor(mon)

    def _weights(self) -> dict:
        try:
            w = self.weighting.weights()
            return {k: float(v) for k, v in w.items()}
        except Exception:
            return {}

    # ---- evaluation ------------------------------------------------------------------
    @torch.inference_mode()
    def predict_split(self, data, split: str, batch_size: int | None = None):
        """Predictions {task: np.ndarray} and labels {task: np.ndarray} and mean loss {task: float}."""
        from mtlrec.chain import task_losses
        model = self.model
        chain_mode = model.chain_training
        was_training = model.training
        model.eval()
        n = data.n_rows(split)
        bs = int(batch_size or self.cfg.eval_batch_size)
        preds = {t.name: [] for t in self.tasks}
        ys = {t.name: [] for t in self.tasks}
        loss_sum = torch.zeros(len(self.tasks), device=self.device)
        dist = self.dist
        # distributed: this rank scores its block of the split, then all blocks are gathered
        lo, hi = dist.block(n) if dist is not None else (0, n)
        empty = hi <= lo and n > 0           # a rank without rows still scores one (dropped) for shapes
        if empty:
            lo, hi = 0, 1
        try:
            for start in range(lo, hi, bs):
                idx = torch.arange(start, min(hi, start + bs), device=self.device)
                feats, labels = data.batch(split, idx)
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
                    out = model(feats)
                if not empty:
                    for j, loss in enumerate(task_losses(self.tasks, out, labels, chain_mode).values()):
                        loss_sum[j] += loss.float() * len(idx)
                for t in self.tasks:
                    logits = out[t.name].float()
                    y = labels[t.label]
                    preds[t.name].append(t.predict(logits).float())
                    ys[t.name].append(y)
        finally:
            model.train(was_training)
        if dist is not None and n > 0:
            keep = 0 if empty else None
            preds = {k: [dist.gather_rows(torch.cat(v)[:keep], n)] for k, v in preds.items()}
            ys = {k: [dist.gather_rows(torch.cat(v)[:keep].float(), n)] for k, v in ys.items()}
            loss_sum = dist.all_reduce_sum(loss_sum)
        losses = (loss_sum / max(n, 1)).tolist()
        P = {k: torch.cat(v).cpu().numpy() if v else np.zeros(0) for k, v in preds.items()}
        Y = {k: torch.cat(v).cpu().numpy() if v else np.zeros(0) for k, v in ys.items()}
        return P, Y, dict(zip(self.names, losses))

    def evaluate(self, data, split: str) -> tuple[dict, dict]:
        """({task: {metric: value}}, {task: mean loss}) on ``split``."""
        from mtlrec.metrics import evaluate_task
        if data.n_rows(split) == 0:
            return {}, {}
        from mtlrec.chain import split_masks
        P, Y, losses = self.predict_split(data, split)
        masks = split_masks(self.tasks, data.ds, split)      # each task on its own space (mtlrec.chain)
        metrics = {}
        from mtlrec.metrics import TASK_METRICS
        for t in self.tasks:
            y, p = Y[t.name], P[t.name]
            if masks[t.name] is not None:
                y, p = y[masks[t.name]], p[masks[t.name]]
            if not np.isfinite(y).all():   # missing labels (prepared data drops them): undefined
                metrics[t.name] = {k: float("nan") for k in TASK_METRICS[t.type]}
                continue
            m = evaluate_task(t, y, p)
            metrics[t.name] = {k: float(v) for k, v in m.items()}
        return metrics, losses

    # ---- training --------------------------------------------------------------------
    def _check_finite(self, w: torch.Tensor, epoch: int, first_batch: int) -> list[float]:
        """The mean of each task's losses in the window ``w`` (batches x tasks); TrainingError
        naming the task and batch when one is NaN or infinite."""
        means = w.mean(0).tolist()
        if all(math.isfinite(v) for v in means):
            return means
        bad = (~torch.isfinite(w)).nonzero().tolist()
        row, col = bad[0]
        task = self.names[col]
        value = w[row, col].item()
        raise TrainingError(
            f"the loss of task '{task}' became {'NaN' if math.isnan(value) else 'infinite'} "
            f"at epoch {epoch}, batch {first_batch + row + 1}. Training stopped. Lower the learning rate "
            f"(train.lr, now {self.cfg.lr:g}), and check that the data has no infinite or extreme values")

    # ---- checkpoints -----------------------------------------------------------------
    def checkpoint_state(self, *, epoch: int, mon: dict, stopper: EarlyStopping, best_state, best_valid: dict,
                         step: int, t_total: float, samples_total: int, last_value, stopped: bool) -> dict:
        """Everything `fit` needs to continue after ``epoch``: tensors, plain containers, numbers
        and strings only (loads with ``torch.load(weights_only=True)``), all on the CPU. The best
        weights are stored only when they are not the current ones (``best_model`` None then)."""
        best_is_current = stopper.best_epoch == epoch
        return {
            "format": CHECKPOINT_FORMAT, "epoch": int(epoch), "epochs": int(self.cfg.epochs),
            "tasks": list(self.names), "stopped": bool(stopped),
            "model": _cpu(self.model.state_dict()),
            "optimizer": _cpu(self.optimizer.state_dict()),
            "weighting": _cpu(self.weighting.state_dict()),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "generator": self.generator.get_state().cpu(),
            "generator_device": self._gdev.type,
            "rng": rng_states(),
            "monitor": dict(mon),
            "early_stopping": {"higher_is_better": stopper.higher_is_better, "patience": stopper.patience,
                               "min_delta": stopper.min_delta, "best_value": stopper.best_value,
                               "best_epoch": stopper.best_epoch, "bad_epochs": stopper.bad_epochs},
            "best_model": None if (best_is_current or best_state is None) else _cpu(best_state),
            "best_valid": best_valid,
            "last_value": last_value,
            "history": self.history.to_dict(),
            "warnings": list(self.warnings),
            "counters": {"step": int(step), "t_total": float(t_total), "samples_total": int(samples_total)},
        }

    def _restore(self, ck: dict) -> dict:
        """Load a `checkpoint_state` into this trainer; returns the loop variables of `fit`."""
        if ck.get("format") != CHECKPOINT_FORMAT:
            raise TrainingError(f"the checkpoint has format {ck.get('format')!r}, not {CHECKPOINT_FORMAT!r}")
        if list(ck.get("tasks") or []) != self.names:
            raise TrainingError(f"the checkpoint was written for tasks {ck.get('tasks')}, not {self.names}")
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.weighting.load_state_dict(ck["weighting"])
        if self.scaler is not None and ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        set_rng_states(ck["rng"])
        try:
            if ck.get("generator_device") != self._gdev.type:
                raise RuntimeError("another device")
            self.generator.set_state(ck["generator"])
        except RuntimeError:      # trained on another device type: a new, still seeded, batch order
            self.generator.manual_seed(int(self.cfg.seed) + int(ck["epoch"]))
            self._warn(f"the run resumes on {self._gdev.type} after {ck['epoch']} epochs on "
                       f"{ck.get('generator_device')}: the batch order of the remaining epochs differs from an "
                       "uninterrupted run")
        self.history.epochs[:] = list(ck["history"].get("epochs") or [])
        self.history.batches[:] = list(ck["history"].get("batches") or [])
        self.warnings[:0] = [w for w in ck.get("warnings") or [] if w not in self.warnings]
        es = ck["early_stopping"]
        stopper = EarlyStopping(es["higher_is_better"], es["patience"], es.get("min_delta", 0.0))
        stopper.best_value, stopper.best_epoch, stopper.bad_epochs = es["best_value"], es["best_epoch"], es["bad_epochs"]
        if ck.get("best_model") is not None:
            best_state = {k: v.to(self.device) for k, v in ck["best_model"].items()}
        elif stopper.best_epoch is not None:
            best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            best_state = None
        c = ck.get("counters") or {}
        return {"epoch": int(ck["epoch"]), "mon": dict(ck["monitor"]), "stopper": stopper, "best_state": best_state,
                "best_valid": ck.get("best_valid") or {}, "last_value": ck.get("last_value"),
                "step": int(c.get("step", 0)), "t_total": float(c.get("t_total", 0.0)),
                "samples_total": int(c.get("samples_total", 0)), "stopped": bool(ck.get("stopped"))}

    def fit(self, data, *, evaluate_test: bool = True, resume: dict | None = None) -> TrainResult:
        """Train (``resume``: a `checkpoint_state` to continue from, at its next epoch).

        Every epoch: `_train_epoch` (the batches), `_validate` (the monitored metric, early
        stopping), `_record` (best weights, history, checkpoint, ``on_epoch``); then `_finish`.
        The process group (``self.group``: `Dist`, or `Solo` when training alone) is asked at
        the same points either way."""
        from mtlrec.training.distributed import set_in_training_loop
        if data.n_rows("train") == 0:
            raise TrainingError("the training split is empty; there is nothing to train on")
        st = self._start(data, resume)
        set_in_training_loop(self.dist is not None)
        try:
            for epoch in range(st.first_epoch, self.cfg.epochs + 1):
                rec = self._train_epoch(data, epoch, st)
                improved, stopping = self._validate(data, epoch, rec, st)
                self._record(epoch, rec, st, improved, stopping)
                if stopping:
                    break
        except Cancelled:
            st.status = "cancelled"
        finally:
            set_in_training_loop(False)
            # the DDP wrapper (its gradient reducer) must not outlive the process group: one still alive
            # when `distributed.shutdown` destroys the group aborted the process at exit ("terminate
            # called without an active exception", 2 runs in 5 of tests/_ddp_weightings.py)
            self.net = self.model
        return self._finish(data, st, evaluate_test)

    def _start(self, data, resume: dict | None) -> _FitState:
        """The loop's state: restored from ``resume``, else new (the monitor checked on the
        validation split); the model in training mode."""
        from mtlrec.training.dynamics import DynamicsRecorder
        T, dev = len(self.tasks), self.device
        st = _FitState(n_train=data.n_rows("train"), has_valid="valid" in data.rows and data.n_rows("valid") > 0,
                       window=torch.zeros(int(self.cfg.log_every), T, device=dev), ep_sum=torch.zeros(T, device=dev))
        if resume is not None:
            r = self._restore(resume)
            st.mon, st.stopper, st.best_state, st.best_valid = r["mon"], r["stopper"], r["best_state"], r["best_valid"]
            st.last_value, st.step, st.t_total, st.samples_total = (r["last_value"], r["step"], r["t_total"],
                                                                    r["samples_total"])
            st.epochs_run = r["epoch"]
            st.first_epoch = self.cfg.epochs + 1 if r["stopped"] else r["epoch"] + 1
        else:
            st.mon = self.monitor()
            if st.has_valid:
                st.mon = self.check_monitor(data, st.mon)
            st.stopper = EarlyStopping(st.mon["higher_is_better"], self.cfg.early_stopping.patience)
        st.dynamics = DynamicsRecorder.for_trainer(self)     # None when train.dynamics_every is 0
        self.model.train()
        return st

    def _train_epoch(self, data, epoch: int, st: _FitState) -> dict:
        """One pass over the training rows in a seeded order (fresh training negatives first, where
        the data draws them), a batch record every ``log_every`` batches -> the epoch's record."""
        t0 = time.perf_counter()
        start_epoch = getattr(data, "start_epoch", None)     # fresh training negatives per epoch
        if start_epoch is not None:
            st.n_train = start_epoch(epoch, seed=int(self.cfg.seed))
        bs = int(self.cfg.batch_size)
        n_batches = math.ceil(st.n_train / bs)
        perm = torch.randperm(st.n_train, generator=self.generator, device=self._gdev)
        if perm.device != self.device:
            perm = perm.to(self.device)
        st.ep_sum.zero_()
        log_every = int(self.cfg.log_every)
        # the first epoch logs densely (>= ~20 records) so that the live curve has a shape early
        win = _Window(every=log_every if epoch > 1 else max(1, min(log_every, n_batches // 20)),
                      t_log=time.perf_counter())
        done = 0
        for b in range(n_batches):
            # every rank stops at the same batch
            if self.group.any_flag(self.stop_event is not None and self.stop_event.is_set()):
                raise Cancelled()
            idx = perm[b * bs:(b + 1) * bs]
            losses = self._train_batch(data, idx, b, n_batches, st.dynamics)
            with torch.no_grad():
                st.window[win.n] = torch.stack([losses[n].detach().float() for n in self.names])
            win.n += 1
            st.step += 1
            nb = len(idx) if b == n_batches - 1 else bs
            done += nb
            win.seen += nb
            if self.on_batch is not None:
                self.on_batch(epoch, b + 1, n_batches)
            if win.n == win.every or b == n_batches - 1:
                self._log_window(epoch, b + 1, st, win)
        t_train = time.perf_counter() - t0
        st.t_total += t_train
        st.samples_total += done
        st.epochs_run = epoch
        train_loss = dict(zip(self.names, (st.ep_sum / n_batches).tolist()))
        if hasattr(self.weighting, "epoch_end"):
            self.weighting.epoch_end(train_loss)
        rec = {"epoch": epoch, "train_loss": train_loss, "weights": self._weights(),
               "samples_per_s": done / max(t_train, 1e-9), "time_s": t_train}
        dyn = st.dynamics.epoch_end() if st.dynamics is not None else None
        if dyn is not None:
            rec["dynamics"] = dyn
        return rec

    def _train_batch(self, data, idx, b: int, n_batches: int, dynamics) -> dict:
        """One optimiser step on this process's share of the global batch ``idx`` (its losses
        weighted so that the averaged gradient is the whole batch's) -> the task losses."""
        from mtlrec.chain import task_losses
        model, group = self.model, self.group
        mine, share_w = group.share(idx)
        self.own_rows += len(mine) if share_w else 0
        feats, labels = data.batch("train", mine)
        with (torch.autocast(self.device.type, dtype=torch.float16) if self.use_amp else _NULL):
            out = self.net(feats)
            losses = task_losses(self.tasks, out, labels, model.chain_training)
            extra = model.extra_loss(out, labels)      # an architecture's own term (AITM)
            if extra:
                losses = {k: v + extra[k] if k in extra else v for k, v in losses.items()}
            if share_w != 1.0:
                losses = {k: v * share_w for k, v in losses.items()}
        if dynamics is not None:   # sampled batches: task gradients on the shared params (no .grad)
            dynamics.batch(b, n_batches, feats, losses)
        opt, scaler = self.optimizer, self.scaler
        opt.zero_grad(set_to_none=True)
        self.weighting.backward(losses, self.shared_params, scaler=scaler)   # grads scaled when AMP
        for p in self._wparams:       # learnable weighting parameters: not in DDP's model
            if p.grad is not None:
                p.grad = group.all_reduce_mean(p.grad)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        return losses

    def _log_window(self, epoch: int, batch: int, st: _FitState, win: _Window) -> None:
        """The batch record of the losses since the last one (the global batches' means), added to
        the epoch's sum; a NaN or infinite loss stops training here."""
        w = self.group.all_reduce_mean(st.window[:win.n])
        means = self._check_finite(w, epoch, win.first)
        st.ep_sum += w.sum(0)
        now = time.perf_counter()
        rec = {"epoch": epoch, "batch": batch, "step": st.step,
               "train_loss": dict(zip(self.names, means)), "weights": self._weights(),
               "samples_per_s": win.seen / max(now - win.t_log, 1e-9)}
        self.history.add_batch(rec)
        if self.on_log is not None:
            self.on_log(rec)
        win.t_log, win.seen, win.first, win.n = now, 0, batch, 0

    def _validate(self, data, epoch: int, rec: dict, st: _FitState) -> tuple[bool, bool]:
        """(improved, stop): the validation metrics into ``rec`` and the monitored value into early
        stopping (switching to the validation loss when the metric is NaN before any best epoch);
        without a validation split the last epoch is the best. Rank 0 decides for every rank."""
        improved = False
        if st.has_valid:
            valid_metrics, valid_loss = self.evaluate(data, "valid")
            rec["valid_loss"] = valid_loss
            rec["valid"] = valid_metrics
            mon = st.mon
            mt = valid_metrics.get(mon["task"], {})
            if mon["metric"] == "loss":
                value = valid_loss.get(mon["task"])
            elif mon["metric"] not in mt:
                raise TrainingError(f"early stopping metric '{mon['metric']}' is not computed for task "
                                    f"'{mon['task']}'; available: {', '.join(mt) or '(none)'}")
            else:
                value = mt[mon["metric"]]
                if not math.isfinite(value) and st.stopper.best_epoch is None:
                    self._warn(self._fallback_message(mon, f"it is NaN at epoch {epoch}"))
                    st.mon = self._loss_monitor(mon)
                    st.stopper = EarlyStopping(False, self.cfg.early_stopping.patience)
                    value = valid_loss.get(mon["task"])
            st.last_value = value
            improved = st.stopper.step(epoch, value)
            if improved:
                st.best_valid = valid_metrics
        else:  # no validation split: the last epoch is the best one
            improved = st.stopper.step(epoch, float(-epoch if not st.mon["higher_is_better"] else epoch))
        stopping = st.has_valid and st.stopper.should_stop
        return self.group.broadcast_flags(improved, stopping)      # rank 0 decides; every rank follows

    def _record(self, epoch: int, rec: dict, st: _FitState, improved: bool, stopping: bool) -> None:
        """The epoch's ending: the best weights kept (and written), the epoch record in the history
        (written), the checkpoint written, ``on_epoch`` called."""
        rec["best"] = improved
        if improved:
            st.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            if self.writer is not None:
                self.writer.write_model(st.best_state)
        self.history.add_epoch(rec)
        if self.writer is not None:
            self.writer.write_history(self.history.to_dict())
        write_checkpoint = getattr(self.writer, "write_checkpoint", None)
        if write_checkpoint is not None:
            write_checkpoint(self.checkpoint_state(
                epoch=epoch, mon=st.mon, stopper=st.stopper, best_state=st.best_state, best_valid=st.best_valid,
                step=st.step, t_total=st.t_total, samples_total=st.samples_total, last_value=st.last_value,
                stopped=stopping))
        if self.on_epoch is not None:
            self.on_epoch(rec, self.history)

    def _finish(self, data, st: _FitState, evaluate_test: bool) -> TrainResult:
        """The result: never "finished" without a best epoch; a warning when the epoch cap cut a
        run that was still improving; the best weights loaded and, if asked, the test split scored."""
        cfg, mon, stopper = self.cfg, st.mon, st.stopper
        if st.status == "finished" and st.best_state is None:
            what = "validation loss" if mon["metric"] == "loss" else f"validation {mon['metric']}"
            raise TrainingError(
                f"no epoch gave a usable {what} of task '{mon['task']}' for early stopping (last value: "
                f"{st.last_value}), so no best model was chosen and none was saved. Fix: check the validation "
                f"labels of '{mon['task']}' for missing or extreme values, or choose another early-stopping "
                f"task (train.early_stopping.task)")
        # a run of 3+ epochs that hit the cap while still improving (1-2 epochs: a deliberate short run)
        if (st.status == "finished" and st.has_valid and cfg.early_stopping.patience > 0 and not stopper.should_stop
                and st.epochs_run == cfg.epochs >= 3 and stopper.best_epoch is not None
                and stopper.best_epoch > st.epochs_run - min(cfg.early_stopping.patience, 2)):
            self._warn(f"training reached the epoch cap ({cfg.epochs}) while the validation metric was still "
                       f"improving (best epoch {stopper.best_epoch}): the model may be undertrained. Fix: raise "
                       f"train.epochs (the default, {type(cfg)().epochs}, lets early stopping decide)")
        if st.best_state is not None:
            self.model.load_state_dict(st.best_state)
        test: dict = {}
        if evaluate_test and st.status == "finished" and "test" in data.rows and data.n_rows("test") > 0:
            test, test_loss = self.evaluate(data, "test")
        return TrainResult(history=self.history, status=st.status, best_epoch=stopper.best_epoch,
                           best_value=stopper.best_value if st.has_valid else None, monitor=mon,
                           valid=st.best_valid, test=test, epochs_run=st.epochs_run,
                           samples_per_s=st.samples_total / st.t_total if st.t_total > 0 else 0.0,
                           device=str(self.device), best_state=st.best_state, warnings=list(self.warnings))
