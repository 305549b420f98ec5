"""`mtlrec.prep.pipeline.label_types`: the labels preparation will give, known before preparing (the Tasks
page offers a task on a derived label without a prepared dataset, e.g. right after a reload)."""
from __future__ import annotations

import pytest

from mtlrec.prep import PrepConfig, prepare
from mtlrec.prep.pipeline import label_types
from mtlrec.app.workflow import available_labels, sample_workspace


@pytest.fixture(scope="module")
def sample():
    return sample_workspace()


@pytest.mark.parametrize("options", [
    {},
    {"derived_labels": [{"name": "good", "source": "rating", "op": ">=", "threshold": 4}]},
    {"negative_ratio": 1, "derived_labels": [{"name": "long", "source": "rating", "op": ">", "threshold": 3}]},
])
def test_the_labels_known_before_preparing_are_those_prepare_gives(sample, options):
    prep = PrepConfig.from_dict(options)
    ds = prepare(sample["raw"], sample["spec"], prep)
    assert label_types(sample["spec"], prep) == {lab.name: lab.task_type for lab in ds.labels}
    assert available_labels(sample["spec"], None, prep) == available_labels(sample["spec"], ds, prep)


def test_implicit_feedback_gets_its_interaction_label_when_no_label_is_binary(sample):
    spec = sample["spec"]
    only_rating = type(spec).from_dict({**spec.to_dict(), "labels": {"rating": "regression"}})
    prep = PrepConfig.from_dict({"negative_ratio": 1})
    ds = prepare(sample["raw"], only_rating, prep)
    assert label_types(only_rating, prep) == {lab.name: lab.task_type for lab in ds.labels} \
        == {"rating": "regression", "interaction": "binary"}
