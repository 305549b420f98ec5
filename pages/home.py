"""Home: what multi-task learning is, the pipeline, and a two-click start on the sample data."""
import streamlit as st

from mtlrec.figures import charts as viz
from pages.ui.actions import load_sample_workspace
from pages.ui.nav import pages_table
from pages.ui.state import ensure_app_navigation, get_state

INTRO = """
**Multi-task learning (MTL)** trains one model for several related goals at once — will the user
*click* an item, will they *like* it, what *rating* will they give, which *genres* fit. The tasks share
one representation of users, items and context, and each task adds a small *tower* on top. What one
task learns (for example from plentiful clicks) helps the others (for example from rare likes), and one
model serves every score a recommender needs. Architectures differ in how much they share: a **shared
bottom**, a mixture of experts with one gate per task (**MMoE**), or shared plus task-specific experts
(**PLE**). Loss weights — fixed or adapted during training — decide how much each task pulls.

mtlrec takes you from raw interaction data to a trained model, per-task metrics, the gain over
single-task models, per-user recommendation lists and SHAP explanations, in the browser.
"""


def _quick_start_section(state) -> None:
    """The two-click start: load the sample with a ready configuration, then go to Train."""
    st.markdown("#### Try it in two clicks")
    st.markdown("1. Load the shipped sample (movies with clicks, likes, ratings and descriptions) "
                "with a ready configuration.\n2. Press **Start training** on the Train page and watch "
                "the per-task curves.")
    if st.button("Load sample & configure", type="primary", icon=":material/rocket_launch:",
                 key="home_load_sample", width="stretch"):
        with st.spinner("Loading the sample data ..."):
            ok = load_sample_workspace()
        if ok:
            st.switch_page("pages/train.py")
    if state.has_data:
        st.caption(f"Loaded now: {state.source} — {len(state.raw.interactions):,} interactions.")


def _pipeline_section() -> None:
    """The pipeline figure and the table of pages."""
    st.markdown("#### The pipeline")
    with st.container(key="home_pipeline"):
        # inline SVG through markdown: st.html drops <svg> under this Streamlit version (issue 21); the SVG is
        # built by mtlrec.figures.charts from fixed, escaped text only
        st.markdown(viz.flow_svg(), unsafe_allow_html=True)
    st.markdown(pages_table())


def render() -> None:
    """The Home page."""
    ensure_app_navigation()
    state = get_state()
    st.title("mtlrec — multi-task recommendations you can see and explain")
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.markdown(INTRO)
    with right:
        _quick_start_section(state)
    _pipeline_section()


render()
