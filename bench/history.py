"""Behaviour history as input, measured (issue 24, item 6 "Measured"): the entire-space default with
and without the user's history (none / mean pooling / DIN-style target attention), per architecture,
on ml-latest-small with a temporal split.

    .venv/bin/python bench/history.py [--data DIR] [--seeds 0 1 2] [--archs esmm,mmoe,shared_bottom]
                                      [--other-seeds K] [--lengths 20] [--encoders none mean attention]
                                      [--epochs N] [--threads 1] [--json]

The data and the metrics are those of `bench/ranking.py` (its helpers are imported, not copied):
the folder's suggested roles with the rating as the only label, like = rating >= 4, and the task
chain of "Use the recommended chain" (interact + like given interact + rating given interact, 4
popularity-weighted negatives per observed row), but split **temporally** (``prep.split``
"temporal": per user the last interaction is test, the second last valid), so that a row's
history -- the user's last N interactions strictly before it (`mtlrec.prep.history`) -- is what a
deployed recommender would know. Test users are ranked with their train + valid history.

Per seed the data is prepared once; every (architecture, history) row of the table trains on it
with `run_training` (early stopping on valid decides, capped at ``--epochs``, default 15). Per row,
mean and std over its seeds: recall@10 / ndcg@10 / hitrate@10 / mrr of "like" over the whole catalogue
(every test user with a liked test item, train + valid items left out), like AUC and rating RMSE on
the observed test rows, the best epoch and the training seconds. The most-popular baseline is ranked
on the same users by the same code. The default architecture (`CHAIN_ARCH`, ESMM) runs every seed;
the others run the first ``--other-seeds`` seeds (default 1).

Row names: ``<arch>/none``, ``<arch>/<encoder>@<length>``. The JSON ends with ``"checks":
{"history_ndcg10_rel_gain": x}``: (NDCG@10 with attention history - without) / without for the default
architecture at the default length (`HISTORY_DEFAULT_LENGTH`, else the first of ``--lengths``), the mean
of the per-seed gains (aim >= 0.10); null where a row is missing. Progress on stderr.

Cost (ml-latest-small, 490,123 training rows an epoch with the negatives, ``--threads 1`` on the shared
2-core box at load 6-9): 65-165 s a run without history, 120-450 s with (attention@50: 540-610 s); the
default table (ESMM 3 seeds, MMoE and shared-bottom seed 0; 15 runs) took 56 minutes. The figures and
the length sweep behind the default length are in docs/benchmarks.md, "Behaviour history".
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from mtlrec.app.workflow import CHAIN_ARCH  # noqa: E402
from mtlrec.config import HISTORY_DEFAULT_LENGTH  # noqa: E402


def _ranking_bench():
    spec = importlib.util.spec_from_file_location("bench_ranking", REPO / "bench" / "ranking.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


rk = _ranking_bench()
K, RANKED, RANK_KEYS = rk.K, rk.RANKED, rk.RANK_KEYS
EPOCH_CAP = 15             # best epochs 7-15 in the documented runs (2 of 19 at the cap); keeps it near an hour
OTHER_SEEDS = 1            # seeds of the architectures other than the default
ENCODERS = ("none", "mean", "attention")
ARCHS = (CHAIN_ARCH, "mmoe", "shared_bottom")
AIM = 0.10
CHAIN_TEMPORAL = {"tasks": rk.CHAIN, "data": {"prep": {**rk.POP_NEGATIVES, "split": "temporal"}}}


def log(s: str) -> None:
    print(f"[history] {s}", file=sys.stderr, flush=True)


def row_name(arch: str, encoder: str, length: int | None) -> str:
    return f"{arch}/none" if encoder == "none" else f"{arch}/{encoder}@{length}"


def plan(archs, encoders, lengths) -> list[tuple[str, str, str, int | None]]:
    """(row name, arch, encoder, length) of every row of the table."""
    out = []
    for arch in archs:
        for enc in encoders:
            for n in ([None] if enc == "none" else lengths):
                out.append((row_name(arch, enc, n), arch, enc, n))
    return out


def run_config(base: dict, arch: str, encoder: str, length: int | None, rating: str) -> dict:
    """The RunConfig dict of one row: the chain on the temporal split, ``arch``, the history."""
    model = {"arch": arch}
    if encoder != "none":
        model["history"] = {"length": int(length), "encoder": encoder}
    return rk.merged(base, {**CHAIN_TEMPORAL, "model": model}, rating)


def train_row(name: str, d: dict, dataset, rating: str) -> dict:
    """Train one row on the prepared ``dataset`` and score it as `bench/ranking.py` does."""
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import run_training
    t0 = time.time()
    res = run_training(RunConfig.from_dict(d), dataset=dataset, write_dataset=False,
                       log=lambda s: log(f"{name}: {s}"),
                       on_epoch=lambda rec, _h: log(f"{name}: epoch {rec.get('epoch')} at {time.time() - t0:.0f} s"
                                                    + (" (best so far)" if rec.get("best") else "")))
    if res.status != "finished":
        return {"failed": f"the run ended {res.status}"}
    m = res.metrics
    ranking = (m.get("ranking") or {}).get(RANKED) or {}
    out = {k: ranking.get(k) for k in RANK_KEYS}
    out.update(rk.observed_scores(res, rating))
    out.update({"best_epoch": m.get("best_epoch"), "epochs_run": m.get("epochs_run"),
                "seconds": round(time.time() - t0, 1)})
    return out


def one_seed(folder: Path, spec, rating: str, seed: int, rows, args) -> tuple[dict, dict]:
    """({row name: result}, popularity baseline) of one seed."""
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import build_dataset
    base = rk.base_config(folder, spec, rating, seed, args.epochs, args.threads, args.device)
    pop = rk.baselines(rk.merged(base, {"data": {"prep": {"negative_ratio": 0, "split": "temporal"}}}, rating))
    dataset = build_dataset(RunConfig.from_dict(run_config(base, CHAIN_ARCH, "none", None, rating)))
    out = {}
    for name, arch, enc, n in rows:
        if arch != CHAIN_ARCH and seed not in args.seeds[:args.other_seeds]:
            continue
        d = run_config(base, arch, enc, n, rating)
        why = rk.unavailable(d, spec)
        if why:
            out[name] = {"skipped": why}
            continue
        log(f"seed {seed} · {name}: training (epochs <= {args.epochs}) ...")
        try:
            out[name] = train_row(name, d, dataset, rating)
        except Exception as e:           # noqa: BLE001 -- one row failing must not lose the others
            out[name] = {"failed": f"{type(e).__name__}: {e}"}
        log(f"seed {seed} · {name}: {out[name]}")
    return out, pop["popularity"]


def gain(per_seed: dict, none: str, attention: str) -> float | None:
    """Mean over the seeds having both rows of (ndcg attention - ndcg none) / ndcg none."""
    key = f"ndcg@{K}"
    g = [(r[attention][key] - r[none][key]) / r[none][key] for r in per_seed.values()
         if isinstance((r.get(none) or {}).get(key), (int, float)) and r[none][key] > 0
         and isinstance((r.get(attention) or {}).get(key), (int, float))]
    return round(sum(g) / len(g), 4) if g else None


def run_bench(folder: Path, args) -> dict:
    """The benchmark's JSON object (see the module docstring)."""
    t0 = time.time()
    spec, rating = rk.movielens_spec(folder)
    rows = plan(args.archs, args.encoders, args.lengths)
    per_seed, pops = {}, []
    for seed in args.seeds:
        per_seed[seed], pop = one_seed(folder, spec, rating, seed, rows, args)
        pops.append(pop)
    table = {}
    for name, *_ in rows:
        got = [per_seed[s][name] for s in args.seeds if name in per_seed[s]]
        bad = [r for r in got if "skipped" in r or "failed" in r]
        table[name] = bad[0] if bad else {**rk.summary(got), "seeds": len(got), "per_seed": got}
    length = HISTORY_DEFAULT_LENGTH if HISTORY_DEFAULT_LENGTH in args.lengths else args.lengths[0]
    g = gain(per_seed, row_name(CHAIN_ARCH, "none", None), row_name(CHAIN_ARCH, "attention", length))
    return {"benchmark": "history", "data": folder.name, "split": "temporal", "rating": rating,
            "seeds": args.seeds, "other_arch_seeds": args.seeds[:args.other_seeds], "epoch_cap": args.epochs,
            "k": K, "ranked_task": RANKED, "default_arch": CHAIN_ARCH, "default_length": length,
            "rows": table, "baselines": {"popularity": rk.summary(pops)},
            "seconds": round(time.time() - t0, 1), "aim": {"history_ndcg10_rel_gain": AIM,
                                                           "met": None if g is None else g >= AIM},
            "checks": {"history_ndcg10_rel_gain": g}}


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(rk.ML), help="a MovieLens folder with timestamps")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--archs", default=",".join(ARCHS), help=f"comma-separated (default {','.join(ARCHS)})")
    ap.add_argument("--other-seeds", type=int, default=None,
                    help=f"architectures other than {CHAIN_ARCH} run only the first K seeds (default {OTHER_SEEDS})")
    ap.add_argument("--lengths", type=int, nargs="+", default=[HISTORY_DEFAULT_LENGTH])
    ap.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=ENCODERS)
    ap.add_argument("--epochs", type=int, default=EPOCH_CAP, help="epoch cap (early stopping decides)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    args.archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    args.other_seeds = OTHER_SEEDS if args.other_seeds is None else args.other_seeds
    return args


def main(argv=None) -> int:
    args = parse(argv)
    out = run_bench(Path(args.data), args)
    print(json.dumps(out) if args.json else table_text(out))
    return 1 if any("failed" in r for r in out["rows"].values()) else 0


def table_text(out: dict) -> str:
    cols = (f"recall@{K}", f"ndcg@{K}", "like_auc", "rating_rmse", "best_epoch", "seconds")
    lines = [f"{out['data']} (temporal split), seeds {out['seeds']}, {out['ranked_task']} top {out['k']}",
             f"{'':<26}{'n':>3}" + "".join(f"{c:>19}" for c in cols)]
    for name, b in list(out["rows"].items()) + [("(popularity)", out["baselines"]["popularity"])]:
        if "mean" not in b:
            lines.append(f"{name:<26}  {next(iter(b))}: {next(iter(b.values()))}")
            continue
        cells = [f"{b['mean'][c]:.4f} ± {b['std'][c]:.4f}" if c in b["mean"] else "" for c in cols]
        lines.append(f"{name:<26}{b.get('seeds', len(out['seeds'])):>3}" + "".join(f"{x:>19}" for x in cells))
    lines.append("checks: " + json.dumps(out["checks"]) + f"  (aim >= {AIM}: {out['aim']['met']})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
