"""Ranking over the whole catalogue, streamed in bounded chunks: Recall@K, NDCG@K, HitRate@K, MRR.

Per user, every catalogue item gets a score; the user's excluded items (e.g. seen in training)
are left out; the top K is taken -- higher score first, equal scores by the lower item index
(`top_k`) -- and the user's relevant items are looked for in it. Recall@K divides by the user's
number of relevant items; MRR uses the full ranking: the best relevant item's rank is 1 + the
number of items scored strictly higher (ties optimistic). Means over the users with a relevant
item. A relevant item that is excluded, or scored NaN / -inf, is not relevant.

Memory: users are taken in chunks whose score rows (one row over the catalogue per user and
ranked task) fit ``chunk_bytes`` (`CHUNK_BYTES`); a chunk is scored in tiles of at most
``rows_per_pass`` (user, item) pairs and reduced to per-user numbers before the next chunk.
Exclusions and relevant items are per-user item lists (`ItemLists`), never a users × items
mask. What a ranking holds is therefore the chunk, one tile's network intermediates and the
item-side cache (`mtlrec.serve.catalogue`, the item part of the model's first layer, as large as the
item table times the layer width) -- nothing grows with the number of users, nor with the
catalogue beyond that cache and one user's row per task.

`evaluate_ranking` ranks by a trained model (through the item-side cache, only the ranked
tasks' towers); `evaluate_popularity` offers the same users the most popular items they have not
seen (the baseline to beat) and `evaluate_mean_rating`, with a rating, the best-rated ones (mean
training rating, shrunk toward the global mean); all share `plan_ranking` (which users, their
relevant and excluded items) and the same metric code. `ranking_metrics` is the same computation on a given score
matrix. ``max_users`` "auto" (`auto_users`): 500 users, fewer on a catalogue of over
100,000 items, so that at most `AUTO_PAIRS` (user, item) pairs are scored.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from mtlrec.metrics import MEAN_RATING_PRIOR, item_counts, mean_rating_scores, popularity_scores

CHUNK_BYTES = 64 * 2**20     # score rows held at once (users × catalogue × ranked tasks)
TILE_ROWS = 4096             # (user, item) pairs per forward pass on a CPU (a tile's intermediates stay in cache)
GPU_TILE_ROWS = 65536        # ... on a GPU (fewer, larger kernels)
AUTO_USERS = 500             # "auto": this many users ...
AUTO_PAIRS = 50_000_000      # ... or fewer, so that at most this many (user, item) pairs are scored
# (user, item) pairs ranked a second, default-size models, 2-core box (docs/benchmarks.md:
# bench/ranking_scale.py, 200,000 items); what the app's estimate of a setting's cost reads
PAIRS_PER_S = {"mmoe": 2_900_000, "shared_bottom": 2_600_000, "ple": 410_000}


def estimate_seconds(users: int, n_items: int, arch: str | None = None) -> float:
    """About how long ranking ``users`` users over ``n_items`` items takes on a CPU like the 2-core
    box (`PAIRS_PER_S` of the architecture; the slowest measured one for another)."""
    return int(users) * int(n_items) / PAIRS_PER_S.get(arch, min(PAIRS_PER_S.values()))


def auto_users(n_items: int) -> int:
    """The number of users "auto" ranks over ``n_items`` items: `AUTO_USERS`, fewer on a catalogue
    of over AUTO_PAIRS / AUTO_USERS items (at least 1)."""
    return int(min(AUTO_USERS, max(1, AUTO_PAIRS // max(int(n_items), 1))))


def resolve_users(setting, n_items: int) -> int | None:
    """The user cap of a ``train.ranking_users`` setting: "auto" -> `auto_users`, a number -> itself,
    None -> no cap (every user)."""
    if setting is None:
        return None
    return auto_users(n_items) if setting == "auto" else int(setting)


# ---- per-user item lists ---------------------------------------------------------------
@dataclass
class ItemLists:
    """One sorted list of distinct item indices per row (user): ``items[indptr[r]:indptr[r + 1]]``."""
    indptr: np.ndarray
    items: np.ndarray

    @classmethod
    def from_pairs(cls, rows, items, n_rows: int, n_items: int) -> "ItemLists":
        """From (row, item) pairs (duplicates dropped)."""
        code = np.unique(np.asarray(rows, np.int64) * int(n_items) + np.asarray(items, np.int64))
        r = code // max(int(n_items), 1)
        return cls(np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n_rows))]).astype(np.int64),
                   code - r * int(n_items))

    @classmethod
    def from_sets(cls, sets: Sequence[Iterable[int]] | None, n_rows: int, n_items: int) -> "ItemLists":
        """From one iterable of item indices per row (None: empty lists); indices must lie in 0..n_items-1."""
        if sets is None:
            return cls(np.zeros(n_rows + 1, np.int64), np.zeros(0, np.int64))
        if len(sets) != n_rows:
            raise ValueError(f"got {len(sets)} item sets for {n_rows} users")
        rows, items = [], []
        for u, s in enumerate(sets):
            idx = s.astype(np.int64).ravel() if isinstance(s, np.ndarray) else \
                np.fromiter((int(i) for i in s), dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= n_items):
                raise ValueError(f"user row {u}: item index out of range 0..{n_items - 1}")
            rows.append(np.full(idx.size, u, np.int64))
            items.append(idx)
        cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64))
        return cls.from_pairs(cat(rows), cat(items), n_rows, n_items)

    @classmethod
    def for_users(cls, users: np.ndarray, user_index, item_index, n_items: int) -> "ItemLists":
        """The items of each of ``users`` (sorted) among the (user_index, item_index) rows; rows of
        other users and rows without an item (index -1) are skipped."""
        u, i = np.asarray(user_index, np.int64), np.asarray(item_index, np.int64)
        pos = np.searchsorted(users, u)
        ok = (pos < len(users)) & (i >= 0)
        ok[ok] = users[pos[ok]] == u[ok]
        return cls.from_pairs(pos[ok], i[ok], len(users), n_items)

    def rows(self, a: int, b: int) -> "ItemLists":
        """Rows a .. b - 1 as their own lists."""
        return ItemLists(self.indptr[a:b + 1] - self.indptr[a], self.items[self.indptr[a]:self.indptr[b]])

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(row of each item, item)."""
        return np.repeat(np.arange(len(self.indptr) - 1), np.diff(self.indptr)), self.items


