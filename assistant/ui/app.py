"""Streamlit front end (thin): collect input, call `assistant`, render. Started by `python -m assistant app`
(`hf-assistant app`), which runs this file from wherever the package is installed; the pages in `views/`
are paths relative to it."""

from __future__ import annotations

import streamlit as st

from assistant.ui.common import apply_chinese_chrome, ensure_index, get_assistant

st.set_page_config(page_title="保健食品备案助手", page_icon=":material/menu_book:", layout="wide")

apply_chinese_chrome()
assistant = get_assistant()
ensure_index(assistant)

pages = [
    st.Page("views/chat.py", title="智能问答", icon=":material/forum:", default=True),
    st.Page("views/lookup.py", title="条文查询", icon=":material/gavel:"),
    st.Page("views/review.py", title="文稿审查", icon=":material/fact_check:"),
    st.Page("views/library.py", title="文档库", icon=":material/library_books:"),
    st.Page("views/trainer.py", title="培训场次", icon=":material/school:"),
]
st.navigation(pages).run()
