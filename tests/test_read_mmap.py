"""Local uncompressed text files of MMAP_MIN_BYTES and more are read from a read-only memory map
(issue 16): the same RawData as from bytes, no handle left open, uploads still read as bytes."""
import gzip
import os
import sys

import pandas as pd
import pytest

from mtlrec.data import files, limits, mapped as mapped_mod, tables
from mtlrec.data.readers import load_data, load_uploaded
from mtlrec.data.splits import load_split_files
from mtlrec.errors import DataError


@pytest.fixture
def mapped(monkeypatch):
    """Count the files mapped; ``mapped.on()`` maps every file, ``mapped.off()`` none."""
    calls = []
    real = files._map_file

    def spy(p, display, budget):
        calls.append(display)
        return real(p, display, budget)

    monkeypatch.setattr(files, "_map_file", spy)

    class Ctl:
        def on(self):
            monkeypatch.setattr(files, "MMAP_MIN_BYTES", 1)

        def off(self):
            monkeypatch.setattr(files, "MMAP_MIN_BYTES", 1 << 62)
    ctl = Ctl()
    ctl.calls = calls
    return ctl


def _open_paths() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return out


def _same(a, b):
    assert a.sources == b.sources and a.format == b.format and a.meta == b.meta
    assert set(a.tables()) == set(b.tables())
    for t, df in a.tables().items():
        pd.testing.assert_frame_equal(df, b.tables()[t])      # values, columns and dtypes
    assert set(a.extra) == set(b.extra)


def _both(mapped, *paths, load=load_data, **kw):
    """(read from bytes, read from a memory map); checks that the map was used."""
    mapped.calls.clear()
    mapped.off()
    from_bytes = load(*paths, **kw)
    assert not mapped.calls
    mapped.on()
    from_map = load(*paths, **kw)
    assert mapped.calls
    _same(from_bytes, from_map)
    return from_map


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_plain_csv(tmp_path, mapped):
    p = _write(tmp_path / "interactions.csv",
               b"user_id,item_id,click,title\n" + b"".join(b"%d,%d,%d,t %d\n" % (k, k % 7, k % 2, k) for k in range(50)))
    raw = _both(mapped, p)
    assert len(raw.interactions) == 50


def test_tsv_and_semicolon_decimal_comma(tmp_path, mapped):
    p = _write(tmp_path / "events.tsv", b"user_id\titem_id\trating\n1\t2\t3.5\n2\t3\t4\n")
    _both(mapped, p)
    q = _write(tmp_path / "ratings.csv", b"user_id;item_id;rating\n1;2;3,5\n2;3;4,0\n3;1;1,25\n")
    raw = _both(mapped, q)
    assert raw.interactions["rating"].tolist() == [3.5, 4.0, 1.25]


def test_bom_latin1_and_utf16(tmp_path, mapped):
    text = "user_id,item_id,city\n1,2,Zürich\n2,3,Liège\n3,1,Málaga\n"
    _both(mapped, _write(tmp_path / "a.csv", b"\xef\xbb\xbf" + text.encode("utf-8")))
    raw = _both(mapped, _write(tmp_path / "b.csv", text.encode("latin-1")))
    assert raw.interactions["city"].tolist() == ["Zürich", "Liège", "Málaga"]
    raw = _both(mapped, _write(tmp_path / "c.csv", text.encode("utf-16")))
    assert list(raw.interactions.columns) == ["user_id", "item_id", "city"]
    assert raw.interactions["city"].tolist() == ["Zürich", "Liège", "Málaga"]


def test_rewritten_in_slices(tmp_path, mapped, monkeypatch):
    """Slices of a few bytes: UTF-16 decoded and '::' replaced across slice ends, lines counted."""
    monkeypatch.setattr(mapped_mod, "_SLICE", 5)
    text = "user_id,item_id,city\n1,2,Zürich\n2,3,Liège\n3,1,Málaga\n"
    raw = _both(mapped, _write(tmp_path / "c.csv", text.encode("utf-16-le")))
    assert raw.interactions["city"].tolist() == ["Zürich", "Liège", "Málaga"]
    raw = _both(mapped, _write(tmp_path / "ratings.dat", b"1::10::4::978300760\n1::11::3::978302109\n2::10::5::9783\n"))
    assert raw.format == "ml-1m" and raw.interactions["rating"].tolist() == [4, 3, 5]


