"""Every table of the app through one door: numbers rounded by the app's one rule
(`mtlrec.display.display_number`: 4 decimals, at least 3 significant digits), so that no table
shows 16-digit float noise (0.7812345678901234) and all show a metric alike."""
from __future__ import annotations

import streamlit as st

from mtlrec.display import display_table


def show_table(data, where=None, **kwargs):
    """``st.dataframe(data, **kwargs)`` (or ``where.dataframe``) with every float rounded for reading."""
    return (where or st).dataframe(display_table(data), **kwargs)
