"""Helpers shared by the pages (not pages: Streamlit only treats pages/*.py as pages)."""
