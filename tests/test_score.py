"""Batch scoring (issue 26, item 3): ``python -m mtlrec score`` over a file of (user, item) pairs and
``python -m mtlrec recommend --users`` for many users at once."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from _fixtures_cli import write_cli_case
from _fixtures_train import TASKS, make_dataset


def _main(capsys, *args):
    from mtlrec.__main__ import main
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A tiny MMoE trained by ``python -m mtlrec train`` on a CSV with a numeric and a categorical context
    feature (age, genre): its folder and the interactions file it was trained on."""
    from mtlrec.__main__ import main
    d = tmp_path_factory.mktemp("score_cli")
    cfg = write_cli_case(d / "case", model={"arch": "mmoe", "n_experts": 2, "expert_dims": [8], "tower_dims": [4],
                                            "embedding_dim": 4})
    assert main(["train", "--config", str(cfg), "--out", str(d / "run"), "--json"]) == 0
    return d / "run", d / "case" / "interactions.csv"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run with user features, four tasks (a multilabel one among them) and titles, loaded."""
    from mtlrec.config import RunConfig
    from mtlrec.runs.load import load_run
    from mtlrec.training.pipeline import run_training
    ds = make_dataset(n_users=30, n_items=40, n_rows=900)
    cfg = RunConfig.from_dict({"tasks": TASKS, "model": {"arch": "mmoe", "n_experts": 2, "expert_dims": [8],
                                                         "tower_dims": [4]},
                               "train": {"epochs": 1, "batch_size": 128, "lr": 0.01, "device": "cpu",
                                         "ranking_k": 0}})
    d = tmp_path_factory.mktemp("score") / "run"
    run_training(cfg, d, dataset=ds)
    return load_run(d)


def _score(capsys, run_dir, pairs, out, *extra):
    code, stdout, err = _main(capsys, "score", "--run", run_dir, "--pairs", pairs, "--out", out, "--json", *extra)
    return code, (json.loads(stdout) if stdout.strip() else None), err


def test_scores_equal_the_models_own_test_predictions(cli_run, tmp_path, capsys):
    """The test rows of the training file, with their own context values (age, genre), scored from raw text:
    the same click probability and rating as the predictions training stored for them, in the file's order."""
    from mtlrec.runs.load import load_run, read_predictions
    run_dir, interactions = cli_run
    r = load_run(run_dir)
    raw = pd.read_csv(interactions)
    rows = r.dataset.row_ids("test")
    pairs = raw.iloc[rows][["user_id", "item_id", "age", "genre"]]
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    code, doc, err = _score(capsys, run_dir, tmp_path / "pairs.csv", tmp_path / "scores.csv")
    assert code == 0, err
    assert doc["rows"] == len(rows) and doc["context_columns"] == ["genre", "age"]
    assert doc["unknown_user_rows"] == doc["unknown_item_rows"] == 0
    got = pd.read_csv(tmp_path / "scores.csv")
    assert list(got.columns) == ["user_id", "item_id", "user_known", "item_known", "click", "rating", "score"]
    assert got["user_id"].tolist() == pairs["user_id"].tolist() and got["item_id"].tolist() == pairs["item_id"].tolist()
    stored = read_predictions(run_dir, "test")["tasks"]
    np.testing.assert_allclose(got["click"], stored["click"]["p"], atol=1e-5)
    np.testing.assert_allclose(got["rating"], stored["rating"]["p"], atol=1e-5)
    assert "rows" in err                                           # progress on stderr


