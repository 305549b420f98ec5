"""Exports of one run (issue 11): the offline HTML report, the metrics CSV, and the zip round trip
with hostile zips refused and nothing left behind."""
from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from _fixtures_train import TASKS, make_dataset
from mtlrec.config import RunConfig
from mtlrec.errors import DataError

HOSTILE = '<script>alert("x")</script><img src="https://evil.example/p.gif">'


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from mtlrec.runs.library import set_meta
    from mtlrec.training.pipeline import run_training
    root = tmp_path_factory.mktemp("runs")
    t = {"epochs": 1, "batch_size": 256, "lr": 0.01, "log_every": 5, "device": "cpu", "seed": 0, "ranking_k": 0}
    cfg = RunConfig.from_dict({"name": "rep", "tasks": TASKS[:3], "model": {"arch": "shared_bottom"}, "train": t})
    d = root / "rep"
    run_training(cfg, d, dataset=make_dataset(n_rows=600))
    set_meta("rep", root, name=HOSTILE, tags=["=HYPERLINK(\"x\")", "<b>t</b>"])
    return d


@pytest.fixture(scope="module")
def report(run_dir):
    from mtlrec.runs.report import report_html
    return report_html(run_dir, k=3)


def test_report_is_self_contained_and_escapes_user_text(report, run_dir, tmp_path, capsys):
    # nothing to load from elsewhere: no URL text at all, no src/href to a scheme, plotly.js inline once
    # (the only URL text is the hostile name's, escaped: shown as text, never loaded)
    assert len(re.findall(r"https?://|//cdn|ftp://", report, re.I)) == report.count("&quot;https://evil.example/p.gif")
    assert not re.search(r"""(src|href)\s*=\s*["']?(?!#|data:)[a-z]""", report.split("</head>", 1)[1], re.I)
    assert report.count("<script") >= 2 and "Content-Security-Policy" in report and "default-src 'none'" in report
    head, body = report.split("</head>", 1)
    assert "plotly" in head.lower() and len(head) > 1_000_000          # plotly.js embedded in <head> ...
    assert body.count("Plotly.newPlot") >= 6                           # ... and used by every figure
    # the hostile display name is shown as text, never as markup
    assert HOSTILE not in report and "<img" not in report
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in report
    assert "&lt;b&gt;t&lt;/b&gt;" in report
    for section in ("Summary", "Data", "Configuration", "Test metrics per task", "Training curves",
                    "Multi-task gain", "Example recommendations", "Why the top item?"):
        assert f"<h2>{section}" in report
    assert "fused score" in report and "top contributions" in report
    # the CLI writes the same report
    from mtlrec.__main__ import main
    out = tmp_path / "r.html"
    capsys.readouterr()
    assert main(["report", "--run", str(run_dir), "--out", str(out), "--no-explain", "--csv",
                 str(tmp_path / "m.csv"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["bytes"] == out.stat().st_size and "Why the top item?" not in out.read_text()
    assert (tmp_path / "m.csv").read_bytes().startswith(b"\xef\xbb\xbfsplit,task,metric")
    assert main(["report", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert "config.json" in err and "Fix:" in err and not (tmp_path / "x.html").exists()


def test_metrics_csv_is_formula_safe_and_marks_the_headline_metric(run_dir, tmp_path):
    import pandas as pd

    from mtlrec.runs.report import metrics_csv
    d = tmp_path / "r"
    import shutil
    shutil.copytree(run_dir, d)
    m = json.loads((d / "metrics.json").read_text())
    m["test"]["=cmd|' /C calc'!A0"] = {"auc": 0.5}
    (d / "metrics.json").write_text(json.dumps(m))
    df = pd.read_csv(io.BytesIO(metrics_csv(d)), encoding="utf-8-sig")
    assert set(df["split"]) == {"valid", "test", "training dynamics"}     # dynamics: recorded by default
    assert not df["task"].astype(str).str.startswith(("=", "+", "-", "@")).any()
    head = df[(df["split"] == "test") & df["headline"]]
    assert dict(zip(head["task"], head["metric"])) == {"click": "auc", "like": "auc", "rating": "rmse"}
    assert set(df.loc[df["metric"] == "rmse", "direction"]) == {"lower is better"}


def test_report_and_csv_show_the_model_beside_the_popularity_baseline(run_dir, tmp_path):
    import shutil

    import pandas as pd

    from mtlrec.runs.report import metrics_csv, report_html
    d = tmp_path / "ranked"
    shutil.copytree(run_dir, d)
    m = json.loads((d / "metrics.json").read_text())
    m["ranking"] = {"click": {"recall@10": 0.30, "ndcg@10": 0.25, "hitrate@10": 0.60, "mrr": 0.31}}
    m["ranking_baseline"] = {"popularity": {"click": {"recall@10": 0.40, "ndcg@10": 0.35, "hitrate@10": 0.70,
                                                      "mrr": 0.41}}}
    m["ranking_info"] = {"status": "done", "users": 3, "of_users": 9, "items": 60, "sampled": True, "k": 10}
    (d / "metrics.json").write_text(json.dumps(m))
    html = report_html(d, k=2, explain=False)
    ranking = html.split("<h3>Ranking (test users)</h3>", 1)[1].split("</ul>", 1)[0]
    assert "<td>model</td>" in ranking and "<td>popularity</td>" in ranking
    assert "Ranked 3 of 9 test users (a seeded sample) over 60 items, top 10." in ranking
    skipped = report_html(run_dir, k=2, explain=False).split("<h3>Ranking (test users)</h3>", 1)[1]
    assert skipped.split("</p>", 1)[0].endswith("Ranking skipped: the ranking over the whole catalogue was "
                                                "switched off for this run.")
    assert "popularity beats the model on all 4 metrics (ndcg@10 0.250 vs 0.350)" in ranking
    df = pd.read_csv(io.BytesIO(metrics_csv(d)), encoding="utf-8-sig")
    pop = df[df["split"] == "ranking (popularity baseline)"]
    assert dict(zip(pop["metric"], pop["value"])) == pytest.approx({"recall@10": 0.40, "ndcg@10": 0.35,
                                                                    "hitrate@10": 0.70, "mrr": 0.41})


# ---- zip ---------------------------------------------------------------------------------------
def test_zip_round_trip_serves_recommendations(run_dir, tmp_path, capsys):
    from mtlrec.serve.recommend import recommend
    from mtlrec.runs.archive import export_zip, import_zip
    from mtlrec.runs.library import list_run_rows
    from mtlrec.runs.load import load_run
    data = export_zip(run_dir)
    names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    assert {"config.json", "model.pt", "dataset/dataset.json", "meta.json"} <= names
    index = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("dataset/dataset.json"))["arrays"]
    assert {f"dataset/arrays/{k}.npy" for k in index} <= names and "dataset/arrays.npz" not in names
    root = tmp_path / "other-server-runs"
    d = import_zip(data, root)
    assert d.parent == root and d.name.startswith(tuple("0123456789"))
    run = load_run(d)
    items = recommend(run, "u3", k=4)
    assert len(items) == 4 and all(isinstance(it["score"], float) for it in items)
    assert load_run(run_dir).metrics["test"] == run.metrics["test"]
    (row,) = list_run_rows(root)
    assert row["name"] == list_run_rows(run_dir.parent)[0]["name"] and row["status"] == "finished"
    # the CLI too
    zp = tmp_path / "r.zip"
    from mtlrec.__main__ import main
    capsys.readouterr()
    assert main(["runs", "export", str(run_dir), "--out", str(zp), "--root", str(run_dir.parent)]) == 0
    assert main(["runs", "import", str(zp), "--root", str(root), "--name", "copy", "--json"]) == 0
    assert Path(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_dir"]).is_dir()
    assert len(list_run_rows(root)) == 2


class _Evil:
    """Unpickling this would touch a marker file: weights_only=True must never run it."""
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _rezip(data: bytes, replace: dict | None = None, add: dict | None = None) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n in src.namelist():
            z.writestr(n, (replace or {}).get(n, src.read(n)))
        for n, b in (add or {}).items():
            z.writestr(n, b)
    return buf.getvalue()


def _drop(data: bytes, *names: str) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n in src.namelist():
            if n not in names:
                z.writestr(n, src.read(n))
    return buf.getvalue()


def test_a_zip_of_an_older_version_with_arrays_npz_still_imports(run_dir, tmp_path):
    """Runs exported before issue 16 carry dataset/arrays.npz (dataset format 2)."""
    from mtlrec.serve.recommend import recommend
    from mtlrec.runs.archive import export_zip, import_zip
    from mtlrec.runs.load import load_run
    data = export_zip(run_dir)
    src = zipfile.ZipFile(io.BytesIO(data))
    doc = json.loads(src.read("dataset/dataset.json"))
    npz = io.BytesIO()
    np.savez(npz, **{k: np.load(io.BytesIO(src.read(f"dataset/arrays/{k}.npy"))) for k in doc["arrays"]})
    doc["format"] = "mtlrec-dataset/2"
    old = _drop(data, "dataset/dataset.json", *[f"dataset/arrays/{k}.npy" for k in doc["arrays"]])
    old = _rezip(old, add={"dataset/dataset.json": json.dumps(doc).encode(), "dataset/arrays.npz": npz.getvalue()})
    d = import_zip(old, tmp_path / "runs")
    assert (d / "dataset" / "arrays.npz").is_file()
    run = load_run(d)
    assert len(recommend(run, "u3", k=4)) == 4
    # and exported again, it carries its arrays.npz
    names = zipfile.ZipFile(io.BytesIO(export_zip(d))).namelist()
    assert "dataset/arrays.npz" in names and not any(n.startswith("dataset/arrays/") for n in names)


def test_hostile_zips_are_refused_and_leave_nothing_behind(run_dir, tmp_path, monkeypatch, capsys):
    from mtlrec.runs import archive as rep
    data = rep.export_zip(run_dir)
    marker = tmp_path / "PWNED"
    evil = io.BytesIO()
    torch.save({"w": _Evil(str(marker))}, evil)
    cases = {
        "traversal": (_rezip(data, add={"../../escape.json": b"{}"}), "../../escape.json"),
        "absolute": (_rezip(data, add={"/tmp/abs.json": b"{}"}), "not a file of a run folder"),
        "unknown file": (_rezip(data, add={"dataset/run.sh": b"rm -rf /"}), "not a file of a run folder"),
        "pickle in model.pt": (_rezip(data, replace={"model.pt": evil.getvalue()}), "model.pt"),
        "bad json": (_rezip(data, replace={"metrics.json": b"{nope"}), "metrics.json"),
        "not a zip": (b"PK\x03\x04 not really", "not a zip"),
    }
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:                  # a zip without its weights
        for n in src.namelist():
            if n != "model.pt":
                z.writestr(n, src.read(n))
    cases["missing weights"] = (buf.getvalue(), "model.pt")
    arrays = [n for n in src.namelist() if n.startswith("dataset/arrays/")]
    cases["no arrays"] = (_drop(data, *arrays), "dataset/arrays.npz (or dataset/arrays/*.npy)")
    cases["one array missing"] = (_drop(data, "dataset/arrays/a3.npy"), "dataset/arrays/a3.npy is missing")
    pickled = io.BytesIO()
    np.save(pickled, np.array([_Evil(str(marker))], dtype=object), allow_pickle=True)
    cases["pickle in an array"] = (_rezip(data, replace={"dataset/arrays/a3.npy": pickled.getvalue()}),
                                   "dataset/arrays/a3.npy is damaged")
    cases["array traversal"] = (_rezip(data, add={"dataset/arrays/../../x.npy": b"x"}), "not a file of a run folder")
    cases["odd array name"] = (_rezip(data, add={"dataset/arrays/run.npy": b"x"}), "not a file of a run folder")
    root = tmp_path / "runs"
    for case, (blob, expected) in cases.items():
        with pytest.raises(DataError) as ei:
            rep.import_zip(blob, root)
        assert expected in str(ei.value) and ei.value.fix, case
        assert not root.exists() or list(root.iterdir()) == [], case      # nothing left behind
    assert not marker.exists() and not (tmp_path / "escape.json").exists()
    # size caps are counted while unpacking
    monkeypatch.setattr(rep, "MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(DataError, match="unpacks to more than"):
        rep.import_zip(data, root)
    assert list(root.iterdir()) == []
    # the CLI: message, exit 2, no traceback
    zp = tmp_path / "evil.zip"
    zp.write_bytes(cases["traversal"][0])
    from mtlrec.__main__ import main
    capsys.readouterr()
    assert main(["runs", "import", str(zp), "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "escape.json" in err and "Fix:" in err and "Traceback" not in err
