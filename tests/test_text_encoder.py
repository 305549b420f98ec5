"""TextEncoder: offline MiniLM, disk cache keyed by model and text hash."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mtlrec.serve import text as mtext
from mtlrec.errors import DataError

REPO = Path(__file__).resolve().parents[1]

TEXTS = [
    "A gritty crime drama about loyalty and betrayal among dockworkers.",
    "A whimsical family adventure full of magic and talking animals.",
    "A slow, tedious and badly acted romantic comedy.",
    "Space pirates fight a galactic empire in this sci-fi action epic.",
    "A quiet documentary about bees and the people who keep them.",
] + [f"Movie number {i}: a {g} film about {t}." for i, (g, t) in enumerate(
    [("horror", "a haunted lighthouse"), ("comedy", "two rival chefs"), ("drama", "a chess prodigy"),
     ("thriller", "a stolen painting"), ("musical", "a touring band")] * 8)]


class CountingModel:
    """Wraps the encoder's model call, counting calls and texts passed to it."""

    def __init__(self, enc: mtext.TextEncoder):
        self.calls = 0
        self.texts: list[str] = []
        self._orig = enc._run_model
        enc._run_model = self

    def __call__(self, texts):
        self.calls += 1
        self.texts.extend(texts)
        return self._orig(texts)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Load MiniLM once for the module and encode TEXTS without any cache."""
    enc = mtext.TextEncoder(cache_dir=None, device="cpu", batch_size=16)
    vecs = enc.encode(TEXTS)
    return vecs


def test_default_model_is_minilm_384_and_vectors_are_meaningful(reference):
    enc = mtext.TextEncoder(cache_dir=None, device="cpu")
    assert enc.model_name == "all-MiniLM-L6-v2"
    assert enc.dim == 384
    assert reference.shape == (len(TEXTS), 384) and reference.dtype == np.float32
    assert np.allclose(np.linalg.norm(reference, axis=1), 1.0, atol=1e-4)
    # semantically close texts are closer than unrelated ones
    v = enc.encode(["a scary ghost story in an old house", "a terrifying horror film about a haunted mansion",
                    "a cheerful cooking show about baking bread"])
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_cache_returns_identical_vectors_without_calling_model(tmp_path, reference):
    cache = tmp_path / "cache"
    first = mtext.TextEncoder(cache_dir=cache, device="cpu")
    counter = CountingModel(first)
    a = first.encode(TEXTS)
    assert counter.calls >= 1 and sorted(counter.texts) == sorted(set(TEXTS))
    np.testing.assert_allclose(a, reference, atol=1e-5)
    assert list(cache.rglob("shard-*.npz")), "nothing written to the disk cache"

    # a new encoder (as in a new run) reads the cache and never touches the model
    second = mtext.TextEncoder(cache_dir=cache, device="cpu")
    second._run_model = lambda texts: pytest.fail(f"model called again for {len(texts)} cached texts")
    order = np.random.default_rng(0).permutation(len(TEXTS))
    b = second.encode([TEXTS[i] for i in order])
    np.testing.assert_array_equal(b, a[order])
    assert second.last_stats["encoded"] == 0 and second.last_stats["cached"] == len(set(TEXTS))

    # shards are plain arrays
    for p in cache.rglob("shard-*.npz"):
        with np.load(p, allow_pickle=False) as z:
            assert z["vectors"].dtype == np.float32 and z["keys"].dtype.kind == "U"


def test_fully_cached_rerun_in_new_process_does_not_load_model(tmp_path, reference):
    cache = tmp_path / "cache"
    mtext.TextEncoder(cache_dir=cache, device="cpu").encode(TEXTS)
    script = textwrap.dedent(f"""
        import sys, numpy as np
        from mtlrec.serve.text import TextEncoder
        import mtlrec.serve.text as t
        enc = TextEncoder(cache_dir={str(cache)!r}, device="cpu")
        v = enc.encode({TEXTS!r})
        np.save(sys.argv[1], v)
        print(t.LOAD_COUNT, "sentence_transformers" in sys.modules, enc.dim)
    """)
    out = tmp_path / "v.npy"
    res = subprocess.run([sys.executable, "-c", script, str(out)], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["0", "False", "384"]
    np.testing.assert_allclose(np.load(out, allow_pickle=False), reference, atol=1e-5)


def test_changed_text_is_reencoded_alone(tmp_path, reference):
    cache = tmp_path / "cache"
    mtext.TextEncoder(cache_dir=cache, device="cpu").encode(TEXTS)
    changed = list(TEXTS)
    changed[2] = "A brilliant, moving and beautifully acted romantic comedy."
    enc = mtext.TextEncoder(cache_dir=cache, device="cpu")
    counter = CountingModel(enc)
    v = enc.encode(changed)
    assert counter.texts == [changed[2]]
    assert enc.last_stats["encoded"] == 1
    keep = [i for i in range(len(TEXTS)) if i != 2]
    np.testing.assert_allclose(v[keep], reference[keep], atol=1e-5)
    fresh = mtext.TextEncoder(cache_dir=None, device="cpu").encode([changed[2]])
    np.testing.assert_allclose(v[2], fresh[0], atol=1e-5)
    assert float(v[2] @ reference[2]) < 0.99     # really a new vector
    # and the new text is now cached too
    again = mtext.TextEncoder(cache_dir=cache, device="cpu")
    counter2 = CountingModel(again)
    again.encode(changed)
    assert counter2.calls == 0


def test_duplicates_encoded_once_and_progress_reported(tmp_path):
    enc = mtext.TextEncoder(cache_dir=tmp_path / "c", device="cpu", batch_size=4)
    counter = CountingModel(enc)
    texts = ["alpha film", "beta film", "alpha film", "gamma film", "beta film", "delta film",
             "epsilon film", "alpha film"]
    seen = []
    v = enc.encode(texts, progress=lambda d, n: seen.append((d, n)))
    assert sorted(counter.texts) == sorted(set(texts))
    assert counter.calls == 2                       # 5 distinct texts in batches of 4
    np.testing.assert_array_equal(v[0], v[2])
    np.testing.assert_array_equal(v[0], v[7])
    assert seen[0] == (0, 5) and seen[-1] == (5, 5)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    # second call: everything cached, progress jumps to done at once
    seen.clear()
    enc.encode(texts, progress=lambda d, n: seen.append((d, n)))
    assert seen == [(5, 5)] and counter.calls == 2
    assert enc.encode([]).shape == (0, 384)


def test_encoding_works_without_network(tmp_path, monkeypatch, reference):
    """Load the model afresh with every socket connection refused."""
    def refuse(*a, **k):
        raise OSError("network disabled in this test")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # drop the process-wide model so that it is really loaded under these conditions
    saved = dict(mtext._MODELS)
    mtext._MODELS.clear()
    try:
        loads = mtext.LOAD_COUNT
        enc = mtext.TextEncoder(cache_dir=tmp_path / "c", device="cpu")
        v = enc.encode(TEXTS[:5])
        assert mtext.LOAD_COUNT == loads + 1
        np.testing.assert_allclose(v, reference[:5], atol=1e-5)
    finally:
        mtext._MODELS.clear()
        mtext._MODELS.update(saved)


def test_local_model_folder_by_path(tmp_path, reference):
    src = mtext.default_model_path()
    dst = tmp_path / "my-minilm"
    for p in src.rglob("*"):
        if p.is_file():
            q = dst / p.relative_to(src)
            q.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(p, q)
    enc = mtext.TextEncoder(model=str(dst), cache_dir=tmp_path / "c", device="cpu")
    assert enc.model_name == "my-minilm" and enc.dim == 384
    default_key = mtext.TextEncoder(cache_dir=tmp_path / "c").model_key
    assert enc.model_key != default_key                 # separate cache per model
    np.testing.assert_allclose(enc.encode(TEXTS[:3]), reference[:3], atol=1e-5)


def test_bad_model_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        mtext.TextEncoder(model=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="sentence-transformers"):
        mtext.TextEncoder(model=str(tmp_path / "empty"))


def test_item_texts_title_description_and_genres_as_words():
    import pandas as pd
    from mtlrec.data.roles import DataSpec
    items = pd.DataFrame({"item_id": [1, 2, 3], "title": ["Heat", "Up", None],
                          "genres": ["Action|Crime", "Animation|Adventure|Family", "(no genres listed)"],
                          "description": ["A cop hunts a thief.", "", "Unknown film."]})
    inter = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [1, 2, 3, 4], "rating": [4, 5, 2, 3]})
    raw = SimpleNamespace(interactions=inter, items=items, users=None)
    spec = DataSpec(user_id="user_id", item_id="item_id", labels={"rating": "regression"},
                    text={"title": "item", "genres": "item", "description": "item"})
    ids, texts = mtext.item_texts(raw, spec)
    got = dict(zip(ids.tolist(), texts))
    assert got["1"] == "Heat. Genres: Action, Crime. A cop hunts a thief."
    assert got["2"] == "Up. Genres: Animation, Adventure, Family."
    assert got["3"] == "Unknown film."
    assert got["4"] == ""               # an item with no row in the items table


def _fake_vectors(texts):
    """A deterministic stand-in for the model (no MiniLM needed): 8 numbers from each text's hash."""
    out = []
    for t in texts:
        h = mtext.text_hash(t)
        out.append([int(h[i:i + 2], 16) / 255.0 for i in range(0, 16, 2)])
    return np.asarray(out, dtype=np.float32)


