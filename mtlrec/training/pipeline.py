"""From a RunConfig to a finished run folder: data -> tasks -> model -> train -> baselines -> files.

``run_training`` is what both the CLI (``python -m mtlrec train``) and the background
``TrainingJob`` call. Progress is reported through a ``Progress`` object (phase, epoch,
batch) so that callers can show it without touching the loop.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mtlrec.config import RunConfig
from mtlrec.errors import DataError, TrainingError


# ---- data ---------------------------------------------------------------------------------
def load_raw(cfg: RunConfig):
    """(RawData, DataSpec) from ``cfg.data`` (spec suggested when the config gives no roles).

    With ``data.splits`` the split files are read and concatenated with a split column
    (``mtlrec.data.readers.load_split_files``); ``data.paths`` then holds the side tables."""
    from mtlrec.data.roles import DataSpec
    paths = cfg.data_paths()
    splits = cfg.split_paths()
    if not paths and not splits:
        raise DataError("the config names no data", file="config", fix='set data.paths, e.g. ["interactions.csv"]')
    for p in [*paths, *splits.values()]:
        if not p.exists():
            raise DataError("file or folder not found", file=str(p),
                            fix="paths in a config are relative to the config file's folder")
    if splits:
        from mtlrec.data.readers import load_split_files
        raw, spec = load_split_files(splits, paths), None
    elif (cfg.data.format or "").lower() == "census":
        from mtlrec.data.census import load_census
        raw, spec = load_census(paths[0])
    else:
        from mtlrec.data.readers import load_data
        raw = load_data(paths[0] if len(paths) == 1 else paths)
        spec = None
    if cfg.data.roles is not None:
        try:
            spec = DataSpec.from_dict(cfg.data.roles)
        except (TypeError, ValueError) as e:
            raise DataError(f"data.roles: {e}", file="config") from None
    elif spec is None:
        from mtlrec.data.suggest import suggest_spec
        spec = suggest_spec(raw)
    return raw, spec


def open_prepared(path):
    """A prepared dataset folder (``python -m mtlrec prepare``), its arrays memory-mapped."""
    from pathlib import Path

    from mtlrec.dataset import PreparedDataset
    d = Path(path)
    if not (d / "dataset.json").is_file():
        raise DataError("not a prepared dataset folder (it has no dataset.json)", file=str(d),
                        fix="give the folder written by: python -m mtlrec prepare DATA --out FOLDER")
    try:
        return PreparedDataset.load(d)
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"the prepared dataset cannot be read ({e})", file=str(d),
                        fix="prepare it again: python -m mtlrec prepare DATA --out FOLDER") from None


def make_text_encoder(cfg: RunConfig, device=None):
    if not cfg.text.enabled:
        return None
    from mtlrec.serve.text import TextEncoder
    return TextEncoder(cfg.text.model, device=device) if cfg.text.model else TextEncoder(device=device)


def build_dataset(cfg: RunConfig, progress: Callable | None = None):
    """Load, validate and prepare the data of ``cfg`` -> PreparedDataset."""
    from mtlrec.prep import PrepConfig, prepare
    raw, spec = load_raw(cfg)
    if cfg.text.enabled and cfg.text.columns:
        owners = {}
        for c in cfg.text.columns:
            owners[c] = spec.text.get(c) or ("user" if raw.users is not None and c in raw.users.columns
                                             and c not in raw.interactions.columns else "item")
        spec.text.update(owners)
    try:
        from mtlrec.prep.splits import with_predefined_split
        prep_cfg = PrepConfig.from_dict(with_predefined_split(cfg.data.prep, raw))
    except (TypeError, ValueError) as e:
        raise DataError(f"data.prep: {e}", file="config") from None
    return prepare(raw, spec, prep_cfg, text_encoder=make_text_encoder(cfg), progress=progress,
                   release_input=True)      # the raw tables are ours: freed as they are used


def build_tasks(cfg: RunConfig, dataset):
    from mtlrec.tasks import tasks_from_config
    cfg.validate(label_names=[lab.name for lab in dataset.labels])
    return tasks_from_config(cfg.tasks, dataset)


def label_dependence_warnings(dataset, tasks) -> tuple[dict[str, str], list[str]]:
    """({task: "item" | "user"}, warnings) for the tasks whose label is a property of the item or
    the user on the training rows (`mtlrec.data.label_dependence`): item / user classification, not user
    interest, so part of what multi-task learning seems to gain on them is an artefact."""
    from mtlrec.data.label_dependence import degenerate_tasks, dependence_message, label_dependence
    try:
        dep = label_dependence(dataset, labels=sorted({t.label for t in tasks}))
    except (KeyError, ValueError, TypeError, AttributeError):     # a dataset without the rows to tell
        return {}, []
    found = degenerate_tasks(tasks, dep)
    return found, [dependence_message(t.name, found[t.name], t.label) for t in tasks if t.name in found]


def build_model_for(cfg: RunConfig, dataset, tasks, seed: int | None = None):
    from mtlrec.models import build_model
    from mtlrec.training.trainer import seeded_build
    try:
        return seeded_build(cfg.train.seed if seed is None else seed, build_model, cfg.arch, dataset.fields,
                            tasks, **cfg.hparams)
    except ValueError as e:
        raise TrainingError(str(e)) from None


def label_ranges(dataset) -> dict[str, list[float]]:
    """[min, max] of each regression label on the training split (for score fusion)."""
    import numpy as np
    out = {}
    for lab in dataset.labels:
        if lab.task_type == "regression":
            y = np.asarray(dataset.rows["train"]["label:" + lab.name], dtype=float)
            y = y[np.isfinite(y)]
            if len(y):
                out[lab.name] = [float(y.min()), float(y.max())]
    return out


def model_info(model, tasks, dataset) -> dict:
    return {"arch": model.arch, "hparams": dict(model.hparams),
            "tasks": [t.to_dict() for t in tasks], "label_ranges": label_ranges(dataset),
            "n_parameters": int(sum(p.numel() for p in model.parameters()))}


# ---- progress -----------------------------------------------------------------------------
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


# ---- the whole run ------------------------------------------------------------------------
@dataclass
class RunResult:
    run_dir: Path | None
    status: str
    device: str
    metrics: dict
    history: Any
    model: Any = None
    dataset: Any = None
    tasks: list = field(default_factory=list)

    @property
    def ranking(self) -> dict:
        """{task: {recall@K, ndcg@K, hitrate@K, mrr}} on the test split ({} when not computed)."""
        return self.metrics.get("ranking") or {}

    @property
    def ranking_baseline(self) -> dict:
        """{"popularity": {task: {recall@K, ...}}, "mean_rating": ...}: the same ranking by item popularity
        and, with a rating, by item mean rating ({} when not computed)."""
        return self.metrics.get("ranking_baseline") or {}


def evaluate_test(trainer, data) -> tuple[dict, tuple | None]:
    """(test metrics as ``Trainer.evaluate`` gives them, (predictions, labels) {task: array} of the
    same pass, or None): the one scoring of the test split, kept for ``predictions_test.npz``."""
    from mtlrec.training.trainer import Trainer
    seen: dict = {}

    def predict_split(d, split, batch_size=None):
        out = Trainer.predict_split(trainer, d, split, batch_size)
        seen[split] = out
        return out

    trainer.predict_split = predict_split          # Trainer.evaluate scores through it
    try:
        metrics, _ = trainer.evaluate(data, "test")
    finally:
        del trainer.predict_split
    got = seen.get("test")
    return metrics, (None if got is None else (got[0], got[1]))


def rank_test(cfg: RunConfig, model, data, tasks, on_progress: Callable | None = None,
              log: Callable[[str], None] | None = None) -> dict:
    """The ranking block of metrics.json: the (best) model and the baselines ranked on the same
    test users over the whole catalogue, train+valid items left out (`mtlrec.ranking`):
    ``{"ranking": {task: {recall@K, ndcg@K, hitrate@K, mrr}}, "ranking_baseline": {"popularity":
    {task: {...}}, "mean_rating": {task: {...}}}, "ranking_info": {...}}``; "mean_rating" (the
    best-rated unseen items) only when the data has a regression label (the rating:
    `mtlrec.ranking.rating_label`), named with its prior in ``ranking_info["mean_rating"]``. The
    users: at most ``train.ranking_users`` ("auto": `mtlrec.ranking.auto_users`, fewer on a large
    catalogue), a sample seeded by ``train.seed``.

    ``ranking_info`` says what was done: ``{"status": "done", "users": N, "of_users": M, "items",
    "sampled", "k", "seconds"}``; ``{"status": "skipped", "reason"}`` when ``train.ranking_k`` is
    0 (switched off); ``{"status": "not applicable", "reason"}`` (and "ranking" {}) without a
    test split, user/item ids or a binary task. A chained task (like given interact) is ranked by its
    entire-space probability p(interact ∧ like) (``ranking_info["ranked_by"]``); its relevant items
    are its own label's test positives."""
    from mtlrec.chain import ranked_quantity
    from mtlrec.ranking import evaluate_ranking, plan_ranking
    k = int(cfg.train.ranking_k or 0)
    if k <= 0:
        return {"ranking": {}, "ranking_info": {"status": "skipped",
                                                "reason": "switched off (train.ranking_k is 0)"}}
    ds, ranked = data.ds, [t for t in tasks if t.type == "binary"]
    plan = None
    if "test" in ds.rows and ds.n_rows("test") > 0:
        plan = plan_ranking(ds, ranked, "test", cfg.train.ranking_users, int(cfg.train.seed), ("train", "valid"))
    if plan is None:
        why = ("the data has no user and item ids" if not (ds.has_users and ds.has_items) else
               "no binary task" if not ranked else "no test split")
        return {"ranking": {}, "ranking_info": {"status": "not applicable", "reason": why}}
    info = plan.info()
    if log is not None:
        log(f"ranking {info['users']:,} of {info['of_users']:,} test users over {info['items']:,} items "
            f"(top {k}) ...")
    t0 = time.time()
    ranking = evaluate_ranking(model, data, split="test", k=k, tasks=ranked, plan=plan, on_progress=on_progress)
    baselines = rank_baselines(data, tasks, plan, k, info)
    return {"ranking": ranking, "ranking_baseline": baselines,
            "ranking_info": {"status": "done", **info, "k": k, "seconds": round(time.time() - t0, 2),
                             "ranked_by": {t.name: ranked_quantity(t, tasks) for t in ranked}}}


