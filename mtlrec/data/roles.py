"""Column roles: which column of the user's tables plays which part.

`DataSpec` is declarative and JSON-serialisable. Column names are resolved in the
interactions table first, then in the users table (joined on the user id) and the
items table (joined on the item id). The owner of a feature ("user", "item",
"context") says which table it describes; context features live on interactions.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

TASK_TYPES = ("binary", "regression", "multilabel")
OWNERS = ("user", "item", "context")
FEATURE_KINDS = ("categorical", "numeric", "text", "multivalued")   # the spec's feature dicts (column -> owner)
# the role names shown to users (CLI `data check`, the app's role editor)
ROLE_NAMES = ("user_id", "item_id", "timestamp", "label:binary", "label:regression",
              "label:multilabel", "categorical", "numeric", "multi-valued", "text", "ignore")
# the role of a column holding a list of values per user/item (e.g. genres "Action|Comedy", split on
# ``multilabel_sep``): a multi-hot feature whose embedding is the mean of its values' embeddings
MULTI_VALUED = "multi-valued"


@dataclass
class DataSpec:
    user_id: str | None = None
    item_id: str | None = None
    timestamp: str | None = None
    labels: dict[str, str] = field(default_factory=dict)       # column -> task type
    categorical: dict[str, str] = field(default_factory=dict)  # column -> owner
    numeric: dict[str, str] = field(default_factory=dict)      # column -> owner
    text: dict[str, str] = field(default_factory=dict)         # column -> owner ("item"/"user")
    multivalued: dict[str, str] = field(default_factory=dict)  # column -> owner ("item"/"user"): multi-hot
    multilabel_sep: str = "|"

    def __post_init__(self) -> None:
        for col, t in self.labels.items():
            if t not in TASK_TYPES:
                raise ValueError(f"label '{col}': task type must be one of {TASK_TYPES}, not '{t}'")
        for kind in FEATURE_KINDS:
            for col, owner in getattr(self, kind).items():
                if owner not in OWNERS:
                    raise ValueError(f"{kind} feature '{col}': owner must be one of {OWNERS}, not '{owner}'")

    # ---- role view (column -> role name) --------------------------------------------
    def roles(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.user_id:
            out[self.user_id] = "user_id"
        if self.item_id:
            out[self.item_id] = "item_id"
        if self.timestamp:
            out[self.timestamp] = "timestamp"
        for c, t in self.labels.items():
            out[c] = f"label:{t}"
        for c in self.categorical:
            out.setdefault(c, "categorical")
        for c in self.numeric:
            out.setdefault(c, "numeric")
        for c in self.multivalued:
            out.setdefault(c, MULTI_VALUED)
        for c in self.text:
            out.setdefault(c, "text")
        return out

    def columns(self) -> list[str]:
        return list(self.roles())

    # ---- serialisation --------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DataSpec":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, s: str) -> "DataSpec":
        return cls.from_dict(json.loads(s))
