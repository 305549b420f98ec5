"""Train: log the run live to the server's MLflow tracking or TensorBoard folder (optional extras).

Where it logs is the operator's choice (``MTLREC_MLFLOW_URI``, ``MTLREC_TENSORBOARD_DIR``:
`mtlrec.tracking.SERVER_ENV`), never typed on the page: a tracking URI or a folder is a place on the
server. The visitor chooses whether this run logs there (``train.tracking``); a box is enabled only
when its package is installed and the operator named a target."""
from __future__ import annotations

import streamlit as st

# train.tracking key -> (the package's module, the box's label)
TRACKERS = {"mlflow_uri": ("mlflow", "Log this run live to MLflow"),
            "tensorboard_dir": ("tensorboard", "Write TensorBoard event files as it trains")}


def _why_off(module: str, key: str, installed: bool, target) -> str | None:
    from mtlrec.tracking import EXTRAS, EXTRAS_FIX, SERVER_ENV
    if not installed:
        return f"{EXTRAS[module][1]} is not installed on the server: {EXTRAS_FIX}"
    if target is None:
        return f"the server's operator has not set {SERVER_ENV[key]} (docs/tracking.md)"
    return None


def tracking_option(train: dict, *, key: str) -> None:
    """A box per tracker: the run logs each epoch's metrics there while it trains (``train.tracking``)."""
    from mtlrec.tracking import installed, server_targets
    targets = server_targets()
    chosen = train.get("tracking") if isinstance(train.get("tracking"), dict) else {}
    picked, notes = {}, []
    for col, (k, (module, label)) in zip(st.columns(len(TRACKERS)), TRACKERS.items()):
        why = _why_off(module, k, installed(module), targets[k])
        on = col.checkbox(label, value=why is None and bool(chosen.get(k)), disabled=why is not None,
                          key=f"{key}_{k}",
                          help=why or "per-epoch losses and validation metrics, the training dynamics, then the "
                                      "test metrics, report and model: the same as python -m mtlrec runs "
                                      "export-mlflow / export-tensorboard afterwards")
        if why is not None:
            notes.append(f"{label}: off — {why}.")
        elif on:
            picked[k] = targets[k]
    if picked:
        train["tracking"] = picked          # the operator's targets, read again at every draw
    else:
        train.pop("tracking", None)         # a visit that ticks nothing saves nothing
    if notes:
        st.caption(" ".join(notes))
