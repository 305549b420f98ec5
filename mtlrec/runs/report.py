"""Exports of one run for people without the app: an offline HTML report, a metrics CSV, its predictions.

* `report_html(run_dir)` -> str: ONE self-contained HTML file -- plotly.js embedded once, no
  reference to anything outside the file (a Content-Security-Policy forbids every network load;
  the few URL strings plotly.js carries for map tiles we never draw are written with escaped
  slashes), every user text HTML-escaped. Sections: run summary, data, configuration, per-task
  metrics and curves, multi-task gain with Δm and the seesaw, cross-validation, training dynamics
  (the last three when the run has them), example recommendations (fused score) and one explanation.
* `metrics_csv(run_dir)` -> bytes: every recorded metric, formula-safe (`mtlrec.export.csv_bytes`):
  the splits, the gain with Δm and the seesaw, the cross-validation mean and std, the training
  dynamics per epoch.
* `predictions_csv(run_dir, split="test")` -> bytes: the model's predictions per row of a split, with
  the source ``row_id`` (see `mtlrec.runs.predictions.predictions_frame`), formula-safe.
* `figures_page(title, figures)` -> str: plotly figures as one offline page (the explanation commands).

A run folder as a zip (export and import) is `mtlrec.runs.archive`.
"""
from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any

from mtlrec.display import format_number
from mtlrec.errors import DataError

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
    from mtlrec.runs.library import read_obj
    return read_obj(d / name) or {}


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
    from mtlrec.runs.library import clean_text, read_meta, run_row
    from mtlrec.runs.load import RunFolderError
    d = Path(run_dir)
    if not d.is_dir() or not (d / "config.json").is_file():
        raise RunFolderError("not a run folder (config.json is missing)", file=str(d / "config.json"),
                             fix="give a folder written by 'python -m mtlrec train'")
    row = run_row(d)
    title = clean_text(title, 120) if title else row["name"]
    metrics = _read(d, "metrics.json")
    history = _read(d, "history.json")
    figs: list[str] = []

    def fig(f) -> str:
        figs.append(_fig_html(f, len(figs)))
        return figs[-1]

    parts = [_summary_section(row, read_meta(d)), _data_section(d, row), _config_section(d),
             _metrics_section(metrics, row), _curves_section(history, row, fig),
             # gain (with Δm and the seesaw), cross-validation, training dynamics: when the run has them
             _gain_section(metrics, fig),
             _cv_section(metrics, {t: (row["metrics"].get(t) or {}).get("metric") for t in row["tasks"]}),
             _dynamics_section(history, fig),
             # recommendations and one explanation
             _model_sections(d, k=k, explain=explain, background=background)]
    return _report_page(title, "\n".join(p for p in parts if p is not None), with_plotly=bool(figs))


def _report_page(title: str, body: str, *, with_plotly: bool) -> str:
    """The whole page around the sections: the Content-Security-Policy, the style, plotly.js inline
    (only when there are figures), the title and when the report was made."""
    generated = time.strftime("%Y-%m-%d %H:%M")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)} — mtlrec report</title><style>{STYLE}</style>"
            f"<script type=\"text/javascript\">{plotly_js() if with_plotly else ''}</script></head><body>"
            f"<h1>{_e(title)}</h1><p class=\"muted\">mtlrec run report · generated {_e(generated)} · "
            f"self-contained: opens offline, loads nothing from the network</p>\n{body}\n</body></html>\n")


def _summary_section(row: dict, meta: dict) -> str:
    """The run at a glance (`mtlrec.runs.library.run_row`), its problems, and a warning when it did not finish."""
    summary = [["run folder", row["run"]], ["status", row["status"]], ["created", row["created_text"]],
               ["architecture", row["arch"]], ["tasks", ", ".join(row["tasks"])],
               ["loss weighting", row["weighting"]], ["device", row["device"]],
               ["training time", f"{row['duration_s']:.1f} s" if row["duration_s"] is not None else None],
               ["best epoch", row["best_epoch"]], ["tags", ", ".join(meta["tags"]) or None]]
    out = "<h2>Summary</h2>" + _table(["", ""], summary)
    if row["problems"]:
        out += '\n<p class="warn">' + "<br>".join(_e(p) for p in row["problems"]) + "</p>"
    if row["status"] not in ("finished", "cancelled"):
        out += (f'\n<p class="warn">This run is {_e(row["status"])}'
                f'{": " + _e(row["error"]) if row["error"] else ""}.</p>')
    return out


def _data_section(d: Path, row: dict) -> str:
    """The data: its source, users, items, split and rows, sampled negatives, input features and labels
    (from dataset/dataset.json)."""
    from mtlrec.prep.negatives import shortfall_text
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
    parts = ["<h2>Data</h2>" + _table(["", ""], data_rows)]
    if shortfall_text(neg):
        parts.append(f'<p class="warn">{_e(shortfall_text(neg))}</p>')
    if fields:
        parts.append("<p>Input features</p>" + _table(["feature", "kind", "of"], [
            [f.get("name"), f.get("kind"), f.get("owner")] for f in fields]))
    if labels:
        parts.append("<p>Labels</p>" + _table(["label", "type"], [[lab.get("name"), lab.get("task_type") or lab.get("type")] for lab in labels]))
    return "\n".join(parts)


