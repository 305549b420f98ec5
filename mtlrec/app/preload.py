"""Heavy imports done ahead of need, in a background thread of the server.

SHAP (with scikit-learn, matplotlib and numba under it) takes 4-8 s to import on a busy 2-core machine;
the first Explain page of a server process used to wait for it in the script thread. `preload(names)`
imports the named modules once per process in a daemon thread, started by the app once a session has
a run to explain, so that the import is over (or under way, never started twice) when the page needs it.
A module that fails to import is left for the page to report when it uses it.
"""
from __future__ import annotations

import importlib
import logging
import threading

EXPLAIN_MODULES = ("shap", "sklearn.metrics", "lime.lime_tabular")
_STARTED: dict[tuple, threading.Thread] = {}
_LOCK = threading.Lock()
_LOG = logging.getLogger(__name__)


def _import_all(names: tuple) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - the page that needs it says what is wrong
            _LOG.info("preloading %s failed: %r", name, e)


def preload(names=EXPLAIN_MODULES) -> threading.Thread:
    """Import ``names`` in a background daemon thread, once per process and list of names; the thread."""
    key = tuple(names)
    with _LOCK:
        t = _STARTED.get(key)
        if t is None:
            t = _STARTED[key] = threading.Thread(target=_import_all, args=(key,), name="mtlrec-preload",
                                                 daemon=True)
            t.start()
    return t
