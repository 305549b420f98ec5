import streamlit as st

from pages.state import get_state

state = get_state()
st.title("train")
st.info("Coming soon.")
