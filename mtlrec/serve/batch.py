"""Batch scoring: a file of (user, item) pairs, and top-K lists for many users at once.

* `score_pairs` / `score_file`: every task's prediction and the fused score (`mtlrec.serve.recommend.fused_terms`,
  the number `recommend` ranks by) of each (user, item) pair of a CSV file, in the file's order, read and written
  in chunks (a 10M-row file never sits in memory). A user or item the run does not know is scored as a cold
  start, as `recommend` scores a new user (`mtlrec.serve.whatif.user_row`: the unknown id code 0, the other
  features at their training defaults, an empty history); an unknown item likewise (code 0, item features at
  their defaults, text vectors zero). ``user_known`` / ``item_known`` say which. Context features (e.g. the
  time of day) come from columns of that name when the file has them, else take their defaults as in
  `recommend`.
* `recommend_users`: top-K lists of many users through the item-side cache (`mtlrec.serve.catalogue.item_split`,
  built once per model) in tiles of users × items (`score_tile`); the same items, order and scores (to float
  rounding) as `mtlrec.serve.recommend.recommend` user by user; an unknown user gets the cold-start list of
  `mtlrec.serve.whatif.whatif_recommend` (a new user known by no feature).

Bad input -- a missing column, a row without a user or item, a context value that is no number, a row with
more fields than the header -- raises a `DataError` naming the file, the row (1-based, header not counted)
and the column. `score_file` writes through a temporary file beside the output (`mtlrec.diskio.write_atomic`):
an error leaves no partial file behind.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from mtlrec.errors import DataError
from mtlrec.serve.recommend import (class_names, fusable_tasks, fused_terms, fuse, item_columns, item_support,
                                    plain, task_values, top_rows)

CHUNK_ROWS = 100_000          # rows of the pairs file read, scored and written at a time
FORWARD_ROWS = 8192           # pairs per forward pass (a pass's intermediates stay small)
USER_BLOCK = 256              # users whose catalogue scores are held at once (recommend_users) ...
BLOCK_BYTES = 64 * 2**20      # ... fewer on a large catalogue: at most this many bytes of scores
TILE_ROWS = 4096              # (user, item) pairs per pass of recommend_users on a CPU
GPU_TILE_ROWS = 65536         # ... on a GPU


# ---- the columns of a pairs / users file ------------------------------------------------------
def id_names(run, owner: str) -> list[str]:
    """The column names accepted for the user (item) ids: the run's own column name, then ``user`` (``item``)."""
    spec = (run.dataset.meta or {}).get("spec") or {}
    own = spec.get(f"{owner}_id")
    return list(dict.fromkeys(([str(own)] if own else []) + [owner]))


def context_columns(run) -> list:
    """The context features a pairs file may give per row (categorical and numeric ones)."""
    return [f for f in run.dataset.fields if f.owner == "context" and f.kind in ("categorical", "numeric")]


def _pick(header: list[str], names: list[str], what: str, file: str) -> str:
    for n in names:
        if n in header:
            return n
    raise DataError(f"no {what} column (the columns are: {', '.join(header) or 'none'})", file=file,
                    fix=f"name the {what} column {' or '.join(repr(n) for n in names)}")


@dataclass
class PairColumns:
    """Which columns of a pairs file hold the user id, the item id and context features."""
    user: str
    item: str
    context: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, run, header: list[str], file: str) -> "PairColumns":
        if not run.dataset.has_users or not run.dataset.has_items:
            raise DataError("this run's data has no user or item ids, so it has no pairs to score")
        user = _pick(header, id_names(run, "user"), "user id", file)
        item = _pick(header, id_names(run, "item"), "item id", file)
        ctx = [f.name for f in context_columns(run) if f.name in header and f.name not in (user, item)]
        return cls(user, item, ctx)


# ---- reading in chunks -----------------------------------------------------------------------
def _sep(path) -> str:
    return "\t" if str(path).lower().endswith((".tsv", ".tab")) else ","


