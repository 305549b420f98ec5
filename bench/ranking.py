"""Ranking on MovieLens: today's default, the new default, ESMM, AITM and MMoE with the task chain
against the popularity and mean-rating baselines (issue 22, "Must show").

    .venv/bin/python bench/ranking.py [--data DIR] [--seeds 0 1 2] [--epochs N] [--configs NAME ...]
                                      [--quick] [--threads 2] [--json]

``--data``: ``../shared/datasets/ml-latest-small`` by default, or any folder mtlrec's readers
recognise as MovieLens (100K ``u.data`` or a ``u1.base``/``u1.test`` pair, 1M/10M ``ratings.dat``,
latest/25M ``ratings.csv`` with ``movies.csv``). The roles are the ones the app suggests for the folder (`suggest_spec`),
with the rating as the only label given; "like" is derived (rating >= 4) and, where a
configuration samples negatives, "interact" is the implicit-feedback label (observed 1, sampled 0).

Per seed: one random 80/10/10 split (``prep.seed`` = the seed; ``train.seed`` too), then every
configuration of `CONFIGS` (partial `mtlrec.config.RunConfig` dicts merged onto the data section
built here) is trained with `mtlrec.training.pipeline.run_training`, as the CLI does: early
stopping decides, capped at ``--epochs`` (default 30). Reported per configuration, mean and std
over the seeds:

* the ranking of the "like" task over the whole catalogue, as metrics.json has it (train+valid
  items left out, every test user with a liked test item; `mtlrec.ranking`): recall@10, ndcg@10,
  hitrate@10, mrr;
* like AUC and rating RMSE on the *observed* test rows, computed here from the model's test
  predictions with the sampled negatives (``rows["test"]["sampled"]``) left out -- a sampled pair
  has no real like and no real rating, so neither metric may count it, whatever the run's own
  metrics do.

The baselines are ranked on the same users with the same code (`evaluate_popularity`,
`evaluate_mean_rating`) on the split without negatives. A configuration whose architecture,
task fields (e.g. ``given``, the task chain) or labels this checkout does not have is reported as
``{"skipped": reason}``; one that fails while training as ``{"failed": reason}``.

The JSON ends with ``"checks"``: ``default_vs_popularity_ndcg10`` / ``_recall10`` (new default
over popularity, aim >= 1.5), ``like_auc_change_vs_old_default`` (aim >= -0.005) and
``rating_rmse_change_vs_old_default`` (aim <= +0.005); null where not computable. Progress on
stderr.

Cost (ml-latest-small, 2 threads on the 2-core box shared with other work, load ~4.5; issue 22):
old_default 138 s a seed (best epoch 6 of 9); its tasks with 4 negatives per observed row (400,760
training rows) 522 s (best epoch 20 of 23; an epoch took 2 s when the box was quiet, up to 50 s
when not). So the full table over 3 seeds is about 1.5-2 hours on such a box, far less on a quiet
one or with ``--device cuda``. ``--quick``: one seed, epoch cap 5, old_default and new_default
only -- a smoke run of the checks, not the figures to report.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ML = REPO.parent / "shared" / "datasets" / "ml-latest-small"
MOVIELENS = ("ml-100k", "ml-1m", "movielens")     # RawData.format of the MovieLens layouts
K = 10
EPOCH_CAP = 30
QUICK_EPOCHS = 5            # --quick
from mtlrec.app.workflow import CHAIN_ARCH, CHAIN_PREP  # noqa: E402 - the app's recommended chain settings
NEW_RATIO = CHAIN_PREP["negative_ratio"]
RANKED = "like"             # the task whose ranking is reported
ALL_USERS = 10**9           # train.ranking_users: no cap, every test user is ranked (the same users for all)
RANK_KEYS = (f"recall@{K}", f"ndcg@{K}", f"hitrate@{K}", "mrr")
AIM = {"default_vs_popularity": 1.5, "like_auc_max_drop": 0.005, "rating_rmse_max_rise": 0.005}

LIKE = {"name": "like", "type": "binary", "label": "like", "weight": 1.0, "metric": "auc"}
RATING = {"name": "rating", "type": "regression", "label": "rating", "weight": 1.0, "metric": "rmse"}
INTERACT = {"name": "interact", "type": "binary", "label": "interact", "weight": 1.0, "metric": "auc"}
CHAIN = [INTERACT, {**LIKE, "given": "interact"}, {**RATING, "weight": 0.5, "given": "interact"}]   # as the app's
NEGATIVES = {"negative_ratio": NEW_RATIO, "negative_label": "interact"}          # uniform sampling
POP_NEGATIVES = dict(CHAIN_PREP)                                               # popularity ∝ count^0.75

# name -> partial RunConfig dict ("data" holds only "prep" overrides; the rest is built per folder)
CONFIGS = {
    # today's app default for a ratings dataset: like + rating on the observed rows, MMoE defaults
    "old_default": {"tasks": [LIKE, RATING], "data": {"prep": {"negative_ratio": 0}}, "model": {}},
    # the new default (mtlrec.app.workflow.recommended_chain): interact over the entire space, like and rating
    # given interact, 4 popularity-weighted negatives per observed row, ESMM
    "new_default": {"tasks": CHAIN, "data": {"prep": POP_NEGATIVES}, "model": {"arch": CHAIN_ARCH}},
    # the same chain with uniform negatives (what the popularity-weighted sampling adds)
    "esmm": {"tasks": CHAIN, "data": {"prep": NEGATIVES}, "model": {"arch": "esmm"}},
    # the new default's data and chain, other architectures
    "aitm": {"tasks": CHAIN, "data": {"prep": POP_NEGATIVES}, "model": {"arch": "aitm"}},
    "mmoe_chain": {"tasks": CHAIN, "data": {"prep": POP_NEGATIVES}, "model": {"arch": "mmoe"}},
}


def log(s: str) -> None:
    print(f"[ranking] {s}", file=sys.stderr, flush=True)


# ---- the data ----------------------------------------------------------------------------------
def movielens_spec(folder: Path):
    """(DataSpec, rating column) of a MovieLens folder: the app's suggested roles, with the rating as
    the only label. Raises SystemExit with a message for a folder that is not MovieLens."""
    from mtlrec.data.readers import load_data
    from mtlrec.data.suggest import suggest_spec
    raw = load_data([folder])
    if raw.format not in MOVIELENS:
        raise SystemExit(f"bench/ranking.py: {folder} is not read as MovieLens (read as {raw.format!r}); give a "
                         "folder with u.data (or u1.base + u1.test), ratings.dat, or ratings.csv + movies.csv")
    spec = suggest_spec(raw)
    ratings = [c for c, t in spec.labels.items() if t == "regression"]
    if not (spec.user_id and spec.item_id and ratings):
        raise SystemExit(f"bench/ranking.py: {folder}: no user id, item id or rating column was found")
    spec.labels = {ratings[0]: "regression"}
    return spec, ratings[0]


def base_config(folder: Path, spec, rating: str, seed: int, epochs: int, threads: int, device: str) -> dict:
    """The RunConfig dict every configuration starts from: the folder, its roles, a random 80/10/10
    split seeded by ``seed``, like = rating >= 4, the library's training defaults with the epoch cap,
    every test user ranked."""
    return {"name": "bench-ranking",
            "data": {"paths": [str(folder)], "roles": spec.to_dict(),
                     "prep": {"split": "random", "valid_frac": 0.1, "test_frac": 0.1, "seed": seed,
                              "derived_labels": [{"name": "like", "source": rating, "op": ">=", "threshold": 4}]}},
            "train": {"seed": seed, "epochs": epochs, "device": device, "threads": threads,
                      "ranking_k": K, "ranking_users": ALL_USERS, "dynamics_every": 0}}


def merged(base: dict, conf: dict, rating: str) -> dict:
    """``conf`` merged onto ``base`` (sections merged one level deep); the rating task's label is the
    folder's rating column."""
    d = copy.deepcopy(base)
    d["tasks"] = [dict(t, label=rating) if t.get("label") == "rating" else dict(t) for t in conf.get("tasks", [])]
    d["model"] = dict(conf.get("model") or {})
    d["train"].update(conf.get("train") or {})
    d["data"]["prep"].update((conf.get("data") or {}).get("prep") or {})
    return d


