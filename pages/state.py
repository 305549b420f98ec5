"""Per-session state of the dashboard and small UI helpers shared by all pages.

Everything a browser session owns (its dataset, configuration, training jobs and the
selected run) lives in one `AppState` object inside ``st.session_state``, so two tabs
never see each other's data or runs. Pages call `get_state()`; they never keep
module-level globals. Training jobs are `mtlrec.jobs.TrainingJob` objects: their worker
threads never call ``st.*``; pages read ``job.snapshot()``.

Cross-page requests:
* ``st.session_state["explain_request"] = {"run_dir", "user", "item"}`` then
  ``st.switch_page("pages/explain.py")`` opens the explanation of one recommendation.
"""
from __future__ import annotations

import importlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

ROOT = Path(__file__).resolve().parents[1]
STATE_KEY = "mtlrec_state"
TERMINAL = ("finished", "cancelled", "failed")
EXPLAIN_PAGE = "pages/explain.py"


@dataclass
class AppState:
    # ---- data --------------------------------------------------------------------
    raw: Any = None                 # mtlrec.data.readers.RawData
    source: str | None = None       # "sample" or the uploaded file names, for display
    spec: Any = None                # mtlrec.data.roles.DataSpec (column roles)
    report: Any = None              # ValidationReport of the last validation
    data_error: str | None = None   # message of the last DataError (shown on the Data page)
    prep: Any = None                # mtlrec.prep.PrepConfig
    dataset: Any = None             # mtlrec.dataset.PreparedDataset (after "Prepare")
    dataset_key: str | None = None  # identifies the prepared dataset (spec+prep hash)
    # ---- configuration -----------------------------------------------------------
    tasks: list[dict] = field(default_factory=list)   # [{name, type, label, weight, metric}]
    model: dict = field(default_factory=dict)         # {arch, ...hparams}
    train: dict = field(default_factory=dict)         # {epochs, batch_size, lr, weighting, ...}
    text: dict = field(default_factory=dict)          # {enabled, columns, model}
    # ---- runs --------------------------------------------------------------------
    jobs: list = field(default_factory=list)          # mtlrec.jobs.TrainingJob, newest last
    selected_run: str | None = None                   # run_dir of the run shown on Train/Results/Recommend
    rec_user: str | None = None                       # the user picked on Recommendations
    counter: int = 0                                   # bumps widget keys when a workspace is loaded
    suggested_spec: Any = None                         # the roles suggested when the data was loaded
    upload_sig: tuple | None = None                    # (name, size) of the files last uploaded
    data_uid: str = ""                                 # unique id of the loaded data (cache keys)

    @property
    def has_data(self) -> bool:
        return self.raw is not None

    @property
    def has_dataset(self) -> bool:
        return self.dataset is not None

    def run_dirs(self) -> list[str]:
        """Run folders of this session's jobs that have one, newest first."""
        out = []
        for job in reversed(self.jobs):
            rd = job_run_dir(job)
            if rd:
                out.append(rd)
        return out

    def finished_run_dirs(self) -> list[str]:
        out = []
        for job in reversed(self.jobs):
            snap = job.snapshot(include_batches=False)
            rd = snap_get(snap, "run_dir")
            if rd and snap_get(snap, "status") == "finished" \
                    and (Path(rd) / "model.pt").exists():
                out.append(str(rd))
        return out

    def job_for(self, run_dir: str | None):
        for job in self.jobs:
            if run_dir and job_run_dir(job) == str(run_dir):
                return job
        return None


def get_state() -> AppState:
    """The AppState of this browser session (created on first use)."""
    s = st.session_state.get(STATE_KEY)
    if s is None:
        s = AppState()
        st.session_state[STATE_KEY] = s
    return s


def snap_get(snap, key, default=None):
    """Read a field of a job snapshot, whether it is a dict or an object."""
    if snap is None:
        return default
    if isinstance(snap, dict):
        return snap.get(key, default)
    return getattr(snap, key, default)


def job_run_dir(job) -> str | None:
    rd = getattr(job, "run_dir", None)
    if rd is None:
        rd = snap_get(job.snapshot(), "run_dir")
    return str(rd) if rd else None


