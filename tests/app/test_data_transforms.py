"""AppTest: the Data page's preparation options offer a transform per numeric feature (with log1p
suggested for a zero-inflated, skewed one), prepare with it and say what was changed."""
from __future__ import annotations

import numpy as np
import pandas as pd

from test_data_splits import _prepare, _upload
from test_pages import plain, state_of


def test_data_page_winsorises_a_numeric_feature_and_reports_the_change():
    rng = np.random.default_rng(0)
    n = 400
    pairs = rng.choice(30 * 40, n, replace=False)
    spend = np.round(rng.lognormal(3, 1.5, n) * (rng.random(n) < 0.3), 2)
    spend[:4] = 1e6
    df = pd.DataFrame({"user_id": pairs // 40, "item_id": pairs % 40, "click": rng.integers(0, 2, n),
                       "spend": spend})
    at = _upload([("events.csv", df.to_csv(index=False).encode(), "text/csv")])
    st_ = state_of(at)
    assert st_.spec.numeric.get("spend") == "context"
    assert "spend" in [plain(m.value) for m in at.markdown]
    captions = "\n".join(plain(c.value) for c in at.caption)
    assert "log1p suggested: 70% zeros, a long right tail" in captions and "up to 1,000,000" in captions
    box = at.selectbox(key=f"prep_tf_spend_{st_.counter}")
    assert box.options == ["none", "clip", "winsorise", "log1p"] and box.value == "none"
    box.set_value("winsorise")
    at.text_input(key=f"prep_tf_upper_spend_{st_.counter}").set_value("0.95")
    ds = _prepare(at)
    assert st_.prep.numeric_transforms == {"spend": {"method": "winsorise", "lower": 0.01, "upper": 0.95}}
    t = ds.meta["report"]["transforms"]["spend"]
    train = spend[ds.row_ids("train")]
    assert round(t["upper"], 6) == round(float(np.quantile(train, 0.95)), 6)
    table = at.dataframe[-1].value
    row = table[table["column"] == "spend"].iloc[0]
    assert row["method"] == "winsorise" and row["train rows changed"] == t["rows_changed"]["train"] > 0
    notes = "\n".join(plain(c.value) for c in at.caption)
    assert "spend: winsorised to" in notes