def _config_section(d: Path) -> str:
    """Every setting of the run (config.json flattened, the model's resolved hyperparameters) and its task chain."""
    from mtlrec.runs.compare import run_config_flat
    flat = run_config_flat(d)
    return ("<h2>Configuration</h2>" + _table(["setting", "value"], [[k, v] for k, v in flat.items()])
            + _chain_section(_read(d, "config.json")))


def _metrics_section(metrics: dict, row: dict) -> str:
    """The test metrics per task (each task's configured metric in bold, every metric's direction) and
    the ranking of test users against the baselines, with its verdicts."""
    from mtlrec.metrics import baselines_text, ranking_note, ranking_rows, ranking_verdicts
    from mtlrec.runs.library import direction
    test = metrics.get("test") if isinstance(metrics.get("test"), dict) else {}
    sec = ["<h2>Test metrics per task</h2>",
           '<p class="note">In bold: each task\'s configured metric (the one training selected the best '
           'epoch on). ↑ higher is better, ↓ lower is better.</p>']
    for task, vals in test.items():
        if not isinstance(vals, dict):
            continue
        head = (row["metrics"].get(task) or {}).get("metric")
        base = ((metrics.get("task_baseline") or {}).get(task) or {}).get("metrics")   # a distribution's mean
        rows, mark = [], set()
        for i, (m, v) in enumerate(vals.items()):
            hib = direction(m) if m != "best_f1_threshold" else None   # a threshold has no direction
            rows.append([m + {True: " ↑", False: " ↓"}.get(hib, ""), v] + ([base.get(m)] if base else []))
            if m == head:
                mark |= {(i, 0), (i, 1)}
        sec.append(f"<h3>{_e(task)}</h3>" + _table(["metric", "value"] + (["training mean (baseline)"] if base else []),
                                                  rows, mark))
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
    return "".join(sec)


def _curves_section(history: dict, row: dict, fig) -> str | None:
    """Per task, its training and validation loss and its validation metric per epoch (None without epochs)."""
    eps = [e for e in history.get("epochs") or [] if isinstance(e, dict)] if isinstance(history.get("epochs"), list) else []
    if not eps:
        return None
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
    return "".join(sec)


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
    from mtlrec.runs.compare import gain_delta_m, seesaw
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
            out.append(_history_html(ex.get("history")))
    return "".join(out)


def _history_html(history: dict | None, top: int = 8) -> str:
    """The explanation's "Because of the user's history" part (`mtlrec.explain.history`): the sentence
    and the history items that move the fused score most, with the attention weights beside them;
    "" for a run without a history input."""
    if history is None:
        return ""
    out = ["<h3>Because of the user's history</h3>", f"<p>{_e(history.get('sentence'))}</p>"]
    items = history.get("items") or []
    if not items:
        return "".join(out)
    key = (lambda e: e["fused"]) if history.get("fused") is not None else \
        (lambda e: next(iter(e["contributions"].values())))
    shown = sorted(items, key=lambda e: -abs(key(e)))[:top]
    att = history.get("attention_note") is not None
    trs = [[f"#{e['recency']}", e["name"], e.get("value_text") or "", key(e)] + ([e["attention"]] if att else [])
           for e in shown]
    out.append(f"<p>{_e(history.get('note'))} (#1 = the most recent item).</p>")
    out.append(_table(["recency", "history item", "given", "contribution"] + (["attention weight"] if att else []), trs))
    if att:
        out.append(f"<p class=\"note\">{_e(history['attention_note'])}</p>")
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

    from mtlrec.export import csv_bytes
    from mtlrec.runs.library import read_obj, task_metrics
    from mtlrec.runs.load import RunFolderError
    d = Path(run_dir)
    m = read_obj(d / "metrics.json")
    if m is None:
        raise RunFolderError("metrics.json is missing or damaged, so there are no metrics to export",
                             file=str(d / "metrics.json"), fix="pick a finished run, or train the run again")
    head = {t: mt for t, _ty, mt in task_metrics(read_obj(d / "model.json"), read_obj(d / "config.json"))}
    weighting = ((read_obj(d / "config.json") or {}).get("train") or {}).get("weighting")
    rows = _split_rows(m, head) + _gain_rows(m) + _cv_csv_rows(m, head) \
        + _dynamics_rows(read_obj(d / "history.json"), weighting)
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
    from mtlrec.runs.compare import gain_delta_m, seesaw
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
    from mtlrec.export import csv_bytes
    from mtlrec.runs.load import RunFolderError, load_run
    from mtlrec.runs.predictions import predictions_frame
    run = run if run is not None else load_run(run_dir)
    if split not in run.dataset.rows:
        raise RunFolderError(f"the run's dataset has no '{split}' split (it has: {', '.join(run.dataset.splits)})",
                             file=str(Path(run_dir) / "dataset"), fix="choose one of its splits")
    return csv_bytes(predictions_frame(run, split))
