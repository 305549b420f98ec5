"""mtlrec: multi-task recommendation models you can see and explain.

The public entry points, one line each (README.md's quickstart uses them)::

    from mtlrec import RunConfig, run_training, load_run, recommend
    cfg = RunConfig.load("sample_data/config_mmoe.json")   # data, tasks, model, training
    result = run_training(cfg, "runs/mmoe")                 # prepare, train, write the run folder
    print(recommend(load_run(result.run_dir), user_id=1, k=5))

``load_data`` reads files into raw tables, ``prepare`` turns them into a model-ready dataset,
``TrainingJob`` trains in a background worker process, ``explain_recommendation`` gives the SHAP
explanation of one (user, item). docs/architecture.md says where everything else lives.

Importing the package is cheap: the entry points are imported on first use (a module
``__getattr__`` over ``_ENTRY_POINTS``), so ``import mtlrec`` loads neither torch nor pandas; heavy
dependencies (torch, pandas, shap, sentence-transformers) come with the submodules that need them.
"""
from __future__ import annotations

import importlib

from mtlrec.errors import DataError, DataWarning, TrainingError

__version__ = "0.1.0"

# name -> the module it is imported from on first use. Package-level names where the package
# exposes them (mtlrec.data, mtlrec.prep, mtlrec.training, mtlrec.explain): they stay put while
# the modules behind them are split.
_ENTRY_POINTS = {
    "RunConfig": "mtlrec.config",
    "load_data": "mtlrec.data",
    "prepare": "mtlrec.prep",
    "run_training": "mtlrec.training",
    "TrainingJob": "mtlrec.training.jobs",
    "load_run": "mtlrec.runs.load",
    "recommend": "mtlrec.serve.recommend",
    "explain_recommendation": "mtlrec.explain",
}

__all__ = ["RunConfig", "load_data", "prepare", "run_training", "TrainingJob", "load_run", "recommend",
           "explain_recommendation", "DataError", "DataWarning", "TrainingError", "__version__"]


def __getattr__(name: str):
    """Import an entry point on first use and keep it in the module's namespace."""
    module = _ENTRY_POINTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mtlrec' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_ENTRY_POINTS))