def read_header(path) -> list[str]:
    """The column names of a CSV (TSV) file; a DataError when it cannot be read or is empty."""
    import pandas as pd
    try:
        return [str(c) for c in pd.read_csv(path, nrows=0, sep=_sep(path), encoding="utf-8-sig").columns]
    except FileNotFoundError:
        raise DataError("file not found", file=str(path), fix="give the path of an existing CSV file") from None
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty (no header line)", file=str(path),
                        fix="write a header line naming the columns, e.g. user,item") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as e:
        raise DataError(f"cannot read it as CSV ({str(e).splitlines()[0]})", file=str(path),
                        fix="save it as UTF-8 CSV") from None


def read_chunks(path, columns: list[str], chunk_rows: int) -> Iterator[tuple[int, "object", float]]:
    """(first row number (1-based), DataFrame of ``columns`` as text, share of the file read) per chunk of
    ``chunk_rows`` rows. A row with more fields than the header, or text that is not UTF-8: a DataError."""
    import warnings

    import pandas as pd
    with open(path, "rb") as fh:
        size = max(1, Path(path).stat().st_size)
        # every column is read (a row with more fields than the header is an error, not silently cut)
        reader = pd.read_csv(fh, sep=_sep(path), dtype=str, keep_default_na=False, na_values=[], index_col=False,
                             skip_blank_lines=False, chunksize=max(1, int(chunk_rows)), encoding="utf-8-sig")
        first = 1
        while True:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", pd.errors.ParserWarning)
                    df = next(reader)
            except StopIteration:
                return
            except (pd.errors.ParserError, pd.errors.ParserWarning) as e:
                raise _parser_error(e, path, first) from None
            except UnicodeDecodeError:
                raise DataError(f"text that is not UTF-8 after row {first - 1}", file=str(path),
                                fix="save the file as UTF-8 CSV") from None
            yield first, df[columns], min(1.0, fh.tell() / size)
            first += len(df)


def _parser_error(e, path, first: int) -> DataError:
    import re
    msg = str(e)
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
    fix = "quote values that hold the separator, or remove the extra fields"
    if m:
        want, line, saw = (int(g) for g in m.groups())
        return DataError(f"row {line - 1} (line {line}) has {saw} fields, the header {want}", file=str(path),
                         rows=[line - 1], fix=fix)
    if "Length of header" in msg:           # the first data row of the chunk has more fields than the header
        return DataError(f"a row has more fields than the header, at or after row {first}", file=str(path),
                         rows=[first], fix=fix)
    return DataError(f"cannot read it as CSV ({msg.splitlines()[0]})", file=str(path),
                     fix="check the quoting of the file's values")


def _ids(df, col: str, first: int, path, what: str) -> np.ndarray:
    """The ids of column ``col`` (text, stripped); a missing one: a DataError naming its rows."""
    s = df[col].fillna("").astype(str).str.strip()
    bad = np.flatnonzero((s == "").to_numpy())
    if len(bad):
        raise DataError(f"the {what} is missing", file=str(path), column=col, rows=(first + bad).tolist(),
                        fix=f"give a {what} on every row (an unknown one is scored as a cold start)")
    return s.to_numpy(dtype=object)


