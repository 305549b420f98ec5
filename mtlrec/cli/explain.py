"""``python -m mtlrec explain --run RUN_DIR --user USER_ID --item ITEM_ID [--json] [--background 100]``.

SHAP explanation of one recommendation, per task: base value (mean over the background
sample), each feature group's contribution, and the output (base + contributions) -- in
logit space for binary tasks and for one class of a multilabel task (``--class
genres=Drama``; default the pair's most likely class), as the log share of one class for a
distribution task (a user's interests: ``--class interest=Drama``), in label units for regression tasks
(e.g. rating points: base + contributions = the predicted rating). The fused score is the
one ``mtlrec recommend`` shows for the pair, split by feature group. With ``--json`` one object::

    {"user", "item", "space": "per task", "method", "background",
     "tasks": {task: {"space", "unit", "base_value", "output", "prediction",
                      "contributions": {group: value}, ...}},
     "fused": {"score", "base_value", "contributions", "by_task", "weights"}, "sentence",
     "sensitive", "sensitive_check": {"checked", "threshold", "flagged", "text"}, "elapsed_ms",
     "history": {"method", "items": [{"item", "name", "value_text", "fused", "contributions": {task: c},
                 "attention"}], "sentence", ...} | null   (a run with a history input: each history
                 item's contribution by ablation, `mtlrec.explain.history`),
     "lime": {task: {"lime": {group: weight}, "shap": {group: value}, "agreement", "top_lime",
                     "top_shap", "unit", "class", "n_samples", "method", ...}}   (with --lime),
     "warning": null or one line}

``--lime`` adds LIME beside SHAP for every task (`mtlrec.explain.lime`: a local linear surrogate over
the same feature groups, with the rank agreement of the two). The JSON is strict (no NaN: an
undefined number is null). An unknown user, item, task or class: the message on stderr (and with
``--json`` ``{"error": ...}`` on stdout), exit status 2. See also ``explain-global`` (what the model
relies on overall) and ``explain-dependence`` (a dependence plot).

``elapsed_ms`` is the time of the explanation itself (background sample, explainer,
attributions), not of loading the run or importing shap.
"""
from __future__ import annotations

import time


def add_arguments(p) -> None:
    from mtlrec.cli.emit import add_common
    add_common(p)
    p.add_argument("--user", required=True, help="user id as in the data")
    p.add_argument("--item", required=True, help="item id as in the data")
    p.add_argument("--background", type=int, default=100,
                   help="number of training rows in the SHAP background sample (default 100)")
    p.add_argument("--method", default="auto",
                   choices=["auto", "deep", "exact", "shap_exact", "permutation", "gradient"],
                   help="auto: DeepExplainer where it is exactly additive, else exact group Shapley values (sampled permutations above 10 groups)")
    p.add_argument("--weights", default=None, help="fusion weights per task, e.g. click=1,rating=0.5")
    p.add_argument("--class", dest="classes", action="append", default=None, metavar="TASK=CLASS",
                   help="class of a multilabel or distribution task to explain, e.g. genres=Drama "
                        "(default: the most likely)")
    p.add_argument("--lime", action="store_true", help="also LIME beside SHAP, for every task")
    p.add_argument("--lime-samples", type=int, default=1000, help="LIME's perturbed samples (default 1000)")
    p.add_argument("--lime-method", default="lime", choices=["lime", "captum"],
                   help="LIME implementation: the lime package (default) or captum")


def _classes(items: list[str] | None) -> dict | None:
    from mtlrec.errors import DataError
    if not items:
        return None
    out = {}
    for part in items:
        if "=" not in part:
            raise DataError(f"bad --class entry '{part}'", fix="write task=class, e.g. --class genres=Drama")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _explain(args) -> dict:
    """The explanation with the run's ``warning`` -- with --lime, LIME for every task on the same explainer."""
    from mtlrec.cli.emit import load_run
    from mtlrec.cli.recommend import parse_weights
    run_ = load_run("explain", args.run)     # interrupted / failed / still running: said, the saved model explained
    import shap  # noqa: F401  (imported here so that elapsed_ms is the explanation alone)

    from mtlrec.explain.api import explain_recommendation, make_explainer
    lime = getattr(args, "lime", False)
    t0 = time.perf_counter()
    ex = make_explainer(run_, args.background, args.method, args.seed) if lime else None  # shared with LIME
    built_ms = (time.perf_counter() - t0) * 1000.0
    res = explain_recommendation(run_, args.user, args.item, background=args.background, explainer=ex,
                                 weights=parse_weights(args.weights), method=args.method, seed=args.seed,
                                 classes=_classes(getattr(args, "classes", None)))
    res["elapsed_ms"] += built_ms          # the explainer's build counts, as when it is built inside
    if lime:
        from mtlrec.explain.lime import lime_all_tasks
        chosen = {t: r["class"] for t, r in res["tasks"].items() if r.get("class") is not None}
        res["lime"] = lime_all_tasks(run_, args.user, args.item, classes=chosen, n_samples=args.lime_samples,
                                     method=args.lime_method, explainer=ex, seed=args.seed)
    return {**res, "warning": run_.warning}


