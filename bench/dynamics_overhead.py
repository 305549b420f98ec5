"""Cost of the training-dynamics measurement: ``python bench/dynamics_overhead.py [--json]``.

Trains MMoE on the shipped sample data (``sample_data/config_mmoe.json``, or ``--arch``'s config: four tasks, batch
1024, 1 CPU thread) with ``train.dynamics_every`` = ``--every`` (on, default 20: the library
default) and 0 (off), alternating on/off in every round (order swapped each round), each
round a fresh model trained ``--epochs`` epochs. Reports the training samples/s of each
(`TrainResult.samples_per_s`: training time only, validation excluded), medians over rounds,
and ``slowdown`` = 1 - on / off. Aim (issue 14): slowdown <= 10 %.

Whole runs are noisy on a shared machine, so it also times single training steps with and without
the measurement, interleaved (``step_ms``, ``measured_step_ms``: medians), and derives
``expected_slowdown`` = extra time of the measured steps / epoch time from them.

It also checks that measuring does not change training: the validation metrics of the on and
off runs of a round agree (``same_training``).

Prints the load average: on a busy machine the figures are noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--every", type=int, default=None, help="dynamics_every when on (default: the library's)")
    ap.add_argument("--arch", default="mmoe", choices=("mmoe", "ple", "shared_bottom"))
    a = ap.parse_args(argv)
    out = measure(rounds=a.rounds, epochs=a.epochs, every=a.every, arch=a.arch)
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:28s} {v}")


def measure(rounds: int = 3, epochs: int = 2, every: int | None = None, arch: str = "mmoe") -> dict:
    """The measurement described above; returns the figures as a dict (used by bench/lab.py too).
    Sets torch to 1 CPU thread."""
    import torch
    torch.set_num_threads(1)
    from mtlrec.config import RunConfig, TrainConfig
    from mtlrec.training.build import build_model_for, build_tasks
    from mtlrec.training.pipeline import build_dataset
    from mtlrec.training.dynamics import sampled_batches
    from mtlrec.training.trainer import Trainer

    every = every if every is not None else TrainConfig().dynamics_every
    cfg = RunConfig.load(ROOT / "sample_data" / f"config_{arch}.json")
    cfg.train.device = "cpu"
    cfg.train.epochs = epochs
    cfg.train.baselines = False
    t0 = time.perf_counter()
    ds = build_dataset(cfg)
    tasks = build_tasks(cfg, ds)
    data = ds.to_device("cpu")
    prep_s = time.perf_counter() - t0

    def one(dyn: int):
        c = TrainConfig.from_dict({**_train_dict(cfg.train), "dynamics_every": dyn})
        model = build_model_for(cfg, ds, tasks)
        res = Trainer(model, tasks, c, "cpu").fit(data, evaluate_test=False)
        last = res.history.epochs[-1]
        return res.samples_per_s, last.get("valid") or {}, sum(1 for e in res.history.epochs if "dynamics" in e)

    one(0)  # warm-up (allocator, kernels)
    on, off, same = [], [], []
    for r in range(rounds):
        order = (every, 0) if r % 2 == 0 else (0, every)
        got = {}
        for dyn in order:
            got[dyn] = one(dyn)
        on.append(got[every][0])
        off.append(got[0][0])
        va, vb = got[every][1], got[0][1]
        same.append(all(abs(va[t][m] - vb[t][m]) <= 1e-4 * max(1.0, abs(vb[t][m]))
                        for t in vb for m in vb[t] if vb[t][m] == vb[t][m]))
        epochs_with = got[every][2]
    step_ms, measured_ms = _step_costs(cfg, ds, tasks, data)
    s_on, s_off = statistics.median(on), statistics.median(off)
    n_train = ds.n_rows("train")
    bs = int(cfg.train.batch_size)
    n_batches = -(-n_train // bs)
    out = {"arch": arch, "tasks": [t.name for t in tasks], "train_rows": n_train, "batch_size": bs,
           "batches_per_epoch": n_batches, "every": every,
           "measured_batches_per_epoch": len(sampled_batches(n_batches, every)),
           "epochs": epochs, "rounds": rounds, "threads": 1,
           "samples_per_s_on": round(s_on), "samples_per_s_off": round(s_off),
           "samples_per_s_on_all": [round(v) for v in on], "samples_per_s_off_all": [round(v) for v in off],
           "ratio_on_off": round(s_on / s_off, 3), "slowdown": round(1 - s_on / s_off, 3),
           "within_10pct": (1 - s_on / s_off) <= 0.10,
           "step_ms": round(step_ms, 1), "measured_step_ms": round(measured_ms, 1),
           "expected_slowdown": round(len(sampled_batches(n_batches, every)) * (measured_ms - step_ms)
                                      / (n_batches * step_ms + len(sampled_batches(n_batches, every))
                                         * (measured_ms - step_ms)), 3),
           "epochs_with_dynamics": epochs_with, "same_training": all(same),
           "prep_s": round(prep_s, 1), "loadavg": [round(x, 2) for x in os.getloadavg()]}
    return out


def _step_costs(cfg, ds, tasks, data, reps: int = 15) -> tuple[float, float]:
    """Median ms of one training step without and with the measurement, interleaved step by step
    (far less noisy than whole runs on a busy machine)."""
    import torch

    from mtlrec.training.dynamics import DynamicsRecorder
    from mtlrec.training.build import build_model_for
    model = build_model_for(cfg, ds, tasks)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rec = DynamicsRecorder(model, [t.name for t in tasks], every=1)
    bs = int(cfg.train.batch_size)
    plain, measured = [], []
    for r in range(reps + 2):
        for with_dyn in (False, True):
            idx = torch.randint(0, ds.n_rows("train"), (bs,))
            feats, labels = data.batch("train", idx)
            t = time.perf_counter()
            out = model(feats)
            losses = {k.name: k.loss(out[k.name].float(), labels[k.label]) for k in tasks}
            if with_dyn:
                rec.batch(0, 1, feats, losses)
            opt.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            opt.step()
            if r >= 2:
                (measured if with_dyn else plain).append((time.perf_counter() - t) * 1e3)
    return statistics.median(plain), statistics.median(measured)


def _train_dict(t) -> dict:
    import dataclasses
    return dataclasses.asdict(t)


if __name__ == "__main__":
    main()
