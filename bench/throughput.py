"""Training throughput: mtlrec's trainer vs torch-rechub 0.9.0's MTLTrainer vs a plain PyTorch loop.

    .venv/bin/pip install --no-deps --target bench/.vendor torch-rechub==0.9.0   # once (bench only)
    .venv/bin/python bench/throughput.py [--json] [--launches 3] [--rows 60000] [--rounds 3] [--arch mmoe]
    .venv/bin/python bench/throughput.py --profile      # where each loop's time goes (cProfile, by phase)

Same data for all three: a synthetic click/like table with ``--fields`` categorical features
(vocabulary ``--vocab`` each, embedding dim 16) and two binary tasks. Same model sizes:
MMoE with 4 experts of [64] and towers of [32] (or shared-bottom [128, 64] / towers [32]),
batch size 512, Adam lr 1e-3, one epoch per measurement, one torch thread (``--threads``).

* ``mtlrec``: ``mtlrec.training.Trainer.fit`` with the training defaults (history, NaN checks,
  per-task losses, training dynamics on one batch in 20 included; no validation split, so the
  epoch is pure training).
* ``torch_rechub``: its own MMOE / SharedBottom model (same dims; its MLPs add BatchNorm)
  fed by its ``DataGenerator`` DataLoader (``num_workers=0``: in this process), trained with
  ``MTLTrainer.train_one_epoch`` as its examples do.
* ``plain_torch``: the same mtlrec model, a minimal hand-written loop (randperm, index the
  tensors, forward, sum of BCE-with-logits, backward, ``torch.optim.Adam`` with its defaults,
  step) and nothing else.

The three alternate in every round (rotating the order). Each run is timed twice: wall clock and
the process's CPU time (``time.process_time``; every loop runs in this one process on one thread,
so CPU time is the work done, and it moves far less than wall time on a loaded machine).
samples/s are medians over rounds; ``--launches N`` (default 3) runs N fresh processes and
reports the median of their ratios. Aims (issue 25): mtlrec >= 3x torch_rechub and >= 1x plain_torch.

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


class _Clock:
    """Wall and process CPU time of the block (``with _Clock(device) as c: ...; c.wall, c.cpu``)."""

    def __init__(self, device):
        self.device = device

    profiler = None          # a cProfile.Profile to run during the timed block (`phase_profile`)

    def __enter__(self):
        if _Clock.profiler is not None:
            _Clock.profiler.enable()
        self.t, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        _sync(self.device)
        self.wall, self.cpu = time.perf_counter() - self.t, time.process_time() - self.c
        if _Clock.profiler is not None:
            _Clock.profiler.disable()


def run_mtlrec(arch, ds, data, tasks, bs, lr, device, seed):
    from mtlrec.config import TrainConfig
    from mtlrec.training.trainer import Trainer
    model = build_mtlrec_model(arch, ds, tasks, seed)
    cfg = TrainConfig(epochs=1, batch_size=bs, lr=lr, log_every=50, device=str(device), seed=seed, amp=False)
    tr = Trainer(model, tasks, cfg, device)
    with _Clock(device) as c:
        tr.fit(data, evaluate_test=False)
    return ds.n_rows("train"), c


def run_plain(arch, ds, data, tasks, bs, lr, device, seed):
    import torch
    import torch.nn.functional as F
    model = build_mtlrec_model(arch, ds, tasks, seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    feats_all = {k: v for k, v in data.rows["train"].items() if not k.startswith("label:")}
    labels = {t.name: data.rows["train"]["label:" + t.name] for t in tasks}
    n = ds.n_rows("train")
    g = torch.Generator(device="cpu").manual_seed(seed)

    def plain_batch(idx):
        return {k: v[idx] for k, v in feats_all.items()}, {k: v[idx] for k, v in labels.items()}

    def plain_loss(out, ys):
        return sum(F.binary_cross_entropy_with_logits(out[k], ys[k]) for k in ys)

    with _Clock(device) as c:
        perm = torch.randperm(n, generator=g).to(device)
        for idx in perm.split(bs):
            feats, ys = plain_batch(idx)
            loss = plain_loss(model(feats), ys)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return n, c


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
    with _Clock(device) as c, contextlib.redirect_stdout(sys.stderr):   # it prints its losses
        trainer.train_one_epoch(loader)
    return len(Y), c


def _sync(device):
    import torch
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


# ---- where the time goes: cProfile, grouped by phase ------------------------------------------
# (file ending, function name, "ct": cumulative | "tt": own time); a phase is the sum of its matches
PHASES = {
    "data (batch gather / DataLoader)": [("mtlrec/dataset.py", "batch", "ct"), ("throughput.py", "plain_batch", "ct"),
                                         ("torch/utils/data/dataloader.py", "__next__", "ct")],
    "forward (model)": [("mtlrec/models/base.py", "forward@MultiTaskModel", "ct"),
                        ("torch_rechub/models/multi_task/mmoe.py", "forward", "ct"),
                        ("torch_rechub/models/multi_task/shared_bottom.py", "forward", "ct")],
    "loss": [("mtlrec/chain.py", "task_losses", "ct"), ("throughput.py", "plain_loss", "ct"),
             ("torch/nn/modules/loss.py", "forward", "ct"), ("torch_rechub/basic/loss_func.py", "forward", "ct")],
    "weighting (combine)": [("mtlrec/weighting/static.py", "combine", "ct")],
    "backward": [("torch/autograd/__init__.py", "backward", "ct")],
    "optimizer (step, zero_grad)": [("torch/optim/adam.py", "step", "ct"),
                                    ("torch/optim/optimizer.py", "zero_grad", "ct"),
                                    ("torch/nn/modules/module.py", "zero_grad", "ct")],
    "dynamics (sampled batches)": [("mtlrec/training/dynamics.py", "batch", "ct")],
    "logging / progress": [("mtlrec/training/trainer.py", "_log_window", "ct"), ("tqdm/std.py", "*", "tt")],
}
ITEM = "<method 'item' of 'torch._C.TensorBase' objects>"     # torch-rechub reads every batch's losses


def _matches(key, rule, forward_line):
    (fname, line, func), (end, name, _) = key, rule
    if name == "forward@MultiTaskModel":
        return fname.endswith(end) and func == "forward" and line == forward_line
    return fname.endswith(end) and (name == "*" or func == name)


def _phase_times(stats, forward_line) -> dict:
    """Seconds by phase from cProfile's ``stats`` ({(file, line, func): (cc, nc, tt, ct, callers)})."""
    out = {}
    for phase, rules in PHASES.items():
        out[phase] = sum(v[3 if col == "ct" else 2] for rule in rules for col in [rule[2]]
                         for k, v in stats.items() if _matches(k, rule, forward_line))
    item = stats.get(("~", 0, ITEM))
    if item is not None:   # torch-rechub's loss.item() calls (its running loss): logging
        out["logging / progress"] += sum(v[3] for k, v in item[4].items() if k[0].endswith("mtl_trainer.py"))
    return out