def rank_baselines(data, tasks, plan, k: int, info: dict) -> dict:
    """``{"popularity": {task: metrics}[, "mean_rating": ...]}`` of the binary ``tasks`` over
    ``plan``; the mean-rating baseline only with a rating (named with its prior in ``info``)."""
    from mtlrec.metrics import MEAN_RATING_PRIOR
    from mtlrec.ranking import evaluate_mean_rating, evaluate_popularity, rating_label
    ranked = [t for t in tasks if t.type == "binary"]
    baselines = {"popularity": evaluate_popularity(data, split="test", k=k, tasks=ranked, plan=plan)}
    rating = rating_label(getattr(data, "ds", data), tasks)
    if rating is not None:
        baselines["mean_rating"] = evaluate_mean_rating(data, rating, split="test", k=k, tasks=ranked, plan=plan)
        info["mean_rating"] = {"label": rating, "prior": MEAN_RATING_PRIOR}
    return baselines


def run_training(cfg: RunConfig, run_dir=None, *, dataset=None, stop_event: threading.Event | None = None,
                 progress: Progress | None = None, on_log: Callable | None = None,
                 on_epoch: Callable | None = None, history=None, write_dataset: bool = True,
                 log: Callable[[str], None] | None = None, resume: dict | None = None) -> RunResult:
    """Train ``cfg`` (on ``dataset`` if given, else on the data the config names).

    Writes the run folder as it goes when ``run_dir`` is given. Raises DataError /
    TrainingError with a readable message; a set ``stop_event`` ends the run as "cancelled".
    Warnings (e.g. the early-stopping fallback, a task whose label is a property of the item or
    the user -- then also metrics["degenerate_tasks"]) go to ``progress.warnings``, ``log`` and
    metrics["warnings"].

    status.json always ends in a final state: "finished" (only with a model.pt),
    "cancelled", or "failed" with the error -- also when anything in the pipeline raises
    (the exception is recorded, then re-raised). Ctrl-C (KeyboardInterrupt) is recorded as
    "cancelled". While it runs, a heartbeat thread refreshes status.json.

    Every epoch rewrites ``checkpoint.pt`` in the run folder; it is removed when the run
    finishes. ``resume`` (a loaded checkpoint; use `mtlrec.training.resume.resume_run`, which
    checks the folder first) continues a run in its own folder: config, model.json and dataset/
    are kept, training goes on at the checkpoint's next epoch.
    """
    from mtlrec.training import distributed
    from mtlrec.training.history import History
    from mtlrec.runs.folder import RunWriter

    progress = progress or Progress()
    history = history if history is not None else History()
    # data-parallel (under torchrun): every rank runs this pipeline; rank 0 alone writes the folder
    dist = distributed.init_from_env(cfg.train.device)
    main = dist is None or dist.is_main
    writer = RunWriter(run_dir) if run_dir is not None and main else None
    if not main:
        on_log = on_epoch = log = None
    try:
        res = _run_training(cfg, writer, dataset=dataset, stop_event=stop_event, progress=progress,
                            on_log=on_log, on_epoch=on_epoch, history=history, write_dataset=write_dataset,
                            log=log, resume=resume, dist=dist, run_dir=run_dir)
        return res
    except BaseException as e:
        if writer is not None:
            said = _resumable(e, writer.dir)
            _record_failure(writer, said, history, progress)
            if said is not e:
                raise said from e
        raise
    finally:
        if writer is not None:
            writer.stop_heartbeat()


