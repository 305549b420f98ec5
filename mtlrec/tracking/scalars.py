"""What a run logs to a tracker, as plain data (no tracker imported here).

* params: the run's configuration (config.json, with model.json's hyperparameters where the config
  leaves them to their defaults) flattened with dotted keys: ``train.lr``,
  ``train.early_stopping.patience``, ``tasks.click.type``, ``model.n_experts``; lists and empty
  objects as JSON; values cut to `MAX_PARAM_CHARS` (MLflow's limit).
* scalars: ``(parts, step, value)``, the name as a tuple of parts that trackers join (MLflow with
  ".", TensorBoard with "/"), each part made of letters, digits, "_", "-" and spaces:

  - per epoch (step = epoch): ``train.<task>.loss``, ``valid.<task>.loss``, ``valid.<task>.<metric>``,
    ``train.samples_per_s``, ``train.epoch_time_s``; the training dynamics where measured:
    ``dynamics.weight.<task>`` (loss weight, or a gradient method's implied weight),
    ``dynamics.grad_norm.<task>``, ``dynamics.cosine.<a>_vs_<b>``, ``dynamics.conflict.<a>_vs_<b>``,
    ``dynamics.gate_entropy.<task>``, ``dynamics.gate_share.<task>.<expert>``;
  - the run's result (step = its best epoch): ``test.<task>.<metric>``, the ranking over the catalogue
    ``test.<task>.recall_at_10`` ... and the multi-task gain ``gain.<task>`` where trained.
* tags: ``mtlrec.run_id`` (the run folder's name: how a second export finds the run again),
  ``architecture``, ``weighting``, ``dataset``, ``mtlrec.status``, ``mtlrec.best_epoch`` and the
  run's own tags.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

MAX_PARAM_CHARS = 6000       # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
MAX_TAG_CHARS = 8000         # MAX_TAG_VAL_LENGTH
MAX_KEY_CHARS = 250          # MAX_ENTITY_KEY_LENGTH


def part(name) -> str:
    """One part of a name: '@' as '_at_', every character but letters, digits, '_', '-' and space as '_'."""
    s = re.sub(r"[^\w\- ]", "_", str(name).replace("@", "_at_")).strip()
    return s or "_"


def joined(parts, sep: str = ".") -> str:
    return sep.join(part(p) for p in parts)[:MAX_KEY_CHARS]


def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _flat(prefix: str, v, out: dict) -> None:
    if isinstance(v, dict) and v:
        for k, x in v.items():
            _flat(f"{prefix}.{part(k)}" if prefix else part(k), x, out)
        return
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    out[prefix[:MAX_KEY_CHARS]] = text[:MAX_PARAM_CHARS]


def flat_params(config: dict, model_info: dict | None = None) -> dict[str, str]:
    """The configuration as {dotted key: text} (see the module doc); tasks keyed by their names."""
    cfg = dict(config or {})
    tasks = cfg.pop("tasks", None)
    if isinstance(tasks, list):
        cfg["tasks"] = {(t.get("name") or t.get("label") or str(i)) if isinstance(t, dict) else str(i): t
                        for i, t in enumerate(tasks)}
    hp = (model_info or {}).get("hparams") if isinstance((model_info or {}).get("hparams"), dict) else {}
    model = cfg.get("model") if isinstance(cfg.get("model"), dict) else {}
    cfg["model"] = {**hp, **model}
    out: dict[str, str] = {}
    _flat("", cfg, out)
    return out


def _pair(p: dict) -> str:
    return "_vs_".join(part(t) for t in p.get("tasks") or [])


def dynamics_scalars(d: dict) -> list[tuple[tuple, float]]:
    """The measured training dynamics of one epoch record's ``"dynamics"`` (`mtlrec.training.dynamics`)."""
    out = [(("dynamics", "grad_norm", t), v) for t, v in (d.get("grad_norm") or {}).items()]
    for p in d.get("pairs") or []:
        out += [(("dynamics", "cosine", _pair(p)), p.get("cosine")), (("dynamics", "conflict", _pair(p)), p.get("conflict"))]
    experts = d.get("experts") or []
    for t, g in (d.get("gates") or {}).items():
        out.append((("dynamics", "gate_entropy", t), (g or {}).get("entropy")))
        out += [(("dynamics", "gate_share", t, x), v) for x, v in zip(experts, (g or {}).get("shares") or [])]
    return out


