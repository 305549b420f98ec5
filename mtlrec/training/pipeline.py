"""From a RunConfig to a finished run folder: data -> tasks -> model -> train -> baselines -> files.

``run_training`` is what both the CLI (``python -m mtlrec train``) and the background
``TrainingJob`` call. Progress is reported through a ``Progress`` object (phase, epoch,
batch; `mtlrec.training.progress`) so that callers can show it without touching the loop. What the
run builds (tasks, model, model.json) comes from `mtlrec.training.build`.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mtlrec.config import RunConfig
from mtlrec.errors import DataError, TrainingError
from mtlrec.prep.history import with_history
from mtlrec.training.build import build_model_for, build_tasks, model_info
from mtlrec.training.progress import Progress, progress_fields
from mtlrec.training.refit import fold_dataset, refit


# ---- data ---------------------------------------------------------------------------------
def load_raw(cfg: RunConfig):
    """(RawData, DataSpec) from ``cfg.data`` (spec suggested when the config gives no roles).

    With ``data.splits`` the split files are read and concatenated with a split column
    (``mtlrec.data.splits.load_split_files``); ``data.paths`` then holds the side tables."""
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
        from mtlrec.data.splits import load_split_files
        raw, spec = load_split_files(splits, paths), None
    elif (cfg.data.format or "").lower() == "census":
        from mtlrec.data.readers import load_census
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


@dataclass
class _Run:
    """What the steps of one `run_training` call share: the config, the folder's writer (None on
    ranks > 0 and without a folder), progress and history, the log, the process group, the device."""
    cfg: RunConfig
    writer: Any
    progress: Progress
    history: Any
    say: Callable[[str], None]
    stop_event: Any = None
    resume: dict | None = None
    dist: Any = None
    run_dir: Any = None
    device: Any = None
    tracking: Any = None      # LiveTracking (train.tracking), or None

    def warn(self, message: str) -> None:
        self.progress.warnings.append(message)
        self.say(f"warning: {message}")


def _run_training(cfg: RunConfig, writer, *, dataset, stop_event, progress: Progress, on_log, on_epoch,
                  history, write_dataset: bool, log, resume: dict | None = None, dist=None,
                  run_dir=None) -> RunResult:
    """`run_training` once the folder's writer is open: its steps, in order."""
    run = _Run(cfg, writer, progress, history, log or (lambda s: None), stop_event, resume, dist, run_dir)
    if progress.started is None:
        progress.started = time.time()
    _open_run(run)
    dataset, tasks, model, degenerate = _inputs(run, dataset, write_dataset)
    data = dataset.to_device(run.device)
    phases = _set_phases(run, tasks, data)
    try:
        return _tracked_run(run, dataset, tasks, model, degenerate, data, phases, on_log, on_epoch)
    except BaseException as e:
        if run.tracking is not None:     # the trackers closed, the MLflow run marked failed / killed
            run.tracking.abort("cancelled" if isinstance(e, KeyboardInterrupt) else "failed")
        raise


def _tracked_run(run: _Run, dataset, tasks, model, degenerate, data, phases, on_log, on_epoch) -> RunResult:
    """The run from training on, with its live tracking (``train.tracking``) opened first and
    completed once the folder is written."""
    from mtlrec.tracking.live import live_tracking
    writer, progress = run.writer, run.progress
    if writer is not None or run.dist is None:          # ranks > 0 of a data-parallel run log nothing
        run.tracking = live_tracking(run.cfg.train.tracking, writer.dir if writer else None, run.warn)
    trainer, res = _train_model(run, model, tasks, data, on_log, on_epoch)
    trainer, refit_info = _refit(run, trainer, res, tasks, dataset)
    model = trainer.model
    metrics = _test_metrics(run, trainer, res, dataset, data)
    if refit_info is not None:
        metrics["refit"] = refit_info
    if degenerate:
        metrics["degenerate_tasks"] = degenerate      # {task: "item" | "user"}: see the warnings
    status = _ranking_and_more(run, res, metrics, dataset, data, model, tasks, phases)
    metrics["status"] = status
    metrics["warnings"] = list(progress.warnings)
    if status == "finished":
        progress.phase_index = len(phases)
        progress.start_step("done")
    if writer:
        _write_ending(run, res, metrics, status)
        _finish_tracking(run, metrics)
    return RunResult(run_dir=writer.dir if writer is not None else None, status=status,
                     device=str(run.device), metrics=metrics, history=run.history, model=model,
                     dataset=dataset, tasks=tasks)


def _finish_tracking(run: _Run, metrics: dict) -> None:
    """The live tracking completed from the written folder; a tracker's failure is a warning that
    metrics.json and status.json then carry too (the run keeps its status)."""
    if run.tracking is None:
        return
    tracking, run.tracking = run.tracking, None
    if tracking.finish():
        metrics["warnings"] = list(run.progress.warnings)
        run.writer.write_metrics(metrics)
        run.writer.update_status(warnings=list(run.progress.warnings))


