"""AppTest: the Data page offers a predefined split (a train / valid / test column, or MovieLens
u1.base + u1.test) and prepares with it."""
from __future__ import annotations

import numpy as np
import pandas as pd

from _fixtures_ml100k import write_ml100k_split
from test_pages import new_app, no_exception, plain, state_of


def _upload(files):
    at = new_app().run()
    at.switch_page("pages/data.py").run()
    at.radio(key="data_source").set_value("Upload files").run()
    at.file_uploader(key="data_upload").set_value(files).run()
    no_exception(at, "upload")
    assert not at.error, [e.value for e in at.error]
    return at


def _prepare(at):
    next(b for b in at.button if b.label == "Prepare").click().run()
    no_exception(at, "after Prepare")
    assert any(s.value.startswith("Prepared:") for s in at.success), [s.value for s in at.success]
    return state_of(at).dataset


def test_data_page_offers_the_split_in_a_column_and_prepares_with_it():
    rng = np.random.default_rng(0)
    n = 300
    fold = rng.choice(["train", "valid", "test"], n, p=[0.7, 0.1, 0.2])
    pairs = rng.choice(25 * 30, n, replace=False)       # distinct (user, item) pairs: no duplicates
    df = pd.DataFrame({"user_id": pairs // 30, "item_id": pairs % 30,
                       "click": rng.integers(0, 2, n), "fold": fold})
    at = _upload([("events.csv", df.to_csv(index=False).encode(), "text/csv")])
    st_ = state_of(at)
    assert st_.prep.split == "random"
    info = "\n".join(plain(i.value) for i in at.info)
    assert "fold" in info and "use the split in column 'fold'" in info, info
    # the role editor does not make it a feature
    assert "fold" not in st_.spec.columns()
    split_box = at.selectbox(key=f"prep_split_{st_.counter}")
    assert "column: use the split in column 'fold'" in split_box.options
    assert at.selectbox(key=f"prep_split_column_{st_.counter}").value == "fold"    # preselected
    split_box.set_value("column")
    ds = _prepare(at)
    assert (st_.prep.split, st_.prep.split_column) == ("column", "fold")
    want = {s: set(np.flatnonzero(fold == s).tolist()) for s in ("train", "valid", "test")}
    for s in ("train", "valid", "test"):
        assert set(ds.row_ids(s).tolist()) == want[s]


def test_uploaded_movielens_u1_pair_is_prepared_as_its_split(tmp_path):
    n_base, n_test = write_ml100k_split(tmp_path)
    files = [(n, (tmp_path / n).read_bytes(), "application/octet-stream")
             for n in ("u1.base", "u1.test", "u.item", "u.user")]
    at = _upload(files)
    st_ = state_of(at)
    assert (st_.prep.split, st_.prep.split_column) == ("column", "split")
    captions = "\n".join(plain(c.value) for c in at.caption)
    assert "u1.base = train" in captions and "u1.test = test" in captions
    ds = _prepare(at)
    assert set(ds.row_ids("test").tolist()) == set(range(n_base, n_base + n_test))
    notes = "\n".join(plain(c.value) for c in at.caption)
    assert "no valid rows" in notes and "became valid" in notes
