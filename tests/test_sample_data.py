"""The shipped sample data and the synthetic generators."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _sample_files import REGENERATE, compare_dirs, mismatch
from mtlrec.data import sample
from mtlrec.__main__ import main as cli_main

SAMPLE_COLUMNS = {
    "interactions.csv": ["user_id", "item_id", "timestamp", "click", "like", "rating", "watch_fraction"],
    "users.csv": ["user_id", "age", "gender", "occupation"],
    "items.csv": ["item_id", "title", "genres", "description", "year"],
}


@pytest.fixture(scope="module")
def catalogue():
    return sample.sample_catalogue(42, return_latent=True)


def test_generator_is_deterministic():
    a = sample.sample_catalogue(7, n_users=120, n_items=90, n_interactions=3000)
    b = sample.sample_catalogue(7, n_users=120, n_items=90, n_interactions=3000)
    c = sample.sample_catalogue(8, n_users=120, n_items=90, n_interactions=3000)
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)
    assert sample.frames_digest(*a) == sample.frames_digest(*b) != sample.frames_digest(*c)


def test_shipped_files_are_what_the_generator_writes(sample_data_dir, catalogue):
    inter, users, items, _ = catalogue
    total, problems = 0, []
    for name, df in zip(sample.SAMPLE_FILES, (inter, users, items)):
        path = sample_data_dir / name
        assert path.exists(), f"{path} is missing: run `python -m mtlrec sample --out sample_data`"
        data = path.read_bytes()
        total += len(data)
        m = mismatch(name, data, sample.csv_text(df).encode(), "shipped", "generator")
        if m:
            problems.append(m)
        assert list(pd.read_csv(path, nrows=2).columns) == SAMPLE_COLUMNS[name]
    if problems:       # a digest and the first differing row, never a diff of megabytes
        pytest.fail("\n".join(problems) + f"\n{REGENERATE}", pytrace=False)
    assert total < 5 * 1024 * 1024
    assert sum(p.stat().st_size for p in sample_data_dir.rglob("*") if p.is_file()) < 5 * 1024 * 1024


def test_sample_shapes_and_values(catalogue):
    inter, users, items, _ = catalogue
    assert len(users) == 1000 and len(items) == 800 and len(inter) == 60_000
    assert inter["user_id"].isin(users["user_id"]).all() and inter["item_id"].isin(items["item_id"]).all()
    assert not inter.duplicated(["user_id", "item_id"]).any()
    for lab in ("click", "like"):
        assert set(inter[lab].unique()) == {0, 1}
        assert 0.3 <= inter[lab].mean() <= 0.6
    assert set(inter["rating"].unique()) == {1, 2, 3, 4, 5}
    assert inter["watch_fraction"].between(0, 1).all()
    assert inter.groupby("user_id").size().min() >= 15
    genres = items["genres"].str.split("|")
    assert genres.map(len).between(1, 3).all()
    assert set(g for gs in genres for g in gs) == set(sample.GENRES)
    # each description mentions the item's genres and names one of the themes
    for gs, d in zip(genres, items["description"]):
        assert all(g.lower() in d.lower() for g in gs)
        assert any(f"{adj} in tone" in d for adj in sample.THEME_ADJ.values())
    assert items["title"].is_unique
    assert set(users["gender"]) <= {"F", "M", "X"} and users["age"].between(16, 80).all()


def test_tasks_are_related_but_not_identical(catalogue):
    inter = catalogue[0]
    c = inter[["click", "like", "rating", "watch_fraction"]].corr().to_numpy()
    off = c[np.triu_indices(4, 1)]
    assert (off > 0.1).all() and (off < 0.8).all()


def _auc(y, s):
    from sklearn.metrics import roc_auc_score
    return roc_auc_score(y, s)


def test_structured_features_predict_click(catalogue):
    """User and item columns carry signal: a linear model on them beats chance on held-out rows."""
    from sklearn.linear_model import LogisticRegression
    inter, users, items, _ = catalogue
    df = inter.merge(users, on="user_id").merge(items, on="item_id")
    x = pd.get_dummies(df[["gender", "occupation"]]).astype(float)
    g = df["genres"].str.get_dummies("|")
    age = ((df["age"] - 40) / 15).to_numpy()
    # genre taste depends on age and gender: let the linear model see those interactions
    inter_feats = np.hstack([g.to_numpy() * age[:, None], g.to_numpy() * (df["gender"] == "F").to_numpy()[:, None]])
    X = np.hstack([x.to_numpy(), g.to_numpy(), inter_feats, age[:, None]])
    rng = np.random.default_rng(0)
    r = rng.random(len(df))
    tr, te = r < 0.25, r > 0.85                   # a subsample keeps the test fast
    y = df["click"].to_numpy()
    m = LogisticRegression(max_iter=300).fit(X[tr], y[tr])
    assert _auc(y[te], m.predict_proba(X[te])[:, 1]) > 0.56


def test_description_text_predicts_like_on_items_never_seen(catalogue):
    """Themes and quality exist only in the description: a bag-of-words model of it, fitted on
    training items, ranks the likes of held-out items far better than the structured columns do."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    inter, users, items, _ = catalogue
    rng = np.random.default_rng(1)
    cold_items = set(items["item_id"][rng.random(len(items)) < 0.2])
    df = inter.merge(users, on="user_id").merge(items, on="item_id")
    cold = df["item_id"].isin(cold_items).to_numpy()
    y = df["like"].to_numpy()
    base = np.hstack([df["genres"].str.get_dummies("|").to_numpy(), ((df["year"] - 2000) / 15).to_numpy()[:, None],
                      pd.get_dummies(df[["gender", "occupation"]]).to_numpy(float)])
    tfidf = TfidfVectorizer(min_df=2).fit(items.loc[~items["item_id"].isin(cold_items), "description"])
    item_text = tfidf.transform(items["description"]).toarray()       # one vector per item, gathered
    text = item_text[df["item_id"].map(dict(zip(items["item_id"], range(len(items))))).to_numpy()]
    auc = {}
    train = ~cold & (rng.random(len(df)) < 0.25)          # a subsample keeps the test fast
    for name, X in (("without text", base), ("with text", np.hstack([base, text]))):
        m = LogisticRegression(max_iter=300).fit(X[train], y[train])
        auc[name] = _auc(y[cold], m.predict_proba(X[cold])[:, 1])
    assert auc["with text"] >= auc["without text"] + 0.05, auc


