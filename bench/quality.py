"""Model quality on real data: mtlrec's defaults against torch-rechub 0.9.0, same rows, same features.

    .venv/bin/pip install --no-deps --target bench/.vendor torch-rechub==0.9.0   # once (bench only)
    .venv/bin/python bench/quality.py [--json] [--seeds 0,1,2] [--archs mmoe,shared_bottom]
                                      [--libs mtlrec,torch_rechub] [--census] [--ablation]

MovieLens (``../shared/datasets/ml-latest-small``, 100,836 ratings): the benchmark writes its own
input files under ``--work`` (default ``bench/results/quality``):

* ``interactions.csv``: userId, movieId, rating, like (rating >= 4) and ``split`` (train / valid /
  test, 80/10/10 at random with ``--split-seed``) in the order of ratings.csv;
* ``items.csv``: movieId, genre (the first listed genre) and decade (from the title's year).

Both libraries read exactly these rows: mtlrec through ``prep.split = "column"``, torch-rechub
by filtering the same column. Features for both: user id, item id, genre, decade (all
categorical). Tasks: like (binary, AUC) and rating (regression, RMSE on the rating scale).

* **mtlrec**: its defaults: only the data, the two tasks and ``model.arch`` are given
  (``mtlrec.defaults`` supplies everything else, as for the app and the CLI).
* **torch-rechub**: its documented multi-task settings (the MMOE / SharedBottom tutorials:
  SparseFeature embed_dim 4, MMOE 8 experts of [16], SharedBottom bottom [117], towers [8],
  Adam lr 1e-3 with weight_decay 1e-4, batch 1024, early stopping on the first task's validation
  AUC), and a second setting with mtlrec's sizes (embed_dim 16, experts/bottom/towers as mtlrec's
  defaults), so that the comparison does not hinge on its tutorial's small sizes. Its regression
  loss is MSE on the raw rating. Epoch cap 60 for every library (early stopping ends every run
  well before it).

Test metrics are computed here with scikit-learn from each library's test predictions (AUC;
RMSE), mean ± std over ``--seeds`` (the training seed; the split stays fixed). ``--census``
adds mtlrec's defaults on Census-Income (income / never married AUC, the split of
bench/census.py) for the "Census unchanged or better" check. ``--ablation`` adds mtlrec runs
with one change of issue 12 undone at a time (torch's N(0, 1) embedding init; lr 1e-3; no
embedding L2) and with all undone plus the old 10-epoch cap ("before"), on the same rows.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VENDOR = REPO / "bench" / ".vendor"
ML = REPO.parent / "shared" / "datasets" / "ml-latest-small"
CENSUS = REPO.parent / "shared" / "datasets" / "census-income-kdd"
TASKS = [{"name": "like", "type": "binary", "label": "like", "metric": "auc"},
         {"name": "rating", "type": "regression", "label": "rating", "metric": "rmse"}]
FEATURES = ["userId", "movieId", "genre", "decade"]
EPOCH_CAP = 60


def log(s: str) -> None:
    print(f"[quality] {s}", file=sys.stderr, flush=True)


# ---- the data, written once ------------------------------------------------------------------
def write_movielens(work: Path, split_seed: int) -> Path:
    import numpy as np
    import pandas as pd
    work.mkdir(parents=True, exist_ok=True)
    r = pd.read_csv(ML / "ratings.csv")
    m = pd.read_csv(ML / "movies.csv")
    m["genre"] = m["genres"].str.split("|").str[0]
    year = m["title"].str.extract(r"\((\d{4})\)\s*$")[0].astype(float)
    m["decade"] = (year // 10 * 10).fillna(0).astype(int).astype(str) + "s"
    r["like"] = (r["rating"] >= 4).astype(int)
    rng = np.random.default_rng(split_seed)
    u = rng.random(len(r))
    r["split"] = np.where(u < 0.8, "train", np.where(u < 0.9, "valid", "test"))
    r[["userId", "movieId", "rating", "like", "split"]].to_csv(work / "interactions.csv", index=False)
    m[["movieId", "genre", "decade"]].to_csv(work / "items.csv", index=False)
    return work


# ---- mtlrec ----------------------------------------------------------------------------------
# --ablation: mtlrec with one of issue 12's changes undone at a time, and with all of them undone
ABLATIONS = {
    "torch_init": {"model": {"embedding_std": 1.0}},              # torch's N(0, 1) embeddings
    "lr_1e-3": {"train": {"lr": 1e-3}},                          # the old library learning rate
    "no_embedding_l2": {"train": {"embedding_l2": 0.0}},
    "before": {"model": {"embedding_std": 1.0}, "train": {"lr": 1e-3, "embedding_l2": 0.0, "epochs": 10}},
}


def run_config(work: Path, arch: str, seed: int, overrides: dict | None = None):
    """The RunConfig of mtlrec on the files of ``write_movielens`` (also bench/weighting.py's movielens)."""
    from mtlrec.config import RunConfig
    return RunConfig.from_dict({
        "data": {"paths": [str(work / "interactions.csv"), str(work / "items.csv")],
                 "roles": {"user_id": "userId", "item_id": "movieId",
                           "labels": {"like": "binary", "rating": "regression"},
                           "categorical": {"genre": "item", "decade": "item"}},
                 "prep": {"split": "column", "split_column": "split"}},
        "tasks": TASKS, "model": {"arch": arch, **(overrides or {}).get("model", {})},
        "train": {"seed": seed, "device": "cpu", "ranking_k": 0, "epochs": EPOCH_CAP,
                  **(overrides or {}).get("train", {})}})


def run_mtlrec(work: Path, arch: str, seed: int, overrides: dict | None = None) -> dict:
    from types import SimpleNamespace
    from mtlrec.training.pipeline import run_training
    from mtlrec.runs.predictions import predictions
    cfg = run_config(work, arch, seed, overrides)
    t = time.time()
    res = run_training(cfg)
    seconds = time.time() - t
    p = predictions(SimpleNamespace(config=cfg, dataset=res.dataset, model=res.model), "test")
    return _scores(p["like"]["y"], p["like"]["p"], p["rating"]["y"], p["rating"]["p"], res.metrics["best_epoch"], seconds)


def _scores(y_like, p_like, y_rating, p_rating, best_epoch, seconds) -> dict:
    import numpy as np
    from sklearn.metrics import mean_squared_error, roc_auc_score
    return {"like_auc": float(roc_auc_score(y_like, p_like)),
            "rating_rmse": float(math.sqrt(mean_squared_error(y_rating, p_rating))),
            "best_epoch": int(best_epoch), "seconds": round(seconds, 1), "n_test": int(len(np.asarray(y_like)))}


# ---- torch-rechub ----------------------------------------------------------------------------
RECHUB_SETTINGS = {
    "tutorial": {"embed_dim": 4, "mmoe": {"n_expert": 8, "expert": [16], "tower": [8]},
                 "shared_bottom": {"bottom": [117], "tower": [8]}},
    "mtlrec_sizes": {"embed_dim": 16, "mmoe": {"n_expert": 4, "expert": [64], "tower": [32]},
                     "shared_bottom": {"bottom": [128, 64], "tower": [32]}},
}


def run_rechub(work: Path, arch: str, seed: int, setting: str) -> dict:
    import numpy as np
    import pandas as pd
    import torch
    from torch_rechub.basic.features import SparseFeature
    from torch_rechub.models.multi_task import MMOE, SharedBottom
    from torch_rechub.trainers import MTLTrainer
    from torch_rechub.utils.data import DataGenerator
    s = RECHUB_SETTINGS[setting]
    inter = pd.read_csv(work / "interactions.csv")
    items = pd.read_csv(work / "items.csv", dtype={"genre": str, "decade": str})
    df = inter.merge(items, on="movieId", how="left")
    assert len(df) == len(inter)
    codes = {}
    for c in FEATURES:                  # label-encode on all rows, as its tutorials do (index 0 unused)
        codes[c] = pd.factorize(df[c].astype(str))[0] + 1
    feats = [SparseFeature(c, vocab_size=int(codes[c].max()) + 1, embed_dim=s["embed_dim"]) for c in FEATURES]
    task_types = ["classification", "regression"]
    torch.manual_seed(seed)
    np.random.seed(seed)
    if arch == "mmoe":
        p = s["mmoe"]
        model = MMOE(feats, task_types, n_expert=p["n_expert"], expert_params={"dims": p["expert"]},
                     tower_params_list=[{"dims": p["tower"]}, {"dims": p["tower"]}])
    else:
        p = s["shared_bottom"]
        model = SharedBottom(feats, task_types, bottom_params={"dims": p["bottom"]},
                             tower_params_list=[{"dims": p["tower"]}, {"dims": p["tower"]}])

    def part(name):
        m = (df["split"] == name).to_numpy()
        return ({c: codes[c][m] for c in FEATURES},
                np.stack([df["like"].to_numpy()[m], df["rating"].to_numpy()[m]], axis=1).astype("float32"))
    (xtr, ytr), (xva, yva), (xte, yte) = part("train"), part("valid"), part("test")
    train_dl, val_dl, test_dl = DataGenerator(xtr, ytr).generate_dataloader(x_val=xva, y_val=yva, x_test=xte,
                                                                           y_test=yte, batch_size=1024)
    tmp = work / f"rechub_{arch}_{setting}_{seed}"
    tmp.mkdir(exist_ok=True)
    trainer = MTLTrainer(model, task_types=task_types, optimizer_params={"lr": 1e-3, "weight_decay": 1e-4},
                         n_epoch=EPOCH_CAP, earlystop_patience=3, device="cpu", model_path=str(tmp))
    stopper, seen = trainer.early_stopper, {"epoch": 0, "best": 0, "best_score": -math.inf}
    stop_training = stopper.stop_training

    def counting(score, weights):                          # records the best epoch (1-based)
        seen["epoch"] += 1
        if score > seen["best_score"]:
            seen["best"], seen["best_score"] = seen["epoch"], score
        return stop_training(score, weights)
    stopper.stop_training = counting
    t = time.time()
    with contextlib.redirect_stdout(sys.stderr), contextlib.redirect_stderr(open(os.devnull, "w")):
        trainer.fit(train_dl, val_dl)                      # it prints per-epoch losses and progress bars
    seconds = time.time() - t
    model = trainer.model.eval()
    preds = []
    with torch.no_grad():
        for x_dict, _ in test_dl:
            preds.append(model({k: v.to("cpu") for k, v in x_dict.items()}).numpy())
    pred = np.concatenate(preds)
    return _scores(yte[:, 0], pred[:, 0], yte[:, 1], pred[:, 1], seen["best"], seconds)


# ---- Census (mtlrec defaults only) ----------------------------------------------------------
def run_census(seed: int, arch: str) -> dict:
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import run_training
    cfg = RunConfig.from_dict({"data": {"paths": [str(CENSUS)], "format": "census",
                                        "prep": {"split": "random", "seed": 2024}},
                               "tasks": [{"name": "income", "type": "binary", "label": "income_50k"},
                                         {"name": "never_married", "type": "binary", "label": "never_married"}],
                               "model": {"arch": arch},
                               "train": {"seed": seed, "device": "cpu", "ranking_k": 0}})
    t = time.time()
    res = run_training(cfg)
    return {"income_auc": res.metrics["test"]["income"]["auc"],
            "never_married_auc": res.metrics["test"]["never_married"]["auc"],
            "best_epoch": res.metrics["best_epoch"], "seconds": round(time.time() - t, 1)}


def _summary(runs: list[dict]) -> dict:
    import numpy as np
    out = {}
    for k in runs[0]:
        if k in ("seconds", "n_test"):
            continue
        v = np.array([r[k] for r in runs], float)
        out[k] = {"mean": round(float(v.mean()), 4), "std": round(float(v.std()), 4),
                  "runs": [round(float(x), 4) for x in v]} if k != "best_epoch" else [int(x) for x in v]
    out["seconds_mean"] = round(float(np.mean([r["seconds"] for r in runs])), 1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--archs", default="mmoe,shared_bottom")
    ap.add_argument("--libs", default="mtlrec,torch_rechub")
    ap.add_argument("--rechub-settings", default="tutorial,mtlrec_sizes")
    ap.add_argument("--split-seed", type=int, default=2024)
    ap.add_argument("--census", action="store_true", help="also mtlrec's defaults on Census-Income")
    ap.add_argument("--ablation", action="store_true",
                    help="also mtlrec with each of issue 12's changes undone (init, lr, embedding L2) and all undone")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--work", default=str(REPO / "bench" / "results" / "quality"))
    args = ap.parse_args(argv)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    archs = args.archs.split(",")
    libs = args.libs.split(",")
    work = write_movielens(Path(args.work), args.split_seed)
    result: dict = {"benchmark": "quality", "data": "ml-latest-small", "seeds": seeds, "split_seed": args.split_seed,
                    "features": FEATURES, "movielens": {}}
    if "torch_rechub" in libs:
        sys.path.insert(0, str(VENDOR))
        try:
            import torch_rechub  # noqa: F401
        except ImportError:
            log("torch-rechub not found; install it with: .venv/bin/pip install --no-deps --target bench/.vendor "
                "torch-rechub==0.9.0")
            libs = [x for x in libs if x != "torch_rechub"]
    for arch in archs:
        if "mtlrec" in libs:
            runs = []
            for s in seeds:
                runs.append(run_mtlrec(work, arch, s))
                log(f"mtlrec {arch} seed {s}: {runs[-1]}")
            result["movielens"][f"mtlrec/{arch}"] = _summary(runs)
            if args.ablation:
                for name, ov in ABLATIONS.items():
                    runs = []
                    for s in seeds:
                        runs.append(run_mtlrec(work, arch, s, ov))
                        log(f"mtlrec {arch} {name} seed {s}: {runs[-1]}")
                    result.setdefault("ablation", {})[f"mtlrec/{arch}/{name}"] = _summary(runs)
        if "torch_rechub" in libs:
            for setting in args.rechub_settings.split(","):
                runs = []
                for s in seeds:
                    runs.append(run_rechub(work, arch, s, setting))
                    log(f"torch_rechub {arch} {setting} seed {s}: {runs[-1]}")
                result["movielens"][f"torch_rechub/{arch}/{setting}"] = _summary(runs)
    # the margins: mtlrec against the better torch-rechub setting, per architecture
    margins = {}
    for arch in archs:
        mine = result["movielens"].get(f"mtlrec/{arch}")
        theirs = [v for k, v in result["movielens"].items() if k.startswith(f"torch_rechub/{arch}/")]
        if mine and theirs:
            best_auc = max(t["like_auc"]["mean"] for t in theirs)
            best_rmse = min(t["rating_rmse"]["mean"] for t in theirs)
            margins[arch] = {"like_auc_ahead_by": round(mine["like_auc"]["mean"] - best_auc, 4),
                             "rating_rmse_ahead_by": round(best_rmse - mine["rating_rmse"]["mean"], 4)}
    result["margins_vs_best_torch_rechub"] = margins
    result["aim"] = {"like_auc_ahead_by": 0.01, "rating_rmse_ahead_by": 0.01}
    if args.census:
        result["census"] = {}
        for arch in archs + (["ple"] if "ple" not in archs else []):
            runs = []
            for s in seeds:
                runs.append(run_census(s, arch))
                log(f"census mtlrec {arch} seed {s}: {runs[-1]}")
            result["census"][f"mtlrec/{arch}"] = _summary(runs)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result["movielens"].items():
            print(f"{k:40s} like AUC {v['like_auc']['mean']:.4f} ± {v['like_auc']['std']:.4f}   "
                  f"rating RMSE {v['rating_rmse']['mean']:.4f} ± {v['rating_rmse']['std']:.4f}   "
                  f"best epochs {v['best_epoch']}")
        for k, v in result.get("ablation", {}).items():
            print(f"{k:40s} like AUC {v['like_auc']['mean']:.4f} ± {v['like_auc']['std']:.4f}   "
                  f"rating RMSE {v['rating_rmse']['mean']:.4f} ± {v['rating_rmse']['std']:.4f}   "
                  f"best epochs {v['best_epoch']}")
        for arch, m in margins.items():
            print(f"mtlrec {arch} ahead of torch-rechub's best by: like AUC {m['like_auc_ahead_by']:+.4f}, "
                  f"rating RMSE {m['rating_rmse_ahead_by']:+.4f}")
        for k, v in result.get("census", {}).items():
            print(f"census {k:30s} income AUC {v['income_auc']['mean']:.4f} ± {v['income_auc']['std']:.4f}   "
                  f"never married AUC {v['never_married_auc']['mean']:.4f} ± {v['never_married_auc']['std']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