# ---- encoding -------------------------------------------------------------------------------------
def _context_values(run, df, cols: list[str], first: int, path) -> dict[str, np.ndarray]:
    """{context field: encoded values} of the columns the file gives, encoded as preparation encodes them
    (`mtlrec.prep.encoders`: the training vocabulary, unseen -> 0, missing -> the fill; numbers transformed
    and standardised with the training statistics)."""
    from mtlrec.prep import encoders as enc
    from mtlrec.prep.transforms import apply
    meta = run.dataset.meta or {}
    stats = (meta.get("report") or {}).get("stats") or {}
    out = {}
    for col in cols:
        f = run.dataset.field(col)
        st = stats.get(col) or {}
        raw = df[col].fillna("").astype(str).str.strip()
        present = raw != ""
        values = raw.where(present, None)
        if f.kind == "categorical":
            state = {"vocab": (meta.get("vocabularies") or {}).get(col) or st.get("top") or [],
                     "fill": st.get("fill")}
            out[col] = enc.encode_categorical(values.to_numpy(dtype=object), state)[0]
            continue
        v = enc.to_float(enc.years_if_dates(values))
        bad = np.flatnonzero(present.to_numpy() & ~np.isfinite(v))
        if len(bad):
            raise DataError(f"'{raw.iloc[bad[0]]}' is not a number", file=str(path), column=col,
                            rows=(first + bad).tolist(), fix=f"give {col} as a number (or leave it empty)")
        state = {"fill": float(st.get("fill", 0.0)), "mean": float(st.get("mean", 0.0)),
                 "std": float(st.get("std", 1.0)) or 1.0}
        out[col] = enc.encode_numeric(apply(v, st.get("transform")), state)[0]
    return out


def cold_item_row(run) -> dict:
    """{item field: tensor} of an item the run does not know: the unknown id code 0, categorical and
    numeric features at their training defaults (`mtlrec.serve.whatif.default_values`), vectors zero."""
    import torch

    from mtlrec.serve.whatif import default_values, encode_value
    defaults = default_values(run, "item")
    row = {}
    for f in run.dataset.fields:
        if f.owner != "item":
            continue
        raw = (defaults.get(f.name) or {}).get("value")
        if f.kind in ("dense", "multihot"):
            v = np.zeros(f.dim, np.float32)
        elif f.name == "item_id" or raw is None:
            v = 0 if f.kind == "categorical" else 0.0
        else:
            v = encode_value(run, f.name, raw, "item")
        row[f.name] = torch.as_tensor(np.asarray(v), dtype=torch.long if f.kind == "categorical" else torch.float32)
    return row


