"""What if: a hypothetical user (edited features, or a new user known only by features) is scored,
ranked and explained without touching the run; the CLI's --features path."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _fixtures_train import TASKS, tiny_run_folder
from _fixtures_whatif import make_whatif_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run_folder(tmp_path_factory.mktemp("whatif_run") / "run", make_whatif_dataset())


@pytest.fixture(scope="module")
def run(run_dir):
    from mtlrec.runs.load import load_run
    return load_run(run_dir)


def _arrays(ds) -> dict:
    out = {f"user_table/{k}": np.array(v, copy=True) for k, v in ds.user_table.items()}
    out.update({f"item_table/{k}": np.array(v, copy=True) for k, v in ds.item_table.items()})
    for s, cols in ds.rows.items():
        out.update({f"rows/{s}/{k}": np.array(v, copy=True) for k, v in cols.items()})
    return out


def test_changing_age_changes_only_what_depends_on_it(run):
    from mtlrec.serve.recommend import fuse, score_items
    from mtlrec.serve.whatif import candidate_features, current_values, whatif_scores
    state = copy.deepcopy(run.model.state_dict())
    arrays = _arrays(run.dataset)
    user_info = run.dataset.user_info.copy()
    now = current_values(run, "u3")
    assert abs(now["age"] - float(run.dataset.user_info["age"][3])) < 1e-2       # years, as in the data
    res = whatif_scores(run, "u3", {"age": now["age"] + 25})
    today = score_items(run, run.dataset.user_index("u3"))
    assert res["hypothetical"] is True and res["edits"] == {"age": now["age"] + 25}
    assert np.max(np.abs(res["preds"]["click"] - today["click"])) > 1e-4      # the user's scores move
    # the item side of the model input is the same; the user id and occupation columns too
    emb = run.model.embed
    with torch.no_grad():
        x_old = emb(run.device_data().candidates(3))
        x_new = emb(candidate_features(run, "u3", {"age": now["age"] + 25}))
    cols = run.model.input_groups() if hasattr(run.model, "input_groups") else run.model.embedder.input_groups()
    for group, c in cols.items():
        same = torch.allclose(x_old[:, c], x_new[:, c])
        assert same == (group != "age"), group
    # nothing stored changed: dataset arrays, raw user columns, model weights
    for k, v in _arrays(run.dataset).items():
        assert np.array_equal(v, arrays[k]), k
    assert run.dataset.user_info.equals(user_info)
    for k, v in run.model.state_dict().items():
        assert torch.equal(v, state[k]), k
    # back to today's list when the edits are undone
    assert np.allclose(fuse(run, score_items(run, 3)), fuse(run, today), atol=1e-6)


def test_editing_to_the_current_values_reproduces_todays_scores_and_list(run):
    from mtlrec.serve.recommend import fuse, recommend, score_items
    from mtlrec.serve.whatif import current_values, whatif_recommend, whatif_scores
    now = current_values(run, "u5")
    res = whatif_scores(run, "u5", dict(now))
    today = score_items(run, run.dataset.user_index("u5"))
    for t in ("click", "like", "rating"):
        assert np.max(np.abs(res["preds"][t] - today[t])) < 1e-5, t
    assert np.max(np.abs(res["score"] - fuse(run, today))) < 1e-5
    listed = whatif_recommend(run, "u5", dict(now), k=10)
    assert [r["item"] for r in listed["items"]] == [r["item"] for r in recommend(run, "u5", k=10)]
    assert [r["rank"] for r in listed["items"]] == list(range(1, 11))
    seen = {str(run.dataset.item_ids[i]) for i in run.dataset.interacted_items(run.dataset.user_index("u5"))}
    assert not seen & {r["item"] for r in listed["items"]}


def test_a_new_user_with_features_only_gets_a_list_of_k_items(run):
    from mtlrec.serve.whatif import whatif_recommend
    res = whatif_recommend(run, None, {"age": 24, "occupation": "student"}, k=7)
    assert res["hypothetical"] is True and res["new_user"] is True and res["user"] is None
    assert len(res["items"]) == 7 and len({r["item"] for r in res["items"]}) == 7
    assert res["features"] == {"age": 24, "occupation": "student"}
    assert all(r["title"].startswith("Movie") for r in res["items"])
    other = whatif_recommend(run, None, {"age": 70, "occupation": "artist"}, k=7)
    assert [r["score"] for r in other["items"]] != [r["score"] for r in res["items"]]


def test_a_new_user_gets_no_hidden_defaults(run, capsys):
    """Issue 21 item 10: the features a new user was not given are filled in -- each one comes back
    with its value, that it is a default and how the default was chosen; the value reported is the
    one the model scored (giving it explicitly changes nothing)."""
    from mtlrec.__main__ import main
    from mtlrec.serve.whatif import whatif_recommend, whatif_scores
    res = whatif_recommend(run, None, {"age": 24}, k=5)
    assert res["defaults"] == ["occupation"]
    assert res["filled"]["age"] == {"value": 24, "source": "given", "how": "given"}
    occ = res["filled"]["occupation"]
    assert occ["source"] == "default" and occ["value"] in ("student", "engineer", "artist")
    codes = np.asarray(run.dataset.user_table["occupation"])
    n = int((codes == {"student": 1, "engineer": 2, "artist": 3}[occ["value"]]).sum())
    assert occ["how"].endswith(f": {n:,} of {len(codes):,} users, {n / len(codes):.0%}"), occ
    same = whatif_scores(run, None, {"age": 24, "occupation": occ["value"]})
    assert np.allclose(whatif_scores(run, None, {"age": 24})["score"], same["score"])
    # a new user with nothing given: every value is a default, numbers with the statistic they are
    none = whatif_scores(run, None, {})
    assert none["defaults"] == ["age", "occupation"]
    assert none["filled"]["age"]["value"] == 30.0 and "missing value" in none["filled"]["age"]["how"]
    # an existing user's unchanged values are the user's own, not defaults
    own = whatif_scores(run, "u2", {"age": 50})
    assert own["defaults"] == [] and own["filled"]["occupation"]["source"] == "data"
    # the CLI names every value it filled in, and how
    assert main(["recommend", "--run", str(run.run_dir), "--features", '{"age": 24}', "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert f"left at their default (give them in --features to choose): occupation={occ['value']} ({occ['how']})" \
        in out


def test_unknown_features_and_values_give_a_clear_data_error(run):
    from mtlrec.errors import DataError
    from mtlrec.serve.whatif import whatif_scores
    with pytest.raises(DataError) as e:
        whatif_scores(run, "u1", {"occupation": "astronaut"})
    msg = str(e.value)
    assert "astronaut" in msg and "occupation" in msg and "student" in msg and "engineer" in msg
    with pytest.raises(DataError) as e:
        whatif_scores(run, None, {"shoe_size": 44})
    assert "shoe_size" in str(e.value) and "age" in str(e.value) and "occupation" in str(e.value)
    with pytest.raises(DataError) as e:
        whatif_scores(run, "u1", {"age": "old"})
    assert "'old' is not a number" in str(e.value)
    with pytest.raises(DataError) as e:
        whatif_scores(run, "nobody", {"age": 30})
    assert "nobody" in str(e.value)


def test_the_hypothetical_pair_is_explained_with_shap_and_its_rank_moves(run):
    from mtlrec.serve.whatif import explain_whatif, pair_change, whatif_scores
    item = "i7"
    res = explain_whatif(run, "u3", item, {"age": 80, "occupation": "artist"}, background=30)
    assert res["hypothetical"] is True and res["edits"] == {"age": 80, "occupation": "artist"}
    for name, t in res["tasks"].items():
        assert abs(t["base_value"] + sum(t["contributions"].values()) - t["output"]) < 1e-3, name
    f = res["fused"]
    assert abs(f["base_value"] + sum(f["contributions"].values()) - f["score"]) < 1e-4
    s = whatif_scores(run, "u3", {"age": 80, "occupation": "artist"})
    i = run.dataset.item_index(item)
    assert abs(f["score"] - float(s["score"][i])) < 1e-5
    assert res["sentence"].endswith(".")
    ch = pair_change(run, "u3", item, {"age": 80, "occupation": "artist"})
    assert ch["before"]["score"] != ch["after"]["score"]
    assert set(ch["after"]["tasks"]) == {t["name"] for t in TASKS}
    new = explain_whatif(run, None, item, {"age": 20}, background=30)
    assert new["new_user"] is True and "user id" in new["tasks"]["click"]["contributions"]


def test_item_feature_edits_are_refused_clearly_when_the_item_has_none(run):
    from mtlrec.errors import DataError
    from mtlrec.serve.whatif import whatif_scores
    with pytest.raises(DataError) as e:
        whatif_scores(run, "u1", None, item="i1", item_edits={"text": "a new plot"})
    assert "no item feature 'text'" in str(e.value)


def _cli(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "mtlrec", "recommend", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_cli_recommend_with_features(run_dir):
    p = _cli("--run", str(run_dir), "--features", '{"age": 24, "occupation": "student"}', "-k", "5", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["hypothetical"] is True and doc["new_user"] is True and len(doc["items"]) == 5
    p = _cli("--run", str(run_dir), "--features", '{"age": 24}', "--user", "u2", "-k", "3")
    assert p.returncode == 0, p.stderr
    assert "hypothetical" in p.stdout and len([ln for ln in p.stdout.splitlines() if ln.strip()[:2] in ("1.", "2.", "3.")]) == 3
    bad = _cli("--run", str(run_dir), "--features", '{"occupation": "astronaut"}')
    assert bad.returncode == 2 and "astronaut" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    bad = _cli("--run", str(run_dir), "--features", '{"age": 24,')
    assert bad.returncode == 2 and "JSON" in bad.stderr and "Traceback" not in bad.stderr
    none = _cli("--run", str(run_dir))
    assert none.returncode == 2 and "--user" in none.stderr
