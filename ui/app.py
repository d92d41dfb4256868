"""Streamlit front end (thin): collect input, call `assistant`, render. Started by `python -m assistant app`."""

from __future__ import annotations

import streamlit as st

from assistant.engine import Assistant
from assistant.ingest import IngestProgress
from assistant.render import escape_markdown, page_label
from assistant.settings import get_settings

st.set_page_config(page_title="保健食品备案助手", page_icon="📘", layout="wide")


@st.cache_resource(show_spinner="正在加载模型和索引……")
def get_assistant() -> Assistant:
    assistant = Assistant(get_settings())
    assistant.warm_up()
    return assistant


def build_index_if_needed(assistant: Assistant) -> None:
    if not assistant.index_is_empty():
        return
    st.info("首次运行：正在为内置法规文档建立索引，约需一两分钟，之后会直接复用。")
    bar = st.progress(0.0, text="准备中……")

    def on_file(path, index: int, total: int) -> None:  # type: ignore[no-untyped-def]
        bar.progress((index - 1) / max(total, 1), text=f"正在处理（{index}/{total}）：{path.name}")

    report = assistant.ingest(progress=IngestProgress(on_file=on_file))
    bar.progress(1.0, text=f"索引完成：{len(report.added)} 个文档，{report.chunks} 个段落。")
    for failure in report.failed:
        st.warning(f"{failure.path}：{failure.reason}")


assistant = get_assistant()
build_index_if_needed(assistant)

st.title("保健食品备案助手")
st.caption("检索内置的法律法规和规范性文件，结果标明文件、条号和页码。")
query = st.text_input("输入问题或关键词", placeholder="例如：保健食品标签不得涉及什么内容")
k = st.slider("返回条数", min_value=1, max_value=20, value=5)
if query:
    hits = assistant.search(query, k=k)
    if not hits:
        st.warning("没有找到相关段落。")
    for rank, hit in enumerate(hits, start=1):
        c = hit.chunk
        with st.container(border=True):
            st.markdown(f"**{rank}\\. {escape_markdown(c.title)}** {escape_markdown(c.article)}")
            parts = (c.heading_path, page_label(c.page_start, c.page_end), f"相似度 {hit.score:.3f}")
            st.caption(escape_markdown(" · ".join(p for p in parts if p)))
            st.text(c.text)