RECENT_BATCHES = 200      # batch records of the current epoch carried by progress.json (live curves)


def recent_batch_records(history, epoch: int) -> list[dict]:
    """The last `RECENT_BATCHES` batch records of ``epoch`` (history.json has the earlier epochs')."""
    out = []
    for rec in reversed(history.batches):
        if rec.get("epoch") != epoch or len(out) >= RECENT_BATCHES:
            break
        out.append(rec)
    return out[::-1]


def write_rank_stats(run_dir, dist, trainer, samples_per_s: float) -> None:
    """``ranks/rank<r>.json`` of a data-parallel run: this process's peak memory and throughput."""
    from pathlib import Path

    from mtlrec.training.distributed import peak_rss_mb
    from mtlrec.runs.folder import write_json_atomic
    d = Path(run_dir) / "ranks"
    d.mkdir(parents=True, exist_ok=True)
    write_json_atomic(d / f"rank{dist.rank}.json", {
        "rank": dist.rank, "world": dist.world, "backend": dist.backend, "device": str(dist.device),
        "peak_rss_mb": round(peak_rss_mb(), 1), "rows": int(getattr(trainer, "own_rows", 0)),
        "samples_per_s": float(samples_per_s)})


def _prepared_by_rank0(cfg: RunConfig, writer, dist, run_dir, say):
    """The dataset of a data-parallel run: rank 0 prepares it and writes it into the run folder;
    the other ranks wait and open that folder (memory-mapped). A failure on rank 0 ends every rank."""
    from pathlib import Path

    from mtlrec.dataset import PreparedDataset
    dataset, error = None, None
    if dist.is_main:
        say("preparing data ...")
        try:
            dataset = build_dataset(cfg)
            if writer is not None:
                writer.write_dataset(dataset)
        except BaseException as e:       # tell the other ranks before raising
            error = e
    ok, = dist.broadcast_flags(error is None)
    if error is not None:
        raise error
    if not ok:
        raise DataError("rank 0 could not prepare the data (its message says why); this rank stops too",
                        file="config")
    if not dist.is_main:
        dataset = PreparedDataset.load(Path(run_dir) / "dataset")
    return dataset


