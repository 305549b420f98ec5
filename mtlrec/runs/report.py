"""Exports of one run for people without the app: an offline HTML report, a metrics CSV, a zip.

* `report_html(run_dir)` -> str: ONE self-contained HTML file -- plotly.js embedded once, no
  reference to anything outside the file (a Content-Security-Policy forbids every network load;
  the few URL strings plotly.js carries for map tiles we never draw are written with escaped
  slashes), every user text HTML-escaped. Sections: run summary, data, configuration, per-task
  metrics and curves, multi-task gain with Δm and the seesaw, cross-validation, training dynamics
  (the last three when the run has them), example recommendations (fused score) and one explanation.
* `metrics_csv(run_dir)` -> bytes: every recorded metric, formula-safe (`mtlrec.app.export.csv_bytes`):
  the splits, the gain with Δm and the seesaw, the cross-validation mean and std, the training
  dynamics per epoch.
* `predictions_csv(run_dir, split="test")` -> bytes: the model's predictions per row of a split, with
  the source ``row_id`` (see `mtlrec.app.workflow.predictions_frame`), formula-safe.
* `export_zip(run_dir)` -> bytes / `import_zip(data, root)` -> Path: a run folder as a zip of its
  known files only (the dataset's arrays: ``dataset/arrays/a<n>.npy``, or ``dataset/arrays.npz``
  for runs of older versions); the import refuses anything else (unknown names, path traversal, links,
  too large, damaged JSON, weights that do not load with ``weights_only=True``) with a DataError
  and leaves nothing behind.
"""
from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from mtlrec.display import format_number
from mtlrec.diskio import is_disk_full
from mtlrec.errors import DataError, DiskFullError

ZIP_FILES = ("config.json", "status.json", "history.json", "metrics.json", "model.json", "model.pt",
             "meta.json", "dataset/dataset.json", "dataset/arrays.npz", "dataset/items.parquet",
             "dataset/users.parquet", "predictions_test.npz")
# besides ZIP_FILES: the arrays of a dataset of format 3, one .npy each (dataset/arrays/a0.npy, ...)
ZIP_ARRAY = re.compile(r"dataset/arrays/a[0-9]{1,9}\.npy")
ZIP_REQUIRED = ("config.json", "model.json", "model.pt", "dataset/dataset.json")
# and the dataset's arrays: dataset/arrays.npz (formats 1 and 2) or dataset/arrays/*.npy (format 3,
# each one its dataset.json names; checked when the unpacked folder is loaded)
MAX_ZIP_BYTES = 512 * 2**20          # the zip itself
MAX_UNPACKED_BYTES = 2 * 2**30       # all members unpacked together
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:")


def _e(s: Any) -> str:
    return html.escape("" if s is None else str(s), quote=True)


def _fmt(v: Any) -> str:
    if isinstance(v, (list, dict)):
        return json.dumps(v, default=str)
    return format_number(v)          # the app's rule for numbers in tables (mtlrec.display)


def _table(header: list[str], rows: list[list[Any]], mark: set | None = None) -> str:
    """An HTML table of escaped cells; ``mark`` = {(row, col)} cells shown in bold."""
    h = "".join(f"<th>{_e(c)}</th>" for c in header)
    body = []
    for i, r in enumerate(rows):
        cells = []
        for j, c in enumerate(r):
            t = _e(_fmt(c))
            cells.append(f"<td><b>{t}</b></td>" if mark and (i, j) in mark else f"<td>{t}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def plotly_js() -> str:
    """plotly.min.js for inline embedding: ``://`` written as ``:\\/\\/`` (the same string in
    JavaScript) so that the file holds no URL text, and no ``</script`` can end the tag early."""
    from plotly.offline import get_plotlyjs
    js = get_plotlyjs().replace("://", ":\\/\\/")
    return js.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


def _fig_html(fig, n: int) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig{n}",
                       config={"displaylogo": False, "responsive": True})


def _plotly_safe(s: Any) -> str:
    """Text for a plotly label: plotly reads a little HTML (<a href>, <b>) in labels, so escape."""
    return html.escape(str(s), quote=False)