def test_themes_and_quality_are_absent_from_structured_columns(catalogue):
    inter, users, items, latent = catalogue
    structured = " ".join(items[["title", "genres"]].astype(str).to_numpy().ravel()).lower()
    for theme_words in sample.THEMES.values():
        for phrase in theme_words:
            assert phrase.split(",")[0].lower() not in structured
    # item quality is not recoverable from year or genres
    g = items["genres"].str.get_dummies("|").to_numpy()
    X = np.hstack([g, items[["year"]].to_numpy()])
    coef, *_ = np.linalg.lstsq(np.hstack([X, np.ones((len(X), 1))]), latent["quality"], rcond=None)
    pred = np.hstack([X, np.ones((len(X), 1))]) @ coef
    assert np.corrcoef(pred, latent["quality"])[0, 1] < 0.3


# ---- Ma et al. synthetic tasks ---------------------------------------------------------------
def test_synthetic_label_correlation_rises_with_p():
    corr = []
    for p in (0.0, 0.5, 0.9, 1.0):
        df = sample.synthetic_tasks(n=20_000, dim=16, p=p, seed=3)
        assert list(df.columns) == [f"x{j}" for j in range(16)] + ["y1", "y2"]
        corr.append(df["y1"].corr(df["y2"]))
    assert corr == sorted(corr)
    assert abs(corr[0]) < 0.15 and corr[-1] > 0.99


def test_synthetic_tasks_follow_the_formula():
    df = sample.synthetic_tasks(n=500, dim=8, p=1.0, seed=0, noise=0.0)
    np.testing.assert_allclose(df["y1"], df["y2"], atol=1e-9)        # p = 1: identical tasks
    with pytest.raises(ValueError):
        sample.synthetic_tasks(n=10, p=1.5)


def test_large_synthetic_interactions_are_consistent():
    inter, users, items = sample.synthetic_interactions(20_000, n_users=500, n_items=300, seed=1)
    assert len(inter) == 20_000 and len(users) == 500 and len(items) == 300
    assert inter["user_id"].isin(users["user_id"]).all() and inter["item_id"].isin(items["item_id"]).all()
    assert set(inter["click"].unique()) == {0, 1} and inter["rating"].between(1, 5).all()


# ---- command line ---------------------------------------------------------------------------------
def test_sample_cli_reproduces_the_shipped_files(tmp_path, sample_data_dir, capsys):
    assert cli_main(["sample", "--out", str(tmp_path / "s")]) == 0
    problems = compare_dirs(sample.SAMPLE_FILES, sample_data_dir, tmp_path / "s", "shipped", "cli")
    if problems:
        pytest.fail("\n".join(problems) + f"\n{REGENERATE}", pytrace=False)
    assert cli_main(["sample", "--synthetic", "--p", "0.8", "--n", "2000", "--out", str(tmp_path / "syn")]) == 0
    df = pd.read_csv(tmp_path / "syn" / "synthetic.csv")
    assert len(df) == 2000 and df["y1"].corr(df["y2"]) > 0.5
    assert "label correlation" in capsys.readouterr().out
    assert cli_main(["sample", "--synthetic", "--p", "2", "--out", str(tmp_path / "bad")]) == 2
