"""Preparation options: one JSON-serialisable dataclass."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from mtlrec.prep.interest import check_configs as check_interest_labels
from mtlrec.prep.transforms import normalize_all

DUPLICATES = ("last", "first", "mean")
MISSING_NUMERIC = ("median", "mean", "zero")
MISSING_CATEGORICAL = ("most_frequent", "unknown")
SPLITS = ("random", "temporal", "cold_item", "column")
MISSING_ITEMS = ("drop", "keep", "error")
NEGATIVE_SAMPLING = ("uniform", "popularity")     # mtlrec.prep.negatives.item_cdf
DERIVED_OPS = (">=", ">", "<=", "<", "==")


@dataclass
class PrepConfig:
    """How raw tables become a :class:`~mtlrec.dataset.PreparedDataset`.

    Every statistic (medians, modes, means/std, category and id vocabularies, multi-label
    classes) is fitted on the training rows only; values unseen there get code 0 (unknown).

    duplicates: repeated (user, item) pairs: keep the "last" (by timestamp, else file order),
        the "first", or the "mean" (regression labels averaged, binary labels: 1 if any row is 1).
    missing_numeric: fill missing numeric features with the training "median", "mean" or "zero".
    missing_categorical: "unknown" (missing is its own category "(missing)") or "most_frequent".
    standardize: numeric features to zero mean / unit variance (training statistics).
    derived_labels: binary labels computed from a column, e.g.
        {"name": "like", "source": "rating", "op": ">=", "threshold": 4}.
    interest_labels: user-level interest mining labels (`mtlrec.prep.interest`): per row, the user's
        interest distribution over an item attribute, e.g. [{"name": "interest", "attribute":
        "genres", "window": 10, "positive": "like"}]: the share of each genre among the user's next
        10 liked items ("positive" "" = every interaction; without timestamps: the user's other
        training positives). A task of type "distribution" learns it.
    negative_ratio: sampled negatives per observed row (0 = off). A sampled item is never one the
        user interacted with in any split; sampled rows get 0 for binary labels and ``sampled=True``.
        Valid and test get theirs once (uniform, seeded by ``seed``: the same data and seed give the
        same evaluation negatives); training negatives are drawn anew every epoch. A heavy user with
        too few unseen items gets fewer (the report's ``negatives.shortfall`` says how many).
    negative_sampling: how training negatives pick items: "uniform" (every item alike) or
        "popularity" (probability proportional to the item's training interactions ** 0.75, as
        word2vec: harder negatives, fewer "easy" obscure items).
    negative_label: name of the binary label holding the implicit feedback; "" = automatic
        (an "interaction" label, 1 on observed rows, is created when the data has no binary label).
    split: "random"; "temporal" (per user: last interaction -> test, second last -> valid, users
        with fewer than ``min_user_rows`` interactions stay in train); "cold_item" (a share
        ``cold_item_frac`` of the items is held out entirely: their rows go to valid/test only);
        "column" (a predefined split: the interactions column ``split_column`` says train / valid /
        test per row -- also "training", "validation", "val", "dev", in any case; any other value,
        numbers such as 0/1/2 included, or a missing one is a DataError naming the rows. Without
        valid rows, a share ``valid_frac`` of the train rows, seeded, becomes valid. Duplicates
        are looked for within each split. The column is never a feature or a label).
    split_column: the column of the "column" split; "" = the predefined split of split files
        (``raw.meta["split_column"]``), else the only interactions column whose values are splits.
    valid_frac / test_frac: shares of rows (random split; warm rows of the cold_item split;
        valid_frac: the share of train rows carved out when a predefined split has no valid rows).
    missing_items: interactions whose item is not in the items table: "drop", "keep", "error".
    max_multilabel_classes: most frequent classes kept for a multi-label label.
    max_multivalued_classes / min_multivalued_items: a multi-valued feature (role "multi-valued",
        e.g. genres) keeps its most frequent classes, each on at least ``min_multivalued_items``
        training items (users); rarer and unseen classes are dropped.
    numeric_transforms: per numeric feature, "none" / "clip" / "winsorise" / "log1p", e.g.
        {"capital_gains": "log1p", "age": {"method": "clip", "lower": 0, "upper": 100},
        "income": {"method": "winsorise", "lower": 0.01, "upper": 0.99}}; bounds fitted on the
        training rows only (see :mod:`mtlrec.prep.transforms`). Absent: no transform.
    """
    duplicates: str = "last"
    missing_numeric: str = "median"
    missing_categorical: str = "unknown"
    standardize: bool = True
    derived_labels: list = field(default_factory=list)
    interest_labels: list = field(default_factory=list)
    negative_ratio: float = 0
    negative_label: str = ""
    negative_sampling: str = "uniform"
    split: str = "random"
    split_column: str = ""
    valid_frac: float = 0.1
    test_frac: float = 0.1
    cold_item_frac: float = 0.2
    min_user_rows: int = 3
    missing_items: str = "drop"
    max_multilabel_classes: int = 50
    max_multivalued_classes: int = 50
    min_multivalued_items: int = 2
    seed: int = 42
    numeric_transforms: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, allowed in (("duplicates", DUPLICATES), ("missing_numeric", MISSING_NUMERIC),
                              ("missing_categorical", MISSING_CATEGORICAL), ("split", SPLITS),
                              ("missing_items", MISSING_ITEMS), ("negative_sampling", NEGATIVE_SAMPLING)):
            v = getattr(self, name)
            if v not in allowed:
                raise ValueError(f"prep option {name} must be one of {allowed}, not {v!r}")
        for name in ("valid_frac", "test_frac", "cold_item_frac"):
            v = float(getattr(self, name))
            if not 0.0 <= v < 1.0:
                raise ValueError(f"prep option {name} must be in [0, 1), not {v}")
        if self.valid_frac + self.test_frac >= 1.0:
            raise ValueError("valid_frac + test_frac must be below 1 (rows must remain for training)")
        if float(self.negative_ratio) < 0:
            raise ValueError("negative_ratio must be >= 0")
        for name in ("max_multilabel_classes", "max_multivalued_classes", "min_multivalued_items"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        self.negative_label = self.negative_label or ""
        self.split_column = str(self.split_column or "")
        self.derived_labels = [dict(d) for d in (self.derived_labels or [])]
        for d in self.derived_labels:
            missing = [k for k in ("name", "source", "op", "threshold") if k not in d]
            if missing:
                raise ValueError(f"derived label {d}: missing {missing} "
                                 "(example: {'name': 'like', 'source': 'rating', 'op': '>=', 'threshold': 4})")
            if d["op"] not in DERIVED_OPS:
                raise ValueError(f"derived label '{d['name']}': op must be one of {DERIVED_OPS}, not {d['op']!r}")
            d["threshold"] = float(d["threshold"])
        self.interest_labels = check_interest_labels(self.interest_labels)
        derived = {str(d["name"]) for d in self.derived_labels}
        for d in self.interest_labels:
            if d["name"] in derived:
                raise ValueError(f"the interest label '{d['name']}' has the name of a derived label; rename one")
        self.numeric_transforms = normalize_all(self.numeric_transforms)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "PrepConfig":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown prep option(s) {unknown}; known: {sorted(known)}")
        return cls(**d)