def _plotly_safe_tree(obj: Any) -> Any:
    """``obj`` (JSON-like) with every string -- dict keys too -- made safe for a plotly label."""
    if isinstance(obj, dict):
        return {_plotly_safe(k) if isinstance(k, str) else k: _plotly_safe_tree(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plotly_safe_tree(v) for v in obj]
    return _plotly_safe(obj) if isinstance(obj, str) else obj


def _read(d: Path, name: str) -> dict:
    from mtlrec.runs.library import _read_obj
    return _read_obj(d / name) or {}


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:24px auto;padding:0 16px;color:#212529}
h1{font-size:1.7em;margin-bottom:4px} h2{border-bottom:1px solid #dee2e6;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.92em} th,td{border:1px solid #dee2e6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f5} .muted{color:#6c757d} .warn{background:#fff3bf;padding:8px;border-radius:4px}
.figs{display:grid;grid-template-columns:1fr 1fr;gap:8px} .note{font-size:.9em;color:#495057}
"""


def report_html(run_dir, *, title: str | None = None, k: int = 5, explain: bool = True, background: int = 50) -> str:
    """The stakeholder report of one run as one self-contained HTML page (see the module doc).

    The parts that need the model (recommendations, explanation) are replaced by a note when the
    run folder cannot be loaded; a folder without config.json raises RunFolderError."""
    from mtlrec.runs.library import clean_text, read_meta, run_config_flat, run_row
    from mtlrec.runs.load import RunFolderError
    d = Path(run_dir)
    if not d.is_dir() or not (d / "config.json").is_file():
        raise RunFolderError("not a run folder (config.json is missing)", file=str(d / "config.json"),
                             fix="give a folder written by 'python -m mtlrec train'")
    row = run_row(d)
    meta = read_meta(d)
    title = clean_text(title, 120) if title else row["name"]
    metrics = _read(d, "metrics.json")
    history = _read(d, "history.json")
    figs: list[str] = []
    parts: list[str] = []

    def fig(f) -> str:
        figs.append(_fig_html(f, len(figs)))
        return figs[-1]

    # ---- summary
    summary = [["run folder", row["run"]], ["status", row["status"]], ["created", row["created_text"]],
               ["architecture", row["arch"]], ["tasks", ", ".join(row["tasks"])],
               ["loss weighting", row["weighting"]], ["device", row["device"]],
               ["training time", f"{row['duration_s']:.1f} s" if row["duration_s"] is not None else None],
               ["best epoch", row["best_epoch"]], ["tags", ", ".join(meta["tags"]) or None]]
    parts.append("<h2>Summary</h2>" + _table(["", ""], summary))
    if row["problems"]:
        parts.append('<p class="warn">' + "<br>".join(_e(p) for p in row["problems"]) + "</p>")
    if row["status"] not in ("finished", "cancelled"):
        parts.append(f'<p class="warn">This run is {_e(row["status"])}'
                     f'{": " + _e(row["error"]) if row["error"] else ""}.</p>')

    # ---- data
    ds_doc = _read(d, "dataset/dataset.json")
    rep = ((ds_doc.get("meta") or {}).get("report") or {}) if isinstance(ds_doc.get("meta"), dict) else {}
    data_rows = [["source", row["data"]]]
    if isinstance(rep, dict):
        for key, lab in (("users", "users"), ("items", "items"), ("split", "split")):
            if rep.get(key) is not None:
                data_rows.append([lab, rep[key]])
        if isinstance(rep.get("rows"), dict):
            data_rows += [[f"{s} rows", n] for s, n in rep["rows"].items()]
    fields = [f for f in ds_doc.get("fields") or [] if isinstance(f, dict)]
    labels = [lab for lab in ds_doc.get("labels") or [] if isinstance(lab, dict)]
    neg = rep.get("negatives") if isinstance(rep, dict) and isinstance(rep.get("negatives"), dict) else {}
    if neg.get("ratio"):
        data_rows.append(["sampled negatives", f"{neg['ratio']:g} per observed row, {neg.get('method') or 'uniform'}"
                          " (training: drawn anew each epoch; valid/test: fixed by the seed)"])
    parts.append("<h2>Data</h2>" + _table(["", ""], data_rows))
    from mtlrec.prep.negatives import shortfall_text
    if shortfall_text(neg):
        parts.append(f'<p class="warn">{_e(shortfall_text(neg))}</p>')
    if fields:
        parts.append("<p>Input features</p>" + _table(["feature", "kind", "of"], [
            [f.get("name"), f.get("kind"), f.get("owner")] for f in fields]))
    if labels:
        parts.append("<p>Labels</p>" + _table(["label", "type"], [[lab.get("name"), lab.get("task_type") or lab.get("type")] for lab in labels]))

    # ---- configuration
    flat = run_config_flat(d)
    parts.append("<h2>Configuration</h2>" + _table(["setting", "value"], [[k, v] for k, v in flat.items()])
                 + _chain_section(_read(d, "config.json")))

    # ---- metrics
    from mtlrec.runs.library import _direction
    test = metrics.get("test") if isinstance(metrics.get("test"), dict) else {}
    sec = ["<h2>Test metrics per task</h2>",
           '<p class="note">In bold: each task\'s configured metric (the one training selected the best '
           'epoch on). ↑ higher is better, ↓ lower is better.</p>']
    for task, vals in test.items():
        if not isinstance(vals, dict):
            continue
        head = (row["metrics"].get(task) or {}).get("metric")
        rows, mark = [], set()
        for i, (m, v) in enumerate(vals.items()):
            hib = _direction(m) if m != "best_f1_threshold" else None   # a threshold has no direction
            rows.append([m + {True: " ↑", False: " ↓"}.get(hib, ""), v])
            if m == head:
                mark |= {(i, 0), (i, 1)}
        sec.append(f"<h3>{_e(task)}</h3>" + _table(["metric", "value"], rows, mark))
    from mtlrec.metrics import baselines_text, ranking_note, ranking_rows, ranking_verdicts
    rrows, rnote = ranking_rows(metrics), ranking_note(metrics)
    if rnote and not rrows:
        sec.append(f'<h3>Ranking (test users)</h3><p class="note">{_e(rnote)}</p>')
    if rrows:
        mnames = list(dict.fromkeys(m for r in rrows for m in r if m not in ("task", "ranked by")))
        sec.append("<h3>Ranking (test users)</h3>"
                   '<p class="note">Every item a test user has not met in training or validation is ranked; '
                   f"{_e(baselines_text(metrics))}</p>"
                   + _table(["task", "ranked by"] + mnames,
                            [[r["task"], r["ranked by"]] + [r.get(m) for m in mnames] for r in rrows])
                   + (f'<p class="note">{_e(rnote)}</p>' if rnote else ""))
        verdicts = ranking_verdicts(metrics)
        if verdicts:
            sec.append("<ul>" + "".join(f"<li><b>{_e(t)}</b>: {_e(v)}</li>" for t, v in verdicts.items()) + "</ul>")
    if not test:
        sec.append("<p>No test metrics were recorded (metrics.json is missing or the run did not finish).</p>")
    parts.append("".join(sec))

    # ---- curves
    eps = [e for e in history.get("epochs") or [] if isinstance(e, dict)] if isinstance(history.get("epochs"), list) else []
    if eps:
        from mtlrec.figures.charts import curves_fig
        xs = [e.get("epoch", i + 1) for i, e in enumerate(eps)]
        sec = ["<h2>Training curves</h2><div class=\"figs\">"]
        for task in row["tasks"]:
            m = (row["metrics"].get(task) or {}).get("metric")
            loss = {"train loss": [(e.get("train_loss") or {}).get(task) for e in eps],
                    "valid loss": [(e.get("valid_loss") or {}).get(task) for e in eps]}
            sec.append("<div>" + fig(curves_fig(xs, loss, f"{_plotly_safe(task)}: loss", "loss",
                                                dash={"valid loss": "dash"})) + "</div>")
            vm = [((e.get("valid") or {}).get(task) or {}).get(m) for e in eps]
            sec.append("<div>" + fig(curves_fig(xs, {f"valid {m}": vm}, f"{_plotly_safe(task)}: valid {m}", m or ""))
                       + "</div>")
        sec.append("</div>")
        parts.append("".join(sec))

    # ---- gain (with Δm and the seesaw), cross-validation, training dynamics: when the run has them
    parts.append(_gain_section(metrics, fig))
    parts.append(_cv_section(metrics, {t: (row["metrics"].get(t) or {}).get("metric") for t in row["tasks"]}))
    parts.append(_dynamics_section(history, fig))

    # ---- recommendations and one explanation
    parts.append(_model_sections(d, k=k, explain=explain, background=background))

    generated = time.strftime("%Y-%m-%d %H:%M")
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)} — mtlrec report</title><style>{STYLE}</style>"
            f"<script type=\"text/javascript\">{plotly_js() if figs else ''}</script></head><body>"
            f"<h1>{_e(title)}</h1><p class=\"muted\">mtlrec run report · generated {_e(generated)} · "
            f"self-contained: opens offline, loads nothing from the network</p>\n{body}\n</body></html>\n")


def _chain_section(cfg: dict) -> str:
    """The task chain of a run (`mtlrec.chain.describe`): one formula per chained task, and which
    rows each chained task's loss and metrics count; "" without a chain."""
    from mtlrec.chain import as_specs, describe
    tasks = [t for t in (cfg.get("tasks") or []) if isinstance(t, dict)]
    lines = describe(as_specs(tasks))
    if not lines:
        return ""
    return ("<p>Task chain (each chained task's loss and metrics count its own space: the rows where its "
            "parent's label is 1; recommendations, explanations and the ranking use the entire-space "
            "probability, the product along the chain)</p><ul>"
            + "".join(f"<li>{_e(line)}</li>" for line in lines) + "</ul>")


def _gain_section(metrics: dict, fig) -> str:
    """Multi-task gain per task over the single-task baselines, Δm, and the seesaw when gains have
    mixed signs (the same verdicts as the app's Results page)."""
    from mtlrec.runs.library import gain_delta_m, seesaw
    gain = metrics.get("gain") if isinstance(metrics.get("gain"), dict) else {}
    gain = {t: g for t, g in gain.items() if isinstance(g, dict)}
    sec = ["<h2>Multi-task gain</h2>"]
    if not gain:
        return sec[0] + "<p>No single-task baselines were trained for this run (train with baselines to see the gain).</p>"
    from mtlrec.figures.charts import gain_fig
    sec.append('<p class="note">Test metric of this multi-task model minus that of a model trained on the '
               'task alone (sign-flipped for lower-is-better metrics): positive = training the tasks '
               'together helped.</p>')
    sec.append(_table(["task", "metric", "multi-task", "single-task", "gain"],
                      [[t, g.get("metric"), g.get("mtl"), g.get("stl"), g.get("gain")] for t, g in gain.items()]))
    vals = {_plotly_safe(t): g["gain"] for t, g in gain.items() if isinstance(g.get("gain"), (int, float))}
    if vals:
        sec.append(fig(gain_fig(vals, {_plotly_safe(t): _plotly_safe(g.get("metric")) for t, g in gain.items()})))
    dm = gain_delta_m(gain)
    if dm is not None:
        sec.append(f"<p><b>Δm over the single-task baselines: {dm:+.2f} %</b> — the mean relative improvement "
                   "of the multi-task model over one single-task model per task, sign-flipped for "
                   "lower-is-better metrics (positive = multi-task learning helped on average).</p>")
    verdict = seesaw(gain)
    if verdict is not None:
        sec.append(f'<p class="warn"><b>The seesaw</b>: multi-task learning helped {_e(", ".join(verdict["helped"]))} '
                   f'and hurt {_e(", ".join(verdict["hurt"]))}. Sharing layers moved them toward some tasks at the '
                   "cost of others (negative transfer); loss weights, a weighting strategy or task-own experts "
                   "(PLE) are the usual remedies.</p>")
    return "".join(sec)


def _cv_section(metrics: dict, task_metric: dict) -> str:
    """Mean ± std of each task's metric over the cross-validation folds ('' without CV)."""
    from mtlrec.teaching.correlation import cv_rows
    cv = metrics.get("cv") if isinstance(metrics.get("cv"), dict) else {}
    folds = cv.get("folds") if isinstance(cv.get("folds"), list) else []
    if not folds:
        return ""
    rows = cv_rows(cv, {t: m for t, m in task_metric.items() if m})
    how = cv.get("scheme_text") or "folds of shuffled rows"
    return ("<h2>Cross-validation</h2>"
            f'<p class="note">Mean ± standard deviation over {len(folds)} folds ({_e(how)}). Each fold trains a new '
            "model on the rest of the training and validation rows; <i>validation folds</i> scores it on its "
            "held-out fold, <i>test</i> on the test split. A small ± means the result does not hinge on which "
            "rows were held out.</p>"
            + _table(["task", "metric", "validation folds", "test"],
                     [[r["task"], r["metric"], r["validation folds"], r["test"]] for r in rows]))


def _dynamics_section(history: dict, fig) -> str:
    """The training dynamics (loss weights, gradient norms and conflicts on the shared parameters,
    gates) as the app's Results page draws them ('' when the run recorded none)."""
    from mtlrec.figures import dynamics as vd
    if not vd.has_dynamics(history):
        return ""
    sec = ["<h2>Training dynamics</h2>",
           '<p class="note">Measured on sampled training batches: each task\'s gradient on the shared parameters '
           "(embeddings, shared layers, experts and gates). A negative cosine between two tasks means their "
           "gradients pulled the shared parameters in opposite directions (conflict).</p>"]
    lines = vd.conflict_summary(history)
    if lines:
        sec.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in lines) + "</ul>")
    figs = vd.dynamics_figs(_plotly_safe_tree(history))       # task names are the user's text
    sec.append('<div class="figs">' + "".join(f"<div>{fig(f)}</div>" for f in figs.values()) + "</div>")
    return "".join(sec)


def _model_sections(d: Path, *, k: int, explain: bool, background: int) -> str:
    from mtlrec.errors import TrainingError
    from mtlrec.runs.load import load_run
    out = ["<h2>Example recommendations</h2>"]
    try:
        run = load_run(d)
    except DataError as e:
        return "".join(out) + f'<p class="warn">The model cannot be loaded, so there are no examples: {_e(e)}</p>'
    if run.warning:
        out.append(f'<p class="warn">{_e(run.warning)}</p>')
    ds = run.dataset
    if not ds.has_items or not len(ds.user_ids):
        return "".join(out) + "<p>This run's data has no user and item ids, so there is nothing to recommend.</p>"
    import numpy as np
    from mtlrec.serve.recommend import ranked_by, recommend
    # the user with the most test interactions (else the most overall): a typical, well-known user
    rows = ds.rows.get("test") or next(iter(ds.rows.values()))
    ui = np.asarray(rows.get("user_index", []), dtype=np.int64)
    u = int(np.bincount(ui).argmax()) if len(ui) else 0
    user = ds.user_ids[u]
    try:
        items = recommend(run, user, k=k)
    except (DataError, TrainingError) as e:
        return "".join(out) + f"<p class=\"warn\">{_e(e)}</p>"
    tasks = [t.name for t in run.tasks]
    out.append(f"<p>Top {len(items)} for user <b>{_e(user)}</b> (items they already met left out). The fused "
               "score is the weighted sum of the tasks' scores the app's Recommendations page shows; support is the "
               f"item's number of training interactions. {_e(ranked_by(run))}</p>")
    cols = ["#", "item"] + [c for c in ("title",) if any(c in it for it in items)] + ["fused score", "support"] + tasks
    trs = []
    for i, it in enumerate(items, 1):
        r = [i, it["item"]] + ([it.get("title")] if "title" in cols else []) + [it["score"], it.get("support")]
        for t in tasks:
            v = it["tasks"].get(t)
            r.append(", ".join(f"{c} {p:.2f}" for c, p in v.items()) if isinstance(v, dict) else v)
        trs.append(r)
    out.append(_table(cols, trs))
    if explain and items:
        from mtlrec.explain.api import explain_recommendation
        out.append("<h2>Why the top item? (SHAP)</h2>")
        try:
            ex = explain_recommendation(run, user, items[0]["item"], background=background)
        except (DataError, TrainingError, ValueError) as e:
            out.append(f"<p class=\"warn\">No explanation: {_e(e)}</p>")
        else:
            out.append(f"<p>{_e(ex.get('sentence'))}</p>")
            fused = ex.get("fused") or {}
            if isinstance(fused.get("contributions"), dict):
                top = sorted(fused["contributions"].items(), key=lambda kv: -abs(kv[1]))[:5]
                out.append(f"<p>Fused score {_fmt(fused.get('score'))} = base {_fmt(fused.get('base_value'))} "
                           "+ the contributions of the feature groups; the largest:</p>"
                           + _table(["feature group", "contribution"], [[g, v] for g, v in top]))
            trs = []
            for t, r in ex["tasks"].items():
                top = sorted(r["contributions"].items(), key=lambda kv: -abs(kv[1]))[:3]
                trs.append([t, r.get("unit"), r.get("base_value"), r.get("output"),
                            "; ".join(f"{g} {v:+.3f}" for g, v in top)])
            out.append(_table(["task", "explained output", "base value", "output", "top contributions"], trs))
    return "".join(out)


def figures_page(title: str, figures: list, notes: list[str] = ()) -> str:
    """A self-contained HTML page of plotly ``figures`` (plotly.js inline, the report's
    Content-Security-Policy: opens offline, loads nothing), with a title and ``notes`` (plain text,
    escaped) above them -- the figure files of the explanation commands."""
    body = "".join(f"<p class=\"note\">{_e(n)}</p>" for n in notes if n)
    body += "".join(f"<div>{_fig_html(f, n)}</div>" for n, f in enumerate(figures))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            f"<title>{_e(title)}</title><style>{STYLE}</style>"
            f"<script type=\"text/javascript\">{plotly_js() if figures else ''}</script></head><body>"
            f"<h1>{_e(title)}</h1>\n{body}\n</body></html>\n")


