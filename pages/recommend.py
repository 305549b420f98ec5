import streamlit as st

from pages.state import get_state

state = get_state()
st.title("recommend")
st.info("Coming soon.")
