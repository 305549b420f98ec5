"""A full disk (issue 27 item 4): every writer says "the disk is full at <folder>", leaves no partial or
temporary file behind, and a run stays resumable from its last checkpoint once there is space again.

The disk is simulated, deterministically: `FullDisk` makes the disk full at the moment a file with a
given name is written -- that write stores a few bytes and fails with ENOSPC, as on a real disk --
and from then on every write to a new file fails too, until `free` ("space is back"). Rewriting an
existing file in place (its own blocks) still works, as it does on a real full disk.
"""
from __future__ import annotations

import builtins
import errno
import io
import json
import os
from pathlib import Path

import pytest

from _fixtures_train import TASKS, make_dataset, tiny_run_folder


class _FailingFile:
    """A file open for writing on a full disk: the first write stores a few bytes, then ENOSPC."""

    def __init__(self, fh):
        self._fh = fh
        self._wrote = False

    def write(self, data):
        if not self._wrote:
            self._wrote = True
            self._fh.write(data[:7])
            self._fh.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()
        return False


class FullDisk:
    def __init__(self, monkeypatch):
        import torch
        self.name, self.skip, self.full = None, 0, False
        real_open, real_save = builtins.open, torch.save

        def fake_open(file, mode="r", *args, **kw):
            fh = real_open(file, mode, *args, **kw)
            new_file = any(c in mode for c in "wax")           # "r+" rewrites blocks the file has
            if new_file and not self.full and self.name and self.name in os.path.basename(str(file)):
                if self.skip:
                    self.skip -= 1
                else:
                    self.full = True
            return _FailingFile(fh) if new_file and self.full else fh

        def fake_save(obj, f, *args, **kw):                   # torch writes a path itself, in C++
            if isinstance(f, (str, os.PathLike)):
                with fake_open(f, "wb") as fh:
                    return real_save(obj, fh, *args, **kw)
            return real_save(obj, f, *args, **kw)

        monkeypatch.setattr(builtins, "open", fake_open)
        monkeypatch.setattr(io, "open", fake_open)
        monkeypatch.setattr(torch, "save", fake_save)

    def fill_at(self, name: str, skip: int = 0) -> None:
        """The disk is full from the (skip+1)-th file written whose name holds ``name``."""
        self.name, self.skip, self.full = name, skip, False

    def free(self) -> None:
        self.name, self.full = None, False


@pytest.fixture
def disk(monkeypatch):
    return FullDisk(monkeypatch)


