"""Downloads and the Recommendations list in real headless Chromium (issue 21 §5, §15).

1. Every download button of the app downloads on its first click, also right after another download
   (a click that used to land during the previous download's rerun and ask for a forgotten
   "deferred" file), under its own file name; the run zip is a run folder that imports.
2. At 1500 px the Recommendations list cuts no button label and breaks no word of its headers,
   ranks, numbers or titles across lines ("Ex…", "suppor t", "1 0." before)."""
from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

import appdriver as drv

pytestmark = pytest.mark.browser
RUN = "20200101-000000-exports"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of its own (no other test's runs) with one finished tiny run of three tasks, trained
    outside the app: a local run, which the server shows read-only (``MTLREC_LOCAL_RUNS=read``)."""
    from _fixtures_train import TASKS, make_dataset
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import run_training
    if not Path(drv.CHROMIUM).exists():
        pytest.skip(f"browser tests need Chromium at {drv.CHROMIUM}")
    d = tmp_path_factory.mktemp("downloads")
    t = {"epochs": 1, "batch_size": 256, "lr": 0.01, "device": "cpu", "seed": 0, "ranking_k": 0}
    cfg = RunConfig.from_dict({"name": "exports", "tasks": TASKS[:3], "model": {"arch": "shared_bottom"}, "train": t})
    run_training(cfg, d / "runs" / RUN, dataset=make_dataset(n_rows=600))
    log = d / "server.log"
    with drv.serve(d / "runs", log, env={"MTLREC_LOCAL_RUNS": "read"}) as url:     # the operator's run, shown
        yield url, d / "runs" / RUN, log


def _select_run(page) -> None:
    drv.go(page, "Runs")
    picker = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Select runs")
    picker.locator("input").click()
    page.get_by_role("option").first.click()
    page.keyboard.press("Escape")
    drv.wait_idle(page)


def _download(page, name: str):
    with page.expect_download() as d:
        page.get_by_role("button", name=name).click()
    return d.value


def test_every_download_arrives_on_the_first_click_with_its_name(server, browser, tmp_path):
    from mtlrec.runs.archive import import_zip
    from mtlrec.runs.load import load_run
    url, run_dir, log = server
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    ctx.set_default_timeout(60_000)
    page = ctx.new_page()
    drv.open_app(page, url)
    _select_run(page)
    # the metrics, then at once the zip: both arrive, each under its name
    metrics = _download(page, "Metrics (CSV)")
    zipped = _download(page, "Run folder (zip)")
    assert (metrics.suggested_filename, zipped.suggested_filename) == (f"{RUN}-metrics.csv", f"{RUN}.zip")
    assert Path(metrics.path()).read_bytes().startswith(b"\xef\xbb\xbfsplit,task,metric")
    data = Path(zipped.path()).read_bytes()
    names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    assert {"config.json", "model.json", "model.pt", "metrics.json", "dataset/dataset.json"} <= names
    assert names == {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}   # every file
    copy = import_zip(data, tmp_path / "imported")
    assert [t.name for t in load_run(copy).tasks] == ["click", "like", "rating"]
    # the report, then at once the zip again
    page.get_by_role("button", name="Build the HTML report").click()
    page.get_by_role("button", name="Download report").wait_for(timeout=240_000)
    report = _download(page, "Download report")
    assert _download(page, "Run folder (zip)").suggested_filename == f"{RUN}.zip"
    assert report.suggested_filename == f"{RUN}-report.html"
    assert "<h2>Example recommendations</h2>" in Path(report.path()).read_text(encoding="utf-8")
    # Results: the test predictions; Recommendations: the list
    page.get_by_role("button", name="Open as the current run").click()
    drv.wait_title(page, "Results")
    preds = _download(page, "Download test predictions (CSV)")
    assert preds.suggested_filename == f"{RUN}_test_predictions.csv"
    rows = list(csv.reader(io.StringIO(Path(preds.path()).read_text(encoding="utf-8-sig"))))
    assert rows[0][:2] == ["user_id", "item_id"] and len(rows) == 1 + 90      # 15 % of 600 rows
    drv.go(page, "Recommendations")
    page.get_by_text("Top 10 for user").wait_for()
    drv.wait_idle(page)
    recs = _download(page, "Download as CSV")
    assert recs.suggested_filename.startswith("recommendations_user_") and recs.suggested_filename.endswith(".csv")
    assert len(Path(recs.path()).read_text(encoding="utf-8-sig").splitlines()) == 1 + 10
    drv.assert_no_exception(page, "after the downloads")
    text = log.read_text()
    assert "MediaFileStorageError" not in text and "Deferred file" not in text
    ctx.close()


# Words of the list's text broken across lines, and buttons whose label does not fit (cut with "…")
BROKEN = """root => {
  const out = [];
  for (const b of root.querySelectorAll('[data-testid="stMarkdownContainer"], [data-testid="stCaptionContainer"], button')) {
    const walk = document.createTreeWalker(b, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      for (const m of n.data.matchAll(/\\S+/g)) {
        const r = document.createRange();
        r.setStart(n, m.index);
        r.setEnd(n, m.index + m[0].length);
        const tops = new Set([...r.getClientRects()].filter(x => x.width > 0).map(x => Math.round(x.top)));
        if (tops.size > 1) out.push('broken: ' + m[0]);
      }
    }
  }
  for (const b of root.querySelectorAll('button')) {
    if ([b, ...b.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1)) out.push('cut: ' + b.innerText);
  }
  return out;
}"""


def test_recommendations_list_fits_at_1500px(server, browser, artifacts):
    url, _run_dir, _log = server
    ctx = browser.new_context(viewport={"width": 1500, "height": 900})
    ctx.set_default_timeout(60_000)
    page = ctx.new_page()
    drv.open_app(page, url)
    _select_run(page)
    page.get_by_role("button", name="Open as the current run").click()
    drv.wait_title(page, "Results")
    drv.go(page, "Recommendations")
    page.get_by_text("Top 10 for user").wait_for()
    drv.wait_idle(page)
    main = page.locator('[data-testid="stMain"]')
    expect(main.get_by_role("button", name="Explain")).to_have_count(10)
    expect(main).to_contain_text("10.")
    expect(main).to_contain_text("support")
    drv.shot(page, artifacts / "recommendations-1500.png")
    assert main.evaluate(BROKEN) == []
    drv.assert_no_exception(page, "on Recommendations")
    ctx.close()
