"""Reading, checking and describing interaction data (see readers, roles, validate).

Importing ``mtlrec.data`` is cheap: the pandas-based functions are loaded on first use
(``from mtlrec.data import load_data`` works as usual).
"""
from mtlrec.data.roles import DataSpec, OWNERS, ROLE_NAMES, TASK_TYPES

_LAZY = {
    "RawData": "readers", "load_data": "readers", "load_uploaded": "readers", "load_files": "readers",
    "read_table": "readers",
    "suggest_spec": "suggest",
    "validate": "validate", "ValidationReport": "validate",
    "summarize": "summary", "format_summary": "summary",
    "load_census": "census", "census_spec": "census",
}

__all__ = ["DataSpec", "OWNERS", "ROLE_NAMES", "TASK_TYPES", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"mtlrec.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'mtlrec.data' has no attribute {name!r}")
