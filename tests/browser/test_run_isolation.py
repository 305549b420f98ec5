"""Run ownership in real Chromium (issue 27, item 1): two browser contexts (two visitors) on one server
served as `make run` serves it (worker processes, no local runs). Visitor A imports a run, which is then
A's; visitor B can neither list, open, read nor delete it -- not on Runs, not by a guessed share link,
not by naming it in B's own workspace (a reload restores selections from it) -- nor see the server's
local run; A still opens it. Then A shares it by a link: B gets it read-only (no delete), until A stops
sharing."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

import appdriver as drv

pytestmark = pytest.mark.browser
NO_RUNS = "No runs yet in this workspace"
NO_RUN = "No finished run in this session yet"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server of its own over a runs root holding one local run (trained outside the app), and the
    zip of another run to import."""
    from _fixtures_train import make_dataset, tiny_run_folder
    from mtlrec.runs.archive import export_zip
    if not Path(drv.CHROMIUM).exists():
        pytest.skip(f"browser tests need Chromium at {drv.CHROMIUM}")
    d = tmp_path_factory.mktemp("ownership")
    src = tiny_run_folder(d / "src" / "20200101-000000-tiny", make_dataset(n_rows=600))
    (d / "run.zip").write_bytes(export_zip(src))
    shutil.copytree(src, d / "runs" / "20200101-000000-local-cli-run")
    with drv.serve(d / "runs", d / "server.log") as url:
        yield url, d / "runs", d / "run.zip", d / "server.log"


def _main(page) -> str:
    return page.locator('[data-testid="stApp"]').inner_text()


def _pick(page, name: str) -> None:
    """On Runs: select the run ``name`` (the only one selected)."""
    picker = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Select runs")
    picker.locator("input").click()
    page.get_by_role("option").filter(has_text=name).first.click()
    page.keyboard.press("Escape")
    page.get_by_role("heading", name=re.compile(rf"Run .*{re.escape(name)}")).wait_for()
    drv.wait_idle(page)


def _runs_listed(page) -> str:
    """On Runs, once drawn: the page's text (the list's count, or the note that there is none)."""
    page.get_by_text(NO_RUNS).or_(page.get_by_text(re.compile(r"\d+ of \d+ runs\."))).first.wait_for()
    drv.wait_idle(page)
    cells = page.locator('[data-testid="stDataFrame"] [role="gridcell"]').all_text_contents()
    return _main(page) + "\n" + "\n".join(cells)


def _import(page, url: str, zip_path: Path, runs: Path) -> str:
    """A imports the zip on Runs; the new run's folder name."""
    drv.open_app(page, url)
    drv.go(page, "Runs")
    _runs_listed(page)
    page.get_by_text("Import a run (a zip").click()
    page.locator(drv.UPLOAD_INPUT).set_input_files(str(zip_path))
    page.get_by_role("button", name="Import", exact=True).click()
    page.locator('[data-testid="stDataFrame"] [role="gridcell"]').filter(has_text="-imported-").first.wait_for(state="attached")
    drv.wait_idle(page)
    (name,) = [p.name for p in runs.iterdir() if "imported" in p.name]
    return name


def _sees_nothing(page, names: list[str], where: str) -> None:
    """Runs lists no run; Results, Recommendations and Explain have none; no page names the runs."""
    drv.go(page, "Runs")
    seen = _runs_listed(page)
    listed = re.search(r"\d+ of \d+ runs\.", seen)
    assert listed is None and NO_RUNS in seen, f"{where}: Runs lists {listed and listed.group(0)}"
    assert not [n for n in names if n in seen], f"{where}: another's run is named on Runs"
    for title, words in (("Results", NO_RUN), ("Recommendations", NO_RUN), ("Explain", "No finished run")):
        drv.go(page, title)
        page.get_by_text(words).wait_for()
        seen += _main(page)
    assert "Run: none yet" in page.locator('[data-testid="stSidebar"]').inner_text(), where
    assert not [n for n in names if n in seen], where
    drv.assert_no_exception(page, where)


def _name_in_own_workspace(page, runs: Path, run: str) -> None:
    """B writes A's run into B's own saved workspace (as selections a reload restores), then reloads."""
    from mtlrec.app import workspace as ws
    wid = re.search(r"[?&]ws=([0-9a-f]{32})", page.url).group(1)
    root = drv.workspaces_dir(runs)
    doc = ws.load(wid, root) if ws.exists(wid, root) else {}
    path = str(runs / run)
    doc.update(runs=[path], opened_runs=[path], selected_run=path, run_owners=1,
               explain_pair={"run_dir": path, "user": "u1", "item": "i1"})
    ws.save(wid, {k: v for k, v in doc.items() if k not in ("format", "version", "saved_at")}, root)
    page.reload()
    drv.wait_title(page, "Explain")


def test_another_visitor_can_neither_list_open_read_nor_delete_a_run(served, browser):
    url, runs, zip_path, log = served
    ctxs = [browser.new_context(viewport={"width": 1400, "height": 900}) for _ in "AB"]
    try:
        for c in ctxs:
            c.set_default_timeout(60_000)
        a, b = (c.new_page() for c in ctxs)
        run = _import(a, url, zip_path, runs)
        _pick(a, run)
        a.get_by_role("button", name="Open as the current run").click()
        drv.wait_title(a, "Results")
        a.get_by_text("Test metrics per task").wait_for()
        drv.go(a, "Recommendations")
        a.get_by_text(re.compile(r"History of user \S+")).wait_for()      # A reads its run's users

        names = [run, "20200101-000000-local-cli-run"]
        drv.open_app(b, url)
        _sees_nothing(b, names, "a second visitor")
        drv.go(a, "Runs")
        assert "1 of 1 runs." in _runs_listed(a), "A's list holds more than A's run"     # not the local run
        b.goto(f"{url}/?share={'Q' * 32}")                               # a guessed share link
        drv.wait_title(b, drv.NAV["Home"])
        _sees_nothing(b, names, "after a guessed share link")
        _name_in_own_workspace(b, runs, run)
        _sees_nothing(b, names, "with the run named in B's own workspace")
        assert (runs / run / "model.pt").is_file()                      # nothing deleted either

        _pick(a, run)                                                   # A: still A's, and A shares it
        a.get_by_role("button", name=re.compile("Share")).click()
        a.get_by_role("button", name=re.compile("Create a share link")).click()
        link = a.locator('[data-testid="stCode"]').filter(has_text="?share=")
        link.wait_for()
        token = re.search(r"\?share=([A-Za-z0-9_-]{32})", link.inner_text()).group(1)
        b.goto(f"{url}/?share={token}")
        drv.wait_title(b, drv.NAV["Home"])
        drv.go(b, "Results")
        b.get_by_text("Test metrics per task").wait_for()
        drv.go(b, "Runs")
        _pick(b, run)
        expect(b.get_by_text("Shared with you, read-only")).to_be_visible()
        expect(b.get_by_role("button", name=re.compile("Delete"))).to_have_count(0)

        a.get_by_role("button", name=re.compile("Stop sharing")).click()
        link.wait_for(state="detached")
        b.reload()
        drv.wait_title(b, "Runs")
        _sees_nothing(b, names, "after A stopped sharing")
        drv.assert_no_exception(a, "visitor A")
    finally:
        for c in ctxs:
            c.close()
    drv.assert_clean_log(log)