# ---- the metric core -------------------------------------------------------------------
def top_k(row: np.ndarray, k: int) -> np.ndarray:
    """Item indices of the ``k`` highest scores of ``row`` (NaN-free), best first; equal scores
    by the lower item index -- also across the cut at K."""
    n = len(row)
    kk = min(int(k), n)
    if kk <= 0:
        return np.zeros(0, np.int64)
    cand = np.arange(n)
    if kk < n:
        cand = np.argpartition(row, n - kk)[n - kk:]
        v = row[cand].min()
        if np.count_nonzero(row >= v) > kk:            # equal scores straddle the cut
            gt = np.flatnonzero(row > v)
            cand = np.concatenate([gt, np.flatnonzero(row == v)[:kk - len(gt)]])
    return cand[np.lexsort((cand, -row[cand]))]


class _Sums:
    """Running sums of the per-user metrics over the chunks."""

    def __init__(self, k: int):
        self.k, self.n = int(k), 0
        self.recall = self.ndcg = self.hit = self.rr = 0.0

    def add(self, s: np.ndarray, relevant: ItemLists, exclude: ItemLists | None) -> None:
        """Rank the rows of ``s`` [users, items] (changed in place: NaN and excluded -> -inf) and add
        the metrics of those with a relevant item."""
        n_u, n_items = s.shape
        np.copyto(s, -np.inf, where=np.isnan(s))
        if exclude is not None:
            s[exclude.pairs()] = -np.inf
        r, i = relevant.pairs()
        v = s[r, i]
        ok = v > -np.inf                      # excluded / unscored items are not relevant
        r, i, v = r[ok], i[ok], v[ok]
        n_rel = np.bincount(r, minlength=n_u)
        kk = min(self.k, n_items)
        top = np.stack([top_k(row, kk) for row in s]) if n_u else np.zeros((0, kk), np.int64)
        hits = np.isin(top + (np.arange(n_u) * n_items)[:, None], r * n_items + i) \
            & np.isfinite(np.take_along_axis(s, top, 1))
        best = np.full(n_u, -np.inf, dtype=s.dtype)
        np.maximum.at(best, r, v)
        keep = np.flatnonzero(n_rel > 0)
        if len(keep):
            disc = 1.0 / np.log2(np.arange(2, kk + 2))
            h, n = hits[keep], n_rel[keep]
            rank = np.array([np.count_nonzero(s[j] > best[j]) + 1 for j in keep])
            self.recall += float((h.sum(1) / n).sum())
            self.ndcg += float(((h * disc).sum(1) / np.cumsum(disc)[np.minimum(n, kk) - 1]).sum())
            self.hit += float(h.any(1).sum())
            self.rr += float((1.0 / rank).sum())
            self.n += len(keep)

    def metrics(self) -> dict[str, float]:
        names = (f"recall@{self.k}", f"ndcg@{self.k}", f"hitrate@{self.k}", "mrr")
        if not self.n:
            return {n: float("nan") for n in names}
        return dict(zip(names, (self.recall / self.n, self.ndcg / self.n, self.hit / self.n, self.rr / self.n)))


