"""mtlrec dashboard: `streamlit run app.py` (or `make run`).

A multipage app (st.navigation): Home, Data, Tasks & model, Train, Results,
Recommendations, Explain, Runs and Lab. Pages keep their state in st.session_state (see
pages/ui/state.py), so every browser session has its own data, configuration and runs.
An error inside a page is shown as a short message (what failed, a reference to the
server log), never as a traceback; the full traceback goes to the server's log under a fixed marker
(pages/ui/boundary.py), where tests find it.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from mtlrec.training.jobs import start_spare_worker
from pages.ui.actions import prepare_dataset
from pages.ui.boundary import run_page
from pages.ui.nav import PAGES as NAV
from pages.ui.sessions import track as track_session
from pages.ui.sidebar import sidebar
from pages.ui.state import mark_app_ran
from pages.ui.workspace import restore_or_start, save_if_changed

# the favicon is a file of the app (a material-icon or emoji favicon is fetched from a font CDN)
st.set_page_config(page_title="mtlrec — multi-task recommendations",
                   page_icon=str(Path(__file__).resolve().parent / "assets" / "favicon.png"), layout="wide")

PAGES = [st.Page(file, title=title, icon=icon, default=(i == 0)) for i, (file, title, icon, _what) in enumerate(NAV)]

page = st.navigation(PAGES)
mark_app_ran()
restore_or_start(prepare_dataset)   # ?ws=<id>: the visitor's saved dataset, configuration and runs
track_session()     # what this session holds is freed once it ends; idle workspaces expire (issue 27)
finish_sidebar = sidebar()
try:
    run_page(page)          # an exception: a short message, its traceback in the server log
finally:
    save_if_changed()
    finish_sidebar()        # on a cold load: the device line, once the page is drawn
    start_spare_worker()    # once per server, after its first page is drawn: a worker process waits for Start (issue 25)
