"""mtlrec: multi-task recommendation models you can see and explain.

Importing the package is cheap: heavy dependencies (torch, pandas, shap,
sentence-transformers) are imported by the submodules that need them.
"""
from mtlrec.errors import DataError, DataWarning, TrainingError

__version__ = "0.1.0"
__all__ = ["DataError", "DataWarning", "TrainingError", "__version__"]
