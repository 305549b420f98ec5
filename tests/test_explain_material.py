"""The explanation sentence names only material reasons (issue 21, item 10), and the sensitive-feature
check says what it checked also when it does not fire. Pure functions of a result dict: no model."""
from __future__ import annotations

import re

import numpy as np


def _features(values: dict, sensitive: dict | None = None) -> dict:
    """A result's ``features`` for user-owned categorical groups: {group: value}."""
    sensitive = sensitive or {}
    return {g: {"text": f"{g} = {v}", "sensitive": sensitive.get(g),
                "fields": [{"field": g, "owner": "user", "kind": "categorical", "value": v}]}
            for g, v in values.items()}


def _result(contrib: dict, features: dict) -> dict:
    """A minimal `explain_recommendation` result whose fused score moved by sum(contrib)."""
    base = 0.5
    return {"fused": {"contributions": dict(contrib), "base_value": base, "score": base + sum(contrib.values())},
            "tasks": {"click": {"contributions": dict(contrib), "base_value": 0.0, "output": sum(contrib.values())}},
            "features": features}


def test_a_second_reason_at_half_a_percent_of_the_first_is_not_named():
    """The issue's case: "... and this user's gender is F (+0.00025)" beside a main reason of +0.05."""
    from mtlrec.explain.sentence import sentence
    contrib = {"occupation": 0.05, "gender": 0.00025, "zip": 0.0009, "age": -0.0002}
    feats = _features({"occupation": "writer", "gender": "F", "zip": "55414", "age": "31"},
                      {"gender": "gender / sex", "zip": "location", "age": "age"})
    s = sentence(_result(contrib, feats))
    assert s.startswith("Recommended mainly because this user's occupation is writer (+0.050)")
    assert "gender is F" not in s and "+0.00025" not in s and "zip is" not in s and "held back" not in s
    # the sensitive-looking features it leaves out are said to play no material part
    assert "age, gender and zip (sensitive-looking features) play no material part" in s


def test_a_material_sensitive_feature_is_named_with_its_value():
    from mtlrec.explain.sentence import sentence
    contrib = {"occupation": 0.05, "gender": 0.03, "item id": 0.001}
    feats = _features({"occupation": "writer", "gender": "F", "item id": "i1"}, {"gender": "gender / sex"})
    s = sentence(_result(contrib, feats))
    assert "this user's occupation is writer (+0.050) and this user's gender is F (+0.030)" in s
    assert "no material part" not in s and "item id = i1" not in s


def test_a_sensitive_feature_material_for_one_task_only_is_said_so():
    """Not material in the fused score, but a third of the like-task's explanation: never "no material part"."""
    from mtlrec.explain.sentence import sentence
    contrib = {"item id": 0.05, "age": 0.001}
    res = _result(contrib, _features({"item id": "i1", "age": "31"}, {"age": "age"}))
    res["tasks"]["like"] = {"contributions": {"item id": 0.2, "age": -0.1}, "base_value": 0.0, "output": 0.1}
    s = sentence(res)
    assert "age (a sensitive-looking feature) is material only for the like-task" in s, s
    assert "no material part" not in s and "age is 31" not in s


def test_every_named_reason_is_material():
    """Random contributions: each group the sentence names as a reason is the headline reason or at
    least a quarter (`mtlrec.explain.sentence.MATERIAL_SHARE`) of the strongest contribution's size."""
    from mtlrec.explain.sentence import sentence
    rng = np.random.default_rng(0)
    groups = [f"g{k}" for k in range(6)]
    feats = _features({g: f"v{g}" for g in groups})
    checked = 0
    for _ in range(300):
        vals = rng.normal(size=len(groups)) * rng.choice([1e-4, 1e-2, 1.0], size=len(groups))
        contrib = dict(zip(groups, vals.tolist()))
        s = sentence(_result(contrib, feats))
        named = re.findall(r"this user's (g\d) is", s)          # reasons, "held back by", "speaks for it"
        ref = max(abs(v) for v in contrib.values())
        for k, g in enumerate(named):
            if k == 0:
                continue                       # the headline reason is always named
            assert abs(contrib[g]) >= 0.25 * ref, (s, contrib)     # MATERIAL_SHARE
            checked += 1
    assert checked > 50


def test_a_sentence_without_features_still_judges_sensitive_names():
    """A what-if explanation has no pair values: the group names say what looks sensitive."""
    from mtlrec.explain.sentence import sentence
    res = _result({"item id": 0.2, "gender": -0.001}, {})
    assert sentence(res) == ("Recommended mainly because item id (+0.20); gender (a sensitive-looking feature) "
                             "plays no material part; the click-task relies most on item id.")


def test_the_sensitive_check_states_what_it_checked_when_nothing_fires():
    from mtlrec.explain.values import SENSITIVE_SHARE, sensitive_check, sensitive_flags
    feats = _features({"gender": "F", "age": "31", "occupation": "writer"},
                      {"gender": "gender / sex", "age": "age"})
    tasks = {"click": {"contributions": {"gender": 0.004, "age": 0.03, "occupation": 0.966}}}
    check = sensitive_check(sensitive_flags(feats, tasks))
    assert check["checked"] == ["age", "gender"] and check["flagged"] == []
    assert check["threshold"] == SENSITIVE_SHARE
    assert "age (age) at 3.0% (click); gender (gender / sex) at 0.4% (click) are below the 20% that flags a group" \
        in check["text"]
    # one flagged, one not
    tasks = {"click": {"contributions": {"gender": 0.5, "age": 0.03, "occupation": 0.47}}}
    text = sensitive_check(sensitive_flags(feats, tasks))["text"]
    assert "gender (gender / sex) at 50% (click) reaches the 20% that flags a group" in text
    assert "age (age) at 3.0% (click) is below it" in text
    # nothing sensitive-looking at all: said, with what was looked for
    none = sensitive_check([])
    assert none["checked"] == [] and "no feature group's name looks like a protected attribute" in none["text"]
    assert "gender / sex" in none["text"] and "marital status" in none["text"]
