"""Training: the loop (`Trainer`), history, early stopping, run folders and the whole-run pipeline.

``run_training(config, run_dir, dataset=...)`` (mtlrec.training.pipeline) is the entry point
used by the CLI and by `mtlrec.training.jobs.TrainingJob`. Names are imported lazily so that
``import mtlrec.training`` does not import torch.
"""
from __future__ import annotations

_LAZY = {"Trainer": "mtlrec.training.trainer", "TrainResult": "mtlrec.training.trainer",
         "seeded_build": "mtlrec.training.trainer", "History": "mtlrec.training.history",
         "EarlyStopping": "mtlrec.training.early_stopping", "RunWriter": "mtlrec.runs.folder",
         "default_run_dir": "mtlrec.runs.folder", "run_training": "mtlrec.training.pipeline",
         "build_dataset": "mtlrec.training.pipeline", "Progress": "mtlrec.training.progress",
         "resume_run": "mtlrec.training.resume", "ResumeRefused": "mtlrec.training.resume",
         "check_resumable": "mtlrec.training.resume", "resume_problem": "mtlrec.training.resume",
         "load_checkpoint": "mtlrec.training.resume"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mtlrec.training' has no attribute '{name}'")


__all__ = list(_LAZY)
