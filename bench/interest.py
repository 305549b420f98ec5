"""User-level interest mining on MovieLens (issue 24 item 4): NDCG of the predicted genre ranking per
user, MMoE defaults, against the training-mean distribution.

    .venv/bin/python bench/interest.py [--data DIR] [--seeds 0] [--epochs 30] [--window 10]
                                       [--split temporal] [--threads 1] [--history none|mean|attention]
                                       [--history-length 20] [--json]

The roles are the ones the app suggests for the folder, the rating the only label given; "like" is
derived (rating >= 4); the interest label is the share of each genre among the user's next
``--window`` liked movies (`mtlrec.prep.interest`; a row with no later like: the user's other
training likes). Tasks: like (binary), rating (regression), interest (distribution), MMoE with its
defaults, early stopping on the interest task's validation NDCG, capped at ``--epochs``.

Reported per seed and as mean over the seeds: on the test rows (known distributions only), the
model's and the training-mean baseline's ``class_ndcg`` (sklearn ``ndcg_score`` of the classes
ranked by the prediction, the actual shares as gains), ``kl`` and ``top1_accuracy``, the same per
user (``user_ndcg``: the user's predicted and actual profiles averaged over the user's test rows,
then one NDCG per user), how the test labels were made (``label_rows``: future window / training
profile / unknown), like AUC, rating RMSE and the seconds. The JSON ends with ``"checks":
{"user_ndcg_gain_vs_mean": model - baseline}``.

With the per-user temporal split each user's test row is the last one, so no positive follows it:
its label is the user's training-like profile, and the task measures how well the model knows each
user's genre taste. ``--split random`` gives test rows with a real future window.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ML = REPO.parent / "shared" / "datasets" / "ml-latest-small"
from mtlrec.config import HISTORY_DEFAULT_LENGTH  # noqa: E402


def load(data: Path):
    from mtlrec.data import load_data, suggest_spec
    raw = load_data([str(data)])
    spec = suggest_spec(raw)
    rating = next((c for c, t in spec.labels.items() if t == "regression"), "rating")
    d = spec.to_dict()
    d["labels"] = {rating: "regression"}
    return raw, type(spec).from_dict(d), rating


def user_ndcg(users, y, p) -> float:
    """Mean over users of the NDCG of the user's mean predicted profile against the mean actual one."""
    from sklearn.metrics import ndcg_score
    uniq, inv = np.unique(users, return_inverse=True)
    Y = np.zeros((len(uniq), y.shape[1]))
    P = np.zeros_like(Y)
    np.add.at(Y, inv, y)
    np.add.at(P, inv, p)
    return float(ndcg_score(Y, P))


def one_seed(raw, spec, rating: str, seed: int, args) -> dict:
    from mtlrec.chain import split_masks
    from mtlrec.config import RunConfig
    from mtlrec.metrics import evaluate_task, mean_distribution
    from mtlrec.prep import prepare
    from mtlrec.runs.load import read_predictions
    from mtlrec.training.pipeline import run_training
    prep = {"split": args.split, "seed": seed,
            "derived_labels": [{"name": "like", "source": rating, "op": ">=", "threshold": 4}],
            "interest_labels": [{"name": "interest", "attribute": "genres", "window": args.window, "positive": "like"}]}
    t0 = time.time()
    ds = prepare(raw, spec, prep)
    cfg = RunConfig.from_dict({"name": "interest-bench", "data": {"roles": spec.to_dict(), "prep": prep},
                               "tasks": [{"name": "like", "type": "binary"}, {"name": rating, "type": "regression"},
                                         {"name": "interest", "type": "distribution"}],
                               "model": {"arch": "mmoe", **history_setting(args)},
                               "train": {"epochs": args.epochs, "seed": seed, "threads": args.threads,
                                         "ranking_k": 0, "early_stopping": {"task": "interest"}}})
    with tempfile.TemporaryDirectory() as d:
        res = run_training(cfg, Path(d) / "run", dataset=ds)
        m = json.loads((Path(d) / "run" / "metrics.json").read_text())
        preds = read_predictions(Path(d) / "run", "test")
    task = next(t for t in res.tasks if t.name == "interest") if hasattr(res, "tasks") else None
    from mtlrec.tasks import TaskSpec
    task = task or TaskSpec("interest", "distribution", n_outputs=len(ds.label("interest").classes))
    mask = split_masks([task], ds, "test")["interest"]
    y = np.asarray(preds["tasks"]["interest"]["y"])[mask]
    p = np.asarray(preds["tasks"]["interest"]["p"])[mask]
    users = np.asarray(ds.rows["test"]["user_index"])[mask]
    tmask = split_masks([task], ds, "train")["interest"]
    mean = mean_distribution(np.asarray(ds.rows["train"]["label:interest"])[tmask])
    base = np.broadcast_to(mean, y.shape)
    model_m, base_m = evaluate_task(task, y, p), evaluate_task(task, y, base)
    model_m["user_ndcg"], base_m["user_ndcg"] = user_ndcg(users, y, p), user_ndcg(users, y, base)
    return {"seed": seed, "model": model_m, "training_mean": base_m, "test_rows": int(len(y)),
            "test_users": int(len(np.unique(users))), "best_epoch": m.get("best_epoch"),
            "label_rows": ds.meta["report"]["interest_labels"]["interest"]["rows"],
            "like_auc": m["test"]["like"]["auc"], "rating_rmse": m["test"][rating]["rmse"],
            "seconds": round(time.time() - t0, 1)}


def history_setting(args) -> dict:
    """``{"history": ...}`` for the run config's model section (``--history none``: nothing)."""
    if args.history == "none":
        return {}
    return {"history": {"length": args.history_length, "encoder": args.history}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ML))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--split", default="temporal", choices=["temporal", "random"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--history", default="none", choices=["none", "mean", "attention"],
                    help="the behaviour history input (model.history encoder; default none)")
    ap.add_argument("--history-length", type=int, default=HISTORY_DEFAULT_LENGTH)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    raw, spec, rating = load(Path(args.data))
    runs = []
    for s in args.seeds:
        print(f"seed {s} ...", file=sys.stderr)
        runs.append(one_seed(raw, spec, rating, s, args))
    keys = ("class_ndcg", "kl", "top1_accuracy", "user_ndcg")
    summary = {who: {k: round(float(np.mean([r[who][k] for r in runs])), 4) for k in keys}
               for who in ("model", "training_mean")}
    out = {"data": Path(args.data).name, "split": args.split, "window": args.window, "arch": "mmoe",
           "history": history_setting(args).get("history"),
           "runs": runs, "mean": summary,
           "checks": {"user_ndcg_gain_vs_mean": round(summary["model"]["user_ndcg"]
                                                      - summary["training_mean"]["user_ndcg"], 4)}}
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
