"""Which column names mean a user id and which an item id (compared lower-case without ``_ - .`` and
spaces): the suggested roles (:mod:`mtlrec.data.suggest`) and the identification of generic tables by
their columns (:mod:`mtlrec.data.identify`) use the same lists."""
from __future__ import annotations

import re

USER_NAMES = {"userid", "user", "uid", "useridx", "customerid", "customer", "visitorid", "memberid", "readerid"}
ITEM_NAMES = {"itemid", "item", "iid", "movieid", "movie", "productid", "product", "articleid", "songid",
              "bookid", "videoid", "trackid", "isbn", "asin", "sku"}
# id columns beyond USER_NAMES / ITEM_NAMES, for identifying tables (names lower-case without _ - . and spaces)
_USER_ID_COL = re.compile(r"(user|customer|visitor|member|reader|reviewer|client|buyer|viewer|listener|player|"
                          r"account|person|subscriber|student|learner)(id|idx|key|no|number|code)")
_ITEM_ID_COL = re.compile(r"(item|movie|film|product|article|song|book|video|track|show|course|recipe|news|post|"
                          r"game|app|business|restaurant|hotel|place|poi|anime|artist|album|offer|ad|job|"
                          r"doc|document|question|listing|sku)(id|idx|key|no|number|code)")


def id_columns(columns) -> tuple[list[str], list[str]]:
    """The columns whose names look like user ids and like item ids."""
    users, items = [], []
    for c in columns:
        n = re.sub(r"[\s_\-.]", "", str(c).lower())
        if n in USER_NAMES or _USER_ID_COL.fullmatch(n):
            users.append(str(c))
        elif n in ITEM_NAMES or _ITEM_ID_COL.fullmatch(n):
            items.append(str(c))
    return users, items
