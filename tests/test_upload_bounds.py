"""Issue 10 (hardening), classes 1 and 10: bounded uploads, Excel, UTF-16 without a BOM, header-only tables.

The hostile archives are small on disk (a few MB) and written in a streaming way: one deflate block
of a highly compressible chunk, ended by a full flush, decodes on its own, so repeating its bytes N
times makes a member that inflates to N chunks. They are opened in a child process with an address
space cap (a safety net), which reports its peak resident set (VmHWM) - the test process itself never
holds more than the archives' bytes.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import resource
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtlrec.data import files, limits, tables
from mtlrec.data.limits import Limits
from mtlrec.data.readers import load_data, load_uploaded
from mtlrec.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
GiB, MiB = 1024 ** 3, 1024 ** 2
HEADER = b"user_id,item_id,click\n"
CHUNK = b"1,2,0\n" * (1 << 18)            # 1.5 MB of rows


# ------------------------------------------------------------------------------------ hostile files
def _blocks(first: bytes, chunk: bytes):
    """Raw deflate: a block for ``first``, a block for ``chunk`` (each self-contained), the final block."""
    def block(data):
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)
    return block(first), block(chunk), zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def _crc(first: bytes, chunk: bytes, n: int) -> int:
    crc = zlib.crc32(first)
    for _ in range(n):
        crc = zlib.crc32(chunk, crc)
    return crc


def write_zip_bomb(path: Path, member: str, n: int, *, chunk: bytes = CHUNK, claim: int | None = None) -> int:
    """A zip of one deflated member HEADER + chunk * n, streamed to ``path``; returns its unpacked size.
    ``claim``: the size the archive says the member has (a lying header), default the true one."""
    first, rep, tail = _blocks(HEADER, chunk)
    size = len(HEADER) + n * len(chunk)
    assert size < 2 ** 32                    # no zip64 needed
    csize = len(first) + n * len(rep) + len(tail)
    crc, claimed = _crc(HEADER, chunk, n), size if claim is None else claim
    name = member.encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, 8, 0, 0x21, crc, csize, claimed, len(name), 0))
        f.write(name + first)
        for _ in range(n):
            f.write(rep)
        f.write(tail)
        cd_offset = f.tell()
        cd = struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, 8, 0, 0x21, crc, csize, claimed,
                         len(name), 0, 0, 0, 0, 0, 0) + name
        f.write(cd)
        f.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(cd), cd_offset, 0))
    return size


def write_gzip_bomb(path: Path, n: int, *, chunk: bytes = CHUNK) -> int:
    """A gzip file of HEADER + chunk * n, streamed to ``path``; returns its unpacked size."""
    first, rep, tail = _blocks(HEADER, chunk)
    size = len(HEADER) + n * len(chunk)
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + first)
        for _ in range(n):
            f.write(rep)
        f.write(tail + struct.pack("<2L", _crc(HEADER, chunk, n), size & 0xFFFFFFFF))
    return size


def test_the_hostile_files_are_what_they_claim(tmp_path):
    """The generator makes real archives: zipfile / gzip inflate them to HEADER + chunk * n."""
    small = b"3,4,1\n" * 1000
    write_zip_bomb(tmp_path / "z.zip", "interactions.csv", 5, chunk=small)
    with zipfile.ZipFile(tmp_path / "z.zip") as zf:
        assert zf.read("interactions.csv") == HEADER + small * 5
    write_gzip_bomb(tmp_path / "g.gz", 5, chunk=small)
    assert gzip.decompress((tmp_path / "g.gz").read_bytes()) == HEADER + small * 5


# ------------------------------------------------------------------------------------ in a child process
CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from mtlrec.data.readers import load_uploaded
    from mtlrec.errors import DataError

    def peak_kb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    out = {}
    for path in sys.argv[1:]:
        p = Path(path)
        try:
            raw = load_uploaded([(p.name, p.read_bytes())])
            out[p.name] = {"rows": len(raw.interactions)}
        except DataError as e:
            out[p.name] = {"error": str(e), "what": e.what, "fix": e.fix, "file": e.file}
        except MemoryError:
            out[p.name] = {"memory_error": True}
    out["peak_kb"] = peak_kb()
    print(json.dumps(out))
""")


def _cap_memory():
    # a safety net for the machine: pyarrow alone reserves ~1.6 GB of address space
    resource.setrlimit(resource.RLIMIT_AS, (6 * GiB, 6 * GiB))


