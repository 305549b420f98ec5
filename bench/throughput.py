"""Training throughput: mtlrec's trainer vs torch-rechub 0.9.0's MTLTrainer vs a plain PyTorch loop.

    .venv/bin/pip install --no-deps --target bench/.vendor torch-rechub==0.9.0   # once (bench only)
    .venv/bin/python bench/throughput.py [--json] [--rows 60000] [--rounds 3] [--arch mmoe]

Same data for all three: a synthetic click/like table with ``--fields`` categorical features
(vocabulary ``--vocab`` each, embedding dim 16) and two binary tasks. Same model sizes:
MMoE with 4 experts of [64] and towers of [32] (or shared-bottom [128, 64] / towers [32]),
batch size 512, Adam lr 1e-3, one epoch per measurement.

* ``mtlrec``: ``mtlrec.training.Trainer.fit`` (history, NaN checks, per-task losses included;
  no validation split, so the epoch is pure training).
* ``torch_rechub``: its own MMOE / SharedBottom model (same dims; its MLPs add BatchNorm)
  fed by its ``DataGenerator`` DataLoader, trained with ``MTLTrainer.train_one_epoch`` as its
  examples do.
* ``plain_torch``: the same mtlrec model, a minimal hand-written loop (randperm, index the
  tensors, forward, sum of BCE-with-logits, backward, Adam step) and nothing else.

The three alternate in every round (rotating the order); samples/s are medians over rounds.
Aims (issue 3): mtlrec >= 3x torch_rechub and >= 0.9x plain_torch.

A speed benchmark: batch 512 and lr 1e-3 (not mtlrec's training defaults) fix the same work per
step for all three loops; model quality is not measured here (bench/quality.py does that).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO / "bench" / ".vendor"
sys.path.insert(0, str(REPO))


def make_data(n: int, n_fields: int, vocab: int, seed: int = 0):
    import numpy as np
    rng = np.random.default_rng(seed)
    X = rng.integers(1, vocab, size=(n, n_fields)).astype(np.int64)
    w = rng.normal(size=(n_fields, vocab)) * 0.5
    s = sum(w[j, X[:, j]] for j in range(n_fields))
    click = (rng.random(n) < 1 / (1 + np.exp(-s))).astype(np.float32)
    like = (rng.random(n) < 1 / (1 + np.exp(-(s - 1)))).astype(np.float32)
    return X, {"click": click, "like": like}


def mtlrec_dataset(X, y, vocab):
    from mtlrec.dataset import FeatureField, LabelField, PreparedDataset
    fields = [FeatureField(f"f{j}", "categorical", "context", vocab_size=vocab) for j in range(X.shape[1])]
    rows = {"train": {**{f"f{j}": X[:, j] for j in range(X.shape[1])},
                      **{f"label:{k}": v for k, v in y.items()}}}
    return PreparedDataset(fields, [LabelField(k, "binary") for k in y], rows)


HP = {"mmoe": {"n_experts": 4, "expert_dims": [64], "tower_dims": [32], "embedding_dim": 16},
      "shared_bottom": {"shared_dims": [128, 64], "tower_dims": [32], "embedding_dim": 16}}


def build_mtlrec_model(arch, ds, tasks, seed):
    import torch

    from mtlrec.models import build_model
    torch.manual_seed(seed)
    return build_model(arch, ds.fields, tasks, **HP[arch])


def run_mtlrec(arch, ds, data, tasks, bs, lr, device, seed):
    from mtlrec.config import TrainConfig
    from mtlrec.training.trainer import Trainer
    model = build_mtlrec_model(arch, ds, tasks, seed)
    cfg = TrainConfig(epochs=1, batch_size=bs, lr=lr, log_every=50, device=str(device), seed=seed, amp=False)
    tr = Trainer(model, tasks, cfg, device)
    t = time.perf_counter()
    tr.fit(data, evaluate_test=False)
    _sync(device)
    return ds.n_rows("train") / (time.perf_counter() - t)


def run_plain(arch, ds, data, tasks, bs, lr, device, seed):
    import torch
    import torch.nn.functional as F
    model = build_mtlrec_model(arch, ds, tasks, seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    feats_all = {k: v for k, v in data.rows["train"].items() if not k.startswith("label:")}
    labels = {t.name: data.rows["train"]["label:" + t.name] for t in tasks}
    n = ds.n_rows("train")
    g = torch.Generator(device="cpu").manual_seed(seed)
    t = time.perf_counter()
    perm = torch.randperm(n, generator=g).to(device)
    for idx in perm.split(bs):
        feats = {k: v[idx] for k, v in feats_all.items()}
        out = model(feats)
        loss = sum(F.binary_cross_entropy_with_logits(out[k], labels[k][idx]) for k in labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _sync(device)
    return n / (time.perf_counter() - t)


def run_rechub(arch, X, y, vocab, bs, lr, device, seed):
    import torch
    from torch_rechub.basic.features import SparseFeature
    from torch_rechub.models.multi_task import MMOE, SharedBottom
    from torch_rechub.trainers import MTLTrainer
    from torch_rechub.utils.data import DataGenerator
    torch.manual_seed(seed)
    feats = [SparseFeature(f"f{j}", vocab_size=vocab, embed_dim=16) for j in range(X.shape[1])]
    task_types = ["classification", "classification"]
    if arch == "mmoe":
        model = MMOE(feats, task_types, n_expert=4, expert_params={"dims": [64]},
                     tower_params_list=[{"dims": [32]}, {"dims": [32]}])
    else:
        model = SharedBottom(feats, task_types, bottom_params={"dims": [128, 64]},
                             tower_params_list=[{"dims": [32]}, {"dims": [32]}])
    x = {f"f{j}": X[:, j] for j in range(X.shape[1])}
    Y = __import__("numpy").stack([y["click"], y["like"]], axis=1)
    loader, _, _ = DataGenerator(x, Y).generate_dataloader(x_val=x, y_val=Y, x_test=x, y_test=Y, batch_size=bs)
    trainer = MTLTrainer(model, task_types=task_types, optimizer_params={"lr": lr, "weight_decay": 0.0},
                         n_epoch=1, device=str(device), model_path="/tmp")
    t = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):   # it prints its losses
        trainer.train_one_epoch(loader)
    _sync(device)
    return len(Y) / (time.perf_counter() - t)


def _sync(device):
    import torch
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rows", type=int, default=60000)
    ap.add_argument("--fields", type=int, default=10)
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--arch", default="mmoe", choices=sorted(HP))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads for all three (0 = torch default)")
    args = ap.parse_args(argv)

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    sys.path.insert(0, str(VENDOR))
    try:
        import torch_rechub  # noqa: F401
        have_rechub = True
    except ImportError:
        have_rechub = False
        print("[throughput] torch-rechub not found; install it with: .venv/bin/pip install --no-deps "
              "--target bench/.vendor torch-rechub==0.9.0", file=sys.stderr)
    from mtlrec.device import pick_device
    from mtlrec.tasks import TaskSpec
    device = pick_device(args.device)
    X, y = make_data(args.rows, args.fields, args.vocab)
    ds = mtlrec_dataset(X, y, args.vocab)
    data = ds.to_device(device)
    tasks = [TaskSpec("click", "binary"), TaskSpec("like", "binary")]
    runners = {"mtlrec": lambda s: run_mtlrec(args.arch, ds, data, tasks, args.batch_size, args.lr, device, s),
               "plain_torch": lambda s: run_plain(args.arch, ds, data, tasks, args.batch_size, args.lr, device, s)}
    if have_rechub:
        runners["torch_rechub"] = lambda s: run_rechub(args.arch, X, y, args.vocab, args.batch_size, args.lr, device, s)
    names = list(runners)
    # warm-up (first-call costs: allocator, kernels), not counted
    for name in names:
        runners[name](0)
    samples = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            sps = runners[name](r + 1)
            samples[name].append(sps)
            print(f"[throughput] round {r + 1}: {name:<13} {sps:,.0f} samples/s", file=sys.stderr, flush=True)
    med = {n: statistics.median(v) for n, v in samples.items()}
    ratios = {"mtlrec_vs_plain_torch": med["mtlrec"] / med["plain_torch"]}
    if "torch_rechub" in med:
        ratios["mtlrec_vs_torch_rechub"] = med["mtlrec"] / med["torch_rechub"]
    aims = {"mtlrec_vs_torch_rechub": 3.0, "mtlrec_vs_plain_torch": 0.9}
    out = {"benchmark": "training throughput", "unit": "samples/s (median over rounds)",
           "arch": args.arch, "rows": args.rows, "fields": args.fields, "vocab": args.vocab,
           "batch_size": args.batch_size, "rounds": args.rounds, "device": str(device),
           "threads": torch.get_num_threads(),
           "samples_per_s": {n: round(v, 1) for n, v in med.items()},
           "all_rounds": {n: [round(x, 1) for x in v] for n, v in samples.items()},
           "ratios": {k: round(v, 3) for k, v in ratios.items()},
           "aims": aims, "aims_met": {k: ratios[k] >= v for k, v in aims.items() if k in ratios}}
    if args.json:
        print(json.dumps(out))
    else:
        for n, v in med.items():
            print(f"{n:<13} {v:>10,.0f} samples/s")
        for k, v in ratios.items():
            print(f"{k}: {v:.2f}x (aim {aims[k]}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
