"""GPU check: train the shipped sample data on CUDA in a background TrainingJob with mixed
precision, and compare samples/s with the same training on the CPU.

    python bench/gpu_check.py [--json] [--epochs 2] [--arch mmoe] [--batch-size 512]

Without CUDA it says so, runs the CPU part only and exits 0. Finishes in well under
3 minutes on a GPU machine (data preparation ~10 s, a few short epochs per device).
samples/s are the training epochs' own figures (validation excluded); the first epoch
on each device is a warm-up (CUDA context, kernel choice) and the best later epoch is
reported. A speed check: a fixed 2 epochs and batch 512 (not mtlrec's defaults, which let early
stopping decide) so that both devices do the same work.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def train_in_background(cfg, dataset, label: str, log) -> dict:
    from mtlrec.jobs import TrainingJob
    job = TrainingJob(cfg, run_dir=Path("/tmp") / f"mtlrec-gpu-check-{label}-{int(time.time())}",
                      dataset=dataset)
    job.start()
    last = None
    while not job.join(timeout=1.0):                     # the main thread stays free: poll the snapshot
        s = job.snapshot(include_batches=False)
        now = (s["epoch"], s["batch"] // max(1, s["n_batches"] // 4))
        if now != last and s["n_batches"]:
            log(f"{label}: {s['status']} epoch {s['epoch']}/{s['epochs']} batch {s['batch']}/{s['n_batches']}")
            last = now
    s = job.snapshot(include_batches=False)
    if s["status"] != "finished":
        raise SystemExit(f"{label} training ended as {s['status']}: {s['error']}")
    eps = [e["samples_per_s"] for e in s["history"]["epochs"]]
    return {"device": s["device"], "samples_per_s": max(eps[1:] or eps), "epochs_samples_per_s": eps,
            "test": {t: {k: v for k, v in m.items() if k in ("auc", "rmse", "micro_auc")}
                     for t, m in s["metrics"]["test"].items()},
            "seconds": round(s["elapsed_s"], 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--arch", default="mmoe", choices=["shared_bottom", "mmoe", "ple"])
    ap.add_argument("--epochs", type=int, default=2, help="per device (the first is a warm-up)")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--big-batch", type=int, default=4096, help="an extra CUDA run with this batch size (0 = skip)")
    ap.add_argument("--cpu-threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = ap.parse_args(argv)

    def log(s):
        print(f"[gpu_check] {s}", file=sys.stderr, flush=True)

    import torch
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import build_dataset
    has_cuda = torch.cuda.is_available()
    if not has_cuda:
        log("no CUDA device found (torch.cuda.is_available() is False): running the CPU part only. "
            "Run this script on a machine with an NVIDIA GPU and a CUDA build of PyTorch for the comparison.")
    t0 = time.time()
    base = RunConfig.load(REPO / "sample_data" / f"config_{args.arch}.json")
    base.train.epochs = args.epochs
    base.train.batch_size = args.batch_size
    base.train.early_stopping.patience = 0
    base.train.baselines = False
    dataset = build_dataset(base)
    log(f"sample data prepared: {dataset.n_rows('train')} training rows ({time.time() - t0:.1f}s)")
    out = {"benchmark": "gpu check", "arch": args.arch, "batch_size": args.batch_size, "epochs": args.epochs,
           "torch": torch.__version__, "cuda_available": has_cuda, "cpu_threads": torch.get_num_threads()}
    cpu_cfg = base.copy()
    cpu_cfg.train.device = "cpu"
    out["cpu"] = train_in_background(cpu_cfg, dataset, "cpu", log)
    if has_cuda:
        gpu_cfg = base.copy()
        gpu_cfg.train.device = "cuda"
        gpu_cfg.train.amp = True
        out["gpu_name"] = torch.cuda.get_device_name(0)
        out["cuda_amp"] = train_in_background(gpu_cfg, dataset, "cuda", log)
        out["speedup_cuda_vs_cpu"] = round(out["cuda_amp"]["samples_per_s"] / out["cpu"]["samples_per_s"], 2)
        if args.big_batch:
            big = gpu_cfg.copy()
            big.train.batch_size = args.big_batch
            out[f"cuda_amp_batch{args.big_batch}"] = train_in_background(big, dataset, f"cuda-b{args.big_batch}", log)
    else:
        out["cuda_amp"] = None
        out["message"] = "no CUDA device: GPU part not run"
    out["total_s"] = round(time.time() - t0, 1)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"cpu : {out['cpu']['samples_per_s']:,.0f} samples/s")
        if has_cuda:
            print(f"cuda: {out['cuda_amp']['samples_per_s']:,.0f} samples/s with AMP "
                  f"({out['speedup_cuda_vs_cpu']}x the CPU) on {out['gpu_name']}")
        else:
            print(out["message"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
