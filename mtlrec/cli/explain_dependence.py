"""``python -m mtlrec explain-dependence --run RUN_DIR --group GROUP [--color-by GROUP] [--task TASK]
[--class CLASS] [--rows 500] [--background 32] [--time-budget 2] [--json] [--html FILE]``.

A SHAP dependence plot (`mtlrec.explain.dependence`, the Explain page's): the feature group's value
(original scale; a user or item id by its support, the number of its training rows) against its
SHAP contribution to the task over ``--rows`` random test pairs, coloured by ``--color-by``. The
text output summarises it per category or value bin; with ``--json`` one strict JSON object (no NaN)::

    {"run", "group", "color_by", "task", "class", "unit", "kind", "x_label", "values": [...],
     "shap": [...], "color": [...] | null, "split", "rows": [...], "n_rows", "method", "background",
     "summary": [{"value" | "low"/"high", "n", "mean_shap", "min_shap", "max_shap"}],
     "warning": null or why too few background rows were used, "run_warning", "html", "elapsed_ms"}

A gated model (MMoE, PLE) gets fewer background rows to keep to ``--time-budget`` seconds; below
`mtlrec.explain.dependence.ADVISED_BACKGROUND` rows the result carries a ``warning`` (also on
stderr). ``--html FILE`` also writes the plot as one self-contained HTML page (opens offline). An
unknown group, task or class: the message on stderr (and with ``--json`` ``{"error": ...}`` on
stdout), exit status 2.
"""
from __future__ import annotations

import sys


def add_arguments(p) -> None:
    from mtlrec.cli.emit import add_common
    add_common(p, html="the plot")
    p.add_argument("--group", required=True, help="feature group to plot, e.g. age (ids: 'user id', 'item id')")
    p.add_argument("--color-by", default=None, help="feature group to colour the dots by")
    p.add_argument("--task", default=None, help="task whose output is explained (default: the first)")
    p.add_argument("--class", dest="cls", default=None,
                   help="class of a multi-label task (default: the one most often positive in training)")
    p.add_argument("--rows", type=int, default=500, help="test pairs to plot (default 500)")
    p.add_argument("--background", type=int, default=32, help="SHAP background rows (default 32)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="about how long a gated model may take; its background is cut to fit (default 2)")


def _plot(args) -> dict:
    from mtlrec.cli.emit import load_run, write_figures
    from mtlrec.explain.dependence import dependence_data, dependence_figure, dependence_summary
    run_ = load_run("explain-dependence", args.run)
    data = dependence_data(run_, args.group, args.color_by, args.task, n_rows=args.rows, background=args.background,
                           seed=args.seed, cls=args.cls, time_budget_s=args.time_budget)
    data["summary"] = dependence_summary(data)
    if args.html:
        write_figures(args.html, f"Dependence plot: {data['group']} → {data['task']}", [dependence_figure(data)],
                      [_head(data), data["warning"]])
    if data["warning"]:
        print(f"mtlrec explain-dependence: warning: {data['warning']}", file=sys.stderr)
    return {"run": str(run_.run_dir), **data, "html": args.html, "run_warning": run_.warning}


def run(args) -> int:
    from mtlrec.cli.emit import serve
    return serve("explain-dependence", args.json, lambda: _plot(args), _print_text)


def _head(data: dict) -> str:
    what = data["task"] + (f" (class '{data['class']}')" if data.get("class") is not None else "")
    return (f"SHAP value of {data['group']} for {what}, in {data['unit']}, against {data['x_label']}: "
            f"{data['n_rows']} {data['split']} pairs, {data['method']} SHAP over {data['background']} background "
            f"rows" + (f", coloured by {data['color_by']}" if data.get("color_by") else "") + ".")


def _print_text(data: dict) -> None:
    print(_head(data))
    print(f"\n  {'value':<28} {'pairs':>6} {'mean SHAP':>10} {'min':>9} {'max':>9}")
    for b in data["summary"]:
        label = b["value"] if "value" in b else f"{b['low']:.4g} – {b['high']:.4g}"
        print(f"  {label[:28]:<28} {b['n']:>6} {b['mean_shap']:+10.4f} {b['min_shap']:+9.4f} {b['max_shap']:+9.4f}")
    if data["warning"]:
        print(f"\nWarning: {data['warning']}")
    if data.get("html"):
        print(f"\nwrote {data['html']} (self-contained, opens offline)")
