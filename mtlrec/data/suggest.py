"""Suggest column roles from names and dtypes, as defaults the user can change.

Rules, in order, per column (names compared lower-case without ``_``/``-``/spaces):

* ids: userId/user_id/uid/user -> user id; movieId/item_id/iid/item/product_id -> item id
* timestamp/time/date/ts/datetime (interactions only) -> timestamp
* rating/score/stars (numeric) -> regression label
* click/like/label/target/tagged/is_*/has_* with two values 0/1 or true/false -> binary label
* a fraction-like interaction column (name with fraction/ratio/progress/completion/watch,
  values within [0, 1], not only 0/1) -> regression label
* genres/tags/categories/labels/topics/keywords holding separated lists: in the users/items table
  -> a multi-valued feature (multi-hot, mean-pooled embeddings; label:multilabel stays available
  by choice), in the interactions -> multi-label
* title/description/name/overview/text/summary/plot (strings, users or items table) -> text
  (`mtlrec.app.workflow.default_text` then turns the language-model features on)
* dates in the items table (e.g. MovieLens 100K "release date") -> numeric (the year)
* low-cardinality strings and booleans -> categorical; other numbers -> numeric
* owner by table: users -> user, items -> item, interactions -> context

Columns that are empty, constant, dates in a users table, or free text in the
interactions table are left out (role "ignore"). So is an interactions column whose values are
all split names (train / valid / test, see ``mtlrec.prep.splits.SPLIT_VALUES``): it is no
feature but a predefined split, offered by :func:`split_columns` for prep split "column".
"""
from __future__ import annotations

import re

import pandas as pd

from mtlrec.data.formats.census import census_spec
from mtlrec.data.names import ITEM_NAMES, USER_NAMES
from mtlrec.data.raw import RawData
from mtlrec.data.roles import DataSpec

OWNER_OF = {"interactions": "context", "users": "user", "items": "item"}

TIME_NAMES = {"timestamp", "time", "date", "ts", "datetime", "eventtime", "createdat", "time_stamp",
              "timestamps", "eventdate", "clicktime", "unixtime"}
REGRESSION_NAMES = {"rating", "ratings", "score", "stars", "star", "rate", "grade", "userrating"}
BINARY_NAMES = {"click", "clicked", "clicks", "like", "liked", "likes", "label", "target", "tagged", "purchase",
                "purchased", "buy", "bought", "converted", "conversion", "share", "shared", "follow",
                "finish", "finished", "complete", "completed", "skip", "skipped", "favorite", "favourite", "y"}
FRACTION_WORDS = ("fraction", "ratio", "progress", "completion", "watch", "percent", "pct", "dwell")
MULTILABEL_NAMES = {"genres", "genre", "tags", "tag", "categories", "category", "labels", "topics", "keywords",
                    "styles", "themes", "subjects"}
TEXT_NAMES = {"title", "description", "name", "overview", "text", "summary", "plot", "synopsis", "abstract",
              "content", "bio", "about", "review", "comment", "body", "headline", "moviename", "itemname",
              "movietitle", "itemtitle"}

LIST_SEPS = ("|", ";", ",", " ")


def _norm(col: str) -> str:
    return re.sub(r"[\s_\-.]", "", str(col).lower())


def _binary_share(s: pd.Series) -> float:
    """Share of the non-missing values that are 0/1 or true/false (1.0 for a bool column)."""
    s = s.dropna()
    if s.empty:
        return 0.0
    if pd.api.types.is_bool_dtype(s.dtype):
        return 1.0
    if pd.api.types.is_numeric_dtype(s.dtype):
        return float(s.isin([0, 1]).mean())
    low = s.astype("str").str.strip().str.lower()
    return float(low.isin(["0", "1", "true", "false", "0.0", "1.0"]).mean())


def _is_binary_values(s: pd.Series) -> bool:
    """Exactly two values, 0/1 or true/false."""
    return _binary_share(s) == 1.0 and s.dropna().nunique() == 2


