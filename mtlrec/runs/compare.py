"""Runs compared: side by side (`compare_runs`), and a multi-task model against its single-task baselines.

* `compare_runs(dirs, reference=None)`: configuration differences, per-task test metrics with
  the best of each task marked by the metric's direction, validation curves, and Δm against the
  reference (`compare_metrics_frame`: its metrics as a table; `mtlrec.figures.charts.compare_figs`:
  its curves as figures).
* `delta_m`: LibMTL's Δm of one set of task metrics over a reference; `gain_delta_m` and `seesaw`:
  a run's multi-task gain over its single-task baselines (``metrics["gain"]``) in one number, and
  the verdict when it helped some tasks and hurt others.
* `run_config_flat`: a run's configuration as dotted keys (`flatten`), what the comparison diffs.

Nothing here imports torch: it reads the small JSON files of each folder (`mtlrec.runs.library`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mtlrec.errors import DataError
from mtlrec.runs.library import MAX_NAME, clean_text, direction, finite, read_meta, read_obj, task_metrics


def flatten(obj, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested config: dicts by key, lists of named dicts by name
    (``tasks.click.weight``), other lists as one value."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list) and obj and all(isinstance(x, dict) and isinstance(x.get("name"), str) for x in obj):
        for x in obj:
            out.update(flatten({k: v for k, v in x.items() if k != "name"}, f"{prefix}.{x['name']}"))
    else:
        out[prefix] = obj
    return out


def run_config_flat(d: Path) -> dict[str, Any]:
    """config.json flattened, with the model's resolved hyperparameters (model.json) as
    ``model.<name>`` so that defaults show too."""
    d = Path(d)
    flat = flatten(read_obj(d / "config.json") or {})
    info = read_obj(d / "model.json") or {}
    for k, v in (info.get("hparams") or {}).items() if isinstance(info.get("hparams"), dict) else []:
        flat.setdefault(f"model.{k}", v)
    return flat


def delta_m(values: dict[str, tuple[str, float | None]], ref: dict[str, tuple[str, float | None]]) -> float | None:
    """Δm in percent (LibMTL): 1/T Σ_t (−1)^{l_t} (M_t − M_ref,t) / M_ref,t · 100, l_t = 1 when the
    task's metric is lower-is-better. ``values``/``ref``: {task: (metric, value)}; T = the reference's
    tasks. None when a task's value is missing or non-finite, or a reference value is 0."""
    if not ref:
        return None
    terms = []
    for task, (metric, mref) in ref.items():
        m = values.get(task, (metric, None))[1]
        mref, m = finite(mref), finite(m)
        hib = direction(metric)
        if m is None or mref is None or mref == 0 or hib is None:
            return None
        rel = (m - mref) / abs(mref)
        terms.append(rel if hib else -rel)
    return 100.0 * sum(terms) / len(terms)


def gain_delta_m(gain: dict) -> float | None:
    """Δm in percent of a run's multi-task model over its single-task baselines, from ``metrics["gain"]``
    ({task: {"metric", "mtl", "stl", "gain"}}): :func:`delta_m` with the baselines as reference."""
    vals = {t: (g.get("metric"), g.get("mtl")) for t, g in (gain or {}).items() if isinstance(g, dict)}
    ref = {t: (g.get("metric"), g.get("stl")) for t, g in (gain or {}).items() if isinstance(g, dict)}
    return delta_m(vals, ref)


def seesaw(gain: dict) -> dict | None:
    """The seesaw verdict: when multi-task learning helped some tasks and hurt others.

    ``gain``: {task: gain} or ``metrics["gain"]`` ({task: {"gain": ..}}); a gain is positive when the
    multi-task model beat the single-task one (sign-flipped for error metrics). Returns None unless
    some gains are > 0 and some < 0; else ``{"helped": [tasks], "hurt": [tasks], "text": sentence}``
    (tasks ordered by the size of their gain)."""
    vals = {}
    for t, g in (gain or {}).items():
        v = finite(g.get("gain") if isinstance(g, dict) else g)
        if v is not None:
            vals[str(t)] = v
    helped = sorted((t for t, v in vals.items() if v > 0), key=lambda t: -vals[t])
    hurt = sorted((t for t, v in vals.items() if v < 0), key=lambda t: vals[t])
    if not helped or not hurt:
        return None

    def _and(xs):
        return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]

    text = (f"the seesaw: multi-task learning helped {_and(helped)} and hurt {_and(hurt)}. "
            "Training the tasks together moved the shared layers toward some tasks at the cost of others")
    return {"helped": helped, "hurt": hurt, "text": text}