# ---- CSV -------------------------------------------------------------------------------------
CSV_COLUMNS = ["split", "task", "metric", "value", "direction", "headline", "epoch", "note"]
DIRECTION = {True: "higher is better", False: "lower is better"}


def metrics_csv(run_dir) -> bytes:
    """Every metric of metrics.json as CSV rows (split, task, metric, value, direction, headline,
    epoch, note); split is valid, test, single-task (baselines), ranking, "ranking (popularity
    baseline)", "multi-task gain" (per task, then Δm and the seesaw over "all tasks"),
    "cross-validation (validation folds)" / "cross-validation (test)" (each metric's mean and std
    over the folds) or "training dynamics" (per epoch: loss weights, gradient norms, cosines and
    conflict shares of task pairs, gate entropy and expert shares); text cells formula-safe."""
    import pandas as pd

    from mtlrec.app.export import csv_bytes
    from mtlrec.runs.library import _read_obj, task_metrics
    from mtlrec.runs.load import RunFolderError
    d = Path(run_dir)
    m = _read_obj(d / "metrics.json")
    if m is None:
        raise RunFolderError("metrics.json is missing or damaged, so there are no metrics to export",
                             file=str(d / "metrics.json"), fix="pick a finished run, or train the run again")
    head = {t: mt for t, _ty, mt in task_metrics(_read_obj(d / "model.json"), _read_obj(d / "config.json"))}
    weighting = ((_read_obj(d / "config.json") or {}).get("train") or {}).get("weighting")
    rows = _split_rows(m, head) + _gain_rows(m) + _cv_csv_rows(m, head) \
        + _dynamics_rows(_read_obj(d / "history.json"), weighting)
    return csv_bytes(pd.DataFrame(rows, columns=CSV_COLUMNS))