class PairScorer:
    """Scores (user, item) pairs of one run: `score` -> {output column: values} in the rows' order."""

    def __init__(self, run, weights: dict | None = None, forward_rows: int = FORWARD_ROWS):
        import torch

        from mtlrec.prep.history import PAD
        from mtlrec.serve.whatif import user_row
        self.run, self.weights, self.forward_rows = run, weights, max(1, int(forward_rows))
        fused_terms(run, {t.name: np.zeros(1) for t in fusable_tasks(run)}, weights)   # bad weights: say so now
        self.data = run.device_data()
        dev = self.data.device
        self.cold = {k: v.to(dev) for k, v in {**user_row(run, None), **cold_item_row(run)}.items()}
        for k, tab in self.data.user_history.items():          # a new user's history is empty
            fill = PAD if tab.dtype == torch.long else 0
            self.cold[k] = torch.full(tab.shape[1:], fill, dtype=tab.dtype, device=dev)
        ds = run.dataset
        import pandas as pd
        self.user_pos, self.item_pos = pd.Index(ds.user_ids), pd.Index(ds.item_ids)
        self.columns = output_columns(run)

    def _gather(self, tab, idx, known, name):
        """Rows ``idx`` of a table; the cold-start row where ``known`` is False."""
        import torch
        v = tab[idx.clamp(min=0)]
        if not bool(known.all()):
            mask = known.view(-1, *([1] * (v.dim() - 1)))
            v = torch.where(mask, v, self.cold[name].to(v.dtype))
        return v

    def _features(self, u, i, ctx: dict, a: int, b: int) -> dict:
        import torch
        data, dev = self.data, self.data.device
        ui, ii = u[a:b], i[a:b]
        ku, ki = ui >= 0, ii >= 0
        feats = {k: self._gather(t, ui, ku, k) for k, t in data.user_table.items()}
        feats.update({k: self._gather(t, ii, ki, k) for k, t in data.item_table.items()})
        feats.update({k: self._gather(t, ui, ku, k) for k, t in data.user_history.items()})
        n, defaults = b - a, data.ds.meta.get("context_defaults", {})
        for f in data.ds.fields:
            if f.owner != "context" or f.kind == "history":
                continue
            if f.name in ctx:
                feats[f.name] = ctx[f.name][a:b]
            elif f.kind == "categorical":
                feats[f.name] = torch.full((n,), int(defaults.get(f.name, 0)), dtype=torch.long, device=dev)
            elif f.kind == "numeric":
                feats[f.name] = torch.full((n,), float(defaults.get(f.name, 0.0)), dtype=torch.float32, device=dev)
            else:
                d = defaults.get(f.name)
                vec = torch.as_tensor(np.asarray(d if d else np.zeros(f.dim)), dtype=torch.float32, device=dev)
                feats[f.name] = vec.expand(n, f.dim)
        return feats

    def predict(self, users: np.ndarray, items: np.ndarray, context: dict | None = None) -> dict:
        """{task: predictions} (probabilities -- a chained task's in the entire space --, values on the label
        scale, class probabilities) of the pairs (raw ids as text), plus "user_known" / "item_known"."""
        import torch

        from mtlrec.chain import scored
        dev, model = self.data.device, self.run.model
        u = torch.as_tensor(id_positions(self.user_pos, users), dtype=torch.long, device=dev)
        i = torch.as_tensor(id_positions(self.item_pos, items), dtype=torch.long, device=dev)
        ctx = {}
        for f in self.run.dataset.fields:
            if context and f.name in context:
                kind = torch.long if f.kind == "categorical" else torch.float32
                ctx[f.name] = torch.as_tensor(np.asarray(context[f.name]), dtype=kind, device=dev)
        if any(m.training for m in model.modules()):
            model.eval()
        names, parts = [t.name for t in self.run.tasks], []
        with torch.inference_mode():
            for a in range(0, len(u), self.forward_rows):
                out = model(self._features(u, i, ctx, a, min(a + self.forward_rows, len(u))))
                parts.append({n: p.float().cpu().numpy() for n, p in scored(self.run.tasks, out, names).items()})
        preds = {n: np.concatenate([p[n] for p in parts]) if parts else _empty(self.run.task(n)) for n in names}
        return {**preds, "user_known": (u >= 0).cpu().numpy(), "item_known": (i >= 0).cpu().numpy()}

    def score(self, users: np.ndarray, items: np.ndarray, context: dict | None = None) -> dict[str, np.ndarray]:
        """{output column (`output_columns`): values}: the ids, user_known, item_known, every task's
        output and the fused score."""
        p = self.predict(users, items, context)
        cols = {"user": users, "item": items, "user_known": p["user_known"], "item_known": p["item_known"]}
        for t in self.run.tasks:
            if t.type in ("binary", "regression"):
                cols[t.name] = p[t.name]
            else:
                for c, name in enumerate(class_names(self.run, t)):
                    cols[f"{t.name}:{name}"] = p[t.name][:, c]
        cols["score"] = fuse(self.run, {t.name: p[t.name] for t in fusable_tasks(self.run)}, self.weights)
        return cols


def id_positions(index, ids) -> np.ndarray:
    """Each id's row in the run's table (``index``: a pandas Index of its ids), -1 when unknown. Ids are
    matched as text; one not found as written is tried as an integer when it is written as one with a zero
    fraction ("3.0" -> "3", as preparation writes integer-valued ids)."""
    import pandas as pd
    pos = index.get_indexer(ids)
    miss = np.flatnonzero(pos < 0)
    if len(miss):
        alt = pd.Series(np.asarray(ids, dtype=object)[miss]).astype(str).str.replace(r"^(-?\d+)\.0*$", r"\1",
                                                                                        regex=True)
        pos[miss] = index.get_indexer(alt.to_numpy(dtype=object))
    return pos


def _empty(task) -> np.ndarray:
    return np.zeros((0,) if task.type in ("binary", "regression") else (0, task.n_outputs), np.float32)


