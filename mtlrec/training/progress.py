"""Where a run is (`Progress`: phase, step, epoch, batch, measured ETA) and its words.

Written by the training thread (`mtlrec.training.pipeline.run_training`), copied field by field
into a worker's messages (`progress_fields` / `apply_progress`, `mtlrec.training.worker`) and
into a data-parallel run's progress.json, read by the pages (`progress_label`, `eta_text`).
Plain data and arithmetic only: no torch, no other mtlrec module.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

EMA_ALPHA = 0.2            # weight of the newest batch time in the seconds-per-batch average
ETA_MIN_BATCHES = 3        # timed batches before an ETA is given (None before: "estimating ...")
CHUNK_S = 0.25             # batch times are averaged over runs of batches at least this long (a GPU
                           # queues work: single batch times jump between launch time and syncs)
# the steps of the main (multi-task) phase and their share of its part of the bar
STEPS = ("training", "test evaluation", "ranking")
STEP_SPAN = {"training": (0.0, 0.85), "test evaluation": (0.85, 0.9), "ranking": (0.9, 1.0)}


@dataclass
class Progress:
    """Where a run is: phases (the multi-task model, then single-task baselines / folds), and in
    the multi-task phase its step (training -> test evaluation -> ranking), epoch, batch.

    Every piece of state is a plain JSON-able FIELD (the properties compute from fields only, so a
    copy of ``dataclasses.fields`` carries everything). Updated from the training thread through
    `batch_done` / `start_step` / `step_done` (or plain attribute writes); readers copy it under
    the owner's lock (see TrainingJob).

    The ETA comes from measured time (issue 21, item 12). An epoch costs ``epoch_s``: the mean
    wall time of the whole epochs measured so far in the phase (batches, validation, checkpoint:
    from the end of one epoch's first batch to the end of the next one's), carried into the next
    phase until that one has its own. The rest of the current epoch costs the batches left at
    ``batch_s`` (an exponential moving average over runs of batches of at least ``CHUNK_S``: on a
    GPU single batch times swing between launch time and syncs; defined once ``ETA_MIN_BATCHES``
    batches have been timed, and the first batch of a phase or epoch is never timed) plus its
    validation. Two readings, both None until an epoch has been measured (``epoch_left_s`` says
    meanwhile when the current epoch ends):

    * ``eta_s``, the time to the epoch cap ("up to": every epoch of this and the later phases);
    * ``eta_early_s``, the time if early stopping ends the phase as soon as it can -- at
      ``stop_epoch`` = best epoch so far + patience (``best_epoch`` from the epochs' ``best``
      flags, `epoch_end`; ``patience`` set by `run_training`, 0 when the run never stops early) --
      and every later phase after patience + 1 epochs. Early stopping ends most runs well before
      the cap; a run that keeps improving pushes this figure out one epoch per improving epoch.

    While ranking, the users left at the measured rate are added. Time is passed in (``now``),
    never read by a property."""
    phases: list[str] = field(default_factory=lambda: ["multi-task"])
    phase_index: int = 0
    epochs: int = 1
    epoch: int = 0
    batch: int = 0
    n_batches: int = 0
    started: float | None = None
    warnings: list[str] = field(default_factory=list)   # appended by run_training (e.g. early stopping)
    step: str = "training"             # in the multi-task phase: training | test evaluation | ranking | done
    done: int = 0                      # units done / total of the current non-training step
    total: int = 0                     # (users ranked, test rows scored)
    step_started: float | None = None  # when the current step began (epoch seconds)
    updated: float | None = None       # the last update (epoch seconds)
    batch_s: float | None = None       # moving average of seconds per training batch
    batches_timed: int = 0             # batch times measured so far
    last_batch_at: float | None = None
    timed_phase: int = -1              # phase_index of the last timed batch
    chunk_at: float | None = None      # start of the run of batches being timed
    chunk_batches: int = 0             # batches in it so far
    patience: int = 0                  # early-stopping patience (0: the run goes to the epoch cap)
    best_epoch: int = 0                # the phase's best epoch so far (0: none yet)
    epoch_at: float | None = None      # when the current epoch's first batch ended
    epoch_s: float | None = None       # mean measured seconds per whole epoch (training + validation)
    epochs_timed: int = 0              # whole epochs measured in this phase
    epochs_time_s: float = 0.0         # their seconds

    # ---- updates (training thread) --------------------------------------------------------
    def batch_done(self, epoch: int, batch: int, n_batches: int, now: float | None = None) -> None:
        """A training batch ended: position, and its time into the seconds-per-batch average."""
        now = time.time() if now is None else float(now)
        if self.step != "training":
            self.step, self.done, self.total, self.step_started = "training", 0, 0, now
        same_phase = self.timed_phase == self.phase_index and self.last_batch_at is not None
        if same_phase and epoch == self.epoch and batch == self.batch + 1 and self.chunk_at is not None:
            self.chunk_batches += 1
            if now - self.chunk_at >= CHUNK_S:
                self._timed(now)
        else:           # the first batch of a phase or an epoch: its time includes set-up / validation
            if self.chunk_batches and self.last_batch_at is not None and self.chunk_at is not None:
                self._timed(self.last_batch_at)          # the rest of the previous epoch
            self._epoch_timing(same_phase and epoch == self.epoch + 1, batch, now)
            self.chunk_at, self.chunk_batches = now, 0
        self.epoch, self.batch, self.n_batches = int(epoch), int(batch), int(n_batches)
        self.last_batch_at, self.timed_phase, self.updated = now, self.phase_index, now

    def _epoch_timing(self, next_epoch: bool, batch: int, now: float) -> None:
        """At the first batch of an epoch: the whole epoch before it (from its first batch on) is
        one measurement of ``epoch_s``; a new phase starts its own measurements and best epoch."""
        if next_epoch and self.epoch_at is not None:
            self.epochs_timed += 1
            self.epochs_time_s += max(0.0, now - self.epoch_at)
            self.epoch_s = self.epochs_time_s / self.epochs_timed
        elif not next_epoch:
            self.epochs_timed, self.epochs_time_s, self.best_epoch = 0, 0.0, 0
        self.epoch_at = now if batch == 1 else None

    def epoch_end(self, record: dict, history=None) -> None:
        """An epoch's validation ended (the trainer's ``on_epoch``): the phase's best epoch so far,
        from the ``best`` flags of its epoch records (those of a resumed run's earlier epochs too)."""
        epochs = list(getattr(history, "epochs", None) or [record])
        self.best_epoch = max([int(r["epoch"]) for r in epochs if r.get("best")] or [self.best_epoch])

    def _timed(self, end: float) -> None:
        """The batches of the current chunk ended at ``end``: one sample of the average."""
        dt = max(0.0, end - self.chunk_at) / max(self.chunk_batches, 1)
        self.batch_s = dt if self.batch_s is None else (1 - EMA_ALPHA) * self.batch_s + EMA_ALPHA * dt
        self.batches_timed += self.chunk_batches
        self.chunk_at, self.chunk_batches = end, 0

    def start_step(self, step: str, total: int = 0, now: float | None = None) -> None:
        """The multi-task phase moves on to ``step`` ("test evaluation", "ranking", "done")."""
        now = time.time() if now is None else float(now)
        self.step, self.done, self.total = step, 0, int(total)
        self.step_started = self.updated = now

    def step_done(self, done: int, total: int | None = None, now: float | None = None) -> None:
        """``done`` units (of ``total``) of the current step are finished."""
        self.done = int(done)
        if total is not None:
            self.total = int(total)
        self.updated = time.time() if now is None else float(now)

    def start_phase(self, index: int, now: float | None = None) -> None:
        self.phase_index = int(index)
        self.step, self.done, self.total = "training", 0, 0
        self.epoch = self.batch = 0
        self.step_started = self.updated = time.time() if now is None else float(now)

    # ---- derived (from fields only) -------------------------------------------------------
    @property
    def phase(self) -> str:
        """The phase, or the multi-task phase's step after training ("test evaluation",
        "ranking — users 120/943")."""
        name = self.phases[min(self.phase_index, len(self.phases) - 1)]
        if self.phase_index == 0 and self.step in ("test evaluation", "ranking"):
            return f"{self.step} — {self.detail}" if self.detail else self.step
        return name

    @property
    def detail(self) -> str:
        """The current step's own progress in words."""
        if self.step == "ranking":
            return f"users {self.done:,}/{self.total:,}" if self.total else "choosing the users"
        if self.step == "test evaluation":
            return f"scoring {self.total:,} test rows" if self.total else "scoring the test rows"
        if self.step == "done":
            return "done"
        if not self.n_batches or self.timed_phase != self.phase_index:     # no batch of this phase yet
            return "starting"
        return f"epoch {max(self.epoch, 1)}/{self.epochs} · batch {self.batch}/{self.n_batches}"

    @property
    def label(self) -> str:
        """"phase — its own progress": "training — epoch 2/5 · batch 10/40", "ranking — users
        120/943", "baseline 1 of 3 (click) — epoch 1/5 · batch 3/40", "fold 2 of 5 — ..."."""
        if self.phase_index == 0 and self.step in ("test evaluation", "ranking"):
            return self.phase
        if self.step == "done":
            return "done"
        name = self.phases[min(self.phase_index, len(self.phases) - 1)]
        return f"{'training' if name == 'multi-task' else name} — {self.detail}"

    @property
    def step_fraction(self) -> float:
        """The current step's own fraction (training: of its epochs)."""
        if self.step in ("test evaluation", "ranking"):
            return min(1.0, self.done / self.total) if self.total else 0.0
        if self.step == "done":
            return 1.0
        if not self.n_batches:
            return 0.0
        return min(1.0, ((max(self.epoch, 1) - 1) + self.batch / self.n_batches) / max(self.epochs, 1))

    @property
    def fraction(self) -> float:
        """Of the whole run; below 1 until the run is done."""
        if self.step == "done" or self.phase_index >= len(self.phases):
            return 1.0
        f = self.step_fraction
        if self.phase_index == 0:
            lo, hi = STEP_SPAN.get(self.step, (0.0, 1.0))
            f = lo + (hi - lo) * f
        return min(0.99, (self.phase_index + min(f, 1.0)) / max(len(self.phases), 1))

    @property
    def stop_epoch(self) -> int:
        """The earliest epoch at which early stopping can end the current phase (the cap when the
        run never stops early): best epoch so far (the current one if none yet) + patience."""
        epochs = max(int(self.epochs), 1)
        if self.patience <= 0:
            return epochs
        here = max(int(self.epoch), 1)
        return max(here, min(epochs, (self.best_epoch or here) + int(self.patience)))

    @property
    def epoch_left_s(self) -> float | None:
        """Seconds until the current epoch's batches end (None before ``ETA_MIN_BATCHES`` timed batches)."""
        if self.step != "training" or self.batch_s is None or self.batches_timed < ETA_MIN_BATCHES:
            return None
        return max(0, int(self.n_batches) - int(self.batch)) * self.batch_s

    @property
    def eta_s(self) -> float | None:
        """Seconds to the end with every epoch up to the cap ("up to"), from measured time; None
        until an epoch has been measured (see the class)."""
        return self._eta(max(int(self.epochs), 1), max(int(self.epochs), 1))

    @property
    def eta_early_s(self) -> float | None:
        """Seconds to the end if early stopping ends every phase as soon as it can (`stop_epoch`
        here, patience + 1 epochs in each later phase); equals ``eta_s`` when it never stops early."""
        later = min(max(int(self.epochs), 1), int(self.patience) + 1) if self.patience > 0 else max(int(self.epochs), 1)
        return self._eta(self.stop_epoch, later)

    def _eta(self, last_epoch: int, later_epochs: int) -> float | None:
        """Seconds left when this phase ends after ``last_epoch`` and each later phase after ``later_epochs``."""
        if self.step == "done":
            return 0.0
        later = max(0, len(self.phases) - self.phase_index - 1)
        if self.step in ("test evaluation", "ranking"):
            left = self._ranking_left() if self.step == "ranking" else 0.0
            if later and (left is None or self.epoch_s is None):
                return None
            return (left or 0.0) + later * later_epochs * (self.epoch_s or 0.0)
        here = self.epoch_left_s
        epoch = max(int(self.epoch), 1)
        if here is None or (self.epoch_s is None and (last_epoch > epoch or later)):
            return None                      # an epoch (with its validation) not measured yet
        n = max(int(self.n_batches), 1)
        validation = max(0.0, (self.epoch_s or 0.0) - n * self.batch_s)
        epochs_after = max(0, last_epoch - epoch) + later * later_epochs
        return here + validation + epochs_after * (self.epoch_s or 0.0)

    def _ranking_left(self) -> float | None:
        if not self.total or not self.done or self.step_started is None or self.updated is None:
            return None
        rate = max(self.updated - self.step_started, 0.0) / self.done
        return rate * max(self.total - self.done, 0)


def progress_label(snap: dict) -> str:
    """"phase — its own progress" of a job snapshot (`TrainingJob.snapshot`): its ``label`` when it
    carries one, else rebuilt from ``phase`` (a step after training names itself, e.g. "ranking —
    users 120/943"), ``phases``, ``epoch``/``epochs`` and ``batch``/``n_batches``."""
    if snap.get("label"):
        return str(snap["label"])
    phase = str(snap.get("phase") or "multi-task")
    if phase not in (snap.get("phases") or ["multi-task"]):
        return phase
    name = "training" if phase == "multi-task" else phase
    if not snap.get("n_batches"):
        return f"{name} — starting"
    return (f"{name} — epoch {max(int(snap.get('epoch') or 0), 1)}/{snap.get('epochs')} · "
            f"batch {snap.get('batch')}/{snap.get('n_batches')}")


def fmt_duration(seconds: float) -> str:
    """"45 s", "3:32 min", "1:05 h"."""
    s = max(0, int(round(float(seconds))))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60}:{s % 60:02d} min"
    return f"{s // 3600}:{s % 3600 // 60:02d} h"


