"""What the dashboard needs, without streamlit: glue between pages and the library (workflow), a visitor's workspace on disk (workspace, workspace_clean), messages without server paths (public)."""
