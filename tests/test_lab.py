"""mtlrec.lab: the synthetic-task data set, the architecture comparison, the sweep and LabJob."""
from __future__ import annotations

import pytest

from mtlrec import lab


def test_lab_dataset_has_two_regression_tasks_whose_correlation_rises_with_p():
    corr = {}
    for p in (0.0, 0.5, 0.9, 1.0):
        ds = lab.lab_dataset(p, n=1500, seed=1)
        assert [(x.name, x.task_type) for x in ds.labels] == [("y1", "regression"), ("y2", "regression")]
        assert {s: ds.n_rows(s) > 0 for s in ("train", "valid", "test")} == {"train": True, "valid": True,
                                                                              "test": True}
        assert len(ds.fields) == 16
        corr[p] = lab.label_correlation(ds)
    assert corr[0.0] < corr[0.5] < corr[0.9] < corr[1.0]
    assert abs(corr[0.0]) < 0.2 and corr[1.0] > 0.95


def test_tiny_sweep_returns_every_architecture_and_p():
    sw = lab.sweep(ps=(0.5, 1.0), seeds=(0,), n=300, epochs=1)
    assert sw["status"] == "finished"
    assert len(sw["rows"]) == 2 * len(lab.ARCHS)
    assert set(sw["summary"]) == set(lab.ARCHS)
    for arch in lab.ARCHS:
        assert set(sw["summary"][arch]) == {0.5, 1.0}
        assert all(v > 0 for v in sw["summary"][arch].values())
    assert set(sw["ordering"]["advantage"]) == {0.5, 1.0}
    assert sw["ordering"]["holds"] in (True, False)


def test_same_data_same_seed_means_the_same_run():
    ds = lab.lab_dataset(0.5, n=300)
    a = lab.run_one(ds, "shared_bottom", epochs=1)
    b = lab.run_one(ds, "shared_bottom", epochs=1)
    assert a["metric"] == pytest.approx(b["metric"], rel=1e-3)


def test_lab_job_cancel_and_unknown_kind():
    with pytest.raises(ValueError, match="sweep"):
        lab.LabJob("nonsense")
    job = lab.LabJob("archs", p=0.9, n=300, epochs=50)
    job.cancel()
    job.start()
    assert job.join(30)
    assert job.snapshot()["status"] == "cancelled"


def test_dynamics_rows_read_the_trainers_conflict_measurements():
    """A lab run records gradient dynamics; the weighting card reads its cosine and conflict per pair."""
    ds = lab.lab_dataset(0.5, n=600, seed=0)
    run = lab.run_one(ds, "shared_bottom", seed=0, epochs=2, dynamics_every=1)
    rows = lab.dynamics_rows({"static": run})
    measures = {r["measure"] for r in rows}
    assert {"cosine y1–y2", "conflict y1–y2", "grad norm y1", "grad norm y2"} <= measures
    assert sorted({r["epoch"] for r in rows}) == [1, 2]
    for r in rows:
        if r["measure"].startswith("cosine"):
            assert -1.0001 <= r["value"] <= 1.0001
        if r["measure"].startswith("conflict"):
            assert 0.0 <= r["value"] <= 1.0
    assert lab.dynamics_rows({"b": {"history": {"epochs": [{"epoch": 1}]}}}) == []
