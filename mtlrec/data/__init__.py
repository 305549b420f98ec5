"""Reading, checking and describing interaction data (see readers, roles, validate)."""
from mtlrec.data.roles import DataSpec, OWNERS, ROLE_NAMES, TASK_TYPES

__all__ = ["DataSpec", "OWNERS", "ROLE_NAMES", "TASK_TYPES"]
