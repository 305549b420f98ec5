"""The Explain page's caches, shared by every session and keyed on the run's version
(`pages.ui.actions.run_version`): the explainer (background and SHAP's model copy), the global
summary (also kept on disk in the run folder, `mtlrec.explain.store`: fast after a server restart),
LIME and the dependence plot. A reload, a second visitor or a page switch redraws from memory; a run
replaced, resumed or finished again under the same name is computed anew."""
from __future__ import annotations

import threading
from collections import OrderedDict

import streamlit as st

from pages.ui.actions import load_run_cached, run_version


@st.cache_resource(show_spinner=False, max_entries=8)
def _explainer(run_dir: str, background: int, version: str):
    from mtlrec.explain.api import make_explainer
    return make_explainer(load_run_cached(run_dir), background)


def explainer(run_dir: str, background: int):
    """One ModelExplainer per run version and background size, shared by reruns and sessions."""
    return _explainer(str(run_dir), int(background), run_version(run_dir))


_GLOBAL: OrderedDict = OrderedDict()       # (run_dir, n_rows, background, version) -> summary, newest last
_GLOBAL_MAX = 16
_LOCK = threading.Lock()


def global_summary(run_dir: str, n_rows: int, background: int, progress=None) -> dict:
    """The global SHAP summary of a run version: from memory, else from the run folder, else computed
    (``progress(fraction, message)`` while computing; a plain dict cache rather than st.cache_data, so
    the progress bar drawn outside is not replayed)."""
    from mtlrec.explain.api import global_summary as compute
    from mtlrec.explain.store import stored
    key = (str(run_dir), int(n_rows), int(background), run_version(run_dir))
    with _LOCK:
        if key in _GLOBAL:
            _GLOBAL.move_to_end(key)
            return _GLOBAL[key]
    value = stored(run_dir, "global", {"n_rows": key[1], "background": key[2]},
                   lambda: compute(load_run_cached(run_dir), n_rows=key[1], explainer=explainer(run_dir, key[2]),
                                   progress=progress), version=key[3])
    _remember(key, value)
    return value


def cached_global_summary(run_dir: str, n_rows: int, background: int) -> dict | None:
    """The global summary when it is ready without computing (in memory, or kept on disk for this run
    version), else None."""
    from mtlrec.explain.store import entry_path, load_entry
    key = (str(run_dir), int(n_rows), int(background), run_version(run_dir))
    with _LOCK:
        if key in _GLOBAL:
            return _GLOBAL[key]
    path = entry_path(run_dir, "global", key[3], {"n_rows": key[1], "background": key[2]})
    value = load_entry(path) if path.is_file() else None
    if value is not None:
        _remember(key, value)
    return value


def _remember(key: tuple, value: dict) -> None:
    with _LOCK:
        _GLOBAL[key] = value
        while len(_GLOBAL) > _GLOBAL_MAX:
            _GLOBAL.popitem(last=False)


@st.cache_data(show_spinner=False, max_entries=64)
def _lime(run_dir: str, user: str, item: str, task: str, cls, background: int, version: str) -> dict:
    from mtlrec.explain.lime import lime_explanation
    return lime_explanation(load_run_cached(run_dir), user, item, task, cls=cls,
                            explainer=explainer(run_dir, background))


def lime(run_dir: str, user: str, item: str, task: str, cls, background: int) -> dict:
    """LIME beside SHAP for one pair and task (shared by sessions, per run version)."""
    return _lime(str(run_dir), str(user), str(item), task, cls, int(background), run_version(run_dir))


@st.cache_data(show_spinner=False, max_entries=32)
def _dependence(run_dir: str, group: str, colour, task: str, cls, rows: int, background: int, version: str) -> dict:
    from mtlrec.explain.dependence import dependence_data
    return dependence_data(load_run_cached(run_dir), group, colour, task, cls=cls, n_rows=rows,
                           explainer=explainer(run_dir, background))


def dependence(run_dir: str, group: str, colour, task: str, cls, rows: int, background: int) -> dict:
    """The SHAP dependence plot's data (shared by sessions, per run version)."""
    return _dependence(str(run_dir), group, colour, task, cls, int(rows), int(background), run_version(run_dir))