def test_scores_equal_recommend_for_the_same_pairs_in_order_with_duplicates(run, tmp_path, capsys):
    from mtlrec.serve.recommend import pair_score
    ds = run.dataset
    rng = np.random.default_rng(1)
    users = [str(ds.user_ids[i]) for i in rng.integers(0, len(ds.user_ids), 40)]
    items = [str(ds.item_ids[i]) for i in rng.integers(0, len(ds.item_ids), 40)]
    users[7], items[7] = users[3], items[3]                        # a duplicate, kept where it is
    pd.DataFrame({"user": users, "item": items}).to_csv(tmp_path / "pairs.csv", index=False)
    code, doc, err = _score(capsys, run.run_dir, tmp_path / "pairs.csv", tmp_path / "scores.csv")
    assert code == 0, err
    got = pd.read_csv(tmp_path / "scores.csv", dtype={"user": str, "item": str})
    assert got["user"].tolist() == users and got["item"].tolist() == items and len(got) == 40
    assert got["user_known"].all() and got["item_known"].all()
    assert [c for c in got.columns if c.startswith("genres:")] == [f"genres:{g}" for g in
                                                                   ("Action", "Comedy", "Drama", "Horror")]
    for j in (0, 3, 7, 19, 39):
        ref = pair_score(run, users[j], items[j])
        assert got["score"][j] == pytest.approx(ref["score"], abs=1e-5)
        for t in ("click", "like", "rating"):
            assert got[t][j] == pytest.approx(ref["tasks"][t], abs=1e-5)
        assert got["genres:Drama"][j] == pytest.approx(ref["tasks"]["genres"]["Drama"], abs=1e-5)
    # weights as recommend takes them: only the click probability
    code, _, err = _score(capsys, run.run_dir, tmp_path / "pairs.csv", tmp_path / "click.csv", "--weights", "click=1")
    assert code == 0, err
    only = pd.read_csv(tmp_path / "click.csv")
    np.testing.assert_allclose(only["score"], only["click"], atol=1e-6)


def test_unknown_users_and_items_are_scored_as_a_cold_start(run, tmp_path, capsys):
    """An unknown user scores as recommend's new user (whatif, no features given); an unknown item gets the
    unknown id and default features -- every unknown item alike -- and both are flagged."""
    from mtlrec.serve.whatif import whatif_scores
    ds = run.dataset
    known_u, known_i = str(ds.user_ids[2]), str(ds.item_ids[4])
    pairs = pd.DataFrame({"user": ["nobody", known_u, known_u, "nobody"],
                          "item": [known_i, "new-item", "other-new", "new-item"]})
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    code, doc, err = _score(capsys, run.run_dir, tmp_path / "pairs.csv", tmp_path / "scores.csv")
    assert code == 0, err
    assert doc["unknown_user_rows"] == 2 and doc["unknown_item_rows"] == 3
    got = pd.read_csv(tmp_path / "scores.csv")
    assert got["user_known"].tolist() == [False, True, True, False]
    assert got["item_known"].tolist() == [True, False, False, False]
    cold = whatif_scores(run, None, None)
    assert got["score"][0] == pytest.approx(float(cold["score"][4]), abs=1e-5)
    assert got["click"][0] == pytest.approx(float(cold["preds"]["click"][4]), abs=1e-5)
    assert got["score"][1] == pytest.approx(got["score"][2], abs=1e-6)
    assert np.isfinite(got.drop(columns=["user", "item"]).to_numpy(dtype=float)).all()


@pytest.mark.parametrize("text, where, column", [
    ("user,item\nu1,i1\nu2,i2\n,i3\nu4,i4\n", "rows 3", "user"),
    ("user,item\nu1,i1\nu2,i2\nu3,i3\nu4,i4\nu5,\n", "rows 5", "item"),           # past the first chunk
    ("user,item\nu1,i1\nu2,i2\nu3,i3,extra\n", "rows 3", None),
    ("user,item\nu1,i1,extra\nu2,i2\n", "rows 1", None),
    ("customer,item\nu1,i1\n", "no user id column", None),
])
def test_a_bad_row_exits_2_names_it_and_leaves_no_file(run, tmp_path, capsys, text, where, column):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(text)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, doc, err = _score(capsys, run.run_dir, pairs, out_dir / "scores.csv", "--chunk-rows", "2")
    assert code == 2
    assert "pairs.csv" in err and where in err and "Fix:" in err and "Traceback" not in err
    if column:
        assert f"column '{column}'" in err
    assert doc["error"] and list(out_dir.iterdir()) == []          # nothing partial, no temporary file