def error_message(e: BaseException) -> tuple[str, str]:
    """(message, kind) of an exception that ended a run: the readable message of DataError /
    TrainingError / ValueError, else "<Type>: <message>" with kind "internal"."""
    if isinstance(e, (DataError, TrainingError, ValueError)):
        return str(e), type(e).__name__
    if isinstance(e, KeyboardInterrupt):
        return "stopped by Ctrl-C or a termination signal before the end", "interrupted"
    return f"{type(e).__name__}: {e}", "internal"


def _resumable(e: BaseException, run_dir) -> BaseException:
    """``e``; for a full disk (`DiskFullError`) one whose fix says how the run goes on once there is
    space: resumed from its last checkpoint (kept: every checkpoint is written atomically), or
    trained again when it stopped before its first one."""
    from mtlrec.errors import DiskFullError
    from mtlrec.runs.folder import CHECKPOINT_NAME
    if not isinstance(e, DiskFullError):
        return e
    if (run_dir / CHECKPOINT_NAME).is_file():
        fix = ("free space on that disk, then resume the run from its last checkpoint (the Runs page's Resume, "
               f"or python -m mtlrec train --resume {run_dir.name})")
    else:
        fix = "free space on that disk, then train the run again (it stopped before its first checkpoint)"
    return DiskFullError(e.folder, e.file, fix)


