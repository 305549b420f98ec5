"""Labels that are a property of the item or of the user (`mtlrec.data.label_dependence`), said on
Data (per label) and on Tasks & model (per task, with a one-click "drop this task")."""
from __future__ import annotations

import streamlit as st

from mtlrec.data.label_dependence import dependence_message
from pages.ui.messages import md_text
from pages.ui.state import get_state


@st.cache_data(show_spinner=False, max_entries=16)
def _dependence(key: str, _raw, _spec) -> dict:
    from mtlrec.data.label_dependence import label_dependence
    return label_dependence(_raw, _spec)


def current_dependence() -> dict[str, str | None]:
    """``{label: "item" | "user" | None}`` of the loaded data and roles ({} without data or when it
    cannot be told, e.g. roles naming a missing column -- validation says why)."""
    state = get_state()
    if state.raw is None or state.spec is None:
        return {}
    try:
        return _dependence(f"{state.data_uid}:{state.spec.to_json()}", state.raw, state.spec)
    except Exception:  # noqa: BLE001 - a hint must never break the page; Data's validation names the problem
        return {}


def show_label_dependence() -> None:
    """Data page: one warning per label that is a property of the item or of the user."""
    for label, who in current_dependence().items():
        if who:
            st.warning(md_text(dependence_message(None, who, label=label)), icon=":material/category:")


def task_dependence_warning(task: dict, key: str) -> bool:
    """Tasks & model: the warning under a task whose label is a property of the item or user, with a
    "Drop this task" button; True when the button was clicked."""
    who = current_dependence().get(task.get("label"))
    if not who:
        return False
    st.warning(md_text(dependence_message(task.get("name"), who, label=task.get("label"))),
               icon=":material/category:")
    return st.button("Drop this task", key=key, icon=":material/delete:",
                     help=f"it mainly teaches the model what the {who}s are")
