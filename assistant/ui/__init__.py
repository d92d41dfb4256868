"""The Streamlit front end (thin): pages that collect input, call `assistant` and render.

Nothing else in `assistant` imports this package; `python -m assistant app` runs `app.py` as a script."""
