"""Error and warning types shared by the whole library.

Every problem with a user's data is raised as one `DataError` whose message says
*what* is wrong, *where* (file, column, first offending rows) and *how* to fix it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence


def _fmt_rows(rows: Sequence[int] | None, limit: int = 5) -> str:
    if not rows:
        return ""
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" (and {len(rows) - limit} more)" if len(rows) > limit else ""
    return f"rows {shown}{more}"


class DataError(ValueError):
    """A problem with input data that the user must fix.

    Attributes hold the structured parts so that the app can show them; `str(err)`
    is one readable message: "<file>: column '<col>', rows 3, 7: <what>. Fix: <how>".
    Row numbers are 1-based data rows as a spreadsheet user would count them
    (the header is not counted).
    """

    def __init__(self, what: str, *, file: str | None = None, column: str | None = None,
                 rows: Sequence[int] | None = None, fix: str | None = None):
        self.what = what
        self.file = file
        self.column = column
        self.rows = list(rows) if rows is not None else None
        self.fix = fix
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.column:
            where.append(f"column '{self.column}'")
        r = _fmt_rows(self.rows)
        if r:
            where.append(r)
        msg = (": ".join([", ".join(where), self.what]) if where else self.what)
        if self.fix:
            msg += f". Fix: {self.fix}"
        return msg


@dataclass
class DataWarning:
    """Something suspicious but usable (for example a feature that leaks a label)."""
    what: str
    file: str | None = None
    column: str | None = None
    rows: list[int] = field(default_factory=list)
    fix: str | None = None

    def __str__(self) -> str:
        return str(DataError(self.what, file=self.file, column=self.column,
                             rows=self.rows or None, fix=self.fix))

    def to_dict(self) -> dict:
        return {"message": str(self), "what": self.what, "file": self.file,
                "column": self.column, "rows": self.rows, "fix": self.fix}


class TrainingError(RuntimeError):
    """Training could not go on (NaN/inf loss, bad configuration); the message says why."""


class DiskFullError(OSError, TrainingError):
    """A write failed because the disk (or the quota) is full: "the disk is full at <folder>: <what>
    could not be written. Fix: free space ...". An OSError (``errno`` ENOSPC) -- handlers of failed
    writes still catch it -- and a TrainingError, so that every command and page shows its message.
    ``folder``: where the write went; ``file``: the file's name, when known. Raised by `mtlrec.diskio`."""

    def __init__(self, folder: str, file: str | None = None, fix: str | None = None):
        import errno
        self.folder, self.file = str(folder), file
        self.fix = fix or ("free space on that disk (delete old runs, workspaces or other files there), "
                           "then try again")
        self.message = (f"the disk is full at {self.folder}"
                        + (f": {file} could not be written" if file else "") + f". Fix: {self.fix}")
        super().__init__(errno.ENOSPC, self.message)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):           # picklable (a worker process sends its error to the app)
        return (type(self), (self.folder, self.file, self.fix))