def output_columns(run) -> list[str]:
    """The columns `PairScorer.score` gives (the first two, ``user`` and ``item``, are written under the
    file's own names): user, item, user_known, item_known, one per binary / regression task, one per class
    of a multilabel / distribution task (``task:class``), score."""
    cols = ["user", "item", "user_known", "item_known"]
    for t in run.tasks:
        cols += [t.name] if t.type in ("binary", "regression") else [f"{t.name}:{c}" for c in class_names(run, t)]
    return cols + ["score"]


# ---- a whole file ------------------------------------------------------------------------------------
@dataclass
class ScoreSummary:
    """What `score_file` did: rows scored, rows with an unknown user / item, seconds, the columns written."""
    rows: int = 0
    unknown_users: int = 0
    unknown_items: int = 0
    seconds: float = 0.0
    columns: list = field(default_factory=list)
    context: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"rows": self.rows, "unknown_user_rows": self.unknown_users, "unknown_item_rows": self.unknown_items,
                "seconds": round(self.seconds, 3),
                "rows_per_s": round(self.rows / self.seconds, 1) if self.seconds > 0 else None,
                "columns": list(self.columns), "context_columns": list(self.context)}


def write_rows(fh, cols: dict) -> None:
    """Append ``cols`` ({column: values}, the header written by the caller) to the binary file ``fh`` as CSV
    rows (pyarrow's writer: ~15x faster than pandas'; numbers as the shortest text that reads back to the same
    float32 value, booleans as true / false; a value is quoted only in a chunk where one needs it)."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv
    table = pa.table({str(k): pa.array(np.asarray(v, np.float32) if np.asarray(v).dtype.kind == "f" else v)
                      for k, v in cols.items()})
    buf = io.BytesIO()
    try:
        pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    except pa.ArrowInvalid:                 # a value holds a comma, quote or line break: quote the strings
        buf = io.BytesIO()
        pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    fh.write(buf.getbuffer())


def header_line(names) -> bytes:
    """The CSV header line of ``names`` (a name with a comma, quote or line break quoted)."""
    return (",".join('"' + n.replace('"', '""') + '"' if any(c in n for c in ',"\n\r') else n
                     for n in map(str, names)) + "\n").encode("utf-8")


def score_file(run, pairs, out, *, weights: dict | None = None, chunk_rows: int = CHUNK_ROWS,
               forward_rows: int = FORWARD_ROWS, on_progress: Callable[[int, float], None] | None = None
               ) -> ScoreSummary:
    """Score every row of the CSV ``pairs`` into the CSV ``out``, ``chunk_rows`` rows at a time, in the
    file's order (`PairScorer.score`; duplicates scored each time). ``on_progress(rows done, share of the
    file read)`` after each chunk. Any error removes the partial output (`mtlrec.diskio.write_atomic`)."""
    from mtlrec.diskio import write_atomic
    out = Path(out)
    if not out.parent.is_dir():
        raise DataError("the output's folder does not exist", file=str(out), fix="create the folder first")
    header = read_header(pairs)
    names = PairColumns.of(run, header, str(pairs))
    scorer = PairScorer(run, weights, forward_rows)
    summary = ScoreSummary(columns=[names.user, names.item, *scorer.columns[2:]], context=names.context)
    t0 = time.perf_counter()

    def fill(fh):
        fh.write(header_line(summary.columns))
        for first, df, share in read_chunks(pairs, [names.user, names.item, *names.context], chunk_rows):
            users = _ids(df, names.user, first, pairs, "user id")
            items = _ids(df, names.item, first, pairs, "item id")
            ctx = _context_values(run, df, names.context, first, pairs)
            cols = scorer.score(users, items, ctx)
            write_rows(fh, {names.user if k == "user" else names.item if k == "item" else k: v
                            for k, v in cols.items()})
            summary.rows += len(users)
            summary.unknown_users += int((~cols["user_known"]).sum())
            summary.unknown_items += int((~cols["item_known"]).sum())
            if on_progress is not None:
                on_progress(summary.rows, share)
    write_atomic(out, fill)
    summary.seconds = time.perf_counter() - t0
    return summary


# ---- top-K lists of many users ------------------------------------------------------------------------
def seen_items(run):
    """`mtlrec.ranking.ItemLists` of every user's real interactions (all splits; sampled negatives left out):
    the items `recommend` leaves out. Built once per run and cached on it."""
    from mtlrec.ranking import ItemLists
    cache = getattr(run, "_cache", None)
    if isinstance(cache, dict) and "batch_seen_items" in cache:
        return cache["batch_seen_items"]
    ds = run.dataset
    us, its = [], []
    for s in ("train", "valid", "test"):
        if s in ds.rows:
            r = ds.rows[s]
            m = ~np.asarray(r["sampled"], bool) if "sampled" in r else slice(None)
            us.append(np.asarray(r["user_index"], np.int64)[m])
            its.append(np.asarray(r["item_index"], np.int64)[m])
    u, i = (np.concatenate(x) if x else np.zeros(0, np.int64) for x in (us, its))
    ok = (u >= 0) & (i >= 0)
    lists = ItemLists.from_pairs(u[ok], i[ok], len(ds.user_ids), len(ds.item_ids))
    if isinstance(cache, dict):
        cache["batch_seen_items"] = lists
    return lists


def _catalogue_scores(run, users: np.ndarray, rows_per_pass: int | None) -> dict[str, np.ndarray]:
    """{task: predictions [len(users), n_items(, K)]} of every task, through the item-side cache in tiles."""
    import torch

    from mtlrec.serve.catalogue import item_split, score_tile, user_rows
    model, data = run.model, run.device_data()
    n = len(run.dataset.item_ids)
    rows = int(rows_per_pass or (TILE_ROWS * torch.get_num_threads() if data.device.type == "cpu" else GPU_TILE_ROWS))
    tile_users, tile_items = max(1, rows // max(n, 1)), max(1, min(n, rows))
    out: dict[str, np.ndarray] = {}
    if any(m.training for m in model.modules()):
        model.eval()
    with torch.inference_mode():
        split = item_split(model, data)
        for a in range(0, len(users), tile_users):
            us = users[a:a + tile_users]
            x = user_rows(model, data, us) if split is not None else None
            for i0 in range(0, n, tile_items):
                i1 = min(i0 + tile_items, n)
                for name, p in score_tile(model, data, split, us, i0, i1, run.tasks, x_users=x).items():
                    if name not in out:
                        out[name] = np.empty((len(users), n, *p.shape[2:]), np.float32)
                    out[name][a:a + len(us), i0:i1] = p
    return out


def _titles(run) -> tuple[str | None, np.ndarray | None]:
    """(title column, each item's title as an object array) -- None without one; cached on the run."""
    cache = getattr(run, "_cache", None)
    if isinstance(cache, dict) and "batch_titles" in cache:
        return cache["batch_titles"]
    ds = run.dataset
    title = item_columns(ds)[0]
    ok = title and ds.item_info is not None and len(ds.item_info) == len(ds.item_ids)
    out = (title, ds.item_info[title].to_numpy(dtype=object)) if ok else (None, None)
    if isinstance(cache, dict):
        cache["batch_titles"] = out
    return out


def _items(run, preds: dict, score: np.ndarray, top: np.ndarray, top_classes: int) -> list[dict]:
    ds, support = run.dataset, item_support(run)
    title, titles = _titles(run)
    out = []
    for i in top:
        rec = {"item": str(ds.item_ids[i]), "score": float(score[i]), "support": int(support[i]),
               "tasks": task_values(run, preds, i, top_classes)}
        if title is not None:
            rec[title] = plain(titles[i])
        out.append(rec)
    return out


def recommend_users(run, users, k: int = 10, *, weights: dict | None = None, exclude_seen: bool = True,
                    top_classes: int = 3, block_users: int = USER_BLOCK, rows_per_pass: int | None = None
                    ) -> Iterator[tuple[str, bool, list[dict]]]:
    """(user id, known, top-``k`` items) for each of ``users`` (raw ids), in order: the list
    `mtlrec.serve.recommend.recommend` gives (items ``{item, score, support, tasks, <title>}``), computed for
    ``block_users`` users at a time (fewer when their scores would take more than `BLOCK_BYTES`) through the
    item-side cache; an unknown user: the cold-start list of
    `mtlrec.serve.whatif.whatif_recommend` (a new user at the default features)."""
    import pandas as pd
    if int(k) < 1:
        raise DataError(f"k must be at least 1, not {k}")
    ds = run.dataset
    if not ds.has_items or not ds.has_users:
        raise DataError("this run's data has no user or item ids, so there is nobody to recommend to")
    fused_terms(run, {t.name: np.zeros(1) for t in fusable_tasks(run)}, weights)   # bad weights: say so now
    users = [str(u) for u in users]
    idx = id_positions(pd.Index(ds.user_ids), users)
    seen, cold = seen_items(run), None
    per_user = 4 * len(ds.item_ids) * sum(int(getattr(t, "n_outputs", 1) or 1) for t in run.tasks)
    block_users = max(1, min(int(block_users), BLOCK_BYTES // max(per_user, 1)))
    for a in range(0, len(users), block_users):
        block = idx[a:a + block_users]
        known = np.unique(block[block >= 0])
        preds = _catalogue_scores(run, known, rows_per_pass) if len(known) else {}
        score = fuse(run, {t.name: preds[t.name] for t in fusable_tasks(run)}, weights) if len(known) else None
        for j, u in enumerate(block):
            if u < 0:
                cold = cold if cold is not None else _cold_list(run, k, weights, exclude_seen, top_classes)
                yield users[a + j], False, cold
                continue
            r = int(np.searchsorted(known, u))
            s = score[r].astype(np.float64, copy=True)
            if exclude_seen:
                s[seen.items[seen.indptr[u]:seen.indptr[u + 1]]] = -np.inf
            user_preds = {n: p[r] for n, p in preds.items()}
            yield users[a + j], True, _items(run, user_preds, s, top_rows(s, k), top_classes)


def _cold_list(run, k, weights, exclude_seen, top_classes) -> list[dict]:
    from mtlrec.serve.whatif import whatif_recommend
    items = whatif_recommend(run, None, None, k=k, weights=weights, exclude_seen=exclude_seen,
                             top_classes=top_classes)["items"]
    title = item_columns(run.dataset)[0]
    return [{key: it.get(key) for key in ("item", "score", "support", "tasks", *([title] if title else []))}
            for it in items]


def read_user_ids(run, path) -> list[str]:
    """The user ids of a users file (a column named like the run's user ids, or ``user``), in order;
    a missing one: a DataError naming its row."""
    header = read_header(path)
    col = _pick(header, id_names(run, "user"), "user id", str(path))
    out: list[str] = []
    for first, df, _share in read_chunks(path, [col], CHUNK_ROWS):
        out.extend(_ids(df, col, first, path, "user id").tolist())
    return out


def list_rows(run, lists) -> "object":
    """The lists of `recommend_users` as a table, one row per (user, rank): user, user_known, rank, item,
    score, each binary / regression task's value, each multilabel task's top classes ("Drama 0.61; Crime 0.32"),
    support, and the item's title when the run has one."""
    import pandas as pd
    title = item_columns(run.dataset)[0]
    scalar = [t.name for t in run.tasks if t.type in ("binary", "regression")]
    classes = [t.name for t in run.tasks if t.type not in ("binary", "regression")]
    cols = ["user", "user_known", "rank", "item", "score", *scalar, *classes, "support", *([title] if title else [])]
    rows = []
    for user, known, items in lists:
        for rank, it in enumerate(items, 1):
            row = [user, "true" if known else "false", rank, it["item"], it["score"]]
            row += [it["tasks"][n] for n in scalar]
            row += ["; ".join(f"{c} {p:.3f}" for c, p in it["tasks"][n].items()) for n in classes]
            row += [it["support"], *([it.get(title)] if title else [])]
            rows.append(row)
    return pd.DataFrame(rows, columns=cols)
