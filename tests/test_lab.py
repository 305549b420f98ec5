"""mtlrec.teaching.lab: the synthetic-task data set, the architecture comparison, the sweep and LabJob."""
from __future__ import annotations

import pytest

from mtlrec.teaching import lab


def test_lab_dataset_has_two_regression_tasks_whose_correlation_rises_with_p():
    corr = {}
    for p in (0.0, 0.5, 0.9, 1.0):
        ds = lab.lab_dataset(p, n=1500, seed=1)
        assert [(x.name, x.task_type) for x in ds.labels] == [("y1", "regression"), ("y2", "regression")]
        assert {s: ds.n_rows(s) > 0 for s in ("train", "valid", "test")} == {"train": True, "valid": True,
                                                                              "test": True}
        assert len(ds.fields) == 16
        corr[p] = lab.task_correlation(ds)
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


def test_the_weighting_cards_conflict_panels_read_the_trainers_measurements():
    """A lab run records gradient dynamics on one batch in 4; the weighting card draws its cosine,
    conflict share (with the batch count) and gradient norms per run, and judges the pair."""
    from mtlrec.figures.dynamics import compare_fig, pair_conflicts
    ds = lab.lab_dataset(0.5, n=600, seed=0)
    runs = {m: lab.run_one(ds, "shared_bottom", seed=0, weighting=m, epochs=2) for m in ("static", "pcgrad")}
    eps = runs["static"]["history"]["epochs"]
    assert [e["dynamics"]["batches"] for e in eps] == [2, 2]          # 7 batches of 64 rows, one in 4
    fig = compare_fig({m: r["history"] for m, r in runs.items()})
    by_axis = {}
    for t in fig.data:
        by_axis.setdefault(t.xaxis or "x", []).append(t)
    assert sorted(by_axis) == ["x", "x2", "x3"] and len(by_axis["x3"]) == 4    # 2 runs x 2 tasks' norms
    assert all(-1.0001 <= v <= 1.0001 for t in by_axis["x"] for v in t.y)
    assert all(0.0 <= v <= 1.0 for t in by_axis["x2"] for v in t.y) and list(by_axis["x2"][0].customdata) == [2, 2]
    [c] = pair_conflicts(runs["static"]["history"])
    assert (c["tasks"], c["batches"], c["verdict"]) == (["y1", "y2"], 4, "too few")
    assert compare_fig({"b": {"epochs": [{"epoch": 1}]}}) is None


def _rows(values: dict) -> list[dict]:
    """Sweep rows of one seed from {arch: {p: mean test RMSE}}."""
    return [{"p": p, "seed": 0, "arch": a, "metric": v, "test": {}, "time_s": 0.0}
            for a, by_p in values.items() for p, v in by_p.items()]


def _sweep_of(values: dict, status: str = "finished", ps=(0.5, 0.9, 1.0)) -> dict:
    rows = _rows(values)
    return {"rows": rows, "summary": lab.summarize_sweep(rows), "status": status, "n": 3000, "ps": list(ps),
            "seeds": [0], "archs": list(values), "epochs": 12}


def test_the_verdict_never_says_holds_over_a_chart_where_mmoe_is_behind():
    """Issue 21 #7: MMoE behind shared-bottom at every p, least behind at p = 0.5 -- the old rule
    ("the gap is larger at the lowest p") called that "holds". The verdict reads the drawn numbers."""
    behind = _sweep_of({"shared_bottom": {0.5: 0.20, 0.9: 0.20, 1.0: 0.20},
                        "mmoe": {0.5: 0.21, 0.9: 0.22, 1.0: 0.23}})
    o = lab.paper_ordering(behind)
    assert o["holds"] is False and o["behind"] == [0.5, 0.9, 1.0] and o["grows"] is True
    text = lab.verdict(behind)
    assert text.startswith("The paper's ordering does not hold on this sweep: MMoE is not ahead of "
                           "shared-bottom at p = 0.5, 0.9, 1")
    assert "-0.0100 at p = 0.5 against -0.0300 at p = 1" in text
    part = lab.verdict(_sweep_of({"shared_bottom": {0.5: 0.20, 0.9: 0.20, 1.0: 0.20},
                                  "mmoe": {0.5: 0.19, 0.9: 0.18, 1.0: 0.17}}))
    assert part.startswith("The paper's ordering holds only in part on this sweep: MMoE is ahead")
    holds = lab.verdict(_sweep_of({"shared_bottom": {0.5: 0.22, 0.9: 0.22, 1.0: 0.20},
                                   "mmoe": {0.5: 0.17, 0.9: 0.17, 1.0: 0.16}}))
    assert holds.startswith("The paper's ordering holds on this sweep: MMoE is ahead of shared-bottom at every p")
    # a sweep with runs missing (cancelled, or still running) gets no verdict at all
    partial = _sweep_of({"shared_bottom": {0.5: 0.2}, "mmoe": {0.5: 0.1}}, "cancelled")
    assert lab.verdict(partial) is None
    assert lab.sweep_size(behind) == "3,000 rows per p and seed (2,100 to train on), 1 seed, 12 epochs per run"


def test_the_prepared_sweep_shows_what_the_benchmark_shows():
    """Issue 21 #7: the prepared sweep at its own size (bench/lab.py's: n = 3000, 3 seeds, 12 epochs)
    puts MMoE ahead of shared-bottom at every p, and its verdict says the paper's ordering holds."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)            # as bench/lab.py and the app's LabJob: tiny models, one thread
    try:
        sw = lab.sweep()
    finally:
        torch.set_num_threads(threads)
    assert (sw["n"], sw["seeds"], sw["epochs"], len(sw["rows"])) == (3000, [0, 1, 2], 12, 27)
    s = sw["summary"]
    assert all(s["mmoe"][p] < s["shared_bottom"][p] for p in (0.5, 0.9, 1.0)), s
    assert lab.paper_ordering(sw)["holds"] is True
    assert lab.verdict(sw).startswith("The paper's ordering holds on this sweep")


def test_a_finished_lab_job_is_stored_and_reads_back_the_same(tmp_path):
    """Issue 21 #7: a job hands its snapshot to ``on_done`` when it ends; stored as JSON in the
    workspace and read back, it shows the same table, summary and verdict."""
    import json

    from mtlrec.app import workspace
    got = []
    job = lab.LabJob("sweep", ps=(0.5, 1.0), seeds=(0,), n=300, epochs=1, on_done=got.append).start()
    assert job.join(120) and job.status == "finished"
    [snap] = got
    wid = workspace.new_workspace_id()
    workspace.save_part(wid, "lab_sweep", lab.to_json(snap), root=tmp_path)
    assert workspace.exists(wid, root=tmp_path)         # the id in the URL will be kept on reload
    rec = json.loads(json.dumps(workspace.load_part(wid, "lab_sweep", root=tmp_path)))
    back = lab.StoredJob(rec)
    assert (back.kind, back.status, back.done) == ("sweep", "finished", True)
    sw, sw0 = back.snapshot()["sweep"], snap["sweep"]
    assert sw["summary"] == sw0["summary"] and set(sw["summary"]["mmoe"]) == {0.5, 1.0}
    assert lab.verdict(sw) == lab.verdict(sw0) and sw["n"] == 300 and sw["epochs"] == 1
    assert workspace.load_part(wid, "lab_archs", root=tmp_path) is None
