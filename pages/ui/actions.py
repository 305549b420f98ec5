"""What pages do with data and runs: load the sample or an upload, prepare, start training, load a run.

Training runs in `mtlrec.training.jobs.TrainingJob` threads, which never call ``st.*``; pages poll
``job.snapshot()`` (see pages/train.py's fragment).
"""
from __future__ import annotations

import os

import streamlit as st

from pages.ui.messages import msg_text, show_data_error, show_exception
from pages.ui.state import apply_workspace, get_state


def load_sample_workspace() -> bool:
    """Load the sample data with its ready configuration; False (and a message) on failure."""
    from mtlrec.app.workflow import sample_workspace
    try:
        apply_workspace(sample_workspace())
        return True
    except Exception as e:  # a broken install must not show a traceback
        show_exception(e, "Loading the sample data")
        return False

def handle_upload(files) -> bool:
    """Read uploaded files (UploadedFile objects) into the state; errors end in state.data_error.

    Sizes are the library's upload limits (``mtlrec.data.limits.Limits.uploads``: uncompressed bytes in
    all, zips and gzip files inflated in chunks, the parse estimated before pandas runs); Streamlit's
    server.maxUploadSize only caps each file as sent."""
    from mtlrec.data.limits import Limits
    from mtlrec.errors import DataError
    from mtlrec.app.workflow import uploaded_workspace
    state = get_state()
    names = ", ".join(f.name for f in files)
    try:
        contents = [(f.name, f.getvalue()) for f in files]
        apply_workspace(uploaded_workspace(contents))
        from pages.ui.workspace import remember_upload
        remember_upload(contents)
        return True
    except DataError as e:
        state.data_error = e
    except MemoryError:     # the estimates missed: the server lives on, the user learns what to do
        state.data_error = DataError("there is not enough memory to read the files (they are too large)",
                                     file=names, fix=Limits.uploads().fix)
    except Exception as e:  # unexpected: still a readable message, never a traceback
        state.data_error = DataError(f"could not read the files ({e.__class__.__name__}: {e})", file=names,
                                     fix="upload CSV, TSV, Parquet or a zip of them, with a header row")
    return False

@st.cache_resource(show_spinner=False)
def text_encoder(model: str = "default"):
    """The language-model text encoder, loaded once per server process."""
    from mtlrec.serve.text import TextEncoder
    return TextEncoder(model)

def prepare_dataset() -> bool:
    """Prepare the current data (spec + prep options + text features) with a progress bar.

    Reuses the prepared dataset when nothing changed. Errors are shown, not raised."""
    from mtlrec.prep import prepare
    from mtlrec.app.workflow import dataset_key, effective_spec
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

def start_training(processes: int = 1):
    """Start a background TrainingJob on the prepared dataset with the current configuration
    (``processes`` > 1: data-parallel in that many torchrun processes)."""
    from mtlrec.training.jobs import TrainingJob
    from mtlrec.app.workflow import build_run_config
    state = get_state()
    cfg = build_run_config(spec=state.spec, prep=state.prep, tasks=state.tasks, model=state.model,
                           train=state.train, text=state.text, source=state.source)
    if state.dataset is not None:       # a task without its label: said now, not by the run seconds later
        from mtlrec.tasks import tasks_from_config
        tasks_from_config(cfg.tasks, state.dataset)
    from mtlrec.runs.folder import default_run_dir
    run_dir = default_run_dir(cfg.arch, root=os.environ.get("MTLREC_RUNS_DIR", "runs"), name=cfg.name)
    if state.ws_id:                     # the workspace owns the run before anything is written into it
        from mtlrec.runs.access import record_owner
        try:
            record_owner(run_dir, state.ws_id)
        except BaseException:
            run_dir.rmdir()
            raise
    job = TrainingJob(cfg, run_dir, dataset=state.dataset, processes=processes)
    job.start()
    state.jobs.append(job)
    from pages.ui.workspace import register_job
    register_job(job)
    return job

@st.cache_resource(show_spinner="Loading the run ...", max_entries=16)
def _load_run_shared(run_dir: str, version: str):
    from mtlrec.runs.load import load_run
    return load_run(run_dir)


def run_version(run_dir) -> str:
    """The run folder's version (`mtlrec.runs.version.run_version`): every cache of a run is keyed on it,
    so a run replaced, resumed or finished under the same name is read again."""
    from mtlrec.runs.version import run_version as version
    return version(run_dir)


def load_run_cached(run_dir: str):
    """A finished run (config, dataset, model, history, metrics), loaded once per server process and
    run version (a replaced or resumed run is loaded again).

    The cache is shared by sessions, so every call first checks that this workspace may see the
    run (`AppState.check_run`: RunAccessError, a DataError, when not)."""
    get_state().check_run(run_dir)
    return _load_run_shared(str(run_dir), run_version(run_dir))

def start_resume(run_dir: str):
    """Resume an interrupted, cancelled or failed run from its last checkpoint in a background job
    (raises DataError when it cannot be resumed); it becomes this session's selected run."""
    from mtlrec.training.jobs import TrainingJob

    from pages.ui.workspace import register_job
    state = get_state()
    state.check_run(run_dir, manage=True)
    job = TrainingJob.resume(run_dir)
    job.start()
    state.jobs.append(job)
    register_job(job)
    state.selected_run = str(run_dir)
    return job


def open_run(run_dir: str):
    """The run for a page: loaded (cached), its warning and notes shown; None (and the message
    naming the damaged file and the fix) when its folder cannot be used."""
    from mtlrec.errors import DataError
    try:
        run = load_run_cached(run_dir)
    except DataError as e:           # RunFolderError: which file, what to do
        show_data_error(e)
        return None
    except Exception as e:
        show_exception(e, "Loading the run")
        return None
    if run.warning:
        st.warning(msg_text(run.warning), icon=":material/warning:")
    for note in run.notes:
        st.caption(msg_text(note))
    warm_explain()
    return run


def warm_explain() -> None:
    """A run can be explained now: SHAP (4-8 s to import on a busy machine) is imported in a background
    thread, once per server process (`mtlrec.app.preload`), so the first Explain page does not wait for it."""
    from mtlrec.app.preload import preload
    preload()
