"""``python -m mtlrec explain-global --run RUN_DIR [--rows 500] [--background 100] [--json] [--html FILE]``.

What the model relies on overall (`mtlrec.explain.api.global_summary`, the Explain page's global
view): per task, the mean |SHAP| of every feature group over ``--rows`` random test rows, which
inputs drive which shared units, and -- where the model has them -- which shared units each
task's tower relies on, the mean gate weights and the experts each task relies on. With
``--json`` one strict JSON object (no NaN)::

    {"run", "n_rows", "background", "space", "importance": {task: {group: mean |SHAP|}},
     "importance_method", "mean_contribution", "heatmap": {...}, "tower_reliance"?, "gates"?,
     "expert_reliance"?, "elapsed_ms", "html": null or the figure file, "warning": null or one line}

``--html FILE`` also writes the figures as one self-contained HTML page (opens offline). A
missing or damaged run folder, or a bad setting: the message on stderr (and with ``--json``
``{"error": ...}`` on stdout), exit status 2.
"""
from __future__ import annotations

import sys


def add_arguments(p) -> None:
    p.add_argument("--run", required=True, help="run folder written by 'python -m mtlrec train'")
    p.add_argument("--rows", type=int, default=500, help="test rows the mean |SHAP| is taken over (default 500)")
    p.add_argument("--background", type=int, default=100,
                   help="training rows in the SHAP background sample (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples")
    p.add_argument("--html", default=None, metavar="FILE", help="also write the figures to this HTML file")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    from mtlrec.cli.emit import dumps, fail, write_figures
    from mtlrec.errors import DataError, TrainingError
    try:
        from mtlrec.explain.api import global_summary
        from mtlrec.runs import load_run
        run_ = load_run(args.run)
        if run_.warning:
            print(f"mtlrec explain-global: warning: {run_.warning}", file=sys.stderr)
        res = global_summary(run_, n_rows=args.rows, background=args.background, seed=args.seed)
        if args.html:
            from mtlrec.explain.figures import summary_figures
            write_figures(args.html, f"What {run_.run_dir.name} relies on overall", summary_figures(res),
                          [_head(res)])
    except (DataError, TrainingError, ValueError, KeyError) as e:
        return fail("explain-global", e, args.json)
    except OSError as e:
        return fail("explain-global", f"cannot write {e.filename}: {e.strerror}", args.json)
    except Exception as e:  # never a traceback: say what failed
        return fail("explain-global", f"the summary failed: {e.__class__.__name__}: {e}", args.json, code=1)
    if args.json:
        print(dumps({"run": str(run_.run_dir), **res, "html": args.html, "warning": run_.warning}))
        return 0
    _print_text(res)
    if args.html:
        print(f"\nwrote {args.html} (self-contained, opens offline)")
    return 0


def _head(res: dict) -> str:
    return (f"Mean |SHAP| over {res['n_rows']} test rows ({res['importance_method']} SHAP, {res['background']} "
            f"background rows, {res['space']} space; regression tasks in the model's standardised output).")


def _ranked(values: dict, fmt: str = "{:.3f}") -> str:
    total = sum(abs(v) for v in values.values()) or 1.0
    return ", ".join(f"{g} {fmt.format(v)} ({abs(v) / total:.0%})"
                     for g, v in sorted(values.items(), key=lambda kv: (-abs(kv[1]), kv[0])))


def _print_text(res: dict) -> None:
    print(_head(res))
    print("\nFeature-group importance per task (mean |SHAP|, share):")
    for task, imp in res["importance"].items():
        print(f"  {task}: {_ranked(imp)}")
    if "gates" in res:
        print("\nMean gate weight per task:" + (f" ({res['gates_note']})" if res.get("gates_note") else ""))
        for task, w in res["gates"].items():
            print(f"  {task}: " + ", ".join(f"{e} {v:.2f}" for e, v in w.items()))
    if "expert_reliance" in res:
        print("\nExperts each task's logit relies on (mean |SHAP|, share):")
        for task, w in res["expert_reliance"].items():
            print(f"  {task}: {_ranked(w)}")
    if "tower_reliance" in res:
        print("\nShared units each task's tower relies on most (mean |SHAP|):")
        units = res["tower_reliance"]["units"]
        for task, v in res["tower_reliance"]["values"].items():
            top = sorted(range(len(v)), key=lambda i: -v[i])[:5]
            print(f"  {task}: " + ", ".join(f"u{units[i]} {v[i]:.3f}" for i in top))
