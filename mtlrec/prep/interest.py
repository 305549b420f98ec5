"""User-level interest mining: a derived *distribution* label, the user's interest in each class of an
item attribute (e.g. the share of each genre among the movies the user will like next).

This is interest mining as the article means it (a prediction about the user), not the item-genre
multilabel task, which is item classification (what the item is). Configured by
``PrepConfig.interest_labels``::

    [{"name": "interest", "attribute": "genres", "window": 10, "positive": "like"}]

* ``attribute``: an item column with classes -- a multi-valued one (genres "Action|Comedy", split on
  the data's ``multilabel_sep``), a categorical one, or an item multilabel label
  (`attribute_columns` lists the usable ones). Its classes are the most frequent on the items of
  the training rows (at most ``max_multilabel_classes``).
* ``positive``: the binary label whose 1 rows are the user's positives (e.g. "like", a derived label
  included); "" = every observed interaction is a positive.
* ``window`` W (default 10).

Per interaction row at time t (`interest_distribution`): the share of each class among the classes
of the user's next W positives after the row (rows ordered by time, ties by file order; a label may
look at the future, features never do). Without timestamps: the user's training positives other than
the row itself. A row with no later positive falls back to that training-positive profile (again
without the row itself); a row of a user with no training positive at all gets a row of zeros:
"unknown", left out of the task's loss and metrics (`mtlrec.chain.own_space`), like sampled negatives.
Only the rows of the same user ever enter a row's label. The preparation report says, per label, how
many rows got which (``report["interest_labels"]``).
"""
from __future__ import annotations

import numpy as np

from mtlrec.dataset import LabelField
from mtlrec.errors import DataError

DEFAULT_WINDOW = 10
KEYS = ("name", "attribute", "window", "positive")


def check_configs(items) -> list[dict]:
    """The ``interest_labels`` option, normalised (``window`` an int >= 1, ``positive`` a string);
    ValueError saying what is wrong and what a correct entry looks like."""
    example = '{"name": "interest", "attribute": "genres", "window": 10, "positive": "like"}'
    out = []
    for d in items or []:
        if not isinstance(d, dict):
            raise ValueError(f"an interest label must be an object such as {example}, not {d!r}")
        unknown = sorted(set(d) - set(KEYS))
        if unknown:
            raise ValueError(f"interest label {d.get('name', '?')!r}: unknown key(s) {unknown}; allowed: {list(KEYS)}")
        if not d.get("attribute"):
            raise ValueError(f"interest label {d.get('name', '?')!r} needs an item 'attribute', e.g. {example}")
        try:
            window = int(d.get("window", DEFAULT_WINDOW))
        except (TypeError, ValueError):
            raise ValueError(f"interest label {d.get('name', '?')!r}: window must be a whole number "
                             f">= 1, not {d.get('window')!r}") from None
        if window < 1:
            raise ValueError(f"interest label {d.get('name', '?')!r}: window must be >= 1, not {window}")
        attr = str(d["attribute"])
        out.append({"name": str(d.get("name") or label_name(attr)), "attribute": attr, "window": window,
                    "positive": str(d.get("positive") or "")})
    names = [d["name"] for d in out]
    if len(set(names)) < len(names):
        raise ValueError(f"two interest labels share a name ({names}); give each its own")
    return out


def label_name(attribute: str) -> str:
    """The default name of the interest label over ``attribute``: "interest_<attribute>"."""
    return f"interest_{attribute}"


def attribute_columns(spec, raw=None) -> list[str]:
    """Item columns an interest label can be over: the item's multi-valued and categorical features
    and its multilabel labels (with ``raw``: only those of the items table)."""
    def of_items(col: str) -> bool:
        return raw is None or raw.locate(col) == "items"
    cols = [c for c, o in spec.multivalued.items() if o == "item"]
    cols += [c for c, t in spec.labels.items() if t == "multilabel" and of_items(c)]
    cols += [c for c, o in spec.categorical.items() if o == "item" and c != spec.item_id]
    return [c for c in dict.fromkeys(cols) if c != spec.item_id]


def describe(d: dict) -> str:
    """An interest label in words, e.g. "the user's interests over genres (the share of each among
    the next 10 'like' positives)"."""
    pos = f"'{d['positive']}' positives" if d.get("positive") else "interactions"
    return (f"the user's interests over {d['attribute']} (the share of each among the next "
            f"{d.get('window', DEFAULT_WINDOW)} {pos})")


# ---- the label --------------------------------------------------------------------------------------
def interest_distribution(users, item_classes, positive, train, window: int, ts=None):
    """Per row, the user's interest shares over K classes -> (float32 [n, K], counts).

    ``users`` [n] user index per row; ``item_classes`` [n, K] the classes of each row's item (0/1);
    ``positive`` [n] bool; ``train`` [n] bool (training rows); ``ts`` [n] times or None. With times:
    the classes of the user's next ``window`` positives after the row (time order, ties by row order);
    else, and where a row has none, the user's training positives other than the row itself; rows
    with nothing are zeros. counts: {"future", "profile", "unknown"} rows of each kind."""
    users = np.asarray(users, np.int64)
    X = np.asarray(item_classes, np.float64)
    positive = np.asarray(positive, bool)
    train = np.asarray(train, bool)
    n, K = X.shape
    # the user's training-positive profile, without the row itself
    tp = positive & train
    n_users = int(users.max()) + 1 if n else 0
    prof = np.zeros((n_users, K))
    np.add.at(prof, users[tp], X[tp])
    y = prof[users] - np.where(tp[:, None], X, 0.0)
    future = np.zeros(n, bool)
    if ts is not None and n:
        fut = _next_window(users, X, positive, np.asarray(ts, np.float64), int(window))
        future = fut.sum(axis=1) > 0
        y[future] = fut[future]
    total = y.sum(axis=1, keepdims=True)
    known = total[:, 0] > 0
    y = np.where(known[:, None], y / np.where(total > 0, total, 1.0), 0.0)
    counts = {"future": int(future.sum()), "profile": int((known & ~future).sum()), "unknown": int((~known).sum())}
    return y.astype(np.float32), counts


