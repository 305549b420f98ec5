"""A plain-data summary of interaction data for the CLI and the app."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mtlrec.data.raw import RawData
from mtlrec.data.roles import DataSpec
from mtlrec.data.validate import ValidationReport, binary_values, to_numeric, validate


def _f(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else round(x, 6)


def _dist(counts: pd.Series) -> dict:
    if counts.empty:
        return {}
    return {"min": int(counts.min()), "median": _f(counts.median()), "mean": _f(counts.mean()),
            "max": int(counts.max())}


def _regression_stats(vals: np.ndarray) -> dict:
    v = vals[~np.isnan(vals)]
    out = {"type": "regression", "count": int(v.size), "mean": _f(v.mean()), "std": _f(v.std()),
           "min": _f(v.min()), "max": _f(v.max())}
    uniq = np.unique(v)
    if len(uniq) <= 20:  # ratings: one bar per value
        counts = [int((v == u).sum()) for u in uniq]
        out["histogram"] = {"values": [_f(u) for u in uniq], "counts": counts}
    else:
        counts, edges = np.histogram(v, bins=10)
        out["histogram"] = {"edges": [_f(e) for e in edges], "counts": counts.astype(int).tolist()}
    return out


def summarize(raw: RawData, spec: DataSpec, report: ValidationReport | None = None) -> dict:
    """Rows, users, items, sparsity, label balance, activity per user/item, roles and warnings.

    Runs :func:`validate` when no ``report`` is given (so it raises DataError on bad data)
    and describes the data that validation keeps.
    """
    if report is None:
        report = validate(raw, spec)
    data = report.raw or raw
    inter = data.interactions
    out: dict = {"format": data.format, "sources": dict(data.sources), "rows": int(len(inter)),
                 "users": report.users, "items": report.items, "catalog_items": report.catalog_items,
                 "catalog_users": report.catalog_users}
    if spec.user_id and spec.item_id:
        pairs = int(len(inter) - report.duplicate_interactions)
        cells = report.users * report.items
        out["density"] = _f(pairs / cells) if cells else None
        out["sparsity"] = _f(1 - pairs / cells) if cells else None
    else:
        out["density"] = out["sparsity"] = None
    if spec.user_id:
        out["interactions_per_user"] = _dist(inter[spec.user_id].value_counts())
    if spec.item_id:
        out["interactions_per_item"] = _dist(inter[spec.item_id].value_counts())
    if spec.timestamp:
        ts = inter[spec.timestamp]
        out["time_range"] = [str(ts.min()), str(ts.max())]
    labels = {}
    for col, task in spec.labels.items():
        table = data.locate(col)
        s = data.tables()[table][col]
        if task == "binary":
            vals = binary_values(s)[0]
            v = vals[~np.isnan(vals)]
            labels[col] = {"type": "binary", "count": int(v.size), "positives": int(v.sum()),
                           "positive_rate": _f(v.mean())}
        elif task == "regression":
            labels[col] = _regression_stats(to_numeric(s)[0])
        else:
            classes = s.dropna().astype("str").str.split(spec.multilabel_sep, regex=False).explode().str.strip()
            classes = classes[classes != ""]
            freq = classes.value_counts()
            n = int(s.notna().sum())
            labels[col] = {"type": "multilabel", "table": table, "count": n, "classes": int(len(freq)),
                           "class_frequency": {str(k): _f(v / n) for k, v in freq.items()},
                           "mean_labels_per_row": _f(len(classes) / n) if n else None}
    out["labels"] = labels
    out["roles"] = spec.roles()
    out["spec"] = spec.to_dict()
    out["dropped_rows"] = report.dropped_rows
    out["missing_items"] = report.missing_items
    out["missing_users"] = report.missing_users
    out["duplicate_interactions"] = report.duplicate_interactions
    out["warnings"] = [w.to_dict() for w in report.warnings]
    return out


def format_summary(summary: dict) -> str:
    """Human-readable text of :func:`summarize`'s dict (for the CLI)."""
    lines = [f"Format: {summary['format']}   files: " + ", ".join(f"{t}={n}" for t, n in summary["sources"].items())]
    lines.append(f"Rows: {summary['rows']:,}")
    if summary.get("users") is not None:
        lines.append(f"Users: {summary['users']:,}" + (f"  (users table: {summary['catalog_users']:,} rows)"
                                                        if summary.get("catalog_users") is not None else ""))
    if summary.get("items") is not None:
        lines.append(f"Items: {summary['items']:,}" + (f"  (items table: {summary['catalog_items']:,} rows)"
                                                        if summary.get("catalog_items") is not None else ""))
    if summary.get("sparsity") is not None:
        lines.append(f"Sparsity: {summary['sparsity']:.4%}")
    for key, label in (("interactions_per_user", "Interactions per user"),
                       ("interactions_per_item", "Interactions per item")):
        d = summary.get(key)
        if d:
            lines.append(f"{label}: min {d['min']}, median {d['median']:g}, mean {d['mean']:.1f}, max {d['max']}")
    if summary.get("time_range"):
        lines.append(f"Time range: {summary['time_range'][0]} .. {summary['time_range'][1]}")
    if summary["dropped_rows"]:
        lines.append(f"Dropped rows: {summary['dropped_rows']:,}")
    lines.append("")
    lines.append("Labels:")
    for col, d in summary["labels"].items():
        if d["type"] == "binary":
            lines.append(f"  {col} (binary): positive rate {d['positive_rate']:.3f} ({d['positives']:,} of {d['count']:,})")
        elif d["type"] == "regression":
            lines.append(f"  {col} (regression): mean {d['mean']:.3f}, std {d['std']:.3f}, range {d['min']:g}..{d['max']:g}")
        else:
            top = sorted(d["class_frequency"].items(), key=lambda kv: -kv[1])[:5]
            lines.append(f"  {col} (multi-label, {d['classes']} classes): "
                         + ", ".join(f"{k} {v:.2f}" for k, v in top) + (" ..." if d["classes"] > 5 else ""))
    lines.append("")
    lines.append("Suggested roles:")
    width = max((len(c) for c in summary["roles"]), default=0)
    owners = {}
    for kind in ("categorical", "numeric", "text", "multivalued"):
        owners.update({c: o for c, o in summary["spec"].get(kind, {}).items()})
    for col, role in summary["roles"].items():
        extra = f" ({owners[col]})" if col in owners else ""
        lines.append(f"  {col.ljust(width)}  {role}{extra}")
    lines.append("")
    if summary["warnings"]:
        lines.append(f"Warnings ({len(summary['warnings'])}):")
        lines.extend(f"  - {w['message']}" for w in summary["warnings"])
    else:
        lines.append("Warnings: none")
    return "\n".join(lines)