def unavailable(d: dict, spec) -> str | None:
    """Why this checkout cannot run the RunConfig dict ``d`` (an architecture, a task field or a
    label it does not have), or None."""
    from mtlrec.config import RunConfig
    from mtlrec.errors import TrainingError
    from mtlrec.models import ARCHITECTURES
    from mtlrec.prep import PrepConfig
    from mtlrec.prep.pipeline import label_types
    from mtlrec.tasks import TaskSpec
    try:
        cfg = RunConfig.from_dict(d)
        prep = PrepConfig.from_dict(d["data"]["prep"])
    except (TrainingError, TypeError, ValueError) as e:
        return f"the config is not valid on this checkout: {e}"
    if cfg.arch not in ARCHITECTURES:
        return f"architecture {cfg.arch!r} is not available on this checkout (it has {', '.join(ARCHITECTURES)})"
    labels = label_types(spec, prep)
    for t in d["tasks"]:
        try:
            TaskSpec(**t)
        except (TypeError, ValueError) as e:
            return f"task {t['name']!r} is not accepted by this checkout's TaskSpec ({e})"
        if t["label"] not in labels:
            return f"label {t['label']!r} is not produced by this checkout's preparation"
    return None


# ---- one run ------------------------------------------------------------------------------------
def observed_scores(res, rating: str) -> dict:
    """like AUC and rating RMSE on the observed test rows (sampled negatives left out), from the
    model's test predictions."""
    from types import SimpleNamespace

    import numpy as np
    from sklearn.metrics import mean_squared_error, roc_auc_score

    from mtlrec.runs.predictions import score_split
    run = SimpleNamespace(config=None, dataset=res.dataset, model=res.model, tasks=res.tasks)
    p = score_split(run, "test")
    rows = res.dataset.rows["test"]
    real = ~np.asarray(rows["sampled"], bool) if "sampled" in rows else np.ones(res.dataset.n_rows("test"), bool)
    out = {"like_auc": None, "rating_rmse": None, "test_rows_observed": int(real.sum()),
           "test_rows_sampled": int((~real).sum())}
    if RANKED in p:
        y, s = np.asarray(p[RANKED]["y"])[real], np.asarray(p[RANKED]["p"])[real]
        out["like_auc"] = float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else None
    if "rating" in p:
        y, s = np.asarray(p["rating"]["y"])[real], np.asarray(p["rating"]["p"])[real]
        ok = np.isfinite(y)
        out["rating_rmse"] = float(math.sqrt(mean_squared_error(y[ok], s[ok])))
    return out


