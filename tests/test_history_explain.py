"""Explanations by history items (issue 24, item 3): a planted signal is found for every
architecture, the ablation is the what-if's removal, edge cases say what they are, and the CLI
prints the history reasons."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _fixtures_history import LENGTH, planted_dataset, train_planted
from mtlrec.models import ARCHITECTURES

torch.set_num_threads(1)
SEED = 0          # the planted data's seed (measured: A first for 34-37 of 37 fans per architecture, seeds 0 and 1)
_RUNS: dict = {}


@pytest.fixture(scope="module")
def planted():
    return planted_dataset(seed=SEED)


@pytest.fixture(scope="module")
def trained(planted, tmp_path_factory):
    """{arch: run folder} trained on the planted data, each once for the module (on first use)."""
    base = tmp_path_factory.mktemp("history_explain")

    def get(arch: str, encoder: str = "attention"):
        key = (arch, encoder)
        if key not in _RUNS:
            out = base / f"{arch}-{encoder}"
            res = train_planted(planted, arch, out, encoder=encoder, epochs=20)
            assert res.status == "finished"
            _RUNS[key] = out
        return _RUNS[key]
    yield get
    _RUNS.clear()


def _load(path):
    from mtlrec.runs.load import load_run
    return load_run(path)


def fans_to_explain(run) -> list[str]:
    """Users who rated A 5★ and have not rated B in what recommendations see (B is held out for them)."""
    from mtlrec.serve.history import history_entries, user_history
    out = []
    for u in range(0, 400, 4):
        for uid in (f"u{u}", f"u{u + 1}"):
            items = [e["item"] for e in history_entries(run, *user_history(run, uid))]
            if "A" in items and "B" not in items:
                out.append(uid)
    return out


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_the_explanation_of_b_names_a_first_for_a_user_who_liked_a(trained, arch):
    from mtlrec.explain.history import explain_history
    run = _load(trained(arch))
    fans = fans_to_explain(run)
    assert len(fans) >= 20
    first, ranks = 0, []
    for uid in fans:
        res = explain_history(run, uid, "B")
        first += res["sentence"].startswith(f"Recommended mainly because user {uid} rated Item A 5★")
        by_fused = sorted(res["items"], key=lambda e: -e["fused"])
        ranks.append([e["item"] for e in by_fused].index("A") + 1)
    assert first >= 0.75 * len(fans), (arch, ranks)
    assert int(np.median(ranks)) == 1, (arch, ranks)


def test_removing_an_item_in_the_what_if_moves_the_score_by_its_ablation_contribution(trained):
    from mtlrec.explain.history import explain_history
    from mtlrec.serve.whatif import history_change
    run = _load(trained("mmoe"))
    uid = fans_to_explain(run)[0]
    res = explain_history(run, uid, "B")
    assert res["method"] == "ablation" and len(res["items"]) >= 3
    for e in res["items"][:4]:
        change = history_change(run, uid, "B", remove=e["item"])
        assert change["before"]["score"] == pytest.approx(res["fused"]["score"], abs=1e-5)
        assert change["before"]["score"] - change["after"]["score"] == pytest.approx(e["fused"], abs=1e-5)
        assert e["item"] not in [h["item"] for h in change["history"]]
        rating = change["after"]["tasks"]["rating"] - change["before"]["tasks"]["rating"]
        assert -rating == pytest.approx(e["contributions"]["rating"], abs=1e-4)


def test_adding_a_liked_a_to_a_history_raises_b_and_nothing_is_saved(trained):
    from mtlrec.serve.history import user_history
    from mtlrec.serve.whatif import history_change
    run = _load(trained("mmoe"))
    uid = "u3"                                # never saw A
    stored = user_history(run, uid)[0].copy()
    change = history_change(run, uid, "B", add="A", rating=5)
    assert change["history"][-1]["item"] == "A" and change["history"][-1]["value_text"] == "5★"
    assert change["after"]["score"] > change["before"]["score"] + 0.05
    assert change["after"]["rank"] < change["before"]["rank"] or change["before"]["rank"] == 0
    assert np.array_equal(user_history(run, uid)[0], stored)        # hypothetical: the data is unchanged
    assert "A" not in [it["item"] for it in change["items"]]          # an added item counts as seen


@pytest.mark.parametrize("bad, words", [({"remove": "n999"}, "is not in this run's data"),
                                        ({"add": "A", "rating": 9}, "outside the values seen in training"),
                                        ({"add": "A"}, "needs the rating"),
                                        ({"add": "A", "rating": "lots"}, "must be a number")])
def test_a_bad_history_edit_says_what_is_wrong(trained, bad, words):
    from mtlrec.errors import DataError
    from mtlrec.serve.whatif import history_change
    run = _load(trained("mmoe"))
    with pytest.raises(DataError, match=words):
        history_change(run, "u3", "B", **bad)


def test_removing_an_item_that_is_not_in_the_history_names_the_history(trained):
    from mtlrec.errors import DataError
    from mtlrec.serve.whatif import history_change
    run = _load(trained("mmoe"))
    with pytest.raises(DataError, match="not in this user's history") as e:
        history_change(run, "u3", "B", remove="A")
    assert "pick an item of the history" in str(e.value.fix)


def test_an_empty_history_says_so_and_shapley_values_add_up(trained):
    from mtlrec.explain.history import explain_history
    run = _load(trained("mmoe"))
    empty = (np.full(LENGTH, -1, np.int64), np.zeros(LENGTH, np.float32))
    res = explain_history(run, "u0", "B", history=empty)
    assert res["items"] == [] and "has no history yet" in res["sentence"]
    uid = fans_to_explain(run)[0]
    sh = explain_history(run, uid, "B", method="shapley", samples=16, seed=3)
    total = sum(e["fused"] for e in sh["items"])
    assert total == pytest.approx(sh["fused"]["score"] - sh["fused"]["without_history"], abs=1e-5)
    assert max(sh["items"], key=lambda e: e["fused"])["item"] == "A"


def test_attention_weights_are_given_beside_with_the_note_and_the_mean_encoder_has_none(trained):
    from mtlrec.explain.history import explain_history
    uid = "u0"
    att = explain_history(_load(trained("mmoe")), uid, "B")
    weights = [e["attention"] for e in att["items"]]
    assert round(sum(weights), 4) == 1.0 and "not attributions" in att["attention_note"]
    mean = explain_history(_load(trained("mmoe", "mean")), uid, "B")
    assert mean["encoder"] == "mean" and mean["attention_note"] is None
    assert all(e["attention"] is None for e in mean["items"])
    assert mean["sentence"].startswith("Recommended mainly because") or "held back" in mean["sentence"]


def test_the_history_group_reads_as_the_users_items(trained):
    from mtlrec.explain.values import feature_values
    run = _load(trained("mmoe"))
    text = feature_values(run, "u0", "B")["user history"]["text"]
    assert text.startswith("the user's last ") and "(most recent: " in text and "★" in text
    assert "None" not in text and "text embedding" not in text


# ---- the command line --------------------------------------------------------------------------------
def _main(capsys, *args):
    from mtlrec.__main__ import main
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_explain_prints_the_history_section_and_json_carries_it(trained, capsys):
    run_dir = trained("mmoe")
    uid = fans_to_explain(_load(run_dir))[0]
    code, out, _ = _main(capsys, "explain", "--run", run_dir, "--user", uid, "--item", "B", "--background", 20)
    assert code == 0
    assert "Because of the user's history" in out and "Item A 5★" in out
    assert f"Recommended mainly because user {uid} rated Item A 5★" in out
    assert "Note: Attention weights" in out
    code, out, _ = _main(capsys, "explain", "--run", run_dir, "--user", uid, "--item", "B", "--background", 20,
                         "--json")
    res = json.loads(out)
    assert code == 0 and res["history"]["method"] == "ablation"
    assert {"item", "name", "value_text", "fused", "contributions", "attention"} <= set(res["history"]["items"][0])
    assert res["history"]["sentence"].startswith(f"Recommended mainly because user {uid} rated Item A 5★")


def test_recommend_gives_each_item_its_top_history_reason(trained, capsys):
    run_dir = trained("mmoe")
    uid = fans_to_explain(_load(run_dir))[0]
    code, out, _ = _main(capsys, "recommend", "--run", run_dir, "--user", uid, "--k", 20, "--include-seen", "--json")
    items = json.loads(out)["items"]
    assert code == 0 and "B" in [it["item"] for it in items]
    b = next(it for it in items if it["item"] == "B")
    assert b["history_reason"]["item"] == "A" and b["history_reason"]["contribution"] > 0
    code, out, _ = _main(capsys, "recommend", "--run", run_dir, "--user", uid, "--k", 20, "--include-seen")
    assert code == 0 and f"because user {uid} rated Item A 5★" in out


def test_a_run_without_history_says_it_has_no_history_input(tmp_path, capsys):
    from _fixtures_cli import write_cli_case
    from mtlrec.explain.history import explain_history, history_sentence
    cfg = write_cli_case(tmp_path / "case", model={"arch": "mmoe", "n_experts": 2, "expert_dims": [8],
                                                   "tower_dims": [4], "embedding_dim": 4})
    assert _main(capsys, "train", "--config", cfg, "--out", tmp_path / "run", "--json")[0] == 0
    run = _load(tmp_path / "run")
    assert explain_history(run, "1", "1") is None
    assert history_sentence(None) == "No history reasons: this run has no history input."
    code, out, _ = _main(capsys, "explain", "--run", tmp_path / "run", "--user", 1, "--item", 1,
                         "--background", 10, "--json")
    assert code == 0 and json.loads(out)["history"] is None
    code, out, _ = _main(capsys, "recommend", "--run", tmp_path / "run", "--user", 1, "--json")
    assert code == 0 and all("history_reason" not in it for it in json.loads(out)["items"])


def test_the_html_report_explains_the_top_item_by_the_users_history(trained):
    from mtlrec.runs.report import report_html
    html = report_html(trained("mmoe"), k=3, background=10)
    assert "<h3>Because of the user&#x27;s history</h3>" in html or "<h3>Because of the user's history</h3>" in html
    assert "attention weight" in html and "not attributions" in html