def _open_run(run: _Run) -> None:
    """Mark the folder "running" (carrying a resumed run's warnings), start its heartbeat (every
    second with progress.json for a data-parallel run, which is followed through the folder),
    choose the device and the CPU threads, write config.json of a new run."""
    cfg, writer, progress, dist = run.cfg, run.writer, run.progress, run.dist
    resumed = {}
    if run.resume is not None:
        resumed = {"resumed_from_epoch": int(run.resume["epoch"])}
        for w in run.resume.get("warnings") or []:
            if w not in progress.warnings:
                progress.warnings.append(w)
    if writer:
        writer.write_status("running", warnings=list(progress.warnings), **resumed)
        writer.start_heartbeat()
        if run.resume is None:      # a folder trained before: its old checkpoint is not this run's
            writer.remove_checkpoint()
    cfg.train.validate()
    from mtlrec.device import pick_device
    run.device = dist.device if dist is not None else pick_device(cfg.train.device)
    if writer and dist is not None:           # followed through the folder: progress.json every second
        history = run.history
        writer.progress_source = lambda: {**progress_fields(progress), "world": dist.world,
                                          "recent_batches": recent_batch_records(history, progress.epoch)}
        writer.stop_heartbeat()
        writer.start_heartbeat(interval=1.0)
    if cfg.train.threads:
        import torch
        torch.set_num_threads(int(cfg.train.threads))   # process-wide
    if writer:
        if run.resume is None:
            writer.write_config(cfg.to_dict())
        writer.write_status("running", device=str(run.device))


def _inputs(run: _Run, dataset, write_dataset: bool):
    """(dataset, tasks, model, degenerate tasks): the dataset given, prepared by rank 0 of a new
    data-parallel run, or prepared here; the tasks (warning of labels that belong to the item or
    the user) and the seeded model; a new run's model.json and dataset/ written."""
    from mtlrec.device import describe_device
    cfg, writer, dist, resume = run.cfg, run.writer, run.dist, run.resume
    dataset_written = False
    if dataset is None and dist is not None and resume is None and run.run_dir is not None:
        dataset = _prepared_by_rank0(cfg, writer, dist, run.run_dir, run.say)
        dataset_written = True
    elif dataset is None:
        run.say("preparing data ...")
        dataset = build_dataset(cfg)
    dataset = with_history(dataset, cfg.history)
    tasks = build_tasks(cfg, dataset)
    degenerate, dep_warnings = label_dependence_warnings(dataset, tasks)
    for w in dep_warnings:
        if w not in run.progress.warnings:      # a resumed run carries it already
            run.warn(w)
    model = build_model_for(cfg, dataset, tasks)
    if writer and resume is None:
        writer.write_model_info(model_info(model, tasks, dataset))
        if write_dataset and (not dataset_written or cfg.history is not None):
            writer.write_dataset(dataset)
    if resume is not None:
        run.say(f"resuming {cfg.arch} after epoch {resume['epoch']} of {cfg.train.epochs} on "
                f"{describe_device(run.device)}")
    else:
        run.say(f"training {cfg.arch} on {describe_device(run.device)}: {len(tasks)} tasks, "
                f"{dataset.n_rows('train')} training rows"
                + (f", {dist.world} processes ({dist.backend})" if dist is not None else ""))
    return dataset, tasks, model, degenerate


def _set_phases(run: _Run, tasks, data) -> list[str]:
    """The run's phases (the multi-task model, then a baseline per task, then the folds) into
    ``progress``, which starts training the first; without a validation split there is no early
    stopping, so the ETA counts every epoch (patience 0)."""
    cfg, progress = run.cfg, run.progress
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
    return phases


def _train_model(run: _Run, model, tasks, data, on_log, on_epoch):
    """(trainer, TrainResult) of the multi-task model (continued from the checkpoint when
    resuming; the test split is scored after, by `_test_metrics`); a data-parallel rank writes
    its own statistics."""
    from mtlrec.training.trainer import Trainer
    progress = run.progress

    # the per-epoch hooks: progress, the live tracking (train.tracking), the caller's
    hooks = [h for h in (progress.epoch_end, run.tracking and run.tracking.epoch_end, on_epoch) if h]

    def epoch_ended(rec, hist):
        for hook in hooks:
            hook(rec, hist)

    trainer = Trainer(model, tasks, run.cfg.train, run.device, stop_event=run.stop_event,
                      on_batch=progress.batch_done, on_log=on_log, on_epoch=epoch_ended, writer=run.writer,
                      history=run.history, on_warning=run.warn)
    res = trainer.fit(data, resume=run.resume, evaluate_test=False)
    if run.dist is not None and run.run_dir is not None:
        write_rank_stats(run.run_dir, run.dist, trainer, res.samples_per_s)
    return trainer, res


