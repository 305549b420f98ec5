"""The user's tables as read (:class:`RawData`), before any cleaning: what every reader returns and
what roles, checks and summaries take. Reading itself is in :mod:`mtlrec.data.readers`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import pandas as pd

TABLES = ("interactions", "users", "items")


@dataclass
class RawData:
    """The user's tables as read, before any cleaning.

    ``sources`` maps a table name ("interactions", "users", "items", "tags") to the file
    name used in messages. ``format`` says which reader made it ("csv", "parquet",
    "ml-100k", "movielens", "recbole", "census", "mixed"). ``extra`` holds further tables
    (MovieLens tags); ``meta`` holds reader notes (e.g. RecBole column types).
    """
    interactions: pd.DataFrame
    users: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    sources: dict[str, str] = field(default_factory=dict)
    format: str = "csv"
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The present tables among interactions/users/items, in that order."""
        out = {"interactions": self.interactions}
        if self.users is not None:
            out["users"] = self.users
        if self.items is not None:
            out["items"] = self.items
        return out

    def source(self, table: str) -> str:
        return self.sources.get(table, table)

    def locate(self, column: str) -> str | None:
        """Which table holds ``column`` (interactions first, then users, then items)."""
        for name, df in self.tables().items():
            if column in df.columns:
                return name
        return None

    def all_columns(self) -> dict[str, list[str]]:
        return {name: [str(c) for c in df.columns] for name, df in self.tables().items()}


def describe_sources(raw: RawData) -> str:
    return ", ".join(f"{t}: {n}" for t, n in raw.sources.items())


def iter_tables(raw: RawData) -> Iterable[tuple[str, pd.DataFrame]]:
    return raw.tables().items()