def _numeric_share(s: pd.Series) -> float:
    """Share of the non-missing values that read as numbers (1.0 for a numeric column)."""
    s = s.dropna()
    if s.empty:
        return 0.0
    if pd.api.types.is_numeric_dtype(s.dtype):
        return 1.0
    return float(pd.to_numeric(s.astype("str"), errors="coerce").notna().mean())


def _list_sep(s: pd.Series) -> str | None:
    """The separator of a list-valued string column, if any (checked on a sample)."""
    if not (pd.api.types.is_string_dtype(s.dtype) or s.dtype == object):
        return None
    sample = s.dropna().astype("str")
    if sample.empty:
        return None
    sample = sample.iloc[: 5000]
    for sep in LIST_SEPS[:3]:  # '|' ';' ','
        share = sample.str.contains(sep, regex=False).mean()
        if share >= 0.05:
            return sep
    return None


def _sample(s: pd.Series, n: int = 200_000) -> pd.Series:
    return s if len(s) <= n else s.sample(n, random_state=0)


def _looks_like_dates(s: pd.Series) -> bool:
    sample = s.dropna().astype("str").iloc[:200]
    if sample.empty or sample.str.len().mean() < 6:
        return False
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return parsed.notna().mean() >= 0.9


def _looks_like_code(s: pd.Series) -> bool:
    """Zip codes and the like: digit strings with leading zeros are codes, not numbers."""
    strs = s.dropna().astype("str").iloc[:1000]
    return bool(strs.str.match(r"0\d").mean() > 0.05)


def _find_id(df: pd.DataFrame, names: set[str], exclude: set[str] = frozenset()) -> str | None:
    for c in df.columns:
        if c not in exclude and _norm(c) in names:
            return str(c)
    return None


def suggest_spec(raw: RawData) -> DataSpec:
    """A :class:`DataSpec` with the roles that the names and dtypes of ``raw`` suggest."""
    if raw.format == "census":
        return census_spec(raw)
    inter = raw.interactions
    user_id = _find_id(inter, USER_NAMES)
    item_id = _find_id(inter, ITEM_NAMES, {user_id} if user_id else set())
    # an id shared with the users / items table, when the names don't tell
    if user_id is None and raw.users is not None:
        shared = [c for c in raw.users.columns if c in inter.columns]
        user_id = str(shared[0]) if len(shared) == 1 else None
    if item_id is None and raw.items is not None:
        shared = [c for c in raw.items.columns if c in inter.columns and c != user_id]
        item_id = str(shared[0]) if len(shared) == 1 else None
    timestamp = None
    for c in inter.columns:
        if c in (user_id, item_id):
            continue
        n = _norm(c)
        if n in TIME_NAMES or n.endswith("timestamp"):
            timestamp = str(c)
            break
    spec = DataSpec(user_id=user_id, item_id=item_id, timestamp=timestamp)
    recbole = raw.meta.get("recbole_types", {})
    seen = {c for c in (user_id, item_id, timestamp) if c}
    for table, df in raw.tables().items():
        owner = OWNER_OF[table]
        types = recbole.get(table, {})
        for col in df.columns:
            col = str(col)
            if col in seen:
                continue
            seen.add(col)
            role = _suggest_column(col, df[col], table, types.get(col))
            if role is None:
                continue
            kind, value = role
            if kind == "label":
                spec.labels[col] = value
            elif kind == "text":
                spec.text[col] = owner
            else:
                getattr(spec, kind)[col] = owner
    # RecBole token_seq lists are '|'-joined by the reader; other lists keep their separator
    lists = [c for c, t in spec.labels.items() if t == "multilabel"] + list(spec.multivalued)
    seps = {_list_sep(_table_col(raw, c)) for c in lists}
    seps.discard(None)
    if len(seps) == 1:
        spec.multilabel_sep = seps.pop()
    return spec


SPLIT_NAMES = {"split", "splits", "fold", "set", "subset", "partition", "dataset", "part", "evalset"}