def _row(split: str, task, metric, value=None, direction: str = "", headline: bool = False, epoch=None,
         note: str = "") -> dict:
    v = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return {"split": split, "task": str(task), "metric": str(metric), "value": v, "direction": direction,
            "headline": headline, "epoch": epoch, "note": note}


def _direction_text(metric: str) -> str:
    from mtlrec.metrics import higher_is_better
    try:
        return DIRECTION[higher_is_better(metric)]
    except ValueError:          # not a known metric (e.g. a threshold)
        return ""


def _split_rows(m: dict, head: dict) -> list[dict]:
    base = m.get("ranking_baseline") if isinstance(m.get("ranking_baseline"), dict) else {}
    blocks = [(label, m.get(split)) for split, label in (("valid", "valid"), ("test", "test"),
                                                         ("stl", "single-task test"), ("ranking", "ranking"))]
    blocks += [(f"ranking ({name} baseline)", b) for name, b in base.items()]
    rows = []
    for label, block in blocks:
        for task, vals in block.items() if isinstance(block, dict) else []:
            for metric, v in vals.items() if isinstance(vals, dict) else []:
                rows.append(_row(label, task, metric, v, _direction_text(metric), head.get(task) == metric))
    return rows


def _gain_rows(m: dict) -> list[dict]:
    """The gain per task, Δm over the single-task baselines and the seesaw verdict."""
    from mtlrec.runs.library import gain_delta_m, seesaw
    gain = {t: g for t, g in m["gain"].items() if isinstance(g, dict)} if isinstance(m.get("gain"), dict) else {}
    rows = [_row("multi-task gain", t, g.get("metric"), g.get("gain"), DIRECTION[True], True) for t, g in gain.items()]
    dm = gain_delta_m(gain)
    if dm is not None:
        rows.append(_row("multi-task gain", "all tasks", "Δm % over the single-task baselines", dm, DIRECTION[True],
                         note="mean relative improvement over one single-task model per task"))
    verdict = seesaw(gain)
    if verdict is not None:
        rows.append(_row("multi-task gain", "all tasks", "seesaw",
                         note=f"helped: {', '.join(verdict['helped'])}; hurt: {', '.join(verdict['hurt'])}"))
    return rows


