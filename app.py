"""mtlrec dashboard: `streamlit run app.py` (or `make run`).

A multipage app (st.navigation): Home, Data, Tasks & model, Train, Results,
Recommendations, Explain, Runs and Lab. Pages keep their state in st.session_state (see
pages/ui/state.py), so every browser session has its own data, configuration and runs.
An error inside a page is shown as a short message (what failed, a reference to the
server log), never as a traceback; the full traceback goes to the server's log under a fixed marker
(pages/ui/boundary.py), where tests find it.
"""
from __future__ import annotations

import streamlit as st

from pages.ui.boundary import run_page
from pages.ui.sidebar import sidebar
from pages.ui.state import mark_app_ran
from pages.ui.workspace import restore_or_start, save_if_changed
st.set_page_config(page_title="mtlrec — multi-task recommendations", page_icon=":material/hub:",
                   layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/table_chart:"),
    st.Page("pages/model.py", title="Tasks & model", icon=":material/account_tree:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/results.py", title="Results", icon=":material/insights:"),
    st.Page("pages/recommend.py", title="Recommendations", icon=":material/recommend:"),
    st.Page("pages/explain.py", title="Explain", icon=":material/psychology:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/folder_open:"),
    st.Page("pages/lab.py", title="Lab", icon=":material/science:"),
]

page = st.navigation(PAGES)
mark_app_ran()
restore_or_start()          # ?ws=<id>: the visitor's saved dataset, configuration and runs
sidebar()
try:
    run_page(page)          # an exception: a short message, its traceback in the server log
finally:
    save_if_changed()