def _record_failure(writer, e: BaseException, history, progress) -> None:
    import traceback
    msg, kind = error_message(e)
    status = "cancelled" if isinstance(e, (KeyboardInterrupt, SystemExit)) else "failed"
    tb = traceback.format_exc() if kind == "internal" else None
    try:
        writer.write_history(history.to_dict())
    except Exception:  # noqa: BLE001 - the status below matters more
        pass
    try:
        writer.write_status(status, error=msg, kind=kind, traceback=tb, warnings=list(progress.warnings),
                            has_model=(writer.dir / "model.pt").is_file())
    except OSError:
        pass


def _run_training(cfg: RunConfig, writer, *, dataset, stop_event, progress: Progress, on_log, on_epoch,
                  history, write_dataset: bool, log, resume: dict | None = None, dist=None,
                  run_dir=None) -> RunResult:
    from mtlrec.device import describe_device, pick_device
    from mtlrec.training.trainer import Trainer

    say = log or (lambda s: None)
    if progress.started is None:
        progress.started = time.time()

    def warn(message: str) -> None:
        progress.warnings.append(message)
        say(f"warning: {message}")

    resumed = {}
    if resume is not None:
        resumed = {"resumed_from_epoch": int(resume["epoch"])}
        for w in resume.get("warnings") or []:
            if w not in progress.warnings:
                progress.warnings.append(w)
    if writer:
        writer.write_status("running", warnings=list(progress.warnings), **resumed)
        writer.start_heartbeat()
        if resume is None:      # a folder trained before: its old checkpoint is not this run's
            writer.remove_checkpoint()
    cfg.train.validate()
    device = dist.device if dist is not None else pick_device(cfg.train.device)
    if writer and dist is not None:           # followed through the folder: progress.json every second
        from mtlrec.training.worker import progress_fields
        writer.progress_source = lambda: {**progress_fields(progress), "world": dist.world,
                                          "recent_batches": recent_batch_records(history, progress.epoch)}
        writer.stop_heartbeat()
        writer.start_heartbeat(interval=1.0)
    if cfg.train.threads:
        import torch
        torch.set_num_threads(int(cfg.train.threads))   # process-wide
    if writer:
        if resume is None:
            writer.write_config(cfg.to_dict())
        writer.write_status("running", device=str(device))
    dataset_written = False
    if dataset is None and dist is not None and resume is None and run_dir is not None:
        dataset = _prepared_by_rank0(cfg, writer, dist, run_dir, say)
        dataset_written = True
    elif dataset is None:
        say("preparing data ...")
        dataset = build_dataset(cfg)
    tasks = build_tasks(cfg, dataset)
    degenerate, dep_warnings = label_dependence_warnings(dataset, tasks)
    for w in dep_warnings:
        if w not in progress.warnings:      # a resumed run carries it already
            warn(w)
    model = build_model_for(cfg, dataset, tasks)
    if writer and resume is None:
        writer.write_model_info(model_info(model, tasks, dataset))
        if write_dataset and not dataset_written:
            writer.write_dataset(dataset)
    if resume is not None:
        say(f"resuming {cfg.arch} after epoch {resume['epoch']} of {cfg.train.epochs} on {describe_device(device)}")
    else:
        say(f"training {cfg.arch} on {describe_device(device)}: {len(tasks)} tasks, "
            f"{dataset.n_rows('train')} training rows"
            + (f", {dist.world} processes ({dist.backend})" if dist is not None else ""))
    data = dataset.to_device(device)
    phases = ["multi-task"]
    if cfg.train.baselines:
        phases += [f"baseline {i + 1} of {len(tasks)} ({t.name})" for i, t in enumerate(tasks)]
    if cfg.train.cv_folds > 1:
        phases += [f"fold {i + 1} of {cfg.train.cv_folds}" for i in range(cfg.train.cv_folds)]
    progress.phases = phases
    progress.phase_index = 0
    progress.step = "training"
    progress.epochs = cfg.train.epochs
    has_valid = "valid" in data.rows and data.n_rows("valid") > 0
    progress.patience = int(cfg.train.early_stopping.patience) if has_valid else 0   # 0: runs to the cap

    def on_batch(epoch, batch, n_batches):
        progress.batch_done(epoch, batch, n_batches)

    def epoch_ended(rec, hist):
        progress.epoch_end(rec, hist)
        if on_epoch is not None:
            on_epoch(rec, hist)

    trainer = Trainer(model, tasks, cfg.train, device, stop_event=stop_event, on_batch=on_batch,
                      on_log=on_log, on_epoch=epoch_ended, writer=writer, history=history, on_warning=warn)
    res = trainer.fit(data, resume=resume, evaluate_test=False)
    if dist is not None and run_dir is not None:
        write_rank_stats(run_dir, dist, trainer, res.samples_per_s)
    if res.status == "finished" and "test" in data.rows and data.n_rows("test") > 0:
        progress.start_step("test evaluation", total=data.n_rows("test"))
        say("evaluating on the test split ...")
        res.test, test_preds = evaluate_test(trainer, data)
        progress.step_done(data.n_rows("test"))
        if writer and test_preds is not None:
            writer.write_predictions("test", *test_preds, row_id=dataset.row_ids("test"))
    metrics = res.metrics_dict()
    metrics["arch"] = cfg.arch
    if dist is not None:
        metrics["distributed"] = {"world_size": dist.world, "backend": dist.backend,
                                  "global_batch_size": int(cfg.train.batch_size)}
    if degenerate:
        metrics["degenerate_tasks"] = degenerate      # {task: "item" | "user"}: see the warnings
    status = res.status
    if status == "finished":
        progress.start_step("ranking")
        if dist is None or dist.is_main:         # ranking needs no other rank (they wait for rank 0)
            metrics.update(rank_test(cfg, model, data, tasks, on_progress=progress.step_done, log=say))
            if metrics["ranking_info"]["status"] != "done":
                say(f"test ranking {metrics['ranking_info']['status']}: {metrics['ranking_info']['reason']}")
    if status == "finished" and cfg.train.baselines:
        from mtlrec.training.baselines import train_baselines
        progress.start_phase(1)
        base = train_baselines(cfg, dataset, tasks, res.test, data=data, device=device, stop_event=stop_event,
                               on_batch=on_batch, progress=progress, log=say)
        metrics.update(base)
        if base.get("status") == "cancelled":
            status = "cancelled"
    if status == "finished" and cfg.train.cv_folds > 1:
        progress.start_phase(len(phases) - cfg.train.cv_folds)
        metrics["cv"] = cross_validate(cfg, dataset, tasks, device=device, stop_event=stop_event,
                                       on_batch=on_batch, progress=progress, log=say)
        if metrics["cv"].get("status") == "cancelled":
            status = "cancelled"
    metrics["status"] = status
    metrics["warnings"] = list(progress.warnings)
    if status == "finished":
        progress.phase_index = len(phases)
        progress.start_step("done")
    error = None
    if writer:
        writer.write_history(history.to_dict())
        writer.write_metrics(metrics)
        if res.best_state is not None:
            writer.write_model(res.best_state)
        has_model = (writer.dir / "model.pt").is_file()
        if status == "finished" and not has_model:     # never "finished" without a model
            raise TrainingError("training ended but no model was saved (no best epoch on the validation "
                                "split). Fix: check the validation labels of the early-stopping task")
        if status == "cancelled" and not has_model:
            error = "cancelled before the first epoch ended; no model was saved"
        writer.write_status(status, error=error, device=str(device), warnings=list(progress.warnings),
                            has_model=has_model)
        if status == "finished":     # nothing left to resume; cancelled/failed runs keep theirs
            writer.remove_checkpoint()
    return RunResult(run_dir=writer.dir if writer is not None else None, status=status,
                     device=str(device), metrics=metrics, history=history, model=model,
                     dataset=dataset, tasks=tasks)


