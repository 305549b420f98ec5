"""Run folders are unique under any concurrency (issue 21, item 16): two runs started in the same
second shared one folder (config and dataset from one, metrics and weights from the other). A new
run's folder is created atomically (an exclusive mkdir) by whoever asks for it -- the app, the
command line, the torchrun launcher -- so no two callers ever get the same one."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig

REPO = Path(__file__).resolve().parents[1]
SAME_SECOND = "20240101-120000"          # every caller's clock shows the same second
_strftime = time.strftime


def _same_second(fmt, *args):
    return SAME_SECOND if fmt == "%Y%m%d-%H%M%S" else _strftime(fmt, *args)


# a process: says it is ready, waits for "go" on stdin, then N threads ask for a run folder at once
CHILD = """
import sys, threading
import mtlrec.runs.folder as rd
_f = rd.time.strftime
rd.time.strftime = lambda fmt, *a: {stamp!r} if fmt == '%Y%m%d-%H%M%S' else _f(fmt, *a)
root, n = sys.argv[1], int(sys.argv[2])
got, barrier = [], threading.Barrier(n)
def ask():
    barrier.wait()
    got.append(str(rd.default_run_dir("mmoe", root=root, name="same name")))
ts = [threading.Thread(target=ask) for _ in range(n)]
print("ready", flush=True)
sys.stdin.readline()
[t.start() for t in ts]
[t.join() for t in ts]
print("\\n".join(got))
"""


def test_threads_and_processes_asking_at_once_each_get_a_folder_of_their_own(tmp_path, monkeypatch):
    import mtlrec.runs.folder as rd
    root = tmp_path / "runs"
    monkeypatch.setattr(rd.time, "strftime", _same_second)
    procs = [subprocess.Popen([sys.executable, "-c", CHILD.format(stamp=SAME_SECOND), str(root), "6"],
                              cwd=str(REPO), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    got: list[str] = []
    barrier = threading.Barrier(12)

    def ask():
        barrier.wait()
        got.append(str(rd.default_run_dir("mmoe", root=root, name="same name")))

    threads = [threading.Thread(target=ask) for _ in range(12)]
    for p in procs:                 # all at once: the processes' threads and ours
        p.stdin.write("go\n")
        p.stdin.flush()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        got += out.split()
    assert len(got) == 12 + 4 * 6
    assert len(set(got)) == len(got), sorted(got)            # nobody shares a folder
    for p in map(Path, got):                                 # each one exists (created, empty) inside the root
        assert p.is_dir() and p.parent == root and not any(p.iterdir())
        assert p.name.startswith(f"{SAME_SECOND}-same-name")


def test_two_jobs_started_in_the_same_second_keep_their_own_run(tmp_path, monkeypatch):
    """Two sessions pressing Start together: each run folder holds that run's config, weights and metrics."""
    import mtlrec.runs.folder as rd
    from mtlrec.training.jobs import TrainingJob
    from mtlrec.runs.load import load_run
    monkeypatch.setattr(rd.time, "strftime", _same_second)
    monkeypatch.setenv("MTLREC_RUNS_DIR", str(tmp_path / "runs"))
    jobs = []
    for epochs, dims in ((1, [8]), (2, [16])):
        cfg = RunConfig.from_dict({"name": "demo", "tasks": TASKS[:2],
                                   "model": {"arch": "shared_bottom", "shared_dims": dims, "tower_dims": [4],
                                             "embedding_dim": 4},
                                   "train": {"epochs": epochs, "batch_size": 256, "device": "cpu", "seed": 0,
                                             "ranking_k": 0}})
        jobs.append(TrainingJob(cfg, dataset=make_dataset(n_rows=400)))
    assert jobs[0].run_dir != jobs[1].run_dir
    for j in jobs:
        j.start()
    for j in jobs:
        assert j.join(120) and j.status == "finished", j.snapshot()["error"]
    for j, epochs, dims in zip(jobs, (1, 2), ([8], [16])):
        cfg = json.loads((j.run_dir / "config.json").read_text())
        assert cfg["train"]["epochs"] == epochs and cfg["model"]["shared_dims"] == dims
        run = load_run(j.run_dir)                           # the weights fit the model description
        assert len(run.history.epochs) == epochs
