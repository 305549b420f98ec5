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


def add_arguments(p) -> None:
    from mtlrec.cli.emit import add_common
    add_common(p, html="the figures")
    p.add_argument("--rows", type=int, default=500, help="test rows the mean |SHAP| is taken over (default 500)")
    p.add_argument("--background", type=int, default=100,
                   help="training rows in the SHAP background sample (default 100)")


def _summary(args) -> dict:
    from mtlrec.cli.emit import load_run, write_figures
    from mtlrec.explain.api import global_summary
    run_ = load_run("explain-global", args.run)
    res = global_summary(run_, n_rows=args.rows, background=args.background, seed=args.seed)
    if args.html:
        from mtlrec.figures.explain import summary_figures
        write_figures(args.html, f"What {run_.run_dir.name} relies on overall", summary_figures(res), [_head(res)])
    return {"run": str(run_.run_dir), **res, "html": args.html, "warning": run_.warning}


def run(args) -> int:
    from mtlrec.cli.emit import serve
    return serve("explain-global", args.json, lambda: _summary(args), _print_text)


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
    if res.get("html"):
        print(f"\nwrote {res['html']} (self-contained, opens offline)")
