"""Shared test settings: offline, CPU, and where the real datasets live."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

# Nothing in the test suite may reach the network or a GPU.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
# an upload with a title column turns the language-model text features on (mtlrec.app.workflow.default_text);
# tests that do not need the language model keep them off (a test of the default removes this)
os.environ.setdefault("MTLREC_TEXT_FEATURES", "0")
# workspaces the app saves while tests drive it (pages/ui/workspace.py) go to a temporary folder
if "MTLREC_WORKSPACES" not in os.environ:
    import tempfile
    os.environ["MTLREC_WORKSPACES"] = tempfile.mkdtemp(prefix="mtlrec-workspaces-")
# and runs that tests start without an explicit folder go to a temporary runs root, not ./runs
if "MTLREC_RUNS_DIR" not in os.environ:
    import tempfile
    os.environ["MTLREC_RUNS_DIR"] = tempfile.mkdtemp(prefix="mtlrec-runs-")

# The app trains in a spawned worker process (mtlrec/training/jobs.py), which costs 4-15 s of start-up per run
# (a fresh interpreter importing torch). Library and AppTest tests train hundreds of tiny runs, so they
# use the in-process thread mode; tests/test_jobs_worker.py covers the worker process itself, and the
# browser tests serve the app exactly as `make run` does, worker processes included
# (tests/browser/appdriver.py sets "process" for its servers).
os.environ.setdefault("MTLREC_TRAIN_ISOLATION", "thread")
# the app's default: run folders without an owner (trained by a test's own TrainingJob or the command
# line) are shown to nobody; a test that means an operator's local run asks for the `local_runs` fixture
os.environ.pop("MTLREC_LOCAL_RUNS", None)

REPO_ROOT = Path(__file__).resolve().parents[1]
# Two torch threads on a 2-core machine that also runs the test's own threads (Streamlit server,
# training jobs) oversubscribe the CPU and make small-model steps ~10x slower: use one.
try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a hard requirement
    pass

SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"
SAMPLE_DATA = REPO_ROOT / "sample_data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED_DATASETS.exists():
        pytest.skip(f"real datasets not found at {SHARED_DATASETS}")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def sample_data_dir() -> Path:
    return SAMPLE_DATA


@pytest.fixture
def local_runs(monkeypatch):
    """The operator's setting of a machine of one's own (``MTLREC_LOCAL_RUNS=manage``): run folders
    without an owner -- a test's own TrainingJob, the command line -- are shown in the app and managed
    like the visitor's own (`mtlrec.runs.access`)."""
    monkeypatch.setenv("MTLREC_LOCAL_RUNS", "manage")

# a failure whose traceback pytest cannot format is reported, not an INTERNALERROR (see the module)
from _traceback_guard import pytest_runtest_makereport  # noqa: E402,F401


# AppTest starts every run in Streamlit's old pages-directory mode (it resets the flag that
# st.navigation clears), and in that mode a page switched to runs on its own, without app.py.
# The served app always runs app.py (its navigation, sidebar, workspace and error boundary):
# make AppTest do the same, so that page tests see what a visitor sees.
try:
    from streamlit.runtime.pages_manager import PagesManager as _PM

    _pm_init = _PM.__init__

    def _init_without_pages_directory_mode(self, *args, **kwargs):
        _pm_init(self, *args, **kwargs)
        _PM.uses_pages_directory = False

    _PM.__init__ = _init_without_pages_directory_mode
except ImportError:  # pragma: no cover - streamlit is a hard requirement
    pass


# ---------------------------------------------------------------------------- caught page errors
# The app's error boundary (pages/ui/boundary.py) turns a page's exception into a short message, which
# an AppTest's `at.exception` does not see. It also logs the error under a fixed marker: any test during
# which that happened fails, with the traceback, unless it asks for `page_errors` to check them itself.
class _PageErrors(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def messages(self) -> list[str]:
        fmt = logging.Formatter()
        return [fmt.format(r) for r in self.records]


@pytest.fixture(autouse=True)
def _no_caught_page_error(request):
    from pages.ui.boundary import LOGGER_NAME
    handler = _PageErrors()
    log = logging.getLogger(LOGGER_NAME)
    log.addHandler(handler)
    request.node._page_errors = handler
    try:
        yield
    finally:
        log.removeHandler(handler)
    if "page_errors" not in request.fixturenames and handler.records:
        pytest.fail("the app's error boundary caught an exception (shown to the visitor as an error box):\n"
                    + "\n".join(handler.messages()), pytrace=False)


@pytest.fixture
def page_errors(request) -> _PageErrors:
    """The errors the app's boundary caught during this test (``.records``, ``.messages()``); a test that
    uses this fixture checks them itself."""
    return request.node._page_errors
