"""Fixtures shared by the AppTests."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """A fresh runs root for the module's training (``$MTLREC_RUNS_DIR``), restored afterwards."""
    d = tmp_path_factory.mktemp("runs")
    old = os.environ.get("MTLREC_RUNS_DIR")
    os.environ["MTLREC_RUNS_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("MTLREC_RUNS_DIR", None)
    else:
        os.environ["MTLREC_RUNS_DIR"] = old

