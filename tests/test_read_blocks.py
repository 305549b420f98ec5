"""Large text tables are parsed in blocks (tables._parse_csv): the result must be the frame the
whole-file parse gives, across block boundaries, with a fallback when blocks infer other dtypes."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from mtlrec.data import tables
from mtlrec.data.readers import load_data
from mtlrec.data.tables import read_table
from mtlrec.errors import DataError

KW = dict(sep=",", encoding="utf-8", header=0, names=None, skipinitialspace=True, low_memory=False,
          on_bad_lines="error", engine="c", decimal=".")


def _csv(n: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    lines = ["user_id,item_id,timestamp,device,click,rating,dwell,note"]
    for i in range(n):
        dwell = "" if i % 13 == 0 else f"{rng.gamma(2, 5):.3f}"
        note = '"two\nlines, quoted"' if i % 17 == 0 else ("" if i % 5 == 0 else f" w{i % 9}")
        lines.append(f"{rng.integers(1, 50)},{rng.integers(1, 30)},{1600000000 + i},"
                     f"{['tv', 'mobile', 'desktop'][i % 3]},{i % 2},{1 + i % 5},{dwell},{note}")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("block", [1, 7, 50, 64, 10_000])
def test_blocks_equal_whole_file(block):
    data = _csv(300)
    whole = pd.read_csv(io.BytesIO(data), **KW)
    parts = tables._parse_csv(data, block_rows=block, **KW)
    pd.testing.assert_frame_equal(parts, whole, check_exact=True)
    assert list(parts.dtypes) == list(whole.dtypes)
    assert isinstance(parts.index, pd.RangeIndex)


def test_blocks_that_disagree_fall_back_to_the_whole_file():
    # ids are numbers in the first blocks and text further down; a column empty in the first block
    lines = ["user_id,item_id,price"] + [f"{i},{i % 7},{'' if i < 40 else i / 4}" for i in range(100)]
    lines += [f"u{i},{i % 7},1.5" for i in range(100, 130)]
    data = ("\n".join(lines) + "\n").encode()
    whole = pd.read_csv(io.BytesIO(data), **KW)
    parts = tables._parse_csv(data, block_rows=25, **KW)
    pd.testing.assert_frame_equal(parts, whole, check_exact=True)
    assert parts["user_id"].iloc[0] == "0" and parts["user_id"].iloc[-1] == "u129"


def test_read_table_same_frame_and_same_errors_in_blocks(monkeypatch):
    data = _csv(200, seed=3)
    whole = read_table("interactions.csv", data)
    monkeypatch.setattr(tables, "READ_BLOCK_ROWS", 9)
    pd.testing.assert_frame_equal(read_table("interactions.csv", data), whole, check_exact=True)
    bad = data.decode().split("\n")
    bad[150] += ",extra"
    monkeypatch.setattr(tables, "READ_BLOCK_ROWS", 1_000_000)
    with pytest.raises(DataError) as whole_err:
        read_table("interactions.csv", "\n".join(bad).encode())
    monkeypatch.setattr(tables, "READ_BLOCK_ROWS", 9)
    with pytest.raises(DataError) as block_err:
        read_table("interactions.csv", "\n".join(bad).encode())
    assert str(block_err.value) == str(whole_err.value)
    assert block_err.value.rows == whole_err.value.rows


def test_load_data_same_rawdata_in_blocks(tmp_path, monkeypatch):
    (tmp_path / "interactions.csv").write_bytes(_csv(120, seed=5))
    (tmp_path / "users.csv").write_text("user_id,age\n" + "".join(f"{u},{20 + u % 40}\n" for u in range(1, 50)))
    whole = load_data([tmp_path])
    monkeypatch.setattr(tables, "READ_BLOCK_ROWS", 11)
    parts = load_data([tmp_path])
    for table in ("interactions", "users"):
        pd.testing.assert_frame_equal(getattr(parts, table), getattr(whole, table), check_exact=True)
    assert parts.sources == whole.sources and parts.meta == whole.meta and parts.format == whole.format


def test_block_text_columns_get_buffers_of_their_own():
    pa = pytest.importorskip("pyarrow")
    big = pa.array(["tv", "mobile", None, "desktop"] * 50)
    piece = pd.array(big.slice(10, 20), dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    own = tables._own_buffers(piece)
    assert own.dtype == piece.dtype
    pd.testing.assert_extension_array_equal(own, piece)
    data_buf = lambda a: pa.chunked_array(a.__arrow_array__()).chunk(0).buffers()[-1]
    assert data_buf(own).size < data_buf(piece).size        # not a view of the whole parent buffer
    ints = pd.array(np.arange(5))
    assert tables._own_buffers(ints) is ints                # other columns: as they are