# ---- compare_runs, step by step -------------------------------------------------------------
def _label(d: Path, used: set) -> str:
    """The run's name as the listing shows it (display name, else the config's name, else the
    folder), made unique among the compared runs."""
    meta = read_meta(d)
    config = read_obj(d / "config.json") or {}
    base = meta["name"] or clean_text(config.get("name"), MAX_NAME) or d.name
    lab, i = base, 1
    while lab in used:
        i += 1
        lab = f"{base} ({i})"
    used.add(lab)
    return lab


def _run_folders(dirs) -> list[Path]:
    """The compared folders: at least two, each with a readable config.json (RunFolderError otherwise)."""
    from mtlrec.runs.load import RunFolderError
    paths = [Path(x) for x in dirs]
    if len(paths) < 2:
        raise DataError("compare needs at least two runs", fix="give two or more run folders")
    for p in paths:
        if not p.is_dir():
            raise RunFolderError("run folder not found", file=str(p), fix="give a folder listed by 'runs list'")
        if read_obj(p / "config.json") is None:
            raise RunFolderError("config.json is missing or damaged", file=str(p / "config.json"),
                                 fix="pick another run")
    return paths


def _reference_index(paths: list[Path], labels: list[str], reference) -> int:
    """Which of the runs is the reference: ``reference`` given as a path, folder name or label; default the first."""
    if reference is None:
        return 0
    cand = [i for i, (p, lab) in enumerate(zip(paths, labels))
            if str(reference) in (str(p), p.name, lab) or (Path(str(reference)).exists()
                                                           and Path(str(reference)).resolve() == p.resolve())]
    if not cand:
        raise DataError(f"the reference '{reference}' is not one of the compared runs",
                        fix="give one of the compared run folders as --reference")
    return cand[0]


def _config_diff(paths: list[Path], labels: list[str]) -> list[dict]:
    """The configuration keys whose values differ between the runs (a key a run lacks: None)."""
    flats = [run_config_flat(p) for p in paths]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    missing = object()
    diff = []
    for k in keys:
        vals = [f.get(k, missing) for f in flats]
        canon = [json.dumps(v, sort_keys=True, default=str) if v is not missing else "\0missing" for v in vals]
        if len(set(canon)) > 1:
            diff.append({"key": k, "values": {lab: (None if v is missing else v) for lab, v in zip(labels, vals)}})
    return diff


def _metric_rows(paths: list[Path], labels: list[str], tms: list, task_metric: dict[str, str]) -> list[dict]:
    """Per task, each run's test value of the task's metric and the best run(s) by its direction
    (a run without the task: None)."""
    tests = []
    for p in paths:
        mt = read_obj(p / "metrics.json") or {}
        tests.append(mt.get("test") if isinstance(mt.get("test"), dict) else {})
    rows = []
    for task, metric in task_metric.items():
        vals = {lab: (finite(((t.get(task) or {}) if isinstance(t.get(task), dict) else {}).get(metric))
                      if not tm or task in {n for n, _t, _m in tm} else None)      # a run without the task: None
                for lab, t, tm in zip(labels, tests, tms)}
        hib = direction(metric)
        ok = {k: v for k, v in vals.items() if v is not None}
        best = []
        if ok and hib is not None:
            target = max(ok.values()) if hib else min(ok.values())
            best = [k for k, v in ok.items() if v == target]
        rows.append({"task": task, "metric": metric, "higher_is_better": hib, "values": vals, "best": best})
    return rows


