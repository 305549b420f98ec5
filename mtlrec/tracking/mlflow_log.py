"""Runs logged to MLflow (``mlflow-skinny``, optional: imported here, when used).

`export_mlflow(run_dir, tracking_uri, experiment)` logs one run folder: its params, every scalar
with its step, its tags, and its files as artifacts -- ``report.html`` (`mtlrec.runs.report`), the
model weights ``model.pt`` with ``model.json`` (what rebuilds the model), ``config.json``,
``metrics.json`` and ``history.json`` (what `mtlrec.tracking.scalars` documents).

Idempotent: the MLflow run of an mtlrec run is the one of the experiment tagged
``mtlrec.run_id = <run folder name>``; a later export reuses it and logs only what it lacks (params
not yet set, metric points whose step is not there yet), sets the tags again and replaces the
artifacts. So exporting twice leaves one MLflow run with one point per step, and the live logging of
`mtlrec.tracking.live` is completed, not duplicated, by an export.

Tracking URIs: ``file:`` URIs and plain folders are MLflow's file store, which MLflow 3 only opens
with ``MLFLOW_ALLOW_FILE_STORE=true`` -- mtlrec sets it (unless the environment says otherwise)
since ``mlflow-skinny`` has no database backend; ``http(s)://`` reaches a tracking server;
``sqlite:`` and other databases need the full ``mlflow`` package. A server that does not answer is
given up after about 10 s (`HTTP_DEFAULTS`: 3 retries, backoff 1 s, 30 s timeout, each unless the
environment sets it) rather than MLflow's ~4 minutes.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from mtlrec.errors import DataError
from mtlrec.tracking import DEFAULT_EXPERIMENT, require
from mtlrec.tracking.scalars import flat_params, joined, read_folder, run_scalars, run_tags

STATUS = {"finished": "FINISHED", "failed": "FAILED", "cancelled": "KILLED", "interrupted": "KILLED"}
ARTIFACTS = ("model.pt", "model.json", "config.json", "metrics.json", "history.json")
RUN_TAG = "mtlrec.run_id"
# a tracking server that does not answer is given up after ~10 s (unless the environment says otherwise)
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


def is_file_store(uri: str) -> bool:
    scheme = urlparse(str(uri)).scheme
    return scheme in ("", "file") or len(scheme) == 1        # a path, file:, a Windows drive letter


def client_for(tracking_uri: str):
    """An ``MlflowClient`` for ``tracking_uri`` (a DataError when mlflow is missing or the URI is empty)."""
    if not str(tracking_uri or "").strip():
        raise DataError("no MLflow tracking URI was given",
                        fix="give --tracking-uri file:/path/to/mlruns (a folder) or http://host:5000 (a server)")
    require("mlflow")
    if is_file_store(tracking_uri):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    for k, v in HTTP_DEFAULTS.items():      # MLflow's own defaults wait ~4 min for a server that is down
        os.environ.setdefault(k, v)
    from mlflow.tracking import MlflowClient
    with said_clearly(tracking_uri):
        return MlflowClient(tracking_uri=str(tracking_uri))


@contextlib.contextmanager
def said_clearly(tracking_uri: str):
    """MLflow's exceptions (and a database URI without its packages) as a DataError naming the URI."""
    from mlflow.exceptions import MlflowException
    try:
        yield
    except MlflowException as e:
        if "unsupported URI" in str(e) or "sqlalchemy" in str(e):
            raise DataError(f"MLflow at {tracking_uri}: mlflow-skinny cannot open this kind of tracking URI",
                            fix="use a file: URI or an http:// tracking server, or pip install mlflow for a "
                                "database backend (sqlite: ...)") from None
        raise DataError(f"MLflow at {tracking_uri}: {e.message.splitlines()[0] if e.message else e}",
                        fix="check the tracking URI (a file: folder you may write, or a running tracking "
                            "server) and the experiment name") from None
    except ModuleNotFoundError as e:
        raise DataError(f"the tracking URI {tracking_uri} needs the package {e.name}, which mlflow-skinny lacks",
                        fix="use a file: URI or an http:// tracking server, or pip install mlflow for a "
                            "database backend") from None


def experiment_id(client, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name)
    if exp.lifecycle_stage == "deleted":
        raise DataError(f"the MLflow experiment '{name}' was deleted",
                        fix="restore it (mlflow experiments restore) or give another experiment name")
    return exp.experiment_id