def _cv_csv_rows(m: dict, head: dict) -> list[dict]:
    """Mean and std of every metric over the cross-validation folds."""
    cv = m.get("cv") if isinstance(m.get("cv"), dict) else {}
    folds = cv.get("folds") if isinstance(cv.get("folds"), list) else []
    if not folds:
        return []
    note = f"over {len(folds)} folds ({cv.get('scheme_text') or 'folds of shuffled rows'})"
    rows = []
    for part, label in (("valid", "cross-validation (validation folds)"), ("test", "cross-validation (test)")):
        block = cv.get(part) if isinstance(cv.get(part), dict) else {}
        for task, vals in block.items():
            for metric, st in vals.items() if isinstance(vals, dict) else []:
                if isinstance(st, dict):
                    rows.append(_row(label, task, f"{metric} (mean)", st.get("mean"), _direction_text(metric),
                                     head.get(task) == metric, note=note))
                    rows.append(_row(label, task, f"{metric} (std)", st.get("std"), note=note))
    return rows


def _dynamics_rows(history: dict | None, weighting: str | None = None) -> list[dict]:
    """Per epoch of a run that measured its training dynamics: each task's loss weight (for a gradient
    method, ``weighting``, its aggregator's implied weight, named so, as on Results); where
    measured, gradient norms, task-pair cosines and conflict shares, gate entropy and expert shares
    (`mtlrec.training.dynamics`). None for a run without them (like the Results page)."""
    from mtlrec.figures.dynamics import combines_gradients, has_dynamics, pair_label
    split, rows = "training dynamics", []
    weight_name = "implied weight (last batch)" if combines_gradients(weighting) else "loss weight"
    if not has_dynamics(history if isinstance(history, dict) else None):     # as Results: nothing measured
        return rows
    for i, e in enumerate(e for e in history.get("epochs") or [] if isinstance(e, dict)):
        ep = e.get("epoch", i + 1)
        rows += [_row(split, t, weight_name, w, epoch=ep) for t, w in (e.get("weights") or {}).items()]
        d = e.get("dynamics") if isinstance(e.get("dynamics"), dict) else {}
        if not d.get("batches"):
            continue
        n = f"mean over {d['batches']} sampled batches"
        rows += [_row(split, t, "gradient norm (shared parameters)", v, epoch=ep, note=n)
                 for t, v in (d.get("grad_norm") or {}).items()]
        for p in d.get("pairs") or []:
            rows.append(_row(split, pair_label(p.get("tasks") or []), "gradient cosine", p.get("cosine"), epoch=ep, note=n))
            rows.append(_row(split, pair_label(p.get("tasks") or []), "conflict share", p.get("conflict"), epoch=ep,
                             note=f"share of the {d['batches']} sampled batches with a negative cosine"))
        experts = d.get("experts") or []
        for t, g in (d.get("gates") or {}).items():
            rows.append(_row(split, t, "gate entropy", g.get("entropy"), epoch=ep, note=n))
            rows += [_row(split, t, f"gate share: {x}", v, epoch=ep, note=n) for x, v in zip(experts, g.get("shares") or [])]
    return rows


