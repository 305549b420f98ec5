"""Issue 22 item 6: a MovieLens-style upload (user, item, rating) gets the recommended chain in one
step -- interact + like (rating ≥ 4) given interact + rating given interact, with sampled negatives --
and the chain's formulas and diagram (item 1)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtlrec.data.raw import RawData
from mtlrec.data.suggest import suggest_spec


def _raw(ratings, genres: bool = True) -> RawData:
    n = len(ratings)
    inter = pd.DataFrame({"userId": np.arange(n) % 7, "movieId": np.arange(n) % 11, "rating": ratings,
                          "timestamp": np.arange(n)})
    items = pd.DataFrame({"movieId": np.arange(11), "title": [f"Film {i}" for i in range(11)]})
    if genres:
        items["genres"] = ["Action|Comedy", "Drama"] * 5 + ["Horror"]
    return RawData(inter, items=items)


def test_a_ratings_upload_gets_interact_like_given_interact_rating_given_interact():
    from mtlrec.prep.config import PrepConfig
    from mtlrec.prep.pipeline import label_types
    from mtlrec.app.workflow import recommended_chain
    raw = _raw(np.tile([1.0, 2.0, 3.0, 4.0, 5.0], 20))
    spec = suggest_spec(raw)
    rec = recommended_chain(spec, raw)
    assert [(t["name"], t["type"], t.get("given", "")) for t in rec["tasks"]] == [
        ("interact", "binary", ""), ("like", "binary", "interact"), ("rating", "regression", "interact")]
    assert rec["prep"]["negative_ratio"] == 4 and rec["prep"]["negative_label"] == "interact"
    assert {"name": "like", "source": "rating", "op": ">=", "threshold": 4} in rec["prep"]["derived_labels"]
    assert rec["tasks"][2]["weight"] == 0.5
    assert "rating ≥ 4" in rec["note"] and rec["title"] == "interact + like (rating ≥ 4) given interact + rating given interact"
    # genres are an item feature by default (item content as input): no genres task is offered then;
    # a visitor who makes them a label gets the task offered, off, at weight 0.2 when taken
    assert spec.multivalued.get("genres") == "item" and rec["optional"] == []
    spec.labels["genres"] = "multilabel"
    rec = recommended_chain(spec, raw)
    assert [t["name"] for t in rec["optional"]] == ["genres"] and rec["optional"][0]["weight"] == 0.2
    # every task's label is one preparation gives
    labels = label_types(spec, PrepConfig(**{**PrepConfig().to_dict(), **rec["prep"]}))
    assert all(labels.get(t["label"]) == t["type"] for t in rec["tasks"] + rec["optional"])


def test_another_scale_takes_the_80th_percentile_and_says_so():
    from mtlrec.app.workflow import recommended_chain
    raw = _raw(np.tile(np.arange(1.0, 11.0), 10), genres=False)      # a 1-10 scale
    rec = recommended_chain(suggest_spec(raw), raw)
    d = next(d for d in rec["prep"]["derived_labels"] if d["name"] == "like")
    assert d["threshold"] == 8 and "80th percentile" in rec["note"] and rec["optional"] == []


def test_no_chain_without_a_rating():
    from mtlrec.app.workflow import recommended_chain
    raw = RawData(pd.DataFrame({"userId": [1, 2], "movieId": [3, 4], "click": [0, 1]}))
    assert recommended_chain(suggest_spec(raw), raw) is None


def test_the_chain_as_formulas_and_a_diagram():
    from mtlrec.chain import chain_dot
    from mtlrec.teaching.formulas import training_equations
    tasks = [{"name": "interact", "type": "binary"}, {"name": "like", "type": "binary", "given": "interact"},
             {"name": "rating", "type": "regression", "given": "interact"}]
    eqs = training_equations(tasks, {"weighting": "static"})
    assert any(r"p(\text{interact} \wedge \text{like}) = p(\text{interact}) \cdot p(\text{like} \mid "
               r"\text{interact})" in e for e in eqs)
    assert sum(r"y_{\text{interact}}(r) = 1" in e for e in eqs) == 2          # like's and rating's own space
    dot = chain_dot(tasks)
    assert '"interact" -> "like" [label="given"]' in dot and '"interact" -> "rating" [label="given"]' in dot
    assert chain_dot(tasks[:1]) is None