def apply_workspace(ws: dict) -> None:
    """Put a workspace (from mtlrec.workflow.sample_workspace / uploaded_workspace) into the state."""
    state = get_state()
    state.raw, state.spec, state.prep = ws["raw"], ws["spec"], ws["prep"]
    state.suggested_spec = ws["spec"]
    state.tasks, state.model, state.train, state.text = ws["tasks"], ws["model"], ws["train"], ws["text"]
    state.source = ws["source"]
    state.dataset = state.dataset_key = state.report = state.data_error = None
    state.counter += 1          # fresh widget keys: editors show the new workspace
    state.data_uid = uuid.uuid4().hex   # identifies this loaded data in caches shared by sessions


def load_sample_workspace() -> bool:
    """Load the sample data with its ready configuration; False (and a message) on failure."""
    from mtlrec.workflow import sample_workspace
    try:
        apply_workspace(sample_workspace())
        return True
    except Exception as e:  # a broken install must not show a traceback
        show_exception(e, "Loading the sample data")
        return False


def handle_upload(files) -> bool:
    """Read uploaded files (UploadedFile objects) into the state; errors end in state.data_error."""
    from mtlrec.errors import DataError
    from mtlrec.workflow import uploaded_workspace
    state = get_state()
    limit_mb = float(st.get_option("server.maxUploadSize"))
    total = sum(int(getattr(f, "size", 0) or 0) for f in files)
    try:
        if total > limit_mb * 1024 * 1024:
            raise DataError(f"the upload is {total / 2**20:.1f} MB, over the limit of {limit_mb:.0f} MB",
                            file=", ".join(f.name for f in files),
                            fix="upload a sample of the data, or raise server.maxUploadSize in .streamlit/config.toml")
        apply_workspace(uploaded_workspace([(f.name, f.getvalue()) for f in files]))
        return True
    except DataError as e:
        state.data_error = e
    except Exception as e:  # unexpected: still a readable message, never a traceback
        state.data_error = DataError(f"could not read the files ({e.__class__.__name__}: {e})",
                                     file=", ".join(f.name for f in files),
                                     fix="upload CSV, TSV, Parquet or a zip of them, with a header row")
    return False


def show_data_error(e) -> None:
    """A DataError as an error box: what, where and how to fix."""
    where = []
    if getattr(e, "file", None):
        where.append(f"file **{e.file}**")
    if getattr(e, "column", None):
        where.append(f"column **{e.column}**")
    if getattr(e, "rows", None):
        rows = e.rows[:8]
        where.append("rows " + ", ".join(map(str, rows)) + (" ..." if len(e.rows) > 8 else ""))
    parts = [f"**Problem:** {getattr(e, 'what', str(e))}"]
    if where:
        parts.append("**Where:** " + "; ".join(where))
    if getattr(e, "fix", None):
        parts.append(f"**Fix:** {e.fix}")
    st.error("  \n".join(parts), icon=":material/error:")


def explain_page_exists() -> bool:
    return (ROOT / EXPLAIN_PAGE).is_file()


def request_explanation(run_dir: str, user, item) -> None:
    """Open the Explain page on one (user, item) recommendation of one run."""
    st.session_state["explain_request"] = {"run_dir": str(run_dir), "user": str(user), "item": str(item)}
    if explain_page_exists():
        st.switch_page(EXPLAIN_PAGE)


_WARM: dict[str, Any] = {}
_WARM_LOCK = threading.Lock()


def _warm_up(delay: float = 2.0) -> None:
    """Import the heavy libraries and probe the device in the background, once per process,
    so that the first page shows at once and later pages switch fast."""
    time.sleep(delay)          # let the first page render first
    try:
        from mtlrec.workflow import describe_device
        _WARM["device"] = describe_device()
    except Exception as e:     # the probe must never break the app
        _WARM["device"] = f"unknown ({e.__class__.__name__})"
    for mod in ("pandas", "plotly.graph_objects", "mtlrec.models", "mtlrec.prep", "mtlrec.jobs",
                "mtlrec.data.validate", "mtlrec.data.summary", "mtlrec.data.readers", "sklearn.metrics"):
        try:
            importlib.import_module(mod)
        except Exception:
            pass
    _WARM["done"] = True


