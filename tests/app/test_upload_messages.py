"""AppTest of the Data page's uploader (issue 10, class 10): the limits and formats are visible, a
header-only CSV says "no data rows" as the command line does, an Excel workbook says to save it as CSV."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

from streamlit.testing.v1 import AppTest

from test_pages import plain

ROOT = Path(__file__).resolve().parents[2]


def upload_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("pages/data.py").run()
    at.radio(key="data_source").set_value("Upload files").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def upload(at: AppTest, name: str, data: bytes, mime: str = "text/csv") -> str:
    at.file_uploader(key="data_upload").set_value((name, data, mime)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["mtlrec_state"].raw is None
    return "\n".join(plain(e.value) for e in at.error)


def test_uploader_states_the_limits_and_the_formats():
    at = upload_page()
    uploader = at.file_uploader(key="data_upload")
    assert "200 MB per file" in uploader.label and "CSV" in uploader.label and "zip" in uploader.label
    captions = "\n".join(c.value for c in at.caption)
    assert "300 MB uncompressed in all" in captions and "python -m mtlrec prepare" in captions
    assert "Excel" in captions


def test_header_only_csv_says_no_data_rows():
    at = upload_page()
    errors = upload(at, "interactions.csv", b"user_id,item_id,rating\n")
    assert "no data rows" in errors and "interactions.csv" in errors, errors
    assert "label" not in errors          # not the misleading "no column is a label"


def test_excel_workbook_says_save_as_csv():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
    at = upload_page()
    errors = upload(at, "ratings.xlsx", buf.getvalue(),
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "Excel workbooks are not read" in errors and "CSV UTF-8" in errors, errors
