"""GPU check: train the shipped sample data on CUDA in a background TrainingJob with mixed
precision, and compare samples/s with the same training on the CPU.

    python bench/gpu_check.py [--json] [--epochs 2] [--arch mmoe] [--batch-size 512]

Without CUDA it says so, runs the CPU part only and exits 0. Finishes in well under
3 minutes on a GPU machine (data preparation ~10 s, a few short epochs per device).
samples/s are the training epochs' own figures (validation excluded); the first epoch
on each device is a warm-up (CUDA context, kernel choice) and the best later epoch is
reported. A speed check: a fixed 2 epochs and batch 512 (not mtlrec's defaults, which let early
stopping decide) so that both devices do the same work.

A gradient weighting under AMP (issue 26): the same training with PCGrad in the worker process, on the
CPU and (with CUDA) on the GPU with mixed precision; every training here runs in the app's spawned
worker process (``isolation`` in the output says so).

Ways out (issue 26): the trained run (the CUDA one when there is CUDA) exported to TorchScript and ONNX
and checked against mtlrec's logits, and ``python -m mtlrec score`` on that device against the CPU.

Data-parallel path (issue 16): the same training once more through ``python -m mtlrec train --nproc 1``,
i.e. torchrun with world size 1, on CUDA with the NCCL backend (on a machine without CUDA: on the
CPU with gloo), to prove the launch, the process group and the run folder on that backend;
``--ddp-procs N`` uses N processes instead (N GPUs).
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
    from mtlrec.training.jobs import TrainingJob
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
    return {"run_dir": str(job.run_dir), "device": s["device"], "isolation": job.isolate, "weighting": cfg.train.weighting, "amp": bool(cfg.train.amp) and str(s["device"]).startswith("cuda"),
            "samples_per_s": max(eps[1:] or eps), "epochs_samples_per_s": eps,
            "test": {t: {k: v for k, v in m.items() if k in ("auc", "rmse", "micro_auc")}
                     for t, m in s["metrics"]["test"].items()},
            "seconds": round(s["elapsed_s"], 1)}


def train_with_torchrun(cfg, dataset, nproc: int, label: str, log) -> dict:
    """``python -m mtlrec train --nproc N`` on the prepared ``dataset`` (saved to /tmp first)."""
    import subprocess
    import tempfile
    work = Path(tempfile.mkdtemp(prefix=f"mtlrec-gpu-check-{label}-"))
    dataset.save(work / "prepared")
    (work / "config.json").write_text(json.dumps(cfg.to_dict()))
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "mtlrec", "train", "--nproc", str(nproc), "--config",
                        str(work / "config.json"), "--dataset", str(work / "prepared"), "--out", str(work / "run"),
                        "--json", "--quiet"], cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        log(f"{label}: exit {r.returncode}: {r.stderr[-2000:]}")
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1], "exit": r.returncode}
    res = json.loads(r.stdout)
    metrics = json.loads((work / "run" / "metrics.json").read_text())
    hist = json.loads((work / "run" / "history.json").read_text())
    ranks = [json.loads(p.read_text()) for p in sorted((work / "run" / "ranks").glob("rank*.json"))]
    eps = [e["samples_per_s"] for e in hist["epochs"]]
    return {"device": res["device"], "distributed": metrics.get("distributed"), "samples_per_s": max(eps[1:] or eps),
            "epochs_samples_per_s": eps, "ranks": ranks,
            "test": {t: {k: v for k, v in m.items() if k in ("auc", "rmse", "micro_auc")}
                     for t, m in res["test"].items()},
            "seconds": round(time.time() - t0, 1)}


def serve_checks(run_dir: str, device: str, log, n_users: int = 50, n_items: int = 100) -> dict:
    """A trained run's way out (issue 26): its model exported to TorchScript and ONNX (checked against
    mtlrec's logits on the test split), and ``python -m mtlrec score`` on ``device`` against the CPU's
    scores for the same users x items pairs."""
    import csv
    import subprocess
    import tempfile
    from mtlrec.runs.load import load_run
    from mtlrec.serve.export_model import check_export, export_model
    work = Path(tempfile.mkdtemp(prefix="mtlrec-gpu-check-serve-"))
    run = load_run(run_dir)
    out = {"export": {}}
    for fmt in ("torchscript", "onnx"):
        try:
            export_model(run, fmt, work / f"model.{'pt' if fmt == 'torchscript' else 'onnx'}")
            out["export"][fmt] = check_export(run, work / f"model.{'pt' if fmt == 'torchscript' else 'onnx'}")
        except Exception as e:  # noqa: BLE001 - a missing optional package is a finding, not a crash
            out["export"][fmt] = {"error": str(e)}
        log(f"export {fmt}: {out['export'][fmt]}")
    pairs = work / "pairs.csv"
    with open(pairs, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user", "item"])
        for u in run.dataset.user_ids[:n_users]:
            w.writerows([u, i] for i in run.dataset.item_ids[:n_items])
    scores = {}
    for dev in dict.fromkeys(["cpu", device]):
        r = subprocess.run([sys.executable, "-m", "mtlrec", "score", "--run", run_dir, "--pairs", str(pairs),
                            "--out", str(work / f"scores-{dev}.csv"), "--device", dev, "--json"],
                           capture_output=True, text=True, cwd=REPO)
        summary = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {"error": r.stderr[-500:]}
        out[f"score_{dev}"] = {"exit": r.returncode, **summary}
        if r.returncode == 0:
            with open(work / f"scores-{dev}.csv") as fh:
                scores[dev] = [float(row["score"]) for row in csv.DictReader(fh)]
        log(f"score on {dev}: exit {r.returncode}")
    if device != "cpu" and len(scores) == 2:
        out["score_max_abs_diff_vs_cpu"] = max(abs(a - b) for a, b in zip(scores["cpu"], scores[device]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--arch", default="mmoe", choices=["shared_bottom", "mmoe", "ple"])
    ap.add_argument("--epochs", type=int, default=2, help="per device (the first is a warm-up)")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--big-batch", type=int, default=4096, help="an extra CUDA run with this batch size (0 = skip)")
    ap.add_argument("--cpu-threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--ddp-procs", type=int, default=1, help="processes of the torchrun run (0 = skip it)")
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
    # a gradient weighting in the app's worker process: PCGrad aggregates per-task gradients (of the
    # scaled losses under AMP, unscaled by the GradScaler's step)
    pc_cfg = cpu_cfg.copy()
    pc_cfg.train.weighting = "pcgrad"
    out["cpu_pcgrad"] = train_in_background(pc_cfg, dataset, "cpu-pcgrad", log)
    if has_cuda:
        pc_gpu = pc_cfg.copy()
        pc_gpu.train.device, pc_gpu.train.amp = "cuda", True
        out["cuda_amp_pcgrad"] = train_in_background(pc_gpu, dataset, "cuda-amp-pcgrad", log)
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
    served = out["cuda_amp"] if has_cuda else out["cpu"]
    out["serve"] = serve_checks(served["run_dir"], served["device"] if has_cuda else "cpu", log)
    if args.ddp_procs:
        ddp_cfg = base.copy()
        ddp_cfg.train.device = "cuda" if has_cuda else "cpu"
        ddp_cfg.train.amp = has_cuda
        label = f"torchrun-{args.ddp_procs}-{ddp_cfg.train.device}"
        out["torchrun"] = train_with_torchrun(ddp_cfg, dataset, args.ddp_procs, label, log)
        if has_cuda and "samples_per_s" in out["torchrun"]:
            out["torchrun_vs_single_process"] = round(out["torchrun"]["samples_per_s"]
                                                      / out["cuda_amp"]["samples_per_s"], 2)
    out["total_s"] = round(time.time() - t0, 1)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"cpu : {out['cpu']['samples_per_s']:,.0f} samples/s ({out['cpu']['isolation']}); with PCGrad "
              f"{out['cpu_pcgrad']['samples_per_s']:,.0f} samples/s")
        if has_cuda:
            print(f"cuda: PCGrad with AMP {out['cuda_amp_pcgrad']['samples_per_s']:,.0f} samples/s, "
                  f"test {out['cuda_amp_pcgrad']['test']}")
        if has_cuda:
            print(f"cuda: {out['cuda_amp']['samples_per_s']:,.0f} samples/s with AMP "
                  f"({out['speedup_cuda_vs_cpu']}x the CPU) on {out['gpu_name']}")
        else:
            print(out["message"])
        sv = out["serve"]
        print("export: " + ", ".join(f"{k} max |diff| {v.get('max_abs_diff', v.get('error'))}" for k, v in sv["export"].items())
              + "; score: " + ", ".join(f"{k[6:]} {v.get('rows_per_s', v.get('error'))} pairs/s" for k, v in sv.items()
                                        if k.startswith("score_") and isinstance(v, dict)))
        if "torchrun" in out:
            t = out["torchrun"]
            print(f"torchrun ({args.ddp_procs} process, {(t.get('distributed') or {}).get('backend')}): "
                  + (f"{t['samples_per_s']:,.0f} samples/s" if "samples_per_s" in t else f"failed: {t.get('error')}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
