"""AppTest: a MovieLens upload shows genres as a multi-valued feature in the role mapping (not a
label) and prepares it as the multihot item feature."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_data_splits import _prepare, _upload  # noqa: E402
from test_multivalued_feature import _write_latest  # noqa: E402
from test_pages import state_of  # noqa: E402


def test_data_page_shows_genres_as_a_multi_valued_feature(tmp_path):
    d = _write_latest(tmp_path / "ml", n_users=20, n_items=25, per_user=8)
    at = _upload([(p.name, p.read_bytes(), "text/csv") for p in (d / "movies.csv", d / "ratings.csv")])
    st_ = state_of(at)
    assert st_.spec.roles()["genres"] == "multi-valued" and "genres" not in st_.spec.labels
    editor = next(e for e in at.dataframe if "role" in e.value.columns)      # the role editor
    table = editor.value.set_index("column")
    assert table.loc["genres", "role"] == "multi-valued" and table.loc["genres", "owner"] == "item"
    assert "multi-valued" in "\n".join(c.value for c in at.caption)
    ds = _prepare(at)
    assert ds.field("genres").kind == "multihot"