def epoch_scalars(rec: dict) -> list[tuple[tuple, int, float]]:
    """Every scalar of one epoch record of history.json (`mtlrec.training.history`), step = its epoch."""
    step = int(rec.get("epoch") or 0)
    items = [((split, t, "loss"), v) for split in ("train", "valid")
             for t, v in (rec.get(f"{split}_loss") or {}).items()]
    for t, mets in (rec.get("valid") or {}).items():
        items += [(("valid", t, m), v) for m, v in (mets or {}).items() if isinstance(mets, dict)]
    items += [(("train", "samples_per_s"), rec.get("samples_per_s")), (("train", "epoch_time_s"), rec.get("time_s"))]
    items += [(("dynamics", "weight", t), w) for t, w in (rec.get("weights") or {}).items()]
    if isinstance(rec.get("dynamics"), dict) and rec["dynamics"].get("batches"):
        items += dynamics_scalars(rec["dynamics"])
    return [(tuple(p), step, float(v)) for p, v in items if _number(v) is not None]


def result_scalars(metrics: dict) -> list[tuple[tuple, int, float]]:
    """The run's result from metrics.json: test and ranking metrics, the multi-task gain; step = the best epoch."""
    step = int(_number(metrics.get("best_epoch")) or 0)
    items = []
    for block in ("test", "ranking"):
        for t, mets in (metrics.get(block) or {}).items() if isinstance(metrics.get(block), dict) else []:
            items += [(("test", t, m), v) for m, v in (mets or {}).items() if isinstance(mets, dict)]
    for t, g in (metrics.get("gain") or {}).items() if isinstance(metrics.get("gain"), dict) else []:
        items.append((("gain", t), (g or {}).get("gain") if isinstance(g, dict) else None))
    return [(tuple(p), step, float(v)) for p, v in items if _number(v) is not None]


def run_scalars(history: dict | None, metrics: dict | None) -> list[tuple[tuple, int, float]]:
    """Every scalar of a run folder's history.json (per epoch) and metrics.json (its result)."""
    out = []
    for rec in (history or {}).get("epochs") or []:
        if isinstance(rec, dict):
            out += epoch_scalars(rec)
    return out + result_scalars(metrics or {})


def read_folder(run_dir) -> dict:
    """config, model_info, history, metrics and the listing row of a run folder (missing files: {})."""
    from mtlrec.runs.library import read_obj, run_row
    d = Path(run_dir)
    return {"config": read_obj(d / "config.json") or {}, "model_info": read_obj(d / "model.json") or {},
            "history": read_obj(d / "history.json") or {}, "metrics": read_obj(d / "metrics.json") or {},
            "row": run_row(d)}


def run_tags(folder: dict, run_name: str) -> dict[str, str]:
    """The tags of a run (see the module doc) from `read_folder`'s result."""
    row, cfg = folder["row"], folder["config"]
    train = cfg.get("train") if isinstance(cfg.get("train"), dict) else {}
    tags = {"mtlrec.run_id": run_name, "architecture": row.get("arch") or "?",
            "weighting": str(train.get("weighting") or "static"), "dataset": row.get("data") or "?",
            "mtlrec.status": str(row.get("status") or "?"), "mtlrec.name": str(row.get("name") or run_name)}
    if row.get("best_epoch") is not None:
        tags["mtlrec.best_epoch"] = str(row["best_epoch"])
    if row.get("tags"):
        tags["mtlrec.tags"] = ", ".join(row["tags"])
    return {k: v[:MAX_TAG_CHARS] for k, v in tags.items()}