def phase_profile(run) -> dict:
    """CPU ms per epoch by phase of the timed block of one ``run()`` under cProfile (which slows
    Python-heavy code most: read the shares, not the absolute figures)."""
    import cProfile
    import pstats

    from mtlrec.models.base import MultiTaskModel
    pr = _Clock.profiler = cProfile.Profile(time.process_time)      # CPU time: steadier under load
    try:
        run()
    finally:
        _Clock.profiler = None
    stats = pstats.Stats(pr).stats
    total = sum(v[2] for v in stats.values())
    out = _phase_times(stats, MultiTaskModel.forward.__code__.co_firstlineno)
    out["other (the loop itself)"] = total - sum(out.values())
    return {k: round(1000 * v, 1) for k, v in out.items()} | {"total": round(1000 * total, 1)}


def _launches(args, argv) -> dict:
    """Run ``args.launches`` fresh processes of this benchmark (one launch each) -> the median ratios."""
    import subprocess
    rest = [a for a in (argv if argv is not None else sys.argv[1:]) if a not in ("--json",)]
    rest = [a for i, a in enumerate(rest) if a != "--launches" and (i == 0 or rest[i - 1] != "--launches")]
    runs = []
    for k in range(args.launches):
        print(f"[throughput] launch {k + 1} of {args.launches}", file=sys.stderr, flush=True)
        p = subprocess.run([sys.executable, __file__, *rest, "--launches", "1", "--json"],
                           capture_output=True, text=True, check=True)
        sys.stderr.write(p.stderr if "round" in p.stderr else "")
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    first = runs[0]
    out = {k: first[k] for k in ("benchmark", "arch", "rows", "fields", "vocab", "batch_size", "rounds", "device",
                                 "threads", "aims")}
    out["unit"] = "ratios: median over launches of (median samples/s over rounds) ratios"
    out["launches"] = len(runs)
    for key in ("ratios", "ratios_cpu"):
        out[key] = {r: round(statistics.median(x[key][r] for x in runs), 3) for r in first[key]}
        out[key + "_per_launch"] = {r: [x[key][r] for x in runs] for r in first[key]}
    for key in ("samples_per_s", "samples_per_cpu_s"):
        out[key] = {n: round(statistics.median(x[key][n] for x in runs), 1) for n in first[key]}
    out["aims_met"] = {k: out["ratios"][k] >= v for k, v in out["aims"].items() if k in out["ratios"]}
    out["aims_met_cpu"] = {k: out["ratios_cpu"][k] >= v for k, v in out["aims"].items() if k in out["ratios_cpu"]}
    out["load_average"] = [round(v, 2) for v in __import__("os").getloadavg()]
    return out


