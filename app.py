"""mtlrec dashboard: `streamlit run app.py` (or `make run`).

A multipage app (st.navigation): Home, Data, Tasks & model, Train, Results,
Recommendations and Explain. Pages keep their state in st.session_state (see
pages/state.py), so every browser session has its own data, configuration and runs.
"""
from __future__ import annotations

import streamlit as st

from pages.state import explain_page_exists, fill_device, sidebar

st.set_page_config(page_title="mtlrec — multi-task recommendations", page_icon=":material/hub:",
                   layout="wide")


def _explain_placeholder() -> None:
    st.title("Explain a recommendation")
    st.info("SHAP explanations of the shared representation and of single recommendations "
            "arrive with the explanations feature; this page will show them.")


pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/table_chart:"),
    st.Page("pages/model.py", title="Tasks & model", icon=":material/account_tree:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/results.py", title="Results", icon=":material/insights:"),
    st.Page("pages/recommend.py", title="Recommendations", icon=":material/recommend:"),
]
if explain_page_exists():
    pages.append(st.Page("pages/explain.py", title="Explain", icon=":material/psychology:"))
else:
    pages.append(st.Page(_explain_placeholder, title="Explain", icon=":material/psychology:",
                         url_path="explain"))

page = st.navigation(pages)
device_slot = sidebar()
try:
    page.run()
finally:
    fill_device(device_slot)