def run(args) -> int:
    from mtlrec.cli.emit import serve
    return serve("explain", args.json, lambda: _explain(args), _print_text)


def _print_text(res: dict) -> None:
    print(f"Why item {res['item']} for user {res['user']}  "
          f"({res['method']} SHAP, {res['background']} background rows, {res['elapsed_ms']:.0f} ms; "
          f"logit space, regression tasks in label units)")
    for name, t in res["tasks"].items():
        pred = "" if t["prediction"] is None else \
            f" -> {'value' if t['type'] == 'regression' else 'probability'} {t['prediction']:.3f}"
        print(f"\n  {name} ({t['unit']}): base {t['base_value']:+.3f}  output {t['output']:+.3f}{pred}")
        prob = (t.get("probability") or {}).get("contributions") or {}
        for g, v in sorted(t["contributions"].items(), key=lambda kv: -abs(kv[1])):
            print(f"    {_label(res, g):<40} {v:+.4f}" + (f"  (probability {prob[g]:+.4f})" if g in prob else ""))
    f = res.get("fused")
    if f:
        w = ", ".join(f"{k}={v:.2f}" for k, v in f["weights"].items())
        print(f"\n  fused score {f['score']:.4f} (base {f['base_value']:.4f}; weights {w})")
        for g, v in sorted(f["contributions"].items(), key=lambda kv: -abs(kv[1])):
            print(f"    {_label(res, g):<40} {v:+.4f}")
    if res.get("lime"):
        _print_lime(res)
    print(f"\n{res['sentence']}")
    if res.get("history"):
        _print_history(res["history"])
    for s in res.get("sensitive") or []:
        if s["flagged"]:
            print(f"\nNote: '{s['group']}' looks like a protected attribute or a proxy ({s['kind']}) and carries "
                  f"{s['share']:.0%} of the explanation ({s['where']}). {s['note']}")
    if res.get("sensitive_check"):
        print(f"\n{res['sensitive_check']['text']}")


def _print_history(h: dict) -> None:
    """The "Because of the user's history" section: each history item's contribution (fused score and
    per task, ablation), the attention weights beside them, the sentence."""
    print(f"\nBecause of the user's history ({h['n_items']} item{'s' if h['n_items'] != 1 else ''}, "
          f"window {h['length']}; method: {h['method']})")
    print(f"    {h['note']}")
    tasks = list(h["units"])
    head = "".join(f" {t[:9]:>9}" for t in tasks)
    att = h.get("attention_note") is not None
    print(f"    {'history item (most recent first)':<40} {'fused':>9}{head}" + (f" {'attention':>9}" if att else ""))
    for e in h["items"]:
        name = f"{e['name']} {e['value_text']}".strip()
        name = name if len(name) <= 40 else name[:39] + "…"
        fused = f"{e['fused']:+9.4f}" if e["fused"] is not None else f"{'':>9}"
        cells = "".join(f" {e['contributions'][t]:+9.4f}" for t in tasks)
        print(f"    {name:<40} {fused}{cells}" + (f" {e['attention']:9.3f}" if att else ""))
    if att:
        print(f"    Note: {h['attention_note']}")
    print(f"\n{h['sentence']}")


def _print_lime(res: dict) -> None:
    for name, r in res["lime"].items():
        what = name + (f" (class '{r['class']}')" if r.get("class") is not None else "")
        print(f"\n  LIME beside SHAP: {what}, {r['unit']}; rank agreement {r['agreement']:.2f} "
              f"({r['method']}, {r['n_samples']} samples)")
        print(f"    {'':<40} {'SHAP':>9} {'LIME':>9}")
        for g in sorted(r["shap"], key=lambda g: -abs(r["shap"][g])):
            print(f"    {_label(res, g):<40} {r['shap'][g]:+9.4f} {r['lime'][g]:+9.4f}")


def _label(res: dict, group: str, width: int = 40) -> str:
    """A contribution's label: the pair's value ("occupation = student"), else the group's name."""
    text = ((res.get("features") or {}).get(group) or {}).get("text") or group
    return text if len(text) <= width else text[: width - 1] + "…"