def run_one(name: str, d: dict, rating: str) -> dict:
    """Train configuration ``name`` (RunConfig dict ``d``; its data prepared afresh) and score it."""
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import run_training
    t0 = time.time()

    def epoch(rec, _history):
        log(f"{name}: epoch {rec.get('epoch')} done at {time.time() - t0:.0f} s"
            + (" (best so far)" if rec.get("best") else ""))
    res = run_training(RunConfig.from_dict(d), log=lambda s: log(f"{name}: {s}"), on_epoch=epoch)
    if res.status != "finished":
        return {"failed": f"the run ended {res.status}"}
    m = res.metrics
    ranking = (m.get("ranking") or {}).get(RANKED) or {}
    out = {k: ranking.get(k) for k in RANK_KEYS}
    out.update(observed_scores(res, rating))
    out.update({"best_epoch": m.get("best_epoch"), "epochs_run": m.get("epochs_run"),
                "seconds": round(time.time() - t0, 1)})
    return out


def baselines(d: dict) -> dict:
    """The popularity and mean-rating baselines of the "like" ranking on the data of RunConfig dict
    ``d``: every test user with a liked test item, train+valid items left out."""
    from mtlrec.config import RunConfig
    from mtlrec.ranking import evaluate_mean_rating, evaluate_popularity, plan_ranking, rating_label
    from mtlrec.tasks import TaskSpec
    from mtlrec.training.pipeline import build_dataset
    ds = build_dataset(RunConfig.from_dict(d))
    like = [TaskSpec("like", "binary")]
    plan = plan_ranking(ds, like, "test", ALL_USERS)
    return {"popularity": evaluate_popularity(ds, k=K, tasks=like, plan=plan)[RANKED],
            "mean_rating": evaluate_mean_rating(ds, rating_label(ds), k=K, tasks=like, plan=plan)[RANKED]}


# ---- summary --------------------------------------------------------------------------------------
def summary(per_seed: list[dict]) -> dict:
    """{"mean": {metric: v}, "std": {...}} over the seeds (std with ddof 1; 0 for one seed)."""
    import numpy as np
    keys = [k for k in per_seed[0] if all(isinstance(r.get(k), (int, float)) for r in per_seed)]
    vals = {k: np.array([float(r[k]) for r in per_seed]) for k in keys}
    return {"mean": {k: round(float(v.mean()), 5) for k, v in vals.items()},
            "std": {k: round(float(v.std(ddof=1)) if len(v) > 1 else 0.0, 5) for k, v in vals.items()}}


def checks(configs: dict, base: dict) -> dict:
    """The issue's checks: the new default against popularity and against today's default."""
    def mean(block, key):
        v = (block or {}).get("mean", {}).get(key)
        return v if isinstance(v, (int, float)) and math.isfinite(v) else None

    new, old, pop = configs.get("new_default"), configs.get("old_default"), base.get("popularity")

    def ratio(key):
        a, b = mean(new, key), mean(pop, key)
        return round(a / b, 4) if a is not None and b else None

    def change(key):
        a, b = mean(new, key), mean(old, key)
        return round(a - b, 5) if a is not None and b is not None else None
    return {"default_vs_popularity_ndcg10": ratio(f"ndcg@{K}"), "default_vs_popularity_recall10": ratio(f"recall@{K}"),
            "like_auc_change_vs_old_default": change("like_auc"),
            "rating_rmse_change_vs_old_default": change("rating_rmse")}


