"""Uploaded text is shown as text in real Chromium: a markdown image pointing at a local HTTP server
(a tracking pixel), links, HTML, colour and icon shortcodes in item titles and descriptions are
rendered literally on Recommendations and Explain, the server gets no request, and the
downloaded CSV neutralises cells that a spreadsheet would run as formulas."""
from __future__ import annotations

import csv
import http.server
import io
import threading

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect

import appdriver as drv

pytestmark = pytest.mark.browser

@pytest.fixture
def pixel_server():
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", hits
    finally:
        srv.shutdown()


def hostile_files(folder, base: str) -> list:
    rng = np.random.default_rng(7)
    n_users, n_items, n = 40, 60, 900
    pairs = rng.choice(n_users * n_items, size=n, replace=False)
    u, i = pairs // n_items + 1, pairs % n_items + 1
    inter = pd.DataFrame({"user_id": u, "item_id": i, "timestamp": 1_600_000_000 + 3600 * np.arange(n),
                          "click": ((u + i) % 3 == 0).astype(int) | (rng.random(n) < 0.2).astype(int)})
    items = pd.DataFrame({
        "item_id": np.arange(1, n_items + 1),
        "title": [f"=HYPERLINK(\"{base}/f{k}\") ![px]({base}/pixel{k}.png) <img src='{base}/img{k}.png'> "
                  f":red[RED{k}] **bold{k}**" for k in range(1, n_items + 1)],
        "description": [f"see {base}/link{k} or [here]({base}/l{k}) :material/home: $x^{k}$"
                        for k in range(1, n_items + 1)],
    })
    paths = [folder / "interactions.csv", folder / "items.csv"]
    inter.to_csv(paths[0], index=False)
    items.to_csv(paths[1], index=False)
    return paths


def _no_live_markup(page, base: str, where: str) -> None:
    main = page.locator('[data-testid="stMain"]')
    for tag, attr in (("a", "href"), ("img", "src")):
        els = main.locator(tag)
        for k in range(els.count()):
            value = els.nth(k).get_attribute(attr) or ""
            assert base not in value, f"{where}: a live <{tag} {attr}={value}> came from uploaded text"
    assert main.locator(".katex").count() == 0, f"{where}: '$...$' in uploaded text became a formula"


def test_uploaded_markup_is_text_and_csv_is_formula_safe(app_url, context, pixel_server, tmp_path, artifacts):
    base, hits = pixel_server
    paths = hostile_files(tmp_path, base)
    page = context.new_page()
    uploader = drv.open_uploader(page, app_url)
    uploader.set_input_files([str(p) for p in paths])
    page.get_by_role("heading", name="Column roles").wait_for()
    drv.wait_idle(page)
    drv.assert_no_exception(page, "after the upload")

    drv.go(page, "Tasks & model")
    drv.set_training(page, epochs=1, batch_size=4096)
    drv.go(page, "Train")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Finished. See").wait_for(timeout=300_000)
    drv.wait_idle(page)

    drv.go(page, "Recommendations")
    page.get_by_text("Top 10 for user").wait_for()
    drv.wait_idle(page)
    main = page.locator('[data-testid="stMain"]')
    expect(main).to_contain_text("![px](")                   # the markup is shown literally ...
    expect(main).to_contain_text(":red[RED")
    expect(main).to_contain_text("/pixel")
    _no_live_markup(page, base, "Recommendations")           # ... and nothing of it is live
    # tables' own CSV export (client side, cells verbatim) is off: our formula-safe button is the export
    assert page.locator('[data-testid="stElementToolbarButtonContainer"]', has_text="Download").count() == 0
    drv.assert_no_exception(page, "on Recommendations")
    drv.shot(page, artifacts / "hostile-recommendations.png")

    with page.expect_download() as dl:
        page.get_by_test_id("stDownloadButton").get_by_role("button", name="Download as CSV").click()
    rows = list(csv.DictReader(io.StringIO(open(dl.value.path(), encoding="utf-8-sig").read())))
    assert rows and all(r["title"].startswith("'=HYPERLINK") for r in rows), [r["title"][:20] for r in rows]

    page.get_by_role("button", name="Explain").first.click()
    drv.wait_title(page, "Explain a recommendation")
    page.get_by_text("Why user").first.wait_for()
    drv.wait_idle(page)
    expect(main).to_contain_text("![px](")
    _no_live_markup(page, base, "Explain")
    drv.assert_no_exception(page, "on Explain")
    drv.shot(page, artifacts / "hostile-explain.png")
    page.wait_for_timeout(1000)          # time for any stray fetch to arrive
    assert hits == [], f"the browser fetched URLs from uploaded text: {hits}"