def _buffer(shape, dtype) -> np.ndarray:
    """The score rows of one chunk (the only array of the ranking that spans the catalogue)."""
    return np.empty(shape, dtype=dtype)


def _stream(n_users: int, n_items: int, names: list[str], fill: Callable, relevant: dict[str, ItemLists],
            exclude: ItemLists | None, k: int, chunk_bytes: int, dtype) -> dict:
    """{name: metrics}: users in chunks of score rows that fit ``chunk_bytes``; ``fill(a, b, bufs)``
    writes the scores of users a .. b - 1 into ``bufs[name]`` [b - a, n_items]."""
    per_user = max(1, n_items * len(names) * np.dtype(dtype).itemsize)
    chunk = max(1, int(chunk_bytes) // per_user)
    sums = {name: _Sums(k) for name in names}
    for a in range(0, n_users, chunk):
        b = min(a + chunk, n_users)
        bufs = {name: _buffer((b - a, n_items), dtype) for name in names}
        fill(a, b, bufs)
        ex = exclude.rows(a, b) if exclude is not None else None
        for name in names:
            sums[name].add(bufs[name], relevant[name].rows(a, b), ex)
        del bufs
    return {name: s.metrics() for name, s in sums.items()}


def ranking_metrics(scores, relevant: Sequence[Iterable[int]], k: int = 10,
                    exclude: Sequence[Iterable[int]] | None = None,
                    chunk_bytes: int = CHUNK_BYTES) -> dict[str, float]:
    """Recall@K, NDCG@K, HitRate@K and MRR of a given score matrix, averaged over users with a
    relevant item (the module's rules).

    ``scores``: [n_users, n_items] (numpy or torch), or one score list per user (ragged lists
    are padded with -inf). ``relevant[u]``: item column indices relevant for user ``u`` (e.g.
    their test items). ``exclude[u]``: items left out of the ranking (e.g. already seen in
    training); they can neither be recommended nor count as relevant."""
    s = _score_matrix(scores)
    n_users, n_items = s.shape
    rel = ItemLists.from_sets(relevant, n_users, n_items)
    ex = ItemLists.from_sets(exclude, n_users, n_items) if exclude is not None else None

    def fill(a, b, bufs):
        bufs["scores"][:] = s[a:b]
    return _stream(n_users, n_items, ["scores"], fill, {"scores": rel}, ex, k, chunk_bytes, np.float64)["scores"]


def _score_matrix(scores) -> np.ndarray:
    if hasattr(scores, "detach"):            # torch tensor
        scores = scores.detach().float().cpu().numpy()
    if isinstance(scores, np.ndarray) and scores.ndim == 2:
        return scores
    rows = [np.asarray(s, dtype=np.float64).ravel() for s in scores]
    width = max((len(r) for r in rows), default=0)
    m = np.full((len(rows), width), -np.inf)
    for i, r in enumerate(rows):
        m[i, :len(r)] = r
    return m


# ---- which users, which items ----------------------------------------------------------
@dataclass
class RankingPlan:
    """Who is ranked on a split: ``users`` (sorted user indices; a seeded sample of at most
    ``max_users`` of the ``candidates`` users with a positive of some ranked task), per task
    their relevant items (real positives of the split) and the items each has to be ranked
    without (their real rows of the excluded splits)."""
    users: np.ndarray
    candidates: int
    n_items: int
    relevant: dict[str, ItemLists]
    exclude: ItemLists

    def info(self) -> dict:
        """``{"users", "of_users", "items", "sampled"}``: N of M users over how many items."""
        return {"users": int(len(self.users)), "of_users": int(self.candidates), "items": int(self.n_items),
                "sampled": bool(len(self.users) < self.candidates)}


def _real(rows) -> np.ndarray:
    n = len(rows["user_index"])
    return ~np.asarray(rows["sampled"], dtype=bool) if "sampled" in rows else np.ones(n, bool)


def plan_ranking(ds, tasks, split: str = "test", max_users: int | str | None = "auto", seed: int = 0,
                 exclude_splits: Sequence[str] = ("train", "valid")) -> RankingPlan | None:
    """The `RankingPlan` of ``split`` for the binary ``tasks`` (``.name``, ``.label``); None when the
    data has no user/item ids, no such split, or no task. Sampled negatives never count.
    ``max_users``: a number, "auto" (`auto_users`) or None (every user)."""
    if not tasks or not ds.has_users or not ds.has_items or split not in ds.rows:
        return None
    rows = ds.rows[split]
    real = _real(rows)
    positives = {}
    for t in tasks:
        m = real & (np.asarray(rows["label:" + t.label]) > 0.5) & (np.asarray(rows["item_index"]) >= 0)
        positives[t.name] = (np.asarray(rows["user_index"])[m], np.asarray(rows["item_index"])[m])
    users = np.unique(np.concatenate([u for u, _ in positives.values()])).astype(np.int64)
    candidates, n_items = len(users), len(ds.item_ids)
    cap = resolve_users(max_users, n_items)
    if cap is not None and len(users) > cap:
        users = np.sort(np.random.default_rng(seed).choice(users, size=cap, replace=False))
    relevant = {name: ItemLists.for_users(users, u, i, n_items) for name, (u, i) in positives.items()}
    return RankingPlan(users, candidates, n_items, relevant, _seen(ds, users, exclude_splits, n_items))


def _seen(ds, users: np.ndarray, splits, n_items: int) -> ItemLists:
    """The items ``users`` really interacted with in ``splits`` (one pass per split; only the
    selected users' rows are copied)."""
    chosen = np.zeros(max(len(ds.user_ids), int(users.max(initial=-1)) + 1), bool)
    chosen[users] = True
    us, its = [], []
    for s in splits:
        if s not in ds.rows:
            continue
        r = ds.rows[s]
        u = np.asarray(r["user_index"], np.int64)
        m = chosen[np.clip(u, 0, len(chosen) - 1)] & (u >= 0) & _real(r)
        us.append(u[m])
        its.append(np.asarray(r["item_index"], np.int64)[m])
    cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64))
    return ItemLists.for_users(users, cat(us), cat(its), n_items)