def split_columns(raw: RawData) -> list[str]:
    """Interactions columns that hold a predefined split (every value train / valid / test, in any
    case; see ``mtlrec.prep.splits.looks_like_split``): the split of split files first, then
    columns named split / fold / set ..., then the others."""
    from mtlrec.prep.splits import SPLIT_VALUES, looks_like_split
    made = (raw.meta or {}).get("split_column")
    found = []
    for c in raw.interactions.columns:
        s = raw.interactions[c]
        if c == made:
            found.append(str(c))
            continue
        if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
            continue
        head = s.iloc[:2000].dropna()   # a cheap look first (the Data page asks on every rerun)
        if not head.astype(str).str.strip().str.lower().isin(list(SPLIT_VALUES)).all():
            continue
        if looks_like_split(_sample(s)):
            found.append(str(c))
    return sorted(found, key=lambda c: (c != made, _norm(c) not in SPLIT_NAMES))


def _table_col(raw: RawData, col: str) -> pd.Series:
    return raw.tables()[raw.locate(col)][col]


def _suggest_column(col: str, s: pd.Series, table: str, recbole_type: str | None):
    """-> (kind, value) with kind in label/text/categorical/numeric/multivalued, or None to leave it out."""
    n = _norm(col)
    nonnull = s.dropna()
    if nonnull.empty:
        return None
    sample = _sample(nonnull)
    nunique = sample.nunique()
    numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
    stringy = pd.api.types.is_string_dtype(s.dtype) or s.dtype == object
    if recbole_type == "float_seq":
        return None
    # labels (interactions only, except list labels such as item genres)
    # a few bad cells (e.g. 'four' among ratings) keep the role: validation then names them
    mostly_numeric = numeric or (stringy and _numeric_share(sample) >= 0.8)
    if table == "interactions" and stringy and nunique <= 50:
        from mtlrec.prep.splits import looks_like_split
        if looks_like_split(sample):
            return None     # a predefined split (split_columns), never a feature
    if table == "interactions":
        if n in REGRESSION_NAMES and mostly_numeric and (nunique > 2 or _binary_share(sample) < 1.0):
            return ("label", "regression")
        if (n in BINARY_NAMES or n.startswith(("is", "has")) and len(n) > 3) and _binary_share(sample) >= 0.9:
            return ("label", "binary")
        if numeric and any(w in n for w in FRACTION_WORDS) and nunique > 2:
            lo, hi = float(sample.min()), float(sample.max())
            if 0.0 <= lo and hi <= 1.0:
                return ("label", "regression")
    if nunique <= 1:
        return None  # constant: nothing to learn from
    if any(w in n for w in ("zip", "postal", "postcode", "phone")):
        return ("categorical", None) if nunique <= 1000 else None
    if stringy and mostly_numeric and recbole_type is None and not _looks_like_code(sample):
        return ("numeric", None)
    texty = n in TEXT_NAMES or n.endswith(("title", "name", "description", "text"))
    if stringy or recbole_type == "token_seq":
        sep = _list_sep(sample)
        if (n in MULTILABEL_NAMES or recbole_type == "token_seq" and not texty) and sep is not None:
            # an item's (user's) genres describe it: input, not an answer to predict
            return ("multivalued", None) if table != "interactions" else ("label", "multilabel")
        if n in MULTILABEL_NAMES and nunique <= 200:
            return ("categorical", None)  # one category per row
        strs = sample.astype("str")
        if strs.iloc[:200].str.match(r"(https?|ftp)://|www\.").mean() > 0.5:
            return None  # links
        mean_len = float(strs.str.len().mean())
        if texty or (mean_len > 30 and nunique > 0.5 * len(sample)):
            return ("text", None) if table != "interactions" else None
        if table != "interactions" and _looks_like_dates(sample):
            return ("numeric", None) if table == "items" else None     # an item's date: its year
        if nunique <= max(50, int(0.5 * len(sample))) or nunique <= 1000:
            return ("categorical", None)
        return None  # free-form strings (urls, codes) with too many values
    if pd.api.types.is_bool_dtype(s.dtype):
        return ("categorical", None)
    if numeric:
        if recbole_type == "token":
            return ("categorical", None)
        if _is_binary_values(sample):
            return ("categorical", None)
        return ("numeric", None)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return None
    return None