def predictions_csv(run_dir, split: str = "test", *, run=None) -> bytes:
    """The (best) model's predictions on ``split``, one CSV row per prepared row: row_id (the row of
    the interactions file; -1 for sampled negatives), user_id, item_id, sampled, then per task the
    label and ``<task>_pred``. ``run``: the folder already loaded (`mtlrec.runs.load.load_run`), else it
    is loaded here. A RunFolderError names a missing or damaged file."""
    from mtlrec.app.export import csv_bytes
    from mtlrec.runs.load import RunFolderError, load_run
    from mtlrec.app.workflow import predictions_frame
    run = run if run is not None else load_run(run_dir)
    if split not in run.dataset.rows:
        raise RunFolderError(f"the run's dataset has no '{split}' split (it has: {', '.join(run.dataset.splits)})",
                             file=str(Path(run_dir) / "dataset"), fix="choose one of its splits")
    return csv_bytes(predictions_frame(run, split))


# ---- zip -------------------------------------------------------------------------------------
def zip_members(run_dir) -> list[str]:
    """The files of the run folder that `export_zip` writes: the known ones (`ZIP_FILES`, the
    dataset's array files) that exist as plain files."""
    from mtlrec.dataset import array_files
    d = Path(run_dir)
    arrays = tuple(a for a in (f"dataset/{n}" for n in array_files(d / "dataset")) if ZIP_ARRAY.fullmatch(a))
    return [n for n in ZIP_FILES + arrays if (d / n).is_file() and not (d / n).is_symlink()]