def aim_met(c: dict) -> bool | None:
    vals = list(c.values())
    if any(v is None for v in vals):
        return None
    return bool(c["default_vs_popularity_ndcg10"] >= AIM["default_vs_popularity"]
                and c["default_vs_popularity_recall10"] >= AIM["default_vs_popularity"]
                and c["like_auc_change_vs_old_default"] >= -AIM["like_auc_max_drop"]
                and c["rating_rmse_change_vs_old_default"] <= AIM["rating_rmse_max_rise"])


# ---- main -------------------------------------------------------------------------------------------
def run_bench(folder: Path, seeds: list[int], epochs: int, names: list[str], threads: int = 2,
              device: str = "cpu", configs: dict | None = None) -> dict:
    """The benchmark's JSON object (see the module docstring)."""
    configs = CONFIGS if configs is None else configs
    t0 = time.time()
    spec, rating = movielens_spec(folder)
    per_seed = {n: [] for n in names}
    skipped, base_rows = {}, []
    for seed in seeds:
        base = base_config(folder, spec, rating, seed, epochs, threads, device)
        base_rows.append(baselines(merged(base, {"data": {"prep": {"negative_ratio": 0}}}, rating)))
        for name in names:
            d = merged(base, configs[name], rating)
            why = skipped.get(name) or unavailable(d, spec)
            if why:
                skipped[name] = why
                log(f"seed {seed} · {name}: skipped: {why}")
                continue
            log(f"seed {seed} · {name}: training (epochs <= {epochs}) ...")
            try:
                row = run_one(name, d, rating)
            except Exception as e:           # noqa: BLE001 -- one configuration failing must not lose the others
                row = {"failed": f"{type(e).__name__}: {e}"}
            log(f"seed {seed} · {name}: {row}")
            per_seed[name].append(row)
    out_configs = {}
    for name in names:
        rows = per_seed[name]
        failed = [r["failed"] for r in rows if "failed" in r]
        if name in skipped:
            out_configs[name] = {"skipped": skipped[name]}
        elif failed:
            out_configs[name] = {"failed": failed[0]}
        else:
            out_configs[name] = {"config": configs[name], **summary(rows), "per_seed": rows}
    base_out = {b: summary([r[b] for r in base_rows]) for b in ("popularity", "mean_rating")}
    c = checks(out_configs, base_out)
    return {"benchmark": "ranking", "data": folder.name, "rating": rating, "seeds": seeds, "epoch_cap": epochs,
            "k": K, "ranked_task": RANKED, "configs": out_configs, "baselines": base_out,
            "seconds": round(time.time() - t0, 1), "aim": {**AIM, "met": aim_met(c)}, "checks": c}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ML), help="a MovieLens folder (100K, 1M or latest layout)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=None, help=f"epoch cap (default {EPOCH_CAP}; early stopping decides)")
    ap.add_argument("--configs", nargs="+", default=None, choices=list(CONFIGS),
                    help="default: all (--quick: old_default new_default)")
    ap.add_argument("--quick", action="store_true", help=f"one seed, epoch cap {QUICK_EPOCHS}, "
                    "old_default and new_default only: a smoke run, not the figures to report")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    seeds = args.seeds[:1] if args.quick else args.seeds
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else EPOCH_CAP)
    names = args.configs or (["old_default", "new_default"] if args.quick else list(CONFIGS))
    out = run_bench(Path(args.data), seeds, epochs, names, args.threads, args.device)
    if args.json:
        print(json.dumps(out))
    else:
        print_table(out)
    return 1 if any("failed" in c for c in out["configs"].values()) else 0


def print_table(out: dict) -> None:
    cols = RANK_KEYS + ("like_auc", "rating_rmse")
    print(f"{out['data']}, seeds {out['seeds']}, {out['ranked_task']} top {out['k']} over the catalogue")
    print(f"{'':<14}" + "".join(f"{c:>18}" for c in cols))
    rows = list(out["configs"].items()) + [(f"({b})", v) for b, v in out["baselines"].items()]
    for name, block in rows:
        if "mean" not in block:
            print(f"{name:<14}  {next(iter(block))}: {next(iter(block.values()))}")
            continue
        cells = [f"{block['mean'][c]:.4f} ± {block['std'][c]:.4f}" if c in block["mean"] else "" for c in cols]
        print(f"{name:<14}" + "".join(f"{x:>18}" for x in cells))
    print("checks:", json.dumps(out["checks"]), "aim met:", out["aim"]["met"])


if __name__ == "__main__":
    sys.exit(main())
