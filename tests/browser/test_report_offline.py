"""The exported HTML report in real headless Chromium, opened from disk (file://): plotly draws
every figure and the page requests nothing but the file itself."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser


def test_report_opens_offline_and_draws_its_figures(context, tmp_path):
    from _fixtures_train import TASKS, make_dataset
    from mtlrec.config import RunConfig
    from mtlrec.runs.report import report_html
    from mtlrec.training.pipeline import run_training
    t = {"epochs": 2, "batch_size": 256, "lr": 0.01, "log_every": 5, "device": "cpu", "seed": 0, "ranking_k": 0,
         "baselines": True}
    cfg = RunConfig.from_dict({"name": "offline", "tasks": TASKS[:2], "model": {"arch": "shared_bottom"}, "train": t})
    run_training(cfg, tmp_path / "run", dataset=make_dataset(n_rows=600))
    html = report_html(tmp_path / "run", title='<img src="x" onerror="document.title=\'pwned\'">', k=3)
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    n_figs = html.count("Plotly.newPlot")
    assert n_figs >= 5                                    # 2 tasks x (loss, metric) + the gain

    page = context.new_page()
    requests, problems = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n_figs}")
    assert page.locator(".plotly").count() >= n_figs
    # 2 tasks x (train, valid loss; valid metric), then the training dynamics' line charts
    from mtlrec.figures.dynamics import dynamics_figs
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    n_dyn = sum(t.type == "scatter" for f in dynamics_figs(history).values() for t in f.data)
    assert n_dyn >= 5 and "<h2>Training dynamics</h2>" in html
    assert page.locator(".js-plotly-plot .scatterlayer .trace").count() == 6 + n_dyn
    assert page.locator(".js-plotly-plot .barlayer .point").count() == 2          # one gain bar per task
    assert [u for u in requests if not u.startswith(("data:", "blob:"))] == [path.as_uri()]
    assert problems == []                                 # no CSP refusal, no script error
    assert page.title().startswith('<img src="x"') and page.locator("h1 img").count() == 0
    page.close()