def export_stamp(run_dir) -> tuple[int, tuple]:
    """(bytes, stamp) of the zip `export_zip` would write: the total size of its files, and what
    changes when any of them changes (names, sizes, modification times)."""
    d = Path(run_dir)
    stats = [(n, (d / n).stat()) for n in zip_members(d)]
    return sum(st.st_size for _n, st in stats), tuple((n, st.st_size, st.st_mtime_ns) for n, st in stats)


def export_zip(run_dir) -> bytes:
    """The run folder's known files (`zip_members`) as a zip; refused for a run still training."""
    from mtlrec.runs.load import RunFolderError, run_status
    from mtlrec.dataset import array_files
    d = Path(run_dir)
    arrays = [f"dataset/{n}" for n in array_files(d / "dataset")]
    missing = [n for n in ZIP_REQUIRED + tuple(arrays) if not (d / n).is_file()]
    if missing:
        raise RunFolderError(f"{missing[0]} is missing, so this run cannot be exported", file=str(d / missing[0]),
                             fix="export a run that saved a model")
    if run_status(d)["status"] in ("running", "queued"):
        raise DataError("this run is still training", file=str(d), fix="wait until it ends or cancel it, then export")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n in zip_members(d):
            z.write(d / n, n)
    return buf.getvalue()


def _zip_error(what: str, fix: str = "export the run again with mtlrec (Runs page or 'python -m mtlrec runs export')",
               file: str = "the uploaded zip") -> DataError:
    return DataError(what, file=file, fix=fix)


def _check_zip_version(z: zipfile.ZipFile, source: str) -> None:
    """A zip whose dataset is in a format this mtlrec cannot read (written by a newer version) is
    refused naming that format, before its member names or files are judged by this version's layout."""
    from mtlrec.dataset import DatasetFileError, format_version
    try:
        info = z.getinfo("dataset/dataset.json")
    except KeyError:
        return                                   # said later: the zip lacks it
    if info.file_size > 64 * 2**20:
        raise _zip_error("dataset/dataset.json in the zip is implausibly large", file=source)
    try:
        doc = json.loads(z.read(info).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, OSError, zipfile.BadZipFile, EOFError):
        return                                   # said later: not valid JSON
    if not isinstance(doc, dict):
        return                                   # said later: not a JSON object
    try:
        format_version(doc, "dataset")
    except DatasetFileError as e:
        raise _zip_error(f"the run's {e.what}", file=source, fix="import it into the mtlrec version that exported "
                         "it, or export it again with this one") from None


