"""AppTest: the Data page prepares with sampled negatives (uniform or by popularity) and says in words
when a heavy user has too few unseen items for the ratio (issue 22)."""
from __future__ import annotations

import pandas as pd

from test_data_splits import _prepare, _upload
from test_pages import plain, state_of


def test_data_page_samples_negatives_by_popularity_and_reports_the_shortfall():
    rows = [(0, k) for k in range(28)] + [(u, (7 * u) % 30) for u in range(1, 120)]   # user 0 met 28 of 30 items
    df = pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(click=[k % 2 for k in range(len(rows))])
    at = _upload([("events.csv", df.to_csv(index=False).encode(), "text/csv")])
    c = state_of(at).counter
    assert at.selectbox(key=f"prep_negative_sampling_{c}").options == ["uniform", "popularity"]
    at.number_input(key=f"prep_negative_ratio_{c}").set_value(2.0)
    at.selectbox(key=f"prep_negative_sampling_{c}").set_value("popularity")
    ds = _prepare(at)
    neg = ds.meta["report"]["negatives"]
    assert neg["method"] == "popularity" and neg["shortfall"]["users"] == 1
    warnings = [plain(w.value) for w in at.warning]
    assert any("% of requested negatives could not be drawn: 1 heavy user has too few unseen items" in w
               for w in warnings), warnings
