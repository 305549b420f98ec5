"""A small MovieLens 100K ready-made split (u1.base / u1.test, optional u.item / u.user), generated."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_ml100k_split(d: Path, n_users: int = 30, n_items: int = 40, per_user: int = 15,
                       side: bool = True) -> tuple[int, int]:
    """u1.base / u1.test in the MovieLens 100K layout (tab-separated user, item, rating, timestamp;
    no header): each user's last 3 ratings are test. Returns the rows of (base, test)."""
    rng = np.random.default_rng(0)
    base, test = [], []
    for u in range(1, n_users + 1):
        for k, i in enumerate(rng.choice(np.arange(1, n_items + 1), per_user, replace=False)):
            line = f"{u}\t{i}\t{rng.integers(1, 6)}\t{880_000_000 + u * 100 + k}\n"
            (test if k >= per_user - 3 else base).append(line)
    d.mkdir(parents=True, exist_ok=True)
    (d / "u1.base").write_text("".join(base))
    (d / "u1.test").write_text("".join(test))
    if side:
        (d / "u.user").write_text("".join(f"{u}|{20 + u}|{'MF'[u % 2]}|writer|{10000 + u}\n"
                                          for u in range(1, n_users + 1)))
        flags = lambda i: "|".join("1" if g == i % 19 else "0" for g in range(19))   # noqa: E731
        (d / "u.item").write_text("".join(f"{i}|Movie {i} (1995)|01-Jan-1995||http://x/{i}|{flags(i)}\n"
                                          for i in range(1, n_items + 1)), encoding="latin-1")
    return len(base), len(test)
