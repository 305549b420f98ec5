"""Every figure: plotly builders and diagrams (charts), training dynamics (dynamics), explanations (explain). Pure functions of data; plotly loads with them."""