def _ranked_tasks(ds, tasks):
    """The binary tasks of ``tasks`` (default: one per binary label of ``ds``, named like it)."""
    if tasks is None:
        from types import SimpleNamespace
        tasks = [SimpleNamespace(name=lab.name, label=lab.name, type="binary")
                 for lab in ds.labels if lab.task_type == "binary"]
    return [t for t in tasks if t.type == "binary"]


# ---- the model's ranking and the popularity baseline -----------------------------------
def evaluate_ranking(model, data, split: str = "test", k: int = 10, tasks=None, max_users: int | str | None = "auto",
                     seed: int = 0, exclude_splits: Sequence[str] = ("train", "valid"),
                     rows_per_pass: int | None = None, on_progress: Callable[[int, int], None] | None = None,
                     plan: RankingPlan | None = None, chunk_bytes: int = CHUNK_BYTES) -> dict[str, dict[str, float]]:
    """Ranking metrics of a trained model over the whole catalogue, per binary task.

    For every user of the plan (`plan_ranking`: users with a positive label of a ranked task in
    ``split``, at most ``max_users``, a seeded sample), all catalogue items are scored with each
    task's predicted probability, in tiles of at most ``rows_per_pass`` (user, item) pairs (default
    `TILE_ROWS` on a CPU, `GPU_TILE_ROWS` on a GPU) through the item-side cache
    (`mtlrec.serve.catalogue`; the model's own forward when it does not split); items the user met in
    ``exclude_splits`` are left out; the relevant items are the user's positives of the task in
    ``split``. ``data`` is a `DeviceData`. Returns ``{task:
    {recall@k, ndcg@k, hitrate@k, mrr}}``; {} without user/item ids or binary task.
    ``on_progress(users_done, users_total)`` is called before the first tile and after each
    user tile."""
    import torch
    ds = data.ds
    tasks = [t for t in (tasks if tasks is not None else model.tasks) if t.type == "binary"]
    plan = plan if plan is not None else plan_ranking(ds, tasks, split, max_users, seed, exclude_splits)
    if plan is None or not tasks:
        return {}
    n_users = len(plan.users)
    if on_progress is not None:
        on_progress(0, n_users)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            fill = _model_fill(model, data, tasks, plan, rows_per_pass, on_progress)
            return _stream(n_users, plan.n_items, [t.name for t in tasks], fill, plan.relevant, plan.exclude,
                           k, chunk_bytes, np.float32)
    finally:
        model.train(was_training)