def test_headerless_movielens(tmp_path, mapped):
    d = tmp_path / "ml"
    d.mkdir()
    _write(d / "u.data", b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n")
    _write(d / "u.user", b"196|49|M|writer|55105\n186|39|F|executive|00000\n22|25|M|writer|40206\n")
    raw = _both(mapped, d)
    assert raw.format == "ml-100k" and len(raw.interactions) == 3 and raw.users is not None


def test_recbole(tmp_path, mapped):
    p = _write(tmp_path / "x.inter", b"user_id:token\titem_id:token\trating:float\n1\t2\t3\n2\t3\t4\n")
    assert _both(mapped, p).format == "recbole"


def test_quoted_newlines_across_blocks(tmp_path, mapped, monkeypatch):
    monkeypatch.setattr(tables, "READ_BLOCK_ROWS", 3)
    rows = [b'%d,%d,"line one\nline two %d"\n' % (k, k + 1, k) for k in range(20)]
    p = _write(tmp_path / "interactions.csv", b"user_id,item_id,note\n" + b"".join(rows))
    raw = _both(mapped, p)
    assert len(raw.interactions) == 20 and raw.interactions["note"][19] == "line one\nline two 19"


def test_bad_line_same_error(tmp_path, mapped):
    body = b"".join(b"%d,%d,0\n" % (k, k) for k in range(30))
    p = _write(tmp_path / "interactions.csv", b"user_id,item_id,click\n" + body + b"1,2,3,4\n5,6,0\n")
    errors = []
    for switch in (mapped.off, mapped.on):
        switch()
        with pytest.raises(DataError) as ei:
            load_data(p)
        errors.append(ei.value)
    assert mapped.calls
    assert str(errors[0]) == str(errors[1]) and errors[0].rows == errors[1].rows == [31]
    assert str(p) not in _open_paths()


def test_split_files(tmp_path, mapped):
    tr = _write(tmp_path / "train.csv", b"user_id,item_id,click\n1,2,0\n2,3,1\n3,1,0\n")
    te = _write(tmp_path / "test.csv", b"user_id,item_id,click\n1,3,1\n")
    raw = _both(mapped, {"train": tr, "test": te}, load=load_split_files)
    assert raw.interactions["split"].tolist() == ["train"] * 3 + ["test"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/fd")
def test_no_handle_left_and_file_deletable(tmp_path, mapped):
    mapped.on()
    p = _write(tmp_path / "interactions.csv", b"user_id,item_id,click\n1,2,0\n2,3,1\n")
    raw = load_data(p)
    assert mapped.calls == ["interactions.csv"]
    assert str(p) not in _open_paths()
    with open("/proc/self/maps") as fh:
        assert str(p) not in fh.read()
    os.remove(p)
    assert len(raw.interactions) == 2


def test_byte_caps_lifted_only_for_mapped_files(tmp_path, mapped, monkeypatch):
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", 40)
    monkeypatch.setattr(limits, "MAX_TOTAL_BYTES", 40)
    p = _write(tmp_path / "interactions.csv", b"user_id,item_id,click\n" + b"1,2,0\n" * 20)
    mapped.off()
    with pytest.raises(DataError, match="size limit"):
        load_data(p)
    mapped.on()
    assert len(load_data(p).interactions) == 20
    # gzip is never mapped: its byte limits stay
    g = _write(tmp_path / "interactions.csv.gz", gzip.compress(p.read_bytes()))
    calls = len(mapped.calls)
    with pytest.raises(DataError, match="size limit"):
        load_data(g)
    assert len(mapped.calls) == calls


def test_parse_estimate_still_applies(tmp_path, mapped, monkeypatch):
    monkeypatch.setattr(limits, "MAX_READ_BYTES", 1000)
    mapped.on()
    p = _write(tmp_path / "interactions.csv", b"user_id,item_id,click\n" + b"1,2,0\n" * 100)
    with pytest.raises(DataError, match="too large to read"):
        load_data(p)
    assert str(p) not in _open_paths()


def test_upload_stays_bytes(tmp_path, mapped):
    mapped.on()
    data = b"user_id,item_id,click\n1,2,0\n2,3,1\n"
    p = _write(tmp_path / "interactions.csv", data)
    from_upload = load_uploaded([("interactions.csv", data)])
    assert not mapped.calls
    _same(from_upload, load_data(p))
    assert mapped.calls


def test_never_sliced_whole(tmp_path, mapped, monkeypatch):
    """The readers take the mapped text in bounded slices (never the whole file as one bytes object)."""
    monkeypatch.setattr(mapped_mod, "_SLICE", 64 * 1024)
    monkeypatch.setattr(tables, "READ_BLOCK_ROWS", 20_000)
    biggest = [0]
    real = mapped_mod.Mapped.__getitem__

    def spy(self, key):
        out = real(self, key)
        if isinstance(out, bytes):
            biggest[0] = max(biggest[0], len(out))
        return out
    monkeypatch.setattr(mapped_mod.Mapped, "__getitem__", spy)
    body = b"".join(b"%d,%d,%d,name %d\n" % (k, k % 97, k % 2, k) for k in range(150_000))
    p = _write(tmp_path / "interactions.csv", b"user_id,item_id,click,title\n" + body)
    assert len(body) > 3 * limits.MB
    raw = _both(mapped, p)
    assert len(raw.interactions) == 150_000
    assert 0 < biggest[0] <= limits.MB + 1
