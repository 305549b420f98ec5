"""Runs as TensorBoard event files (``torch.utils.tensorboard``; the ``tensorboard`` package is optional).

`export_tensorboard(run_dir, logdir)` writes the scalars of `mtlrec.tracking.scalars` -- the same
numbers as MLflow gets, named with "/" (``valid/click/auc``, so that TensorBoard groups them by split)
at the same steps -- and the configuration and tags as text, into ``logdir/<run folder name>/``. The
event files already there are replaced, so exporting twice leaves one copy of every point.
"""
from __future__ import annotations

import json
from pathlib import Path

from mtlrec.tracking import require
from mtlrec.tracking.scalars import flat_params, joined, read_folder, run_scalars, run_tags

EVENT_GLOB = "events.out.tfevents.*"


def event_dir(logdir, run_name: str) -> Path:
    """The folder of one run's event files: ``logdir/<run name>`` (made a safe folder name)."""
    from mtlrec.runs.folder import safe_run_name
    return Path(logdir) / (safe_run_name(run_name) or "run")


def open_writer(directory):
    """A ``SummaryWriter`` on ``directory`` (a DataError when tensorboard is not installed)."""
    require("tensorboard")
    from torch.utils.tensorboard import SummaryWriter
    Path(directory).mkdir(parents=True, exist_ok=True)
    return SummaryWriter(log_dir=str(directory))


def write_scalars(writer, scalars: list) -> int:
    for parts, step, value in scalars:
        writer.add_scalar(joined(parts, "/"), value, global_step=step)
    return len(scalars)


def write_text(writer, folder: dict, run_name: str) -> None:
    """The configuration (flattened, as MLflow's params) and the tags as TensorBoard text."""
    params = flat_params(folder["config"], folder["model_info"])
    table = "\n".join(["| key | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in params.items())])
    writer.add_text("mtlrec/config", table, global_step=0)
    writer.add_text("mtlrec/tags", "```\n" + json.dumps(run_tags(folder, run_name), indent=1) + "\n```", global_step=0)


def clear_events(directory: Path) -> int:
    """Remove the event files in ``directory`` (only those); how many."""
    old = list(Path(directory).glob(EVENT_GLOB)) if Path(directory).is_dir() else []
    for p in old:
        p.unlink(missing_ok=True)
    return len(old)


def export_tensorboard(run_dir, logdir) -> dict:
    """Write the run folder ``run_dir`` as event files under ``logdir`` (see the module doc) -> ``run``,
    ``logdir`` (the run's folder of event files), ``scalars`` written, ``replaced`` (old event files removed)."""
    from mtlrec.errors import DataError
    d = Path(run_dir)
    folder = read_folder(d)
    if not folder["config"]:
        raise DataError("not a run folder (config.json is missing or damaged)", file=str(d / "config.json"),
                        fix="give a folder written by 'python -m mtlrec train' or the app")
    require("tensorboard")
    out = event_dir(logdir, d.name)
    replaced = clear_events(out)
    writer = open_writer(out)
    try:
        n = write_scalars(writer, run_scalars(folder["history"], folder["metrics"]))
        write_text(writer, folder, d.name)
    finally:
        writer.close()
    return {"run": d.name, "logdir": str(out), "scalars": n, "replaced": replaced}