AIMS = {"mtlrec_vs_torch_rechub": 3.0, "mtlrec_vs_plain_torch": 1.0}


def _ratios(med: dict) -> dict:
    r = {"mtlrec_vs_plain_torch": med["mtlrec"] / med["plain_torch"]}
    if "torch_rechub" in med:
        r["mtlrec_vs_torch_rechub"] = med["mtlrec"] / med["torch_rechub"]
    return {k: round(v, 3) for k, v in r.items()}


def _measure(runners: dict, rounds: int) -> tuple[dict, dict]:
    """(wall samples/s, CPU samples/s) per runner and round, the runners alternating."""
    names = list(runners)
    for name in names:      # warm-up (first-call costs: allocator, kernels), not counted
        runners[name](0)
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            n, c = runners[name](r + 1)
            wall[name].append(n / c.wall)
            cpu[name].append(n / c.cpu)
            print(f"[throughput] round {r + 1}: {name:<13} {n / c.wall:,.0f} samples/s "
                  f"({n / c.cpu:,.0f} per CPU second)", file=sys.stderr, flush=True)
    return wall, cpu


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rows", type=int, default=60000)
    ap.add_argument("--fields", type=int, default=10)
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--launches", type=int, default=3, help="fresh processes; the ratios are their medians")
    ap.add_argument("--profile", action="store_true", help="one cProfile'd epoch per loop: ms by phase")
    ap.add_argument("--arch", default="mmoe", choices=sorted(HP))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads for all three (0 = torch default)")
    args = ap.parse_args(argv)
    if args.launches > 1 and not args.profile:
        out = _launches(args, argv)
        print(json.dumps(out) if args.json else
              "\n".join(f"{k}: {v:.2f}x wall, {out['ratios_cpu'][k]:.2f}x CPU (aim {out['aims'][k]}x)"
                        for k, v in out["ratios"].items()))
        return 0

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
    if args.profile:
        for name in runners:
            runners[name](0)
        prof = {name: phase_profile(lambda: runners[name](1)) for name in runners}
        print(json.dumps({"benchmark": "training throughput: profile", "unit": "CPU ms per epoch under cProfile",
                          "arch": args.arch, "rows": args.rows, "batch_size": args.batch_size,
                          "threads": torch.get_num_threads(), "phases": prof}, indent=None if args.json else 1))
        return 0
    wall, cpu = _measure(runners, args.rounds)
    med = {n: statistics.median(v) for n, v in wall.items()}
    med_cpu = {n: statistics.median(v) for n, v in cpu.items()}
    ratios, ratios_cpu = _ratios(med), _ratios(med_cpu)
    out = {"benchmark": "training throughput", "unit": "samples/s (median over rounds)",
           "arch": args.arch, "rows": args.rows, "fields": args.fields, "vocab": args.vocab,
           "batch_size": args.batch_size, "rounds": args.rounds, "device": str(device),
           "threads": torch.get_num_threads(),
           "samples_per_s": {n: round(v, 1) for n, v in med.items()},
           "samples_per_cpu_s": {n: round(v, 1) for n, v in med_cpu.items()},
           "all_rounds": {n: [round(x, 1) for x in v] for n, v in wall.items()},
           "ratios": ratios, "ratios_cpu": ratios_cpu,
           "aims": AIMS, "aims_met": {k: ratios[k] >= v for k, v in AIMS.items() if k in ratios}}
    if args.json:
        print(json.dumps(out))
    else:
        for n, v in med.items():
            print(f"{n:<13} {v:>10,.0f} samples/s  {med_cpu[n]:>10,.0f} per CPU second")
        for k, v in ratios.items():
            print(f"{k}: {v:.2f}x wall, {ratios_cpu[k]:.2f}x CPU (aim {AIMS[k]}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