def _leftovers(folder: Path) -> list[str]:
    """Temporary or partial files (and folders) a writer left in ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*")
                  if ".tmp" in p.name or (p.name.startswith(".") and p.name not in (".resume.lock", ".lock")))


def _cli(capsys, *argv) -> tuple[int, str, str]:
    from mtlrec.__main__ import main
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    d = tmp_path_factory.mktemp("disk_full_data") / "prepared"
    make_dataset(n_users=40, n_items=30, n_rows=900).save(d)
    return d


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    return tiny_run_folder(tmp_path_factory.mktemp("disk_full_run") / "run", make_dataset(n_rows=600))


# ---- a run folder: mid-run checkpoint, metrics at the end ------------------------------------------
@pytest.mark.parametrize("name, skip", [("checkpoint.pt", 1), ("metrics.json", 0)],
                         ids=["checkpoint-of-epoch-2", "metrics-at-the-end"])
def test_a_full_disk_in_training_is_said_cleaned_up_and_the_run_resumes(name, skip, disk, prepared, tmp_path,
                                                                          capsys, monkeypatch):
    from mtlrec.app.public import public_message
    root = tmp_path / "runs"
    run = root / "r1"
    monkeypatch.setenv("MTLREC_RUNS_DIR", str(root))
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"tasks": TASKS[:2], "model": {"arch": "shared_bottom", "shared_dims": [16],
                                                            "tower_dims": [8], "embedding_dim": 8},
                               "train": {"epochs": 3, "batch_size": 256, "device": "cpu", "seed": 0}}))
    disk.fill_at(name, skip)
    code, out, err = _cli(capsys, "train", "--config", cfg, "--dataset", prepared, "--out", run, "--json",
                          "--threads", "1", "--quiet")
    assert code == 2, err
    assert f"the disk is full at {run}: {name} could not be written" in err and "Traceback" not in err, err
    assert f"python -m mtlrec train --resume {run.name}" in err, err           # how to go on
    doc = json.loads(out)
    assert doc["status"] == "failed" and doc["error"].startswith(f"the disk is full at {run}")
    assert _leftovers(run) == []                                              # nothing partial left
    status = json.loads((run / "status.json").read_text())                    # rewritten in place
    assert status["status"] == "failed" and status["kind"] == "DiskFullError", status
    shown = public_message(status["error"])                                   # as the app shows it
    assert shown.startswith("the disk is full at runs/r1: ") and str(tmp_path) not in shown, shown
    assert (run / "checkpoint.pt").is_file()
    # space is back: the run resumes from its last checkpoint and finishes
    disk.free()
    code, out, err = _cli(capsys, "train", "--resume", run, "--json", "--threads", "1", "--quiet")
    assert code == 0, err
    assert json.loads(out)["status"] == "finished"
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    assert (run / "model.pt").is_file() and (run / "metrics.json").is_file()
    assert json.loads((run / "metrics.json").read_text())["status"] == "finished"
    assert _leftovers(run) == []


# ---- a prepared dataset (a run folder's, a workspace's, the prepare command's) ----------------------
def test_a_full_disk_while_saving_a_dataset_is_said_and_leaves_nothing_partial(disk, prepared, tmp_path, capsys):
    from mtlrec.app import workspace as ws
    from mtlrec.dataset import PreparedDataset
    ds = PreparedDataset.load(prepared, mmap=False)
    out = tmp_path / "copy"
    disk.fill_at(".npy", skip=2)
    with pytest.raises(OSError) as e:
        ds.save(out)
    assert str(e.value).startswith(f"the disk is full at {out}: ") and "Fix: free space" in str(e.value)
    assert _leftovers(out) == [] and not (out / "dataset.json").exists()     # never a folder that looks whole
    # a workspace's prepared dataset: said of the workspace's folder, no half-written copy kept
    root, wid = tmp_path / "ws", ws.new_workspace_id()
    disk.fill_at(".npy", skip=1)
    with pytest.raises(OSError) as e:
        ws.save_dataset(wid, ds, "ab12cd34", root=root)
    assert str(e.value).startswith(f"the disk is full at {root / wid / 'prepared' / 'ab12cd34'}")
    assert _leftovers(root) == [] and ws.load_dataset(wid, "ab12cd34", root=root) is None
    disk.free()
    ws.save_dataset(wid, ds, "ab12cd34", root=root)
    assert ws.load_dataset(wid, "ab12cd34", root=root).n_rows("train") == ds.n_rows("train")


# ---- a workspace: its document and its uploads -----------------------------------------------------
def test_a_full_disk_while_saving_a_workspace_keeps_the_last_version(disk, tmp_path, monkeypatch):
    from mtlrec.app import workspace as ws
    from mtlrec.app.public import public_message
    root, wid = tmp_path / "ws", ws.new_workspace_id()
    monkeypatch.setenv("MTLREC_WORKSPACES", str(root))
    assert ws.save(wid, {"model": {"arch": "mmoe"}}) == 1
    disk.fill_at("workspace.json")
    with pytest.raises(OSError) as e:
        ws.save(wid, {"model": {"arch": "ple"}}, expect=1)
    msg = str(e.value)
    assert msg.startswith(f"the disk is full at {root / wid}: workspace.json could not be written"), msg
    assert public_message(msg).startswith("the disk is full at workspace: workspace.json"), public_message(msg)
    assert ws.load(wid)["version"] == 1 and ws.load(wid)["model"] == {"arch": "mmoe"}   # the last good one
    assert _leftovers(root / wid) == []
    disk.fill_at("ratings.csv")
    with pytest.raises(OSError) as e:
        ws.save_files(wid, [("ratings.csv", b"user,item\n" * 1000)])
    assert str(e.value).startswith(f"the disk is full at {root / wid / 'files'}")
    assert _leftovers(root / wid) == [] and ws.load_files(wid) == []
    disk.free()
    assert ws.save(wid, {"model": {"arch": "ple"}}, expect=1) == 2


# ---- exports: the run zip and the report -------------------------------------------------------------
def test_a_full_disk_while_exporting_is_said_and_leaves_no_partial_file(disk, finished_run, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    for argv, name in ((["runs", "export", finished_run, "--out", out / "run.zip"], "run.zip"),
                       (["report", "--run", finished_run, "--out", out / "report.html", "--no-explain"],
                        "report.html")):
        disk.fill_at(name)
        code, _, err = _cli(capsys, *argv)
        assert code == 2, err
        assert f"the disk is full at {out}: {name} could not be written" in err and "Traceback" not in err, err
        assert list(out.iterdir()) == []                                      # neither the file nor a temporary one
    disk.free()
    code, _, err = _cli(capsys, "runs", "export", finished_run, "--out", out / "run.zip")
    assert code == 0 and (out / "run.zip").stat().st_size > 1000, err