def run_child(code: str, *args, timeout: int = 300) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=timeout, preexec_fn=_cap_memory)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_hostile_archives_are_refused_with_bounded_memory(tmp_path):
    """The reported zip (a few MB, one member of ~2 GB, ratio under 1000:1) and its cousins are refused
    with the size message, and the process that reads them stays far below 1 GB."""
    n = 2 * GiB // len(CHUNK) - 1                            # ~2 GB unpacked
    bomb = write_zip_bomb(tmp_path / "bomb.zip", "interactions.csv", n)
    write_gzip_bomb(tmp_path / "bomb.csv.gz", n)            # gzip: no size to trust, only the stream
    write_zip_bomb(tmp_path / "lying.zip", "interactions.csv", n, claim=MiB)   # says 1 MB, holds 2 GB
    # under the byte limit (250 MB) but 62 million rows: too large to parse, found before pandas runs
    # (rows that repeat every 70 lines: a ratio of ~220:1, under the archive check's 1000:1)
    rows = b"".join(b"%d,%d\n" % (k % 10, k % 7) for k in range(70)) * 5350
    write_zip_bomb(tmp_path / "rows.zip", "interactions.csv", 250 * MiB // len(rows), chunk=rows)
    on_disk = sum(f.stat().st_size for f in tmp_path.iterdir())
    assert bomb > 1.9 * GiB and on_disk < 16 * MiB, (bomb, on_disk)
    with zipfile.ZipFile(tmp_path / "bomb.zip") as zf:            # it passes the old archive checks
        info = zf.infolist()[0]
        assert info.file_size / info.compress_size < 1000 and info.file_size < limits.MAX_FILE_BYTES

    out = run_child(CHILD, *(tmp_path / n for n in ("bomb.zip", "bomb.csv.gz", "lying.zip", "rows.zip")))

    for name in ("bomb.zip", "bomb.csv.gz"):
        r = out[name]
        assert "error" in r, (name, r)
        assert "size limit for uploads" in r["what"] and "300 MB" in r["what"], r
        assert "python -m mtlrec prepare" in r["fix"] and "sample" in r["fix"], r
        assert r["file"] == name
    assert "2.0 GB" in out["bomb.zip"]["what"]               # said from the archive's directory
    assert "cannot be unpacked" in out["lying.zip"].get("error", ""), out["lying.zip"]
    rows = out["rows.zip"]
    assert "too large to read" in rows.get("what", "") and "rows × 3 columns" in rows["what"], rows
    assert "python -m mtlrec prepare" in rows["fix"]
    print(f"hostile archives: peak RSS {out['peak_kb'] / 1024:.0f} MB")
    assert out["peak_kb"] < 1024 * 1024, f"peak RSS {out['peak_kb'] / 1024:.0f} MB"


MILLION = textwrap.dedent("""
    import io, json
    from mtlrec.data.sample import synthetic_interactions
    inter, users, items = synthetic_interactions(1_000_000)
    files = [(n, df.to_csv(index=False).encode()) for n, df in
             (("interactions.csv", inter), ("users.csv", users), ("items.csv", items))]
    del inter, users, items
    sizes = {n: len(b) for n, b in files}
    open("/proc/self/clear_refs", "w").write("5")       # peak RSS from here on: the read only
    from mtlrec.data.readers import load_uploaded
    raw = load_uploaded(files)
    peak = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
    print(json.dumps({"rows": len(raw.interactions), "users": len(raw.users), "items": len(raw.items),
                      "sizes": sizes, "peak_kb": peak}))
""")


def test_a_million_interaction_upload_is_still_read():
    """The 1M-row benchmark case (a ~40 MB interactions CSV plus users and items) fits the upload limits."""
    out = run_child(MILLION, timeout=600)
    assert out["rows"] == 1_000_000 and out["users"] > 0 and out["items"] > 0, out
    assert 20 * MiB < out["sizes"]["interactions.csv"] < limits.UPLOAD_MAX_BYTES
    print(f"1M-row upload: {out['sizes']['interactions.csv'] / MiB:.0f} MB CSV, peak RSS {out['peak_kb'] / 1024:.0f} MB")


# ------------------------------------------------------------------------------------ in process, small limits
TINY = Limits(file_bytes=MiB, total_bytes=MiB, read_bytes=GiB, upload=True)


def test_gzip_inflation_stops_at_the_limit():
    """A 64 MB gzip member with a 1 MB limit: refused, and reading stopped near the limit."""
    data = gzip.compress(HEADER + b"1,2,0\n" * (64 * MiB // 6), compresslevel=9)
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as ei:
            load_uploaded([("events.csv.gz", data)], limits=TINY)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "over the size limit for uploads" in ei.value.what and ei.value.file == "events.csv.gz"
    assert peak < 16 * MiB, f"{peak / MiB:.0f} MB allocated while reading a 64 MB member"


def test_zip_member_stops_at_the_limit_even_when_its_header_lies(tmp_path):
    """The sizes the archive claims are checked first; a member whose header claims little is read
    only up to its claim (then found damaged), never inflated whole."""
    write_zip_bomb(tmp_path / "big.zip", "interactions.csv", 40, chunk=b"3,4,1\n" * (1 << 16))   # ~16 MB
    with pytest.raises(DataError, match="size limit") as ei:
        load_uploaded([("big.zip", (tmp_path / "big.zip").read_bytes())], limits=TINY)
    assert "member 'interactions.csv' unpacks to 15 MB" in ei.value.what
    write_zip_bomb(tmp_path / "liar.zip", "interactions.csv", 40, chunk=b"3,4,1\n" * (1 << 16), claim=1000)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="cannot be unpacked"):
            load_uploaded([("liar.zip", (tmp_path / "liar.zip").read_bytes())], limits=TINY)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 * MiB


def test_the_parse_is_estimated_before_pandas_runs(monkeypatch):
    """rows x columns are counted first: a table too large to parse is refused without calling pandas."""
    text = HEADER + b"1,2,0\n" * 200_000
    limits = Limits(file_bytes=GiB, total_bytes=GiB, read_bytes=4 * MiB, upload=True)

    def no_parse(*a, **k):
        raise AssertionError("pandas was asked to parse a table over the limit")
    monkeypatch.setattr(tables.pd, "read_csv", no_parse)
    with pytest.raises(DataError) as ei:
        load_uploaded([("interactions.csv", text)], limits=limits)
    assert "about 200,001 rows × 3 columns" in ei.value.what and "allowed for uploads" in ei.value.what
    assert "python -m mtlrec prepare" in ei.value.fix


def test_parquet_rows_come_from_its_footer(monkeypatch):
    """A Parquet file of two million constant rows is a few KB; its footer gives rows x columns."""
    buf = io.BytesIO()
    pd.DataFrame({"user_id": np.zeros(2_000_000, np.int32), "item_id": np.ones(2_000_000, np.int32)}).to_parquet(buf)
    assert len(buf.getvalue()) < 200_000
    monkeypatch.setattr(tables.pd, "read_parquet", lambda *a, **k: (_ for _ in ()).throw(AssertionError("read")))
    limits = Limits(file_bytes=GiB, total_bytes=GiB, read_bytes=16 * MiB, upload=True)
    with pytest.raises(DataError, match=r"about 2,000,000 rows × 2 columns"):
        load_uploaded([("interactions.parquet", buf.getvalue())], limits=limits)


def test_out_of_memory_in_the_parser_is_a_size_message(monkeypatch):
    """pandas' 'out of memory' parser error used to read as 'quote text that contains the delimiter'."""
    def oom(*a, **k):
        raise pd.errors.ParserError("Error tokenizing data. C error: out of memory")
    monkeypatch.setattr(tables.pd, "read_csv", oom)
    with pytest.raises(DataError) as ei:
        load_uploaded([("interactions.csv", HEADER + b"1,2,0\n" * 100)])
    assert "not enough memory" in ei.value.what and "quote" not in str(ei.value)
    assert "python -m mtlrec prepare" in ei.value.fix


def test_local_files_may_be_larger_than_uploads(tmp_path, monkeypatch):
    """The same file: refused as an upload, read from disk (the command line's larger limits)."""
    assert Limits.local().total_bytes > Limits.uploads().total_bytes
    assert Limits.local().read_bytes > Limits.uploads().read_bytes
    monkeypatch.setattr(limits, "UPLOAD_MAX_BYTES", 10_000)
    data = HEADER + b"".join(b"%d,%d,%d\n" % (u, i, (u + i) % 2) for u in range(40) for i in range(100))
    assert len(data) > 10_000
    with pytest.raises(DataError, match="over the size limit for uploads") as ei:
        load_uploaded([("interactions.csv", data)])
    assert "python -m mtlrec prepare" in ei.value.fix
    (tmp_path / "interactions.csv").write_bytes(data)
    assert len(load_data(tmp_path / "interactions.csv").interactions) == 4000
    # the suggested fix works: the command line reads a zip too
    with zipfile.ZipFile(tmp_path / "data.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("interactions.csv", data)
    assert len(load_data(tmp_path / "data.zip").interactions) == 4000


# ------------------------------------------------------------------------------------ class 10
def _xlsx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    return buf.getvalue()


XLS = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)


@pytest.mark.parametrize("name,data", [("ratings.xlsx", _xlsx()), ("ratings.xls", XLS),
                                       ("ratings.csv", XLS),              # an .xls under a CSV name
                                       ("export.zip", _xlsx()),          # a workbook named .zip
                                       ("dataset.zip", None)])           # a zip holding only a workbook
def test_excel_workbooks_are_refused_with_how_to_save_as_csv(tmp_path, name, data):
    if data is None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("ml/ratings.xlsx", _xlsx())
        data = buf.getvalue()
    with pytest.raises(DataError) as ei:
        load_uploaded([(name, data)])
    assert ei.value.what == "Excel workbooks are not read"
    assert ei.value.fix == "save the sheet as CSV (File → Save as → CSV UTF-8)"
    assert name in ei.value.file
    (tmp_path / name).write_bytes(data)                      # the command line says the same
    with pytest.raises(DataError, match="Excel workbooks are not read"):
        load_data(tmp_path / name)


def test_the_uploader_takes_excel_and_its_caption_states_the_limits():
    assert {"xlsx", "xls"} <= set(files.UPLOAD_EXTENSIONS)
    caption = limits.upload_caption(200)
    assert "200 MB per file" in caption and "300 MB uncompressed in all" in caption
    assert "python -m mtlrec prepare" in caption and "Excel" in caption


RATINGS = "user_id\titem_id\trating\ttitle\n" + "".join(
    f"{u}\t{i}\t{(u * i) % 5 + 1}\tCafé n°{i}\n" for u in range(1, 21) for i in range(1, 9))


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_is_read(tmp_path, codec):
    data = RATINGS.encode(codec)
    assert not data.startswith((b"\xff\xfe", b"\xfe\xff"))
    expected = pd.read_csv(io.StringIO(RATINGS), sep="\t")
    (tmp_path / "export.txt").write_bytes(data)
    for raw in (load_uploaded([("export.txt", data)]), load_data(tmp_path / "export.txt")):
        df = raw.interactions
        assert list(df.columns) == ["user_id", "item_id", "rating", "title"]
        assert df["rating"].tolist() == expected["rating"].tolist()
        assert df["title"].tolist() == expected["title"].tolist()      # non-ASCII text intact


def test_utf16_without_a_bom_is_recognised_by_its_content():
    """MovieLens 100K u.data saved as UTF-16 under another name: still the u.data layout."""
    data = "".join(f"{u}\t{i}\t{(u + i) % 5 + 1}\t88125{u:04d}\n" for u in range(1, 11) for i in range(1, 6))
    raw = load_uploaded([("ratings_export.txt", data.encode("utf-16-le"))])
    assert raw.format == "ml-100k" and len(raw.interactions) == 50


def test_binary_with_nul_bytes_is_still_binary():
    data = bytes(np.random.default_rng(7).integers(0, 256, 5000, dtype=np.uint8))
    with pytest.raises(DataError, match="not a text table"):
        load_uploaded([("interactions.csv", data)])


def test_a_header_only_table_gets_the_same_message_in_the_app_and_the_command_line(tmp_path):
    from mtlrec.app.workflow import uploaded_workspace
    data = b"user_id,item_id,rating\n"
    with pytest.raises(DataError) as app:
        uploaded_workspace([("interactions.csv", data)])
    (tmp_path / "interactions.csv").write_bytes(data)
    r = subprocess.run([sys.executable, "-m", "mtlrec", "data", "check", str(tmp_path / "interactions.csv"),
                        "--json"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    cli = json.loads(r.stdout)["error"]
    assert "no data rows" in app.value.what
    assert cli == str(app.value)      # "interactions.csv: the file has a header but no data rows. Fix: ..."