def test_a_context_value_that_is_no_number_is_named(cli_run, tmp_path, capsys):
    run_dir, _ = cli_run
    (tmp_path / "pairs.csv").write_text("user_id,item_id,age,genre\n1,2,0.5,a\n3,4,old,b\n")
    code, doc, err = _score(capsys, run_dir, tmp_path / "pairs.csv", tmp_path / "scores.csv")
    assert code == 2 and "column 'age', rows 2: 'old' is not a number" in err
    assert not (tmp_path / "scores.csv").exists()


def test_chunked_streaming_gives_the_output_of_one_chunk(run, tmp_path, capsys):
    ds = run.dataset
    rng = np.random.default_rng(2)
    users = [str(ds.user_ids[i]) for i in rng.integers(0, len(ds.user_ids), 23)] + ["stranger, \"quoted\""]
    items = [str(ds.item_ids[i]) for i in rng.integers(0, len(ds.item_ids), 23)] + ["i0"]
    pd.DataFrame({"user": users, "item": items}).to_csv(tmp_path / "pairs.csv", index=False)
    frames = []
    for chunk in (1, 5, 1000):
        code, doc, err = _score(capsys, run.run_dir, tmp_path / "pairs.csv", tmp_path / f"s{chunk}.csv",
                                "--chunk-rows", chunk)
        assert code == 0 and doc["rows"] == 24, err
        frames.append(pd.read_csv(tmp_path / f"s{chunk}.csv"))
    for f in frames[:2]:
        assert list(f.columns) == list(frames[2].columns)
        assert f[["user", "item", "user_known", "item_known"]].equals(frames[2][["user", "item", "user_known",
                                                                                  "item_known"]])
        np.testing.assert_allclose(f.iloc[:, 4:].to_numpy(float), frames[2].iloc[:, 4:].to_numpy(float), atol=1e-6)