def _model_fill(model, data, tasks, plan: RankingPlan, rows_per_pass: int | None, on_progress):
    """``fill`` of `_stream` for a model: tiles of users × items through `score_tile`."""
    from mtlrec.serve.catalogue import item_split, score_tile, user_rows
    split = item_split(model, data, keep=False)
    if rows_per_pass is None:
        rows_per_pass = TILE_ROWS if data.device.type == "cpu" else GPU_TILE_ROWS
    n_items, rows = plan.n_items, max(1, int(rows_per_pass))
    tile_users, tile_items = max(1, rows // max(n_items, 1)), max(1, min(n_items, rows))

    def fill(a, b, bufs):
        for u0 in range(a, b, tile_users):
            users = plan.users[u0:min(u0 + tile_users, b)]
            x = user_rows(model, data, users) if split is not None else None
            for i0 in range(0, n_items, tile_items):
                i1 = min(i0 + tile_items, n_items)
                for name, p in score_tile(model, data, split, users, i0, i1, tasks, x_users=x).items():
                    bufs[name][u0 - a:u0 - a + len(users), i0:i1] = p
            if on_progress is not None:
                on_progress(u0 + len(users), len(plan.users))
    return fill


def evaluate_popularity(data, split: str = "test", k: int = 10, tasks=None, max_users: int | str | None = "auto",
                        seed: int = 0, exclude_splits: Sequence[str] = ("train", "valid"),
                        train_split: str = "train", plan: RankingPlan | None = None,
                        chunk_bytes: int = CHUNK_BYTES) -> dict[str, dict[str, float]]:
    """The "most popular items the user has not seen" baseline, ranked like `evaluate_ranking`.

    For binary task t, every user is offered the same list: items by their number of positive
    rows of t's label in ``train_split`` (real rows; sampled negatives never count), ties by
    item index (`popularity_scores`). Same users (same plan), same exclusions, same K and the
    same metric code as the model's ranking, so the two are comparable. ``data``: a `DeviceData`
    or a `PreparedDataset`. Returns ``{task: {recall@k, ndcg@k, hitrate@k, mrr}}``; {} without
    user/item ids or binary tasks."""
    ds = getattr(data, "ds", data)
    tasks = _ranked_tasks(ds, tasks)
    plan = plan if plan is not None else plan_ranking(ds, tasks, split, max_users, seed, exclude_splits)
    if plan is None or not tasks:
        return {}
    return _rank_fixed(plan, {t.name: popularity_scores(item_counts(ds, train_split, label=t.label)) for t in tasks},
                       k, chunk_bytes)


def rating_label(ds, tasks=None) -> str | None:
    """The rating a mean-rating baseline averages: the label of the first regression task of
    ``tasks``, else the data's first regression label; None when there is none."""
    names = [t.label for t in tasks or [] if t.type == "regression"]
    names += [lab.name for lab in ds.labels if lab.task_type == "regression"]
    return names[0] if names else None


def evaluate_mean_rating(data, label: str | None = None, split: str = "test", k: int = 10, tasks=None,
                         max_users: int | str | None = "auto", seed: int = 0,
                         exclude_splits: Sequence[str] = ("train", "valid"), train_split: str = "train",
                         plan: RankingPlan | None = None, prior: float = MEAN_RATING_PRIOR,
                         chunk_bytes: int = CHUNK_BYTES) -> dict[str, dict[str, float]]:
    """The "best-rated items the user has not seen" baseline, ranked like `evaluate_ranking`.

    Every user is offered the same list for every binary task: items by their mean rating (the
    regression ``label``, default `rating_label`) over the real rows of ``train_split``, shrunk
    toward the global mean with ``prior`` ratings (`mean_rating_scores`: an item rated once 5 stars
    does not top the list), equal means by number of ratings, then item index. Same plan,
    exclusions, K and metric code as `evaluate_popularity`. Returns ``{task: {recall@k, ndcg@k,
    hitrate@k, mrr}}``; {} without a regression label, user/item ids or binary tasks."""
    ds = getattr(data, "ds", data)
    tasks = _ranked_tasks(ds, tasks)
    label = label or rating_label(ds)
    plan = plan if plan is not None else plan_ranking(ds, tasks, split, max_users, seed, exclude_splits)
    if plan is None or not tasks or label is None:
        return {}
    scores = mean_rating_scores(ds, label, train_split, prior)
    return _rank_fixed(plan, {t.name: scores for t in tasks}, k, chunk_bytes)


def _rank_fixed(plan: RankingPlan, scores: dict[str, np.ndarray], k: int, chunk_bytes: int) -> dict:
    """{task: metrics} of one score per item (the same list for every user) over ``plan``."""
    def fill(a, b, bufs):
        for name, buf in bufs.items():
            buf[:] = scores[name]
    return _stream(len(plan.users), plan.n_items, list(scores), fill, plan.relevant, plan.exclude, k, chunk_bytes,
                   np.float64)
