"""Streamlit pages, run as scripts by `st.navigation` in `assistant/ui/app.py` (never imported)."""