def import_zip(data: bytes, root=None, *, name: str | None = None, source: str = "the uploaded zip",
               owner: str | None = None) -> Path:
    """Unpack a zip written by `export_zip` into a new run folder under ``root`` and return it;
    ``owner``: the workspace id of the app visitor importing it, who then owns the copy
    (`mtlrec.runs.access`; a zip never carries an owner). None: a local run (the command line).

    Checked before anything is accepted: the size (≤ 512 MiB zipped, ≤ 2 GiB unpacked, counted
    while reading), member names (only the `ZIP_FILES` and `ZIP_ARRAY` names, each once; no
    folders, links, absolute paths or '..'), JSON files, and the whole folder through `mtlrec.runs.load.load_run`
    (weights with ``torch.load(weights_only=True)``, arrays without pickle). Any problem: a
    DataError naming the member, and nothing is left in ``root``."""
    from mtlrec.runs.library import clean_text, runs_root
    from mtlrec.runs.load import load_run
    from mtlrec.runs.folder import confine, reserve_folder, safe_run_name, write_json_atomic
    if not isinstance(data, (bytes, bytearray)):
        raise _zip_error("the upload is not a file", file=source)
    if len(data) > MAX_ZIP_BYTES:
        raise _zip_error(f"the zip is {len(data) / 2**20:.0f} MiB, more than the {MAX_ZIP_BYTES // 2**20} MiB "
                         "a run may have", file=source, fix="export a smaller run")
    try:
        z = zipfile.ZipFile(io.BytesIO(bytes(data)))
        infos = z.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        raise _zip_error("not a zip file (or a damaged one)", file=source) from None
    _check_zip_version(z, source)
    seen: set[str] = set()
    for info in infos:
        n = info.filename
        if info.is_dir() and n in ("dataset/", "dataset/arrays/"):
            continue
        if n not in ZIP_FILES and not ZIP_ARRAY.fullmatch(n):
            raise _zip_error(f"the zip holds '{clean_text(n, 120)}', which is not a file of a run folder "
                             f"(expected only: {', '.join(ZIP_FILES)}, dataset/arrays/a<number>.npy)",
                             file=source)
        if n in seen:
            raise _zip_error(f"the zip holds '{n}' twice", file=source)
        seen.add(n)
        if info.flag_bits & 0x1:
            raise _zip_error(f"'{n}' in the zip is encrypted", file=source)
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise _zip_error(f"'{n}' in the zip is a symbolic link", file=source)
    missing = [n for n in ZIP_REQUIRED if n not in seen]
    if "dataset/arrays.npz" not in seen and not any(ZIP_ARRAY.fullmatch(n) for n in seen):
        missing.append("dataset/arrays.npz (or dataset/arrays/*.npy)")
    if missing:
        raise _zip_error(f"the zip lacks {', '.join(missing)}, which a run needs", file=source)
    if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
        raise _zip_error(f"the zip unpacks to more than {MAX_UNPACKED_BYTES // 2**30} GiB", file=source,
                         fix="export a smaller run")
    r = Path(root) if root is not None else runs_root()
    r.mkdir(parents=True, exist_ok=True)
    tmp = r / f".import-{os.getpid()}-{time.time_ns()}"
    try:
        (tmp / "dataset").mkdir(parents=True)
        total = 0
        for info in infos:
            if info.is_dir():
                continue
            dest = confine(tmp / info.filename, tmp)
            dest.parent.mkdir(exist_ok=True)            # dataset/arrays/ for a dataset of format 3
            with z.open(info) as src, open(dest, "wb") as out:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > MAX_UNPACKED_BYTES:
                        raise _zip_error(f"the zip unpacks to more than {MAX_UNPACKED_BYTES // 2**30} GiB",
                                         file=source, fix="export a smaller run")
                    out.write(chunk)
        for n in seen:
            if n.endswith(".json"):
                try:
                    v = json.loads((tmp / n).read_text(encoding="utf-8"))
                except (UnicodeDecodeError, ValueError):
                    raise _zip_error(f"{n} in the zip is not valid JSON", file=source) from None
                if not isinstance(v, dict):
                    raise _zip_error(f"{n} in the zip is not a JSON object", file=source)
        status = json.loads((tmp / "status.json").read_text()) if "status.json" in seen else None
        if isinstance(status, dict) and status.get("status") in ("running", "queued"):
            # a copy is never trained by the process that wrote it: shown as interrupted
            for key in ("pid", "hostname", "process_start", "boot_id"):
                status.pop(key, None)
            status["heartbeat"] = 0.0
            write_json_atomic(tmp / "status.json", status)
        try:
            load_run(tmp)
        except DataError as e:
            what = getattr(e, "what", str(e))
            member = Path(getattr(e, "file", "") or "").relative_to(tmp).as_posix() \
                if getattr(e, "file", None) and str(e.file).startswith(str(tmp)) else None
            raise _zip_error(f"{member + ': ' if member else ''}{what}".replace(str(tmp), "<run>"),
                             file=source, fix="export the run again from a working run folder") from None
        if "predictions_test.npz" in seen:      # optional; read without pickle, or refused
            from mtlrec.runs.load import read_predictions
            if read_predictions(tmp, "test") is None:
                raise _zip_error("predictions_test.npz in the zip is damaged (not the stored test predictions)",
                                 file=source)
        meta = json.loads((tmp / "meta.json").read_text()) if "meta.json" in seen else {}
        cfg = json.loads((tmp / "config.json").read_text())
        label = clean_text(name, 80) or clean_text(meta.get("name"), 80) or clean_text(cfg.get("name"), 80) or "run"
        meta.update({"imported_at": time.time(), "name": meta.get("name") or (clean_text(name, 80) or None)})
        write_json_atomic(tmp / "meta.json", meta)
        if owner:                               # owned before it appears in the runs root
            from mtlrec.runs.access import record_owner
            record_owner(tmp, owner)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        # a folder of its own, reserved atomically (empty), then replaced by the unpacked copy
        final = reserve_folder(r, f"{stamp}-imported-{safe_run_name(label) or 'run'}")
        try:
            os.replace(tmp, final)
        except BaseException:
            final.rmdir()
            raise
        return final
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(e):                     # said of the runs folder, not of the half-unpacked copy
            raise DiskFullError(str(r), source and Path(str(source)).name) from e
        raise
    finally:
        z.close()