def open_run(client, exp_id: str, run_name: str, tags: dict, start_s: float | None = None) -> tuple[str, bool]:
    """(MLflow run id, created): the run tagged ``mtlrec.run_id = run_name``, created when there is none."""
    found = client.search_runs([exp_id], filter_string=f"tags.`{RUN_TAG}` = '{run_name}'", max_results=1)
    if found:
        return found[0].info.run_id, False
    start_ms = int((start_s or time.time()) * 1000)
    r = client.create_run(exp_id, start_time=start_ms, tags=tags, run_name=tags.get("mtlrec.name") or run_name)
    return r.info.run_id, True


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i:i + n]


def log_params(client, run_id: str, params: dict) -> int:
    """The params the run does not have yet (MLflow params cannot change); returns how many."""
    from mlflow.entities import Param
    have = client.get_run(run_id).data.params
    new = [Param(k, v) for k, v in params.items() if k not in have]
    for chunk in _chunks(new, 100):
        client.log_batch(run_id, params=chunk)
    return len(new)


def log_tags(client, run_id: str, tags: dict) -> None:
    from mlflow.entities import RunTag
    for chunk in _chunks([RunTag(k, v) for k, v in tags.items()], 100):
        client.log_batch(run_id, tags=chunk)


def log_scalars(client, run_id: str, scalars: list, *, only_new: bool = True) -> int:
    """Log ``(parts, step, value)`` scalars as metric points (name: the parts joined by "."); with
    ``only_new`` the steps a metric already has are left out. Returns the points logged."""
    from mlflow.entities import Metric
    have: dict[str, set] = {}
    if only_new:
        present = client.get_run(run_id).data.metrics
        names = {joined(p) for p, _, _ in scalars} & set(present)
        have = {n: {m.step for m in client.get_metric_history(run_id, n)} for n in names}
    now = int(time.time() * 1000)
    new = [Metric(joined(p), v, now, step) for p, step, v in scalars if step not in have.get(joined(p), ())]
    for chunk in _chunks(new, 1000):
        client.log_batch(run_id, metrics=chunk)
    return len(new)


def log_files(client, run_id: str, d: Path, *, report: bool, explain: bool) -> list[str]:
    """The run's files (`ARTIFACTS`) and, with ``report``, report.html as artifacts; their names."""
    names = []
    for name in ARTIFACTS:
        if (d / name).is_file():
            client.log_artifact(run_id, str(d / name))
            names.append(name)
    if report:
        from mtlrec.runs.report import report_html
        with tempfile.TemporaryDirectory(prefix="mtlrec-report-") as tmp:
            p = Path(tmp) / "report.html"
            p.write_text(report_html(d, explain=explain), encoding="utf-8")
            client.log_artifact(run_id, str(p))
        names.append("report.html")
    return names


def export_mlflow(run_dir, tracking_uri: str, experiment: str = DEFAULT_EXPERIMENT, *, report: bool = True,
                  explain: bool = True) -> dict:
    """Log the run folder ``run_dir`` to MLflow (see the module doc) -> what was done: ``run``,
    ``mlflow_run_id``, ``created`` (False: an earlier MLflow run of it was completed), ``params`` and
    ``metric_points`` logged now, ``artifacts``, ``experiment_id``, ``status``."""
    d = Path(run_dir)
    folder = read_folder(d)
    if not folder["config"]:
        raise DataError("not a run folder (config.json is missing or damaged)", file=str(d / "config.json"),
                        fix="give a folder written by 'python -m mtlrec train' or the app")
    client = client_for(tracking_uri)
    with said_clearly(tracking_uri):
        exp = experiment_id(client, experiment)
        tags = run_tags(folder, d.name)
        run_id, created = open_run(client, exp, d.name, tags, status_time(d, "started_at"))
        n_params = log_params(client, run_id, flat_params(folder["config"], folder["model_info"]))
        n_points = log_scalars(client, run_id, run_scalars(folder["history"], folder["metrics"]))
        log_tags(client, run_id, tags)
        artifacts = log_files(client, run_id, d, report=report, explain=explain)
        status = STATUS.get(folder["row"].get("status"))
        if status is not None:
            ended = status_time(d, "ended_at")
            client.set_terminated(run_id, status, end_time=int(ended * 1000) if ended else None)
    return {"run": d.name, "mlflow_run_id": run_id, "created": created, "experiment_id": exp,
            "params": n_params, "metric_points": n_points, "artifacts": artifacts,
            "status": status or "RUNNING"}


def status_time(d: Path, key: str) -> float | None:
    from mtlrec.runs.library import finite, read_obj
    return finite((read_obj(d / "status.json") or {}).get(key))