def _refit(run: _Run, trainer, res, tasks, dataset):
    """(trainer, refit info or None): with ``train.refit`` after a finished training with a
    validation split, the trainer of a new model trained on train + valid for the best epoch count
    (`mtlrec.training.refit`), whose weights become ``res.best_state`` (the run's model.pt) and whose
    status ``res.status``; otherwise the trainer as it is (and a warning when refit cannot run)."""
    if not run.cfg.train.refit or res.status != "finished":
        return trainer, None
    if not dataset.n_rows("valid") or res.best_epoch is None or run.dist is not None:
        why = ("it needs a validation split to choose the epoch count" if not dataset.n_rows("valid") else
               "it does not run data-parallel" if run.dist is not None else "no best epoch was chosen")
        run.warn(f"train.refit was skipped: {why}; the test metrics are the early-stopping model's")
        return trainer, None
    run.progress.start_step("refit on train + valid")
    run.say(f"refitting on train + valid for {res.best_epoch} epochs ...")
    new, refit_res, info = refit(run.cfg, dataset, tasks, res.best_epoch, device=run.device,
                                 stop_event=run.stop_event, on_batch=run.progress.batch_done)
    res.best_state, res.status = refit_res.best_state, refit_res.status
    return new, info


def _test_metrics(run: _Run, trainer, res, dataset, data) -> dict:
    """metrics.json's training part: the result, with the test split scored once by the best model
    (its predictions written to the folder), the architecture and the process group."""
    progress = run.progress
    if res.status == "finished" and "test" in data.rows and data.n_rows("test") > 0:
        progress.start_step("test evaluation", total=data.n_rows("test"))
        run.say("evaluating on the test split ...")
        res.test, test_preds = evaluate_test(trainer, data)
        progress.step_done(data.n_rows("test"))
        if run.writer and test_preds is not None:
            run.writer.write_predictions("test", *test_preds, row_id=dataset.row_ids("test"))
    metrics = res.metrics_dict()
    metrics["arch"] = run.cfg.arch
    if res.status == "finished":
        from mtlrec.training.baselines import mean_baselines
        base = mean_baselines(dataset, trainer.tasks)       # distribution tasks: the training mean
        if base:
            metrics["task_baseline"] = base
    if run.dist is not None:
        metrics["distributed"] = {"world_size": run.dist.world, "backend": run.dist.backend,
                                  "global_batch_size": int(run.cfg.train.batch_size)}
    return metrics


def _ranking_and_more(run: _Run, res, metrics: dict, dataset, data, model, tasks, phases) -> str:
    """After a finished training: the ranking over the whole catalogue (rank 0 only: the others
    wait), then the single-task baselines and the cross-validation folds as configured, into
    ``metrics``; returns the run's status ("cancelled" when a later phase was)."""
    cfg, progress, say = run.cfg, run.progress, run.say
    status = res.status
    if status == "finished":
        progress.start_step("ranking")
        if run.dist is None or run.dist.is_main:         # ranking needs no other rank (they wait for rank 0)
            metrics.update(rank_test(cfg, model, data, tasks, on_progress=progress.step_done, log=say))
            if metrics["ranking_info"]["status"] != "done":
                say(f"test ranking {metrics['ranking_info']['status']}: {metrics['ranking_info']['reason']}")
    if status == "finished" and cfg.train.baselines:
        from mtlrec.training.baselines import train_baselines
        progress.start_phase(1)
        base = train_baselines(cfg, dataset, tasks, res.test, data=data, device=run.device,
                               stop_event=run.stop_event, on_batch=progress.batch_done, progress=progress, log=say)
        metrics.update(base)
        if base.get("status") == "cancelled":
            status = "cancelled"
    if status == "finished" and cfg.train.cv_folds > 1:
        progress.start_phase(len(phases) - cfg.train.cv_folds)
        metrics["cv"] = cross_validate(cfg, dataset, tasks, device=run.device, stop_event=run.stop_event,
                                       on_batch=progress.batch_done, progress=progress, log=say)
        if metrics["cv"].get("status") == "cancelled":
            status = "cancelled"
    return status


def _write_ending(run: _Run, res, metrics: dict, status: str) -> None:
    """history.json, metrics.json, the best model and the final status.json; a finished run drops
    its checkpoint (nothing left to resume) and is never "finished" without a model."""
    writer = run.writer
    error = None
    writer.write_history(run.history.to_dict())
    writer.write_metrics(metrics)
    if res.best_state is not None:
        writer.write_model(res.best_state)
    has_model = (writer.dir / "model.pt").is_file()
    if status == "finished" and not has_model:     # never "finished" without a model
        raise TrainingError("training ended but no model was saved (no best epoch on the validation "
                            "split). Fix: check the validation labels of the early-stopping task")
    if status == "cancelled" and not has_model:
        error = "cancelled before the first epoch ended; no model was saved"
    writer.write_status(status, error=error, device=str(run.device), warnings=list(run.progress.warnings),
                        has_model=has_model)
    if status == "finished":     # nothing left to resume; cancelled/failed runs keep theirs
        writer.remove_checkpoint()


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
    from mtlrec.prep.assemble import TIME_KEY

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