def fold_dataset(dataset, train_idx, valid_idx):
    """A PreparedDataset whose train/valid are folds of the original train+valid rows (test kept)."""
    import numpy as np
    from mtlrec.dataset import PreparedDataset
    pool = {k: np.concatenate([dataset.rows["train"][k], dataset.rows["valid"][k]])
            for k in dataset.rows["train"] if "valid" in dataset.rows and k in dataset.rows["valid"]}
    rows = {"train": {k: v[train_idx] for k, v in pool.items()},
            "valid": {k: v[valid_idx] for k, v in pool.items()}}
    if "test" in dataset.rows:
        rows["test"] = dataset.rows["test"]
    return PreparedDataset(dataset.fields, dataset.labels, rows, dataset.user_table, dataset.item_table,
                           dataset.user_ids, dataset.item_ids, dataset.meta, dataset.item_info, dataset.user_info)


CV_SCHEMES = {
    "time": "time-ordered folds: each fold trains on earlier rows and validates on the next later block",
    "user": "folds grouped by user: a user's rows are all in the training part or all in the validation part",
    "rows": "folds of shuffled rows",
}


def cv_fold_indices(dataset, k: int, seed: int = 0) -> tuple[str, list[tuple]]:
    """(scheme, k (train, valid) index pairs) over the train+valid rows of ``dataset`` (train first).

    A temporal split (``meta["prep"]["split"] == "temporal"``) with row times gets time-ordered folds
    (:func:`mtlrec.metrics.temporal_fold_indices`); otherwise rows with users get folds grouped by
    user (:func:`mtlrec.metrics.group_kfold_indices`); data without users, shuffled rows. ``scheme``
    is a key of ``CV_SCHEMES``."""
    import numpy as np
    from mtlrec.metrics import group_kfold_indices, kfold_indices, temporal_fold_indices
    from mtlrec.prep.pipeline import TIME_KEY

    def pooled(key):
        parts = [dataset.rows[s].get(key) for s in ("train", "valid") if s in dataset.rows]
        return None if any(p is None for p in parts) else np.concatenate(parts)

    n = dataset.n_rows("train") + (dataset.n_rows("valid") if "valid" in dataset.rows else 0)
    split = ((dataset.meta or {}).get("prep") or {}).get("split")
    times = pooled(TIME_KEY)
    if split == "temporal" and times is not None and np.isfinite(times).all():
        return "time", temporal_fold_indices(times, k)
    users = pooled("user_index")
    if users is not None and len(users) == n and (users >= 0).all():
        return "user", group_kfold_indices(users, k, seed=seed)
    return "rows", kfold_indices(n, k, seed=seed)