def start_warm_up() -> None:
    with _WARM_LOCK:
        if "thread" not in _WARM:
            _WARM["thread"] = threading.Thread(target=_warm_up, name="mtlrec-warm-up", daemon=True)
            _WARM["thread"].start()


def device_label(wait: bool = True) -> str | None:
    """The device training will use, in words (GPU name or CPU); None while it is being probed
    and ``wait`` is False."""
    start_warm_up()
    if "device" not in _WARM and wait:
        from mtlrec.workflow import describe_device
        _WARM["device"] = describe_device()
    return _WARM.get("device")


def sidebar():
    """Current dataset, run and device; drawn on every page (by app.py). Returns the device slot."""
    state = get_state()
    sb = st.sidebar
    sb.markdown("#### Workspace")
    if state.raw is None:
        sb.caption("Dataset: none loaded yet")
    else:
        n = len(state.raw.interactions)
        prepared = " · prepared" if state.dataset is not None else ""
        sb.markdown(f"**Dataset:** {state.source or 'uploaded'}  \n{n:,} interactions{prepared}")
    job = state.job_for(state.selected_run) or (state.jobs[-1] if state.jobs else None)
    if job is None:
        sb.caption("Run: none yet")
    else:
        snap = job.snapshot(include_batches=False)
        name = Path(job_run_dir(job) or "run").name
        status = snap_get(snap, "status", "?")
        sb.markdown(f"**Run:** `{name}` — {status}")
    dev = device_label(wait=False)
    slot = sb.empty()
    slot.markdown(f"**Device:** {dev or 'detecting ...'}")
    return slot


def fill_device(slot) -> None:
    """Called by app.py after the page ran: on a fresh server the device probe (torch import)
    may still run; the page's content is already in the browser while this waits."""
    if slot is not None and device_label(wait=False) is None:
        slot.markdown(f"**Device:** {device_label(wait=True)}")


def need_data(what: str = "this page") -> bool:
    """Show a hint and return False when no dataset is loaded."""
    if get_state().raw is None:
        st.info(f"Load data first: use **Load sample & configure** on Home or upload files on Data, then come back to {what}.")
        return False
    return True


def synced_selectbox(label: str, options: list, *, key: str, attr: str, container=None, **kw):
    """A selectbox that mirrors ``AppState.<attr>``: the state is the one source of truth.

    A keyed widget keeps its own value across reruns and would write a stale choice back over
    a newer one set elsewhere (a run started, a user picked on another page); its value is also
    forgotten when the visitor leaves the page. So the widget is set from the state before it
    is drawn, and only the visitor's own change (``on_change``) writes the state."""
    state = get_state()
    if not options:
        return None
    if getattr(state, attr) not in options:
        setattr(state, attr, options[0])
    st.session_state[key] = getattr(state, attr)

    def _changed() -> None:
        setattr(state, attr, st.session_state[key])

    (container or st).selectbox(label, options, key=key, on_change=_changed, **kw)
    return getattr(state, attr)


def need_run(what: str = "this page") -> str | None:
    """The selected finished run (picker shown when there are several), or None with a hint.

    The newest run is selected when it starts (Train); otherwise the visitor's choice is kept
    across reruns and page switches. A selected run that has not finished yet is shown on
    Train; here the newest finished run stands in without overwriting the selection."""
    state = get_state()
    runs = state.finished_run_dirs()
    if not runs:
        st.info(f"No finished run in this session yet: train a model on **Train**, then come back to {what}.")
        return None
    pending = None                         # a selected run still training: followed, not replaced
    job = state.job_for(state.selected_run) if state.selected_run not in runs else None
    if job is not None and snap_get(job.snapshot(include_batches=False), "status") not in TERMINAL:
        pending, state.selected_run = state.selected_run, runs[0]
    chosen = synced_selectbox("Run", runs, key="run_picker", attr="selected_run",
                              format_func=lambda p: Path(p).name)
    if pending is not None:
        st.caption(f"Run `{Path(pending).name}` is still training; showing the newest finished run "
                   "until it ends.")
        state.selected_run = pending
    return chosen