def test_recommend_users_gives_each_users_own_list(run, tmp_path, capsys):
    """``recommend --users``: per user the list single-user recommend gives (items, order, scores), duplicates
    and unknown users kept in the file's order, an unknown user with the cold-start list."""
    from mtlrec.serve.recommend import recommend
    from mtlrec.serve.whatif import whatif_recommend
    ds = run.dataset
    users = [str(u) for u in ds.user_ids[:12]] + ["nobody", str(ds.user_ids[0])]
    pd.DataFrame({"user": users}).to_csv(tmp_path / "users.csv", index=False)
    code, out, err = _main(capsys, "recommend", "--run", run.run_dir, "--users", tmp_path / "users.csv", "--k", 5,
                           "--out", tmp_path / "recs.csv", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["users"] == 14 and doc["unknown_users"] == 1 and "users" in err
    recs = pd.read_csv(tmp_path / "recs.csv", dtype={"user": str, "item": str})
    assert list(recs.columns)[:5] == ["user", "user_known", "rank", "item", "score"] and "title" in recs.columns
    assert list(dict.fromkeys(recs["user"])) == users[:13]           # the file's order
    at = 0
    for u in users:
        ref = recommend(run, u, k=5) if u != "nobody" else whatif_recommend(run, None, k=5)["items"]
        mine = recs.iloc[at:at + len(ref)]
        at += len(ref)
        assert mine["user"].tolist() == [u] * len(ref) and mine["rank"].tolist() == list(range(1, len(ref) + 1))
        _same_ranking(mine[["item", "score"]].to_dict("records"), ref)
        assert mine["user_known"].tolist() == [u != "nobody"] * len(ref)
    assert at == len(recs) == doc["rows"] > 50


def test_recommend_users_in_small_tiles_equals_recommend(run):
    """Blocks of 3 users and passes of 10 (user, item) pairs: the catalogue is cut in tiles and put back."""
    from mtlrec.serve.batch import recommend_users
    from mtlrec.serve.recommend import recommend
    users = [str(u) for u in run.dataset.user_ids[10:20]]
    got = list(recommend_users(run, users, 40, weights={"click": 1, "rating": 2}, exclude_seen=False,
                               block_users=3, rows_per_pass=10))
    for u, (uid, known, items) in zip(users, got):
        ref = recommend(run, u, k=40, weights={"click": 1, "rating": 2}, exclude_seen=False)
        assert uid == u and known
        _same_ranking(items, ref)


def _same_ranking(items, ref, tol=1e-5):
    """The same list up to float noise: equal scores rank by rank, and an item may only trade places with
    one of (nearly) the same score (two ways of computing can break a near-tie differently)."""
    assert len(items) == len(ref)
    assert all(abs(i["score"] - r["score"]) <= tol for i, r in zip(items, ref))
    where = {r["item"]: r["score"] for r in ref}
    last = ref[-1]["score"]
    assert all(abs(where[i["item"]] - i["score"]) <= tol if i["item"] in where else abs(i["score"] - last) <= tol
               for i in items)


def test_recommend_users_needs_an_output_file(run, tmp_path, capsys):
    (tmp_path / "users.csv").write_text("user\nu1\n")
    code, out, err = _main(capsys, "recommend", "--run", run.run_dir, "--users", tmp_path / "users.csv")
    assert code == 2 and "--out" in err


def test_a_run_with_an_attention_history_scores_as_recommend(tmp_path):
    """The user's behaviour history is part of the pair's input as in recommend (a new user's is empty)."""
    from mtlrec.config import RunConfig
    from mtlrec.runs.load import load_run
    from mtlrec.serve.batch import PairScorer, recommend_users
    from mtlrec.serve.recommend import pair_score, recommend
    from mtlrec.serve.whatif import whatif_scores
    from mtlrec.training.pipeline import run_training
    cfg = RunConfig.from_dict({"tasks": TASKS, "model": {"arch": "mmoe", "n_experts": 2, "expert_dims": [8],
                                                         "history": {"length": 5, "encoder": "attention"}},
                               "train": {"epochs": 1, "batch_size": 128, "device": "cpu", "ranking_k": 0}})
    run_training(cfg, tmp_path / "run", dataset=make_dataset(n_users=30, n_items=40, n_rows=900))
    run = load_run(tmp_path / "run")
    users, items = ["u1", "u5", "nobody"], ["i3", "i7", "i3"]
    got = PairScorer(run).score(np.array(users, object), np.array(items, object))
    for j in range(2):
        assert got["score"][j] == pytest.approx(pair_score(run, users[j], items[j])["score"], abs=1e-5)
    assert got["score"][2] == pytest.approx(float(whatif_scores(run, None)["score"][3]), abs=1e-5)
    (u, known, top), = recommend_users(run, ["u2"], 5)
    assert known
    _same_ranking(top, recommend(run, "u2", k=5))


def test_ids_written_as_floats_or_padded_still_match(cli_run, tmp_path, capsys):
    """"1.0" and " 1 " are user 1 (as preparation writes integer-valued ids); the output keeps the text given."""
    run_dir, _ = cli_run
    (tmp_path / "pairs.csv").write_text("user,item\n1,2\n1.0,2.00\n 1 ,2\n")
    code, doc, err = _score(capsys, run_dir, tmp_path / "pairs.csv", tmp_path / "scores.csv")
    assert code == 0 and doc["unknown_user_rows"] == doc["unknown_item_rows"] == 0, err
    got = pd.read_csv(tmp_path / "scores.csv", dtype={"user": str, "item": str})
    assert got["user"].tolist() == ["1", "1.0", "1"] and got["item"].tolist() == ["2", "2.00", "2"]
    assert got["score"].round(5).nunique() == 1