def cross_validate(cfg: RunConfig, dataset, tasks, *, device=None, stop_event=None, on_batch=None,
                   progress: Progress | None = None, log: Callable | None = None) -> dict:
    """k-fold CV over train+valid (k = cfg.train.cv_folds; folds from :func:`cv_fold_indices`: by time
    for a temporal split, grouped by user otherwise): per fold the held-out fold's metrics (at the
    best epoch) and the test metrics; mean/std per task metric."""
    from mtlrec.metrics import summarize_folds
    from mtlrec.training.trainer import Trainer
    k = int(cfg.train.cv_folds)
    folds = []
    status = "finished"
    first = progress.phase_index if progress else 0
    scheme, fold_idx = cv_fold_indices(dataset, k, seed=cfg.train.seed)
    for i, (tr, va) in enumerate(fold_idx):
        if progress:
            progress.start_phase(first + i)
        if log:
            log(f"cross-validation fold {i + 1}/{k}")
        ds_i = fold_dataset(dataset, tr, va)
        model = build_model_for(cfg, ds_i, tasks)
        res = Trainer(model, tasks, cfg.train, device, stop_event=stop_event, on_batch=on_batch,
                      on_epoch=progress.epoch_end if progress else None).fit(ds_i.to_device(device))
        if res.status != "finished":
            status = res.status
            break
        folds.append({"valid": res.valid, "test": res.test, "best_epoch": res.best_epoch})
    return {"status": status, "k": k, "scheme": scheme, "scheme_text": CV_SCHEMES[scheme], "folds": folds,
            "valid": summarize_folds([f["valid"] for f in folds]),
            "test": summarize_folds([f["test"] for f in folds])}
