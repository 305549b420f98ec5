"""Run configuration: one JSON file says which data, which tasks, which model, how to train.

Config format (``python -m mtlrec train --config FILE``)::

    {
      "name": "sample-mmoe",                       # optional, used in the run folder name (made a safe
                                               # slug: letters, digits, . _ -; never leaves runs/)
      "data": {
        "paths": ["interactions.csv", "users.csv", "items.csv"],   # files or one folder
        "splits": null,                            # or one interactions file per split (see below)
        "format": null,                            # null = detect; "census" = Census-Income folder
        "roles": {                                 # a DataSpec; omit to let mtlrec suggest one
          "user_id": "user_id", "item_id": "item_id", "timestamp": "timestamp",
          "labels": {"click": "binary", "like": "binary", "rating": "regression",
                     "genres": "multilabel"},
          "categorical": {"gender": "user", "occupation": "user"},
          "numeric": {"age": "user", "year": "item"},
          "text": {}, "multilabel_sep": "|"},
        "prep": {                                  # PrepConfig fields (mtlrec/prep/config.py)
          "split": "random", "valid_frac": 0.1, "test_frac": 0.1, "negative_ratio": 0,
          "split_column": "",                      # split "column": the train/valid/test column
          "negative_sampling": "uniform",          # or "popularity" (count^0.75); training negatives
                                                   # are drawn anew each epoch, valid/test once (seeded)
          "derived_labels": [{"name": "like", "source": "rating", "op": ">=", "threshold": 4}],
          "interest_labels": [                     # user-level interest mining (mtlrec/prep/interest.py):
            {"name": "interest", "attribute": "genres",  # per row, the share of each genre among the
             "window": 10, "positive": "like"}]}   # user's next 10 "like" positives (a distribution)
      },
      "tasks": [                                   # one entry per task
        {"name": "click", "type": "binary", "label": "click", "weight": 1.0, "metric": "auc"},
        {"name": "rating", "type": "regression", "label": "rating", "metric": "rmse"},
        {"name": "genres", "type": "multilabel", "label": "genres"},   # item classification
        {"name": "interest", "type": "distribution", "label": "interest", "metric": "class_ndcg"}
      ],                                           # distribution metrics: class_ndcg (default, higher
                                                   # is better), kl, top1_accuracy; its loss is
                                                   # KL(actual || softmax(logits));
                                                   # "given": "click" makes a task conditional on
                                                   # another (a chain, see mtlrec/chain.py)
      "model": {"arch": "mmoe", "n_experts": 4, ...},   # arch: shared_bottom | mmoe (default) | ple | esmm | aitm;
                                                   # the other keys are the architecture's hparams
                                                   # (omitted = its defaults, incl. embedding_std 0.01);
                                                   # "history": {"length": 20, "encoder": "attention"}
                                                   # adds the user's last 20 items before each row
                                                   # (encoder "mean" or "attention"; absent = none;
                                                   # mtlrec/prep/history.py); for every architecture,
                                                   # "biases": true (per-user and per-item bias) and
                                                   # "interaction": "dot" (user·item dot product) add
                                                   # to the regression outputs (mtlrec/models/terms.py;
                                                   # both off by default)
      "train": {                                   # every key optional: omitted = the default shown
        "epochs": 50,                              # a cap; early stopping on valid ends runs before it
        "batch_size": 1024, "lr": 0.003,
        "l2": 0.0,                                 # lambda of lambda*sum_i ||theta_i||^2 (task towers)
        "embedding_l2": 0.001,                     # mu of mu*||E||^2 (the embedding table)
        "weighting": "static",                     # loss-weighting strategy (registry name)
        "device": "auto",                          # auto | cuda | mps | cpu
        "amp": true,                               # mixed precision (CUDA only)
        "early_stopping": {"task": "click", "metric": "auc", "patience": 3},
        "seed": 0, "log_every": 50,
        "baselines": false,                        # also train one single-task model per task
        "cv_folds": 1,                             # k > 1: k-fold cross-validation on train+valid
                                                   # (folds grouped by user; by time for a temporal split)
        "threads": null,                           # CPU threads (process-wide); null = torch default
        "ranking_k": 10,                           # K of the final test ranking metrics (0 = skip the ranking)
        "ranking_users": "auto",                   # at most this many test users ranked (seeded sample);
                                                   # "auto": 500, fewer on a catalogue of over 100,000 items
        "dynamics_every": 20,                      # training dynamics on ~1 batch in 20 (0 = off)
        "refit": false,                            # true: after early stopping, a new model trained on
                                                   # train + valid for the best epoch count is the run's
                                                   # model (its test metrics; metrics.json "refit")
        "tracking": null                           # live tracking: {"mlflow_uri", "experiment",
                                                   # "tensorboard_dir"} (mtlrec.tracking.live)
      },
      "text": {"enabled": false, "columns": [], "model": "all-MiniLM-L6-v2"}
    }

Paths in ``data.paths`` and ``data.splits`` are resolved relative to the folder of the config
file (absolute paths are kept).

A predefined split comes either from a column of the interactions holding train / valid / test
(``"prep": {"split": "column", "split_column": "fold"}``), or from one interactions file per
split: ``"splits": {"train": "train.csv", "test": "test.csv", "valid": "valid.csv"}`` (valid is
optional: without it ``prep.valid_frac`` of the train rows, seeded, become valid). The split
files must have the same columns; ``data.paths`` then holds only the users / items tables (or a
folder of them), or nothing. The MovieLens 100K pair ``u1.base`` / ``u1.test`` works either way:
``"paths": ["ml-100k/u1.base", "ml-100k/u1.test", "ml-100k/u.item", "ml-100k/u.user"]``, a folder
holding only that pair (and u.item, u.user), or ``data.splits``. Data read as a predefined split
uses it unless ``prep.split`` says otherwise. Every prepared row keeps its ``row_id``: its 0-based
position in the interactions file (with split files, in their concatenation train, valid, test;
the prepared dataset's ``meta["row_sources"]`` says which file each range came from). The shipped ``sample_data/config_movielens.json`` therefore says
``"../../shared/datasets/ml-latest-small"``: from ``sample_data/`` up to the repository
root, and from there to the shared datasets folder beside it.

Early stopping defaults to the first task and its default metric; the direction (higher
or lower is better) comes from the metric itself.

After training, the best model is also ranked on the test split (when the data has user
and item ids): per binary task, each sampled test user's positives are looked for in the
top ``train.ranking_k`` of the whole catalogue, with the items the user met in train and
valid left out. metrics.json gets ``"ranking": {task: {"recall@K", "ndcg@K", "hitrate@K",
"mrr"}}`` (empty without ids, without binary tasks, or with ``ranking_k`` 0) and
``"ranking_info"``: what was done (N of M users ranked over how many items, or why not). Every
ranked user scores every item, so the ranking costs users × items scored pairs: "auto" caps it
at 50 million (about 17 s for MMoE on a 2-core CPU, 2 min for PLE); ``ranking_k`` 0 switches it off. ``l2`` is applied as Adam weight decay
(2*lambda) on the task-tower parameters only, which gives exactly the gradient of
``lambda * sum_i ||theta_i||^2``; ``embedding_l2`` likewise on the embedding table of every
categorical input (ids included); the recorded losses do not include the penalties.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields as dc_fields
from pathlib import Path
from typing import Any

from mtlrec.errors import DataError, TrainingError

TASK_TYPES = ("binary", "regression", "multilabel", "distribution")
HISTORY_ENCODERS = ("mean", "attention")     # model.history.encoder (mtlrec.prep.history)
HISTORY_MAX_LENGTH = 200
HISTORY_DEFAULT_LENGTH = 20                  # model.history.length when omitted (bench/history.py)


def history_settings(settings) -> dict:
    """``model.history`` checked: {"length": int, "encoder": "mean" | "attention"}; a ValueError
    saying what is wrong and what is allowed."""
    if not isinstance(settings, dict):
        raise ValueError(f'model.history must be an object such as {{"length": 20, "encoder": "attention"}}, '
                         f"not {settings!r}")
    unknown = sorted(set(settings) - {"length", "encoder"})
    if unknown:
        raise ValueError(f"model.history: unknown key(s) {unknown}; known: ['encoder', 'length']")
    try:
        length = int(settings.get("length", HISTORY_DEFAULT_LENGTH))
    except (TypeError, ValueError):
        raise ValueError(f"model.history.length must be a whole number, not {settings.get('length')!r}") from None
    if not 1 <= length <= HISTORY_MAX_LENGTH:
        raise ValueError(f"model.history.length must be between 1 and {HISTORY_MAX_LENGTH}, not {length}")
    encoder = str(settings.get("encoder", "attention"))
    if encoder not in HISTORY_ENCODERS:
        raise ValueError(f"model.history.encoder must be one of {list(HISTORY_ENCODERS)}, not {encoder!r}")
    return {"length": length, "encoder": encoder}


TRACKING_KEYS = ("mlflow_uri", "experiment", "tensorboard_dir")


def tracking_settings(settings) -> dict:
    """``train.tracking`` checked: {"mlflow_uri": str, "experiment": str, "tensorboard_dir": str}, each
    optional (an empty or null value: that tracker is off); a ValueError saying what is wrong."""
    if not isinstance(settings, dict):
        raise ValueError('train.tracking must be an object such as {"mlflow_uri": "file:./mlruns", '
                         f'"tensorboard_dir": "tb"}}, not {settings!r}')
    unknown = sorted(set(settings) - set(TRACKING_KEYS))
    if unknown:
        raise ValueError(f"train.tracking: unknown key(s) {unknown}; known: {sorted(TRACKING_KEYS)}")
    for k, v in settings.items():
        if v is not None and not isinstance(v, str):
            raise ValueError(f"train.tracking.{k} must be a string (or null), not {v!r}")
    return {k: settings[k].strip() for k in TRACKING_KEYS if (settings.get(k) or "").strip()}


def _known(cls, d: dict, where: str) -> dict:
    """Keep known keys; unknown keys are an error that lists the valid ones."""
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise TrainingError(f"config section '{where}' must be a JSON object, not {type(d).__name__}")
    names = [f.name for f in dc_fields(cls)]
    unknown = [k for k in d if k not in names]
    if unknown:
        raise TrainingError(f"config section '{where}': unknown key(s) {', '.join(map(repr, unknown))}; "
                            f"valid keys: {', '.join(names)}")
    return dict(d)


@dataclass
class EarlyStoppingConfig:
    task: str | None = None        # default: the first task
    metric: str | None = None      # default: that task's metric
    patience: int = 3              # epochs without improvement before stopping (0 = never stop early)

    @classmethod
    def from_dict(cls, d: dict | None) -> "EarlyStoppingConfig":
        return cls(**_known(cls, d, "train.early_stopping"))


@dataclass
class TrainConfig:
    """Training settings. These defaults are THE defaults of mtlrec: the app's forms, the CLI, the
    shipped configs and the benchmarks start from them (docs/model-defaults.md has the
    measurements behind lr, embedding_l2 and the epoch cap)."""
    epochs: int = 50               # a cap: early stopping on the validation split ends runs long before
    batch_size: int = 1024
    lr: float = 3e-3
    l2: float = 0.0
    embedding_l2: float = 1e-3     # mu of mu*||E||^2 on the embedding table (Adam weight decay 2*mu)
    weighting: str = "static"
    device: str = "auto"
    amp: bool = True
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    seed: int = 0
    log_every: int = 50
    baselines: bool = False
    cv_folds: int = 1
    eval_batch_size: int = 65536
    optimizer: str = "adam"
    threads: int | None = None     # CPU threads for torch (process-wide); None = torch's default
    ranking_k: int = 10            # K of the final test ranking metrics; 0 = no ranking metrics
    ranking_users: int | str = "auto"   # at most this many test users ranked (seeded sample); "auto":
                                        # 500, fewer on a catalogue of over 100,000 items (mtlrec.ranking)
    dynamics_every: int = 20       # training dynamics on ~1 batch in k (>= 1 per epoch); 0 = off
    refit: bool = False            # after early stopping: a new model on train + valid for the best epoch
                                   # count is the run's model (mtlrec.training.refit)
    tracking: dict | None = None   # live experiment tracking: {"mlflow_uri", "experiment", "tensorboard_dir"}
                                   # (tracking_settings; mtlrec.tracking.live; docs/tracking.md)

    @classmethod
    def from_dict(cls, d: dict | None) -> "TrainConfig":
        kw = _known(cls, d, "train")
        kw["early_stopping"] = EarlyStoppingConfig.from_dict(kw.get("early_stopping"))
        return cls(**kw)

    def validate(self) -> None:
        from mtlrec.device import DEVICE_CHOICES
        checks = [
            (isinstance(self.epochs, int) and self.epochs >= 1, f"train.epochs must be an integer >= 1, not {self.epochs!r}"),
            (isinstance(self.batch_size, int) and self.batch_size >= 1,
             f"train.batch_size must be an integer >= 1, not {self.batch_size!r}"),
            (isinstance(self.lr, (int, float)) and self.lr > 0, f"train.lr must be > 0, not {self.lr!r}"),
            (isinstance(self.l2, (int, float)) and self.l2 >= 0, f"train.l2 must be >= 0, not {self.l2!r}"),
            (isinstance(self.embedding_l2, (int, float)) and self.embedding_l2 >= 0,
             f"train.embedding_l2 must be >= 0, not {self.embedding_l2!r}"),
            (isinstance(self.log_every, int) and self.log_every >= 1, f"train.log_every must be >= 1, not {self.log_every!r}"),
            (isinstance(self.cv_folds, int) and self.cv_folds >= 1, f"train.cv_folds must be >= 1, not {self.cv_folds!r}"),
            (isinstance(self.early_stopping.patience, int) and self.early_stopping.patience >= 0,
             f"train.early_stopping.patience must be >= 0, not {self.early_stopping.patience!r}"),
            (str(self.device).split(":")[0].lower() in DEVICE_CHOICES,
             f"train.device '{self.device}' is unknown; choose one of {', '.join(DEVICE_CHOICES)}"),
            (self.threads is None or (isinstance(self.threads, int) and self.threads >= 1),
             f"train.threads must be null or an integer >= 1, not {self.threads!r}"),
            (isinstance(self.ranking_k, int) and self.ranking_k >= 0,
             f"train.ranking_k must be an integer >= 0, not {self.ranking_k!r}"),
            (self.ranking_users == "auto" or (isinstance(self.ranking_users, int)
                                              and not isinstance(self.ranking_users, bool) and self.ranking_users >= 1),
             f'train.ranking_users must be "auto" or an integer >= 1, not {self.ranking_users!r}'),
            (isinstance(self.dynamics_every, int) and self.dynamics_every >= 0,
             f"train.dynamics_every must be an integer >= 0 (0 = off), not {self.dynamics_every!r}"),
            (isinstance(self.refit, bool), f"train.refit must be true or false, not {self.refit!r}"),
            (self.optimizer in OPTIMIZERS, f"train.optimizer '{self.optimizer}' is unknown; choose one of {', '.join(OPTIMIZERS)}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise TrainingError(msg)
        if self.tracking is not None:
            try:
                tracking_settings(self.tracking)
            except ValueError as e:
                raise TrainingError(str(e)) from None
        try:
            from mtlrec.weighting import WEIGHTINGS
        except ImportError:  # pragma: no cover - weighting package not installed yet
            return
        if self.weighting not in WEIGHTINGS:
            raise TrainingError(f"train.weighting '{self.weighting}' is unknown; choose one of {', '.join(WEIGHTINGS)}")


def train_defaults(keys=None) -> dict:
    """The default training settings (of ``keys``, default all) as a plain dict."""
    d = asdict(TrainConfig())
    return {k: d[k] for k in keys} if keys is not None else d


# optimizer name -> torch.optim class name (looked up lazily)
OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}


@dataclass
class TextConfig:
    enabled: bool = False
    columns: list[str] = field(default_factory=list)
    model: str = "all-MiniLM-L6-v2"

    @classmethod
    def from_dict(cls, d: dict | None) -> "TextConfig":
        return cls(**_known(cls, d, "text"))


@dataclass
class DataConfig:
    paths: list[str] = field(default_factory=list)
    format: str | None = None
    roles: dict | None = None
    prep: dict = field(default_factory=dict)
    splits: dict | None = None      # {"train": PATH, "test": PATH, "valid": PATH (optional)}

    @classmethod
    def from_dict(cls, d: dict | None) -> "DataConfig":
        kw = _known(cls, d, "data")
        if isinstance(kw.get("paths"), str):
            kw["paths"] = [kw["paths"]]
        if kw.get("splits") is not None:
            from mtlrec.data.splits import split_keys
            splits = split_keys(kw["splits"])       # a DataError names a bad or missing split
            if not all(isinstance(v, str) and v for v in splits.values()):
                raise DataError("data.splits: each split needs the path of one file", file="config",
                                fix='write data.splits as {"train": "train.csv", "test": "test.csv"}')
            kw["splits"] = splits
        return cls(**kw)

    @staticmethod
    def _resolve(p: str, base_dir: str | Path | None) -> Path:
        base = Path(base_dir) if base_dir else Path.cwd()
        q = Path(p).expanduser()
        return q if q.is_absolute() else (base / q).resolve()

    def resolved_paths(self, base_dir: str | Path | None) -> list[Path]:
        return [self._resolve(p, base_dir) for p in self.paths]

    def resolved_splits(self, base_dir: str | Path | None) -> dict[str, Path]:
        """{split: path} of ``splits`` (empty without split files)."""
        return {k: self._resolve(v, base_dir) for k, v in (self.splits or {}).items()}


# the architecture of a config without "model" (or without "model.arch"): the app's and the
# benchmarks' default too (mtlrec.app.workflow.DEFAULT_MODEL). Until issue 21 a config without "model"
# got shared_bottom; a run folder's model.json says what its run was trained with (mtlrec.runs.load).
DEFAULT_ARCH = "mmoe"


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tasks: list[dict] = field(default_factory=list)
    model: dict = field(default_factory=lambda: {"arch": DEFAULT_ARCH})
    train: TrainConfig = field(default_factory=TrainConfig)
    text: TextConfig = field(default_factory=TextConfig)
    name: str | None = None
    # folder the relative data paths are resolved against (not saved; set by load())
    base_dir: str | None = field(default=None, compare=False)

    # ---- (de)serialisation ---------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("base_dir", None)
        return d

    @classmethod
    def from_dict(cls, d: dict, base_dir: str | Path | None = None) -> "RunConfig":
        if not isinstance(d, dict):
            raise TrainingError("a run config must be a JSON object with sections data, tasks, model, train")
        kw = _known(cls, {k: v for k, v in d.items() if k != "base_dir"}, "top level")
        tasks = kw.get("tasks", [])
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            raise TrainingError("config 'tasks' must be a list of objects like "
                                '{"name": "click", "type": "binary", "label": "click"}')
        model = kw.get("model") or {"arch": DEFAULT_ARCH}
        if not isinstance(model, dict):
            raise TrainingError('config \'model\' must be an object like {"arch": "mmoe"}')
        return cls(data=DataConfig.from_dict(kw.get("data")), tasks=[dict(t) for t in tasks],
                   model=dict(model), train=TrainConfig.from_dict(kw.get("train")),
                   text=TextConfig.from_dict(kw.get("text")), name=kw.get("name"),
                   base_dir=str(base_dir) if base_dir is not None else None)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def load(cls, path) -> "RunConfig":
        p = Path(path)
        if not p.is_file():
            raise DataError("config file not found", file=str(path), fix="give the path of a JSON run config")
        try:
            d = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})", file=str(path),
                            fix="check the commas and quotes around that place") from None
        return cls.from_dict(d, base_dir=p.resolve().parent)

    def save(self, path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        from mtlrec.diskio import write_text
        return write_text(p, self.to_json())

    def copy(self) -> "RunConfig":
        return RunConfig.from_dict(self.to_dict(), base_dir=self.base_dir)

    # ---- convenience ----------------------------------------------------------------
    @property
    def arch(self) -> str:
        return str(self.model.get("arch", DEFAULT_ARCH))

    @property
    def hparams(self) -> dict[str, Any]:
        """The architecture's keyword arguments: ``model`` less ``arch`` and ``history``, plus the
        history encoder when the run has a history input."""
        hp = {k: v for k, v in self.model.items() if k not in ("arch", "history")}
        if self.history is not None:
            hp["history_encoder"] = self.history["encoder"]
        return hp

    @property
    def history(self) -> dict | None:
        """``model.history`` checked (`history_settings`), or None when the run has no history input."""
        h = self.model.get("history")
        if h is None or h is False:
            return None
        try:
            return history_settings(h)
        except ValueError as e:
            raise TrainingError(str(e)) from None

    def data_paths(self) -> list[Path]:
        return self.data.resolved_paths(self.base_dir)

    def split_paths(self) -> dict[str, Path]:
        """{train/valid/test: path} of ``data.splits`` (empty without split files)."""
        return self.data.resolved_splits(self.base_dir)


    def _check_chains(self, names: set) -> None:
        """A task's ``given`` names another task of the config (types are checked against the data later)."""
        for t in self.tasks:
            name, given = t.get("name") or t.get("label"), t.get("given")
            if given in (None, ""):
                continue
            if not isinstance(given, str) or given not in names or given == name:
                raise TrainingError(f"task '{name}': given {given!r} is not another task of this config; "
                                    f"choose one of {', '.join(sorted(names - {name})) or '(none)'}, or leave it out")

    def validate(self, label_names=None) -> None:
        """Check names against the registries (and the dataset's labels when given).

        Every message lists the valid options."""
        self.train.validate()
        if self.name is not None and not isinstance(self.name, str):
            raise TrainingError(f"config 'name' must be a string (it names the run folder), not {self.name!r}")
        try:
            from mtlrec.models import ARCHITECTURES
        except ImportError:  # pragma: no cover - models package not installed yet
            ARCHITECTURES = None
        if ARCHITECTURES is not None and self.arch not in ARCHITECTURES:
            raise TrainingError(f"model.arch '{self.arch}' is unknown; choose one of {', '.join(ARCHITECTURES)}")
        _ = self.history            # a TrainingError for a bad model.history
        if not self.tasks:
            raise TrainingError("the config has no tasks; add at least one, e.g. "
                                '{"name": "click", "type": "binary", "label": "click"}')
        names = set()
        for i, t in enumerate(self.tasks, 1):
            name = t.get("name") or t.get("label")
            if not name:
                raise TrainingError(f"task {i} has no name; give each task a 'name' and a 'label'")
            if name in names:
                raise TrainingError(f"task name '{name}' is used twice; task names must be unique")
            names.add(name)
            ttype = t.get("type")
            if ttype is not None and ttype not in TASK_TYPES:
                raise TrainingError(f"task '{name}': type '{ttype}' is unknown; choose one of {', '.join(TASK_TYPES)}")
            if label_names is not None:
                label = t.get("label", name)
                if label not in label_names:
                    raise TrainingError(f"task '{name}': label '{label}' is not in the data; "
                                        f"available labels: {', '.join(sorted(label_names)) or '(none)'}")
        self._check_chains(names)
        es = self.train.early_stopping
        if es.task is not None and es.task not in names:
            raise TrainingError(f"train.early_stopping.task '{es.task}' is not a task; choose one of {', '.join(names)}")
        if es.metric is not None:
            try:
                from mtlrec.metrics import METRICS
            except ImportError:  # pragma: no cover
                return
            if es.metric not in METRICS:
                raise TrainingError(f"train.early_stopping.metric '{es.metric}' is unknown; "
                                    f"choose one of {', '.join(METRICS)}")
