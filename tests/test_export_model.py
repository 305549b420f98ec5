"""Exported models (issue 26 item 2): ``python -m mtlrec export`` writes TorchScript / ONNX files whose
logits equal mtlrec's own on the test split (every architecture, both history encoders, any batch
size), and a sidecar whose vocabularies and scalers encode raw values into the very inputs mtlrec
uses."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from mtlrec.__main__ import main

GENRES = ["Action", "Comedy", "Drama", "Horror"]
TASKS = [{"name": "click", "type": "binary"}, {"name": "like", "type": "binary", "given": "click"},
         {"name": "rating", "type": "regression"}]
# every architecture once; both history encoders; the bias / dot terms on one
CASES = [("shared_bottom", None), ("mmoe", "mean"), ("ple", "attention"), ("esmm", None), ("aitm", "attention")]


def raw_data(seed: int = 0):
    """Users (age with a missing value, occupation), items (year, '|'-joined genres), timed
    interactions with click, like and rating."""
    rng = np.random.default_rng(seed)
    nu, ni, n = 50, 30, 1200
    users = pd.DataFrame({"user": [f"u{i}" for i in range(nu)], "age": rng.integers(18, 70, nu).astype(float),
                          "occupation": rng.choice(["student", "engineer", "artist"], nu)})
    users.loc[3, "age"] = np.nan
    items = pd.DataFrame({"item": [f"m{i}" for i in range(ni)], "year": rng.integers(1970, 2020, ni),
                          "genres": ["|".join(sorted(rng.choice(GENRES, rng.integers(1, 3), replace=False)))
                                     for _ in range(ni)]})
    u, i = rng.integers(0, nu, n), rng.integers(0, ni, n)
    s = rng.normal(size=nu)[u] + rng.normal(size=ni)[i]
    inter = pd.DataFrame({"user": users.user.values[u], "item": items.item.values[i], "ts": np.arange(n) * 60,
                          "click": (s + rng.normal(size=n) > 0).astype(int),
                          "rating": np.clip(np.round(3 + s + rng.normal(size=n)), 1, 5)})
    inter["like"] = ((inter.rating >= 4) & (inter.click == 1)).astype(int)
    return inter, users, items


@pytest.fixture(scope="module")
def prepared():
    from mtlrec.data.raw import RawData
    from mtlrec.data.roles import DataSpec
    from mtlrec.prep import prepare
    inter, users, items = raw_data()
    spec = DataSpec(user_id="user", item_id="item", timestamp="ts",
                    labels={"click": "binary", "like": "binary", "rating": "regression"},
                    categorical={"occupation": "user"}, numeric={"age": "user", "year": "item"},
                    multivalued={"genres": "item"})
    return prepare(RawData(inter, users=users, items=items), spec, {"split": "random", "seed": 1, "negative_ratio": 0})


@pytest.fixture(scope="module")
def runs(prepared, tmp_path_factory):
    """One 1-epoch run folder per case."""
    from mtlrec.config import RunConfig
    from mtlrec.training.pipeline import run_training
    out = {}
    for arch, history in CASES:
        model = {"arch": arch, "embedding_dim": 8}
        if history:
            model["history"] = {"length": 5, "encoder": history}
        if arch == "shared_bottom":
            model.update(biases=True, interaction="dot")
        cfg = RunConfig.from_dict({"tasks": TASKS, "model": model,
                                   "train": {"epochs": 1, "batch_size": 256, "device": "cpu", "ranking_k": 0,
                                             "dynamics_every": 0, "threads": 1}})
        d = tmp_path_factory.mktemp(f"run_{arch}")
        assert run_training(cfg, run_dir=d, dataset=prepared).status == "finished"
        out[arch] = d
    return out


def _export(run_dir, fmt, out, capsys) -> dict:
    assert main(["export", "--run", str(run_dir), "--format", fmt, "--out", str(out), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _session(path, fmt, names):
    if fmt == "onnx":
        import onnxruntime as ort
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in sess.get_inputs()] == names
        return lambda feeds: sess.run(None, feeds)
    m = torch.jit.load(str(path))
    return lambda feeds: [o.numpy() for o in m(*(torch.as_tensor(feeds[n]) for n in names))]


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("arch", [a for a, _ in CASES])
def test_exported_logits_equal_mtlrecs_on_the_test_split_at_any_batch_size(runs, arch, fmt, tmp_path, capsys):
    from mtlrec.runs.load import load_run
    out = tmp_path / f"model.{fmt}"
    res = _export(runs[arch], fmt, out, capsys)
    assert res["check"]["max_abs_diff"] < 1e-5 and res["check"]["split"] == "test"
    doc = json.loads((tmp_path / f"model.{fmt}.json").read_text())
    assert doc["model_file"] == out.name and [o["task"] for o in doc["outputs"]] == ["click", "like", "rating"]
    r = load_run(runs[arch])
    feats, _ = r.device_data().batch("test")
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in r.model(feats).items()}
    names = [i["name"] for i in doc["inputs"]]
    keys = [i["feature"] for i in doc["inputs"]]
    score = _session(out, fmt, names)
    n = len(feats["user_id"])
    for lo, hi in ((0, 1), (1, 8), (0, n)):          # batches of 1, of 7 and the whole split
        got = score({nm: feats[k][lo:hi].numpy() for nm, k in zip(names, keys)})
        assert len(got) == 3
        for g, t in zip(got, ["click", "like", "rating"]):
            assert g.shape == ref[t][lo:hi].shape
            assert np.abs(g - ref[t][lo:hi]).max() <= 1e-5, (arch, fmt, t, hi - lo)


def _raw_records(ds, split: str) -> list[dict]:
    """The raw values (as in the files) of the rows of ``split``, by feature name; the history as raw
    item ids and ratings."""
    from mtlrec.prep.history import value_as_label
    rows = ds.rows[split]
    by_code = {int(c): str(i) for i, c in zip(ds.item_ids, ds.item_table["item_id"])}
    users, items = ds.user_info, ds.item_info
    out = []
    for k, (ui, ii) in enumerate(zip(rows["user_index"], rows["item_index"])):
        rec = {"user_id": users["user"][ui], "age": users["age"][ui], "occupation": users["occupation"][ui],
               "item_id": items["item"][ii], "year": items["year"][ii], "genres": items["genres"][ii]}
        if "history" in rows:
            codes, vals = rows["history"][k], rows["history:value"][k]
            rec["history"] = [by_code[int(c)] for c in codes if c >= 0]
            rec["history:value"] = [value_as_label(ds, v) for c, v in zip(codes, vals) if c >= 0]
        out.append(rec)
    return out


def test_the_sidecar_alone_encodes_raw_values_into_mtlrecs_inputs(runs, tmp_path, capsys):
    """Raw ids, categories, numbers (a missing age included), genres and the history, encoded with
    nothing but the sidecar, are the inputs mtlrec feeds its model; scored, they give its logits."""
    from mtlrec.runs.load import load_run
    from mtlrec.serve.export_schema import encode_records
    out = tmp_path / "m.onnx"
    _export(runs["mmoe"], "onnx", out, capsys)
    doc = json.loads((tmp_path / "m.onnx.json").read_text())
    assert [i["name"] for i in doc["inputs"]] == ["user_id", "occupation", "age", "item_id", "year", "genres",
                                                  "history", "history_value"]
    assert {o["output"] for o in doc["outputs"]} == {"logits"}
    assert doc["outputs"][1]["given"] == "click" and "sigmoid" in doc["outputs"][0]["prediction"]
    r = load_run(runs["mmoe"])
    records = _raw_records(r.dataset, "test")
    assert any(pd.isna(rec["age"]) for rec in _raw_records(r.dataset, "train"))
    enc = encode_records(doc, records + [{"user_id": "nobody", "occupation": "astronaut", "age": None}])
    feats, _ = r.device_data().batch("test")
    n = len(records)
    for spec in doc["inputs"]:
        want = feats[spec["feature"]].numpy()
        got = enc[spec["name"]]
        assert got.dtype == np.dtype(spec["dtype"]) and list(got.shape[1:]) == spec["shape"][1:]
        if spec["dtype"] == "int64":
            assert enc[spec["name"]][:n].tolist() == want.tolist(), spec["name"]
        else:
            assert np.abs(enc[spec["name"]][:n] - want).max() < 1e-5, spec["name"]
    last = {k: v[-1] for k, v in enc.items()}
    assert last["user_id"] == 0 and last["occupation"] == 0 and last["item_id"] == 0     # unknown -> code 0
    age = doc["inputs"][2]["encoding"]
    assert last["age"] == pytest.approx((age["missing"] - age["mean"]) / age["std"], abs=1e-6)
    assert last["history"].tolist() == [-1] * 5
    got = _session(out, "onnx", list(enc))({k: v[:n] for k, v in enc.items()})
    with torch.no_grad():
        ref = r.model(feats)
    assert max(float(np.abs(g - ref[t].numpy()).max()) for g, t in zip(got, r.model.task_names)) < 1e-5


def test_bad_requests_exit_2_with_a_clear_message_and_write_nothing(runs, tmp_path, capsys):
    cases = [
        (["--run", str(tmp_path / "no_such_run"), "--format", "onnx"], "run folder not found"),
        (["--run", str(runs["esmm"]), "--format", "tflite"], "unsupported export format 'tflite'. Fix: use one of: "
                                                             "torchscript, onnx"),
        (["--run", str(runs["esmm"]), "--format", "onnx", "--out", str(tmp_path / "missing" / "m.onnx")],
         "does not exist"),
        (["--run", str(runs["esmm"]), "--format", "onnx", "--out", str(tmp_path)], "the output is a folder"),
    ]
    for args, said in cases:
        if "--out" not in args:
            args = args + ["--out", str(tmp_path / "m.bin")]
        assert main(["export", *args, "--json"]) == 2, args
        cap = capsys.readouterr()
        assert said in cap.err and "Traceback" not in cap.err
        assert said in json.loads(cap.out)["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_onnx_without_the_optional_package_says_what_to_install(runs, tmp_path, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "onnx", None)          # as if not installed
    assert main(["export", "--run", str(runs["ple"]), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "'onnx' package" in err and "requirements-extras.txt" in err
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.onnx.json").exists()


def test_the_docs_onnxruntime_snippet_scores_an_exported_model(runs, tmp_path, capsys, monkeypatch, repo_root):
    """docs/export.md's Python snippet, run as written next to an exported model, prints every task's
    logits for its two rows (a known and an unknown user)."""
    import re
    _export(runs["esmm"], "onnx", tmp_path / "model.onnx", capsys)
    code = re.findall(r"```python\n(.*?)```", (repo_root / "docs" / "export.md").read_text(), re.S)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/export.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["click", "like", "rating"]
    assert all(len(re.findall(r"-?\d+\.\d+", ln.split("]")[0].split("[")[-1])) == 2 for ln in lines)


def test_a_run_with_text_vectors_and_a_multilabel_task_exports_too(tmp_path, capsys):
    """A hand-built dataset (no vocabularies recorded: codes as stored) with an item text vector and a
    multi-label task: the ONNX file takes the vector [batch, 6] and gives the genres logits [batch, 4]."""
    from _fixtures_train import TASKS as FIXTURE_TASKS, make_dataset, with_label_stats
    from mtlrec.config import RunConfig
    from mtlrec.dataset import FeatureField
    from mtlrec.training.pipeline import run_training
    ds = with_label_stats(make_dataset(n_rows=600))
    ds.fields.append(FeatureField("item_text", "dense", "item", "item text", dim=6))
    ds.item_table["item_text"] = np.random.default_rng(0).normal(size=(len(ds.item_ids), 6)).astype(np.float32)
    cfg = RunConfig.from_dict({"tasks": FIXTURE_TASKS, "model": {"arch": "mmoe", "embedding_dim": 8},
                               "train": {"epochs": 1, "batch_size": 256, "device": "cpu", "ranking_k": 0,
                                         "dynamics_every": 0, "threads": 1}})
    assert run_training(cfg, run_dir=tmp_path / "run", dataset=ds).status == "finished"
    res = _export(tmp_path / "run", "onnx", tmp_path / "m.onnx", capsys)
    assert res["check"]["max_abs_diff"] < 1e-5
    doc = json.loads((tmp_path / "m.onnx.json").read_text())
    text = next(i for i in doc["inputs"] if i["name"] == "item_text")
    assert text["kind"] == "dense" and text["shape"] == ["batch", 6] and text["dtype"] == "float32"
    occ = next(i for i in doc["inputs"] if i["name"] == "occupation")
    assert occ["encoding"]["vocabulary"] is None           # not recorded: the service passes codes
    uid = next(i for i in doc["inputs"] if i["name"] == "user_id")["encoding"]["vocabulary"]
    assert uid[:2] == ["u0", "u1"]                          # code 1 is the first user's raw id
    genres = next(o for o in doc["outputs"] if o["task"] == "genres")
    assert genres["shape"] == ["batch", 4] and genres["classes"] == ["Action", "Comedy", "Drama", "Horror"]
