"""A file over the upload limit, in real headless Chromium: the browser refuses it before sending it
(Streamlit's server.maxUploadSize), and the page says so in words -- which file, its size, the limit
and the fix -- not with a red icon alone (issue 27 item 5).

The file is sparse (201 MiB that take no disk space): the browser reads only its size."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import appdriver as drv

pytestmark = pytest.mark.browser


def test_a_file_over_the_upload_limit_is_refused_in_words(app_url, context, tmp_path, artifacts):
    big = tmp_path / "ratings.csv"
    with open(big, "wb") as f:
        f.truncate(201 * 1024 * 1024)
    page = context.new_page()
    uploader = drv.open_uploader(page, app_url)
    note = page.get_by_text(re.compile(r"^A file marked in red above was not uploaded"))
    expect(note).to_be_hidden()                                   # nothing refused yet: no note
    uploader.set_input_files([str(big)])
    chip = page.locator('[data-testid="stFileChip"]')
    expect(chip).to_contain_text("ratings.csv")                   # which file, and its size
    expect(chip).to_contain_text(re.compile(r"\d+(\.\d)?MB"))
    expect(chip.get_by_text("File must be 200.0MB or smaller.")).to_be_visible()     # the reason, in words
    expect(note).to_be_visible()
    said = note.inner_text()
    assert "up to 200 MB each" in said and "300 MB uncompressed in all" in said, said   # the limits
    assert "Fix: for data this large use the command line: python -m mtlrec prepare" in said, said
    drv.shot(page, artifacts / "upload-refused.png")
    drv.assert_no_exception(page, "after a file over the upload limit")
    page.get_by_role("button", name="Remove ratings.csv").click()  # the refused file removed: the note goes
    expect(note).to_be_hidden()