def show_exception(e: BaseException, action: str) -> None:
    """A readable message for an error; DataError messages are shown as they are."""
    from mtlrec.errors import DataError, TrainingError
    if isinstance(e, (DataError, TrainingError)):
        st.error(str(e))
    else:
        st.error(f"{action} failed: {e.__class__.__name__}: {e}")


@st.cache_resource(show_spinner=False)
def text_encoder(model: str = "default"):
    """The language-model text encoder, loaded once per server process."""
    from mtlrec.text import TextEncoder
    return TextEncoder(model)


def prepare_dataset() -> bool:
    """Prepare the current data (spec + prep options + text features) with a progress bar.

    Reuses the prepared dataset when nothing changed. Errors are shown, not raised."""
    from mtlrec.prep import prepare
    from mtlrec.workflow import dataset_key, effective_spec
    state = get_state()
    if state.raw is None:
        st.error("Load data first.")
        return False
    spec = effective_spec(state.spec, state.text)
    key = dataset_key(spec, state.prep, state.text, state.data_uid)
    if state.dataset is not None and state.dataset_key == key:
        return True
    bar = st.progress(0.0, text="Preparing the dataset ...")

    def progress(*args, **kw):
        # accepts (fraction[, message]) or (done, total[, message])
        msg = next((a for a in args if isinstance(a, str)), None) or kw.get("message") or "Preparing ..."
        nums = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
        frac = nums[0] / nums[1] if len(nums) >= 2 and nums[1] else (nums[0] if nums else 0.0)
        bar.progress(min(1.0, max(0.0, float(frac))), text=str(msg))

    try:
        enc = None
        if state.text.get("enabled") and spec.text:
            enc = text_encoder(state.text.get("model") or "default")
        state.dataset = prepare(state.raw, spec, state.prep, text_encoder=enc, progress=progress)
        state.dataset_key = key
        bar.progress(1.0, text="Prepared.")
        return True
    except Exception as e:
        bar.empty()
        state.dataset = state.dataset_key = None
        from mtlrec.errors import DataError
        if isinstance(e, DataError):
            show_data_error(e)
        else:
            show_exception(e, "Preparing the dataset")
        return False


def start_training():
    """Start a background TrainingJob on the prepared dataset with the current configuration."""
    from mtlrec.jobs import TrainingJob
    from mtlrec.workflow import build_run_config
    state = get_state()
    cfg = build_run_config(spec=state.spec, prep=state.prep, tasks=state.tasks, model=state.model,
                           train=state.train, text=state.text, source=state.source)
    import os
    from mtlrec.training.rundir import default_run_dir
    run_dir = default_run_dir(cfg.arch, root=os.environ.get("MTLREC_RUNS_DIR", "runs"), name=cfg.name)
    _leave_a_core_for_the_ui()
    job = TrainingJob(cfg, run_dir, dataset=state.dataset)
    job.start()
    state.jobs.append(job)
    return job


@st.cache_resource(show_spinner="Loading the run ...", max_entries=16)
def load_run_cached(run_dir: str):
    """A finished run (config, dataset, model, history, metrics), loaded once per server process.

    Only finished runs are cached (their folders no longer change); the cache is shared by
    sessions, but a session only ever asks for the run folders of its own jobs."""
    from mtlrec.runs import load_run
    return load_run(run_dir)


def _leave_a_core_for_the_ui() -> None:
    """CPU training in the server process: torch's intra-op threads (spinning on every core)
    starve the UI thread that draws the live curves, and the UI slows the training in turn.
    Leave one core to the UI. (A no-op for GPU training; process-wide, so set once.)"""
    if _WARM.get("threads_set"):
        return
    import os

    import torch
    n = os.cpu_count() or 1
    if n > 1 and not torch.cuda.is_available():
        torch.set_num_threads(max(1, min(torch.get_num_threads(), n - 1)))
    _WARM["threads_set"] = True
