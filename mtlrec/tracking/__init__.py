"""Experiment tracking: a run's parameters, per-epoch metrics, training dynamics, test metrics and
files logged to MLflow or written as TensorBoard event files (optional extras).

* `scalars` -- what is logged, as plain data: the flattened configuration (params), every scalar as
  (name parts, step, value), the tags. One home for both trackers, so they log the same numbers.
* `mlflow_log` -- `export_mlflow(run_dir, tracking_uri, experiment)`: an MLflow run per mtlrec run,
  found again by its ``mtlrec.run_id`` tag (a second export completes it, it never duplicates).
* `tensorboard_log` -- `export_tensorboard(run_dir, logdir)`: event files in ``logdir/<run>``
  (replaced on every export), through ``torch.utils.tensorboard``.
* `live` -- `LiveTracking`: the run config's ``train.tracking`` logged while the run trains, from a
  background thread fed by the trainer's per-epoch hook; a tracker that fails becomes a run warning.

``mlflow-skinny`` and ``tensorboard`` are optional (``requirements-extras.txt``): they are imported
only here, when used, and a missing one is a `DataError` that says how to install it.
"""
from __future__ import annotations

import importlib.util
import os

from mtlrec.errors import DataError

EXTRAS_FIX = "pip install -r requirements-extras.txt"
# module -> (what it is for, the package that provides it)
EXTRAS = {"mlflow": ("MLflow tracking", "mlflow-skinny"),
          "tensorboard": ("TensorBoard event files", "tensorboard")}
# where the app's Train page logs when the visitor asks (set by the server's operator, never typed
# by a visitor: a tracking URI or folder is a place on the server)
SERVER_ENV = {"mlflow_uri": "MTLREC_MLFLOW_URI", "tensorboard_dir": "MTLREC_TENSORBOARD_DIR"}
DEFAULT_EXPERIMENT = "mtlrec"


def installed(module: str) -> bool:
    """Whether the optional package ``module`` ("mlflow" or "tensorboard") can be imported."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str) -> None:
    """A `DataError` saying how to install ``module`` when it is not installed."""
    if not installed(module):
        what, package = EXTRAS[module]
        raise DataError(f"{what} needs the optional package {package}, which is not installed",
                        fix=EXTRAS_FIX)


def server_targets() -> dict:
    """{"mlflow_uri": ..., "tensorboard_dir": ...}: the operator's targets for runs started in the
    app (`SERVER_ENV`), None where not set."""
    return {k: (os.environ.get(env) or "").strip() or None for k, env in SERVER_ENV.items()}