def _next_window(users, X, positive, ts, window: int) -> np.ndarray:
    """Per row, the summed classes of the user's next ``window`` positives after it (rows ordered by
    user, time, row position), from a running sum over the positives."""
    n = len(users)
    order = np.lexsort((np.arange(n), ts, users))
    pos_sorted = positive[order]
    P = X[order][pos_sorted]                                  # the positives, by user then time
    cum = np.vstack([np.zeros((1, X.shape[1])), np.cumsum(P, axis=0)])
    seen = np.cumsum(pos_sorted)                             # positives up to each row, inclusive
    u_sorted = users[order]
    pos_users = u_sorted[pos_sorted]
    end_of_user = np.searchsorted(pos_users, u_sorted, side="right")   # one past the user's last positive
    lo = seen
    hi = np.minimum(seen + window, end_of_user)
    out = np.zeros_like(X)
    out[order] = cum[np.maximum(hi, lo)] - cum[lo]
    return out


# ---- the preparation step ---------------------------------------------------------------------------
def add_interest_labels(p) -> None:
    """The labels of ``config.interest_labels`` on the kept rows of a
    :class:`~mtlrec.prep.state.Preparation` (after the split and the labels' encoding)."""
    if not p.config.interest_labels:
        return
    if not (p.spec.user_id and p.spec.item_id):
        raise DataError("an interest label needs a user id and an item id column", file=p.src_name,
                        fix="set the user id and item id roles, or remove the interest label")
    ts = p.ts[p.rows_idx] if p.ts is not None else None
    report = p.report.setdefault("interest_labels", {})
    for d in p.config.interest_labels:
        name = d["name"]
        if name in p.lab_rows or (p.tables.location(name) is not None):
            raise DataError(f"the interest label '{name}' has the name of an existing column or label",
                            file=p.src_name, column=name, fix="give the interest label another name")
        classes, item_x = _item_classes(p, d["attribute"])
        y, counts = interest_distribution(p.r_u, item_x[p.r_i], _positives(p, d), p.train, d["window"], ts)
        p.lab_rows[name] = y
        p.label_owner[name] = "row"
        p.label_fields.append(LabelField(name, "distribution", list(classes)))
        report[name] = {**d, "classes": len(classes), "rows": counts, "timestamps": ts is not None}
        p.report["notes"].append(_note(d, counts, ts is not None))


def _note(d: dict, counts: dict, timed: bool) -> str:
    how = (f"the next {d['window']} positives after each row" if timed else
           "the user's other training positives (the data has no timestamps)")
    return (f"interest label '{d['name']}' over {d['attribute']}: {how} for {counts['future'] if timed else counts['profile']:,} "
            f"rows; {counts['profile'] if timed else 0:,} rows without a later positive fall back to the user's "
            f"training-positive profile; {counts['unknown']:,} rows of users without a training positive are "
            f"unknown (left out of the task's loss and metrics)")


def _positives(p, d: dict) -> np.ndarray:
    """The kept rows that are positives: the binary label ``d["positive"]`` is 1 (or every row)."""
    pos = d["positive"]
    if not pos:
        return np.ones(len(p.r_u), bool)
    kinds = {lf.name: lf.task_type for lf in p.label_fields}
    binary = [n for n, t in kinds.items() if t == "binary"]
    if kinds.get(pos) != "binary":
        raise DataError(f"the interest label '{d['name']}' counts the positives of '{pos}', which is "
                        + ("not a binary label" if pos in kinds else "no label of the data"),
                        file=p.src_name, column=pos,
                        fix=f"name a binary label ({', '.join(binary) or 'none'}), or leave 'positive' empty "
                            "to count every interaction")
    return np.asarray(p.lab_rows[pos]) > 0.5


def _item_classes(p, attr: str):
    """(classes, float [n_items, K] 0/1) of item attribute ``attr``, classes fitted on the items of
    the training rows; DataError naming the usable item columns when ``attr`` is none."""
    from mtlrec.prep import encoders as enc
    usable = attribute_columns(p.spec, p.raw)
    if attr not in usable:
        raise DataError(f"the interest label's attribute '{attr}' is not an item column with classes",
                        file=p.src_name, column=attr,
                        fix=(f"use one of the item columns {', '.join(usable)}" if usable else
                             "give an item column (e.g. genres) the role multi-valued or categorical"))
    values = np.asarray(p.tables.table_values(attr, "item"), dtype=object)
    weights = np.bincount(p.r_i[p.train], minlength=len(values)).astype(np.float64)
    classes = enc.fit_multilabel(values, p.sep, int(p.config.max_multilabel_classes), weights=weights)
    if len(classes) < 2:
        raise DataError(f"the item attribute '{attr}' has {len(classes)} class(es) on the training items; an "
                        "interest distribution needs at least 2", file=p.src_name, column=attr,
                        fix="choose another attribute, or check the separator (multilabel_sep)")
    return classes, enc.encode_multihot(values, classes, p.sep).astype(np.float64)