def _delta_ms(rows: list[dict], labels: list[str], ref_label: str, ref_tasks: list[str]) -> tuple[dict, str]:
    """(Δm of each run against the reference over the reference's tasks, the note that explains it)."""
    ref_vals = {r["task"]: (r["metric"], r["values"][ref_label]) for r in rows if r["task"] in ref_tasks}
    dm, notes = {}, []
    for lab in labels:
        vals = {r["task"]: (r["metric"], r["values"][lab]) for r in rows}
        dm[lab] = delta_m(vals, ref_vals)
        if dm[lab] is None:
            notes.append(lab)
    note = ("Δm = mean over the reference's tasks of the relative change of each task's test metric, "
            "sign-flipped for lower-is-better metrics (positive = better than the reference), in percent")
    if notes:
        note += f"; not defined for {', '.join(notes)} (a task's value is missing, or a reference value is 0)"
    return dm, note


def _curves(paths: list[Path], labels: list[str], task_metric: dict[str, str]) -> dict[str, dict]:
    """Per task, each run's validation curve of the task's metric (history.json)."""
    curves: dict[str, dict] = {}
    for task, metric in task_metric.items():
        per = {}
        for lab, p in zip(labels, paths):
            h = read_obj(p / "history.json") or {}
            eps = [e for e in (h.get("epochs") or []) if isinstance(e, dict)] if isinstance(h.get("epochs"), list) else []
            xs, ys = [], []
            for j, e in enumerate(eps):
                v = ((e.get("valid") or {}).get(task) or {}) if isinstance(e.get("valid"), dict) else {}
                xs.append(e.get("epoch", j + 1))
                ys.append(finite(v.get(metric)) if isinstance(v, dict) else None)
            per[lab] = {"epochs": xs, "values": ys}
        curves[task] = {"metric": metric, "runs": per}
    return curves


def compare_runs(dirs, reference=None) -> dict:
    """Several runs side by side::

        {"runs": [{"label", "run", "path", "status"}], "reference": label,
         "config_diff": [{"key", "values": {label: value or None}}]   (only keys whose values differ),
         "metrics": [{"task", "metric", "higher_is_better", "values": {label: v}, "best": [labels]}],
         "delta_m": {label: Δm % vs the reference (0 for itself) or None}, "delta_m_note": str,
         "curves": {task: {"metric", "runs": {label: {"epochs": [...], "values": [...]}}}}}

    ``dirs``: run folders (paths); ``reference``: one of them (path, folder name or label),
    default the first. Damaged folders raise RunFolderError naming the file."""
    from mtlrec.runs.load import run_status
    paths = _run_folders(dirs)
    used: set = set()
    labels = [_label(p, used) for p in paths]
    ref_i = _reference_index(paths, labels, reference)
    ref_label = labels[ref_i]
    # metrics: the tasks of all runs; each task's metric from the reference (else the first run having it)
    tms = [task_metrics(read_obj(p / "model.json"), read_obj(p / "config.json")) for p in paths]
    task_metric: dict[str, str] = {}
    for i in [ref_i] + [i for i in range(len(paths)) if i != ref_i]:
        for name, _t, m in tms[i]:
            task_metric.setdefault(name, m)
    rows = _metric_rows(paths, labels, tms, task_metric)
    dm, note = _delta_ms(rows, labels, ref_label, [n for n, _t, _m in tms[ref_i]])
    runs = [{"label": lab, "run": p.name, "path": str(p), "status": run_status(p)["status"]}
            for lab, p in zip(labels, paths)]
    return {"runs": runs, "reference": ref_label, "config_diff": _config_diff(paths, labels), "metrics": rows,
            "delta_m": dm, "delta_m_note": note, "curves": _curves(paths, labels, task_metric)}


def compare_metrics_frame(cmp: dict):
    """The metrics of `compare_runs` as a DataFrame: task, metric, direction, one column per run,
    and ``best`` (the label(s) of the best run for that task)."""
    import pandas as pd
    rows = []
    for r in cmp["metrics"]:
        d = {"task": r["task"], "metric": r["metric"],
             "direction": {True: "higher is better", False: "lower is better"}.get(r["higher_is_better"], "?")}
        d.update(r["values"])
        d["best"] = ", ".join(r["best"])
        rows.append(d)
    return pd.DataFrame(rows)