def test_interrupted_encoding_keeps_what_was_flushed(tmp_path, monkeypatch):
    monkeypatch.setattr(mtext, "FLUSH_EVERY", 4)
    enc = mtext.TextEncoder(cache_dir=tmp_path / "c", device="cpu", batch_size=2)
    calls = {"n": 0}

    def flaky(texts):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("user stopped the app")
        return _fake_vectors(texts)
    enc._run_model = flaky
    texts = [f"text {i}" for i in range(10)]
    with pytest.raises(KeyboardInterrupt):
        enc.encode(texts)
    again = mtext.TextEncoder(cache_dir=tmp_path / "c", device="cpu", batch_size=2)
    assert again.cached_count() == 4          # two batches of two were flushed before the stop
    passed = []
    again._run_model = lambda t: passed.extend(t) or _fake_vectors(t)
    v = again.encode(texts)
    assert passed == texts[4:]
    np.testing.assert_array_equal(v, _fake_vectors(texts))


def test_shards_are_merged_without_losing_vectors(tmp_path, monkeypatch):
    monkeypatch.setattr(mtext, "MAX_SHARDS", 3)
    cache = tmp_path / "c"
    all_texts = []
    for r in range(6):      # six runs, some from "another process" (a second encoder)
        enc = mtext.TextEncoder(cache_dir=cache, device="cpu")
        enc._run_model = _fake_vectors
        new = [f"run {r} text {i}" for i in range(3)]
        all_texts += new
        enc.encode(new)
    shards = list(cache.rglob("shard-*.npz"))
    assert len(shards) <= 3
    check = mtext.TextEncoder(cache_dir=cache, device="cpu")
    check._run_model = lambda t: pytest.fail(f"vectors lost in merging: {t}")
    np.testing.assert_array_equal(check.encode(all_texts), _fake_vectors(all_texts))
