"""MovieLens 100K uploaded in real headless Chromium: the three files one by one, and the folder as a
zip. Both reach Prepare without an exception box.

The files are generated here in the exact ML-100K layout (50 users, 40 items, 1,000 ratings):
u.data tab-separated ``user item rating timestamp``; u.item '|'-separated Latin-1
``id|title|release date|video release date|IMDb URL|19 genre flags``; u.user '|'-separated
``id|age|gender|occupation|zip``. Every wait is on Streamlit's data-testid attributes or on text.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

import appdriver as drv

pytestmark = pytest.mark.browser

ERROR_BOX = '[data-testid="stAlertContentError"]'


def write_ml100k(folder: Path, n_users: int = 50, n_items: int = 40, n_ratings: int = 1000) -> list[Path]:
    rng = np.random.default_rng(100)
    pairs = rng.choice(n_users * n_items, size=n_ratings, replace=False)
    ratings = rng.integers(1, 6, size=n_ratings)
    (folder / "u.data").write_text("".join(
        f"{p // n_items + 1}\t{p % n_items + 1}\t{r}\t{874_724_710 + 61 * k}\n"
        for k, (p, r) in enumerate(zip(pairs, ratings))))
    lines = []
    for i in range(1, n_items + 1):
        flags = ["0"] * 19
        flags[1 + i % 18] = "1"
        if i % 3 == 0:
            flags[8] = "1"                                   # Drama as a second genre
        lines.append("|".join([str(i), f"Café Film {i} ({1990 + i % 10})", f"01-Jan-{1990 + i % 10}", "",
                               f"http://us.imdb.com/M/title-exact?Caf%E9%20Film%20{i}"] + flags))
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    occupations = ["writer", "artist", "student", "engineer", "educator"]
    (folder / "u.user").write_text("".join(
        f"{u}|{18 + (u * 7) % 50}|{'MF'[u % 2]}|{occupations[u % 5]}|{10_000 + 97 * u:05d}\n"
        for u in range(1, n_users + 1)))
    return [folder / "u.data", folder / "u.item", folder / "u.user"]


def _upload_and_prepare(page, app_url: str, paths: list[Path], source: str, shot: Path) -> None:
    uploader = drv.open_uploader(page, app_url)
    accept = uploader.get_attribute("accept") or ""
    for ext in (".data", ".item", ".user", ".zip"):
        assert ext in accept.split(","), accept
    uploader.set_input_files([str(p) for p in paths])
    # the upload is read: its preview names the files, and the notes say how each one was recognised
    page.locator("h3", has_text=f"Preview — {source}").wait_for()
    page.get_by_text(re.compile(r"u\.data → interactions \(MovieLens 100K ratings")).wait_for()
    drv.wait_idle(page)
    expect(page.get_by_role("tab", name=re.compile(r"interactions \(1,000 rows\)"))).to_be_visible()
    expect(page.get_by_role("tab", name=re.compile(r"users \(50 rows\)"))).to_be_visible()
    expect(page.get_by_role("tab", name=re.compile(r"items \(40 rows\)"))).to_be_visible()
    assert page.locator(ERROR_BOX).count() == 0, page.locator(ERROR_BOX).first.inner_text()
    drv.assert_no_exception(page, f"after uploading {source}")
    drv.shot(page, shot.with_name(shot.stem + "-read.png"))

    page.get_by_role("button", name="Prepare").click()
    done = page.get_by_text(re.compile(r"Prepared: train [\d,]+, valid [\d,]+, test [\d,]+ rows"))
    done.wait_for()
    drv.wait_idle(page)
    done.scroll_into_view_if_needed()
    drv.shot(page, shot.with_name(shot.stem + "-prepared.png"))
    drv.assert_no_exception(page, f"after preparing {source}")
    assert page.locator(ERROR_BOX).count() == 0, page.locator(ERROR_BOX).first.inner_text()


def test_movielens_100k_files_one_by_one(app_url, context, tmp_path, artifacts):
    paths = write_ml100k(tmp_path)
    page = context.new_page()
    _upload_and_prepare(page, app_url, paths, "u.data, u.item, u.user", artifacts / "upload-ml100k-files.png")


def test_movielens_100k_folder_as_zip(app_url, context, tmp_path, artifacts):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    paths = write_ml100k(folder)
    (folder / "u.genre").write_text("unknown|0\nAction|1\n")
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in paths + [folder / "u.genre"]:
            zf.write(p, f"ml-100k/{p.name}")
    page = context.new_page()
    _upload_and_prepare(page, app_url, [archive], "ml-100k.zip", artifacts / "upload-ml100k-zip.png")
