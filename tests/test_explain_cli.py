"""The explanation commands end to end on a tiny run trained through the CLI (issue 21, item 11):
``explain --lime``, ``explain-global`` and ``explain-dependence`` -- strict JSON (no NaN), text,
offline figure files, and clear errors (exit 2; with --json an {"error"} object) for unknown
users, items, groups, tasks and classes."""
from __future__ import annotations

import json

import pytest

from _fixtures_cli import write_cli_case


def _strict(text: str):
    """JSON as a strict parser reads it: NaN / Infinity refused."""
    def refuse(token):
        raise AssertionError(f"not valid JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def _main(capsys, *args):
    from mtlrec.__main__ import main
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny MMoE (gated: its dependence plot runs on a time budget) trained by ``python -m mtlrec train``."""
    from mtlrec.__main__ import main
    d = tmp_path_factory.mktemp("explain_cli")
    cfg = write_cli_case(d / "case", model={"arch": "mmoe", "n_experts": 2, "expert_dims": [8], "tower_dims": [4],
                                            "embedding_dim": 4})
    assert main(["train", "--config", str(cfg), "--out", str(d / "run"), "--json"]) == 0
    return d / "run"


def test_explain_json_with_lime_beside_shap_is_strict_json(run_dir, capsys):
    """stdout is one strict JSON object with LIME beside SHAP for every task."""
    code, out, err = _main(capsys, "explain", "--run", str(run_dir), "--user", "3", "--item", "5", "--json", "--lime",
                           "--lime-samples", "200", "--background", "20")
    assert code == 0, err
    doc = _strict(out)
    assert set(doc["lime"]) == {"click", "rating"} == set(doc["tasks"])
    for task, r in doc["lime"].items():
        groups = set(doc["tasks"][task]["contributions"])
        assert set(r["lime"]) == set(r["shap"]) == groups == {"user id", "item id", "age", "genre"}
        for g in groups:       # the SHAP beside LIME is the explanation's own
            assert r["shap"][g] == pytest.approx(doc["tasks"][task]["contributions"][g], abs=1e-9)
        assert -1.0 <= r["agreement"] <= 1.0 and r["n_samples"] == 200 and r["method"] == "lime"
    # the sensitive-feature check says what it checked, flagged or not
    check = doc["sensitive_check"]
    assert check["checked"] == ["age"] and check["text"].startswith("Sensitive-feature check")


def test_explain_lime_text_and_undefined_numbers(run_dir, capsys):
    code, out, err = _main(capsys, "explain", "--run", str(run_dir), "--user", "3", "--item", "5", "--lime",
                           "--lime-samples", "100", "--background", "20")
    assert code == 0, err
    assert "LIME beside SHAP: click" in out and "LIME beside SHAP: rating" in out and "rank agreement" in out
    assert "Sensitive-feature check" in out
    # captum's surrogate has no fit score: null in the JSON, never NaN
    code, out, err = _main(capsys, "explain", "--run", str(run_dir), "--user", "3", "--item", "5", "--lime",
                           "--lime-method", "captum", "--lime-samples", "100", "--background", "20", "--json")
    assert code == 0, err
    doc = _strict(out)
    assert doc["lime"]["click"]["score"] is None and doc["lime"]["click"]["method"] == "captum"


def test_explain_global_json_text_and_offline_figures(run_dir, tmp_path, capsys):
    html = tmp_path / "global.html"
    code, out, err = _main(capsys, "explain-global", "--run", str(run_dir), "--rows", "40", "--background", "20",
                           "--json", "--html", str(html))
    assert code == 0, err
    doc = _strict(out)
    assert set(doc["importance"]) == {"click", "rating"} and doc["n_rows"] == 40
    assert set(doc["importance"]["click"]) == {"user id", "item id", "age", "genre"}
    assert set(doc["gates"]["click"]) == {"expert 1", "expert 2"} and doc["html"] == str(html)
    page = html.read_text(encoding="utf-8")
    assert "Content-Security-Policy" in page and "Plotly.newPlot" in page and "Feature-group importance" in page
    assert "://" not in page and "<script src" not in page          # nothing loaded from anywhere
    code, out, err = _main(capsys, "explain-global", "--run", str(run_dir), "--rows", "40", "--background", "20")
    assert code == 0, err
    assert "Feature-group importance per task" in out and "click: " in out and "Mean gate weight" in out


def test_explain_dependence_json_warning_and_figure(run_dir, tmp_path, capsys):
    html = tmp_path / "dep.html"
    code, out, err = _main(capsys, "explain-dependence", "--run", str(run_dir), "--group", "age", "--color-by",
                           "genre", "--task", "rating", "--rows", "30", "--json", "--html", str(html))
    assert code == 0, err
    doc = _strict(out)
    assert doc["group"] == "age" and doc["task"] == "rating" and doc["n_rows"] == 30
    assert len(doc["values"]) == len(doc["shap"]) == len(doc["color"]) == 30
    assert set(doc["color"]) <= {"a", "b", "c"} and "label units" in doc["unit"]
    assert sum(b["n"] for b in doc["summary"]) == 30 and doc["warning"] is None
    assert "SHAP value of age" in html.read_text(encoding="utf-8")
    # a time budget too short for this gated model: 2 background rows, and it says so
    code, out, err = _main(capsys, "explain-dependence", "--run", str(run_dir), "--group", "age", "--rows", "30",
                           "--time-budget", "0.000001")
    assert code == 0, err
    assert "Warning: Only 2 background rows were used" in out and "warning: Only 2 background rows" in err
    assert "mean SHAP" in out


@pytest.mark.parametrize("args, said", [
    (["explain", "--user", "nobody", "--item", "5"], "user 'nobody' is not in this run's data"),
    (["explain", "--user", "3", "--item", "zzz", "--lime"], "item 'zzz' is not in this run's data"),
    (["explain-dependence", "--group", "shoe size"], "no feature group 'shoe size'"),
    (["explain-dependence", "--group", "age", "--color-by", "mood"], "no feature group 'mood'"),
    (["explain-dependence", "--group", "age", "--task", "like"], "no task 'like'"),
    (["explain-dependence", "--group", "age", "--class", "Drama"], "no classes"),
    (["explain-global", "--rows", "0"], "at least 1"),
])
def test_json_errors_are_clear_messages_with_exit_status_2(run_dir, capsys, args, said):
    code, out, err = _main(capsys, args[0], "--run", str(run_dir), *args[1:], "--json")
    assert code == 2, (out, err)
    assert said in _strict(out)["error"] and said in err and "Traceback" not in err


def test_a_missing_run_folder_is_an_error_for_every_command(tmp_path, capsys):
    for cmd, extra in (("explain", ["--user", "1", "--item", "1"]), ("explain-global", []),
                       ("explain-dependence", ["--group", "age"])):
        code, out, err = _main(capsys, cmd, "--run", str(tmp_path / "nope"), *extra, "--json")
        assert code == 2 and "run folder not found" in _strict(out)["error"], (cmd, out, err)