ETA_KEYS = ("eta_s", "eta_early_s", "stop_epoch", "epoch_left_s", "epoch", "epochs")


def eta_text(snap: dict) -> str:
    """The ETA in words, from a job snapshot (`ETA_KEYS`; see `Progress`): "ETA 2:10 min if early
    stopping ends it at epoch 12 · up to 16:01 min (all 50 epochs)"; "ETA 4:05 min" when the run
    goes to the cap anyway; "ETA once epoch 1 is measured (its batches end in 40 s)" before that."""
    cap, early = snap.get("eta_s"), snap.get("eta_early_s")
    if cap is None:
        left = snap.get("epoch_left_s")
        if left is None:
            return "ETA estimating…"
        epoch = max(int(snap.get("epoch") or 0), 1)
        return f"ETA once epoch {epoch} is measured (its batches end in {fmt_duration(left)})"
    if early is None or round(early) >= round(cap):
        return f"ETA {fmt_duration(cap)}"
    return (f"ETA {fmt_duration(early)} if early stopping ends it at epoch {snap.get('stop_epoch')} · "
            f"up to {fmt_duration(cap)} (all {snap.get('epochs')} epochs)")


def progress_fields(progress) -> dict:
    """Every dataclass field of a `Progress` (whatever fields it has), lists/dicts copied."""
    out = {}
    for f in dataclasses.fields(progress):
        v = getattr(progress, f.name)
        if isinstance(v, (list, tuple)):
            v = list(v)
        elif isinstance(v, dict):
            v = dict(v)
        out[f.name] = v
    return out


def apply_progress(progress, values: dict) -> None:
    """Write the transported field values onto the parent's `Progress` (its properties derive)."""
    names = {f.name for f in dataclasses.fields(progress)}
    for k, v in values.items():
        if k in names:
            setattr(progress, k, v)
