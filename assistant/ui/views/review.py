"""文稿审查: paste or upload a draft; findings highlighted and cited; export as Markdown / DOCX."""

from __future__ import annotations

import streamlit as st

from assistant.export.review_export import KIND_LABELS, layer_label, review_docx, review_markdown, type_line
from assistant.render import highlight_html, page_label
from assistant.review.drafts import DraftReadError, read_docx_bytes
from assistant.ui.common import get_assistant, show_source

assistant = get_assistant()
st.title("文稿审查")
st.caption(
    "检查保健食品标签、说明书和广告文稿：违规用语（规则与分类模型两层）、缺少的必备声明和标示项目、批准文号格式，"
    "每条问题都引用法条原文。"
)

TYPES = {"auto": "自动判断", "label": "标签", "manual": "说明书", "advert": "广告"}
uploaded = st.file_uploader("上传文稿（.txt 或 .docx），或在下方粘贴", type=["txt", "docx"])
initial = ""
if uploaded is not None:
    data = uploaded.getvalue()
    try:
        initial = read_docx_bytes(data) if uploaded.name.lower().endswith(".docx") else data.decode("utf-8", errors="replace")
    except DraftReadError as err:
        st.error(str(err))
draft = st.text_area("文稿内容", value=initial, height=220, key="review_draft")
doc_type = st.radio("文稿类型", list(TYPES), format_func=TYPES.__getitem__, horizontal=True)

if st.button("开始审查", type="primary") and draft.strip():
    st.session_state["review_result"] = assistant.review(draft, doc_type)

result = st.session_state.get("review_result")
if result is not None:
    if result.notice:
        st.caption(result.notice)
    st.info(type_line(result))
    spans = [(f.start, f.end) for f in result.findings if f.start >= 0]
    st.subheader("标注后的文稿", anchor=False)
    st.markdown(highlight_html(result.draft, spans, numbered=True), unsafe_allow_html=True)  # escaped
    if not result.findings:
        st.success("未发现问题。")
    else:
        st.subheader(f"发现 {len(result.findings)} 个问题", anchor=False)
        st.table(  # an HTML table: every cell is text (escaped), and the layer that found it is readable
            [
                {
                    "类型": KIND_LABELS.get(f.kind, f.kind),
                    "文本": f.text or "（全文）",
                    "发现方式": layer_label(f),
                    "问题": f.message,
                    "依据": "；".join(f"《{c.title}》{c.article}" for c in f.citations),
                }
                for f in result.findings
            ]
        )
        st.subheader("引用的条文", anchor=False)
        seen: set[tuple[str, str]] = set()
        for f in result.findings:
            for c in f.citations:
                if (c.title, c.article) in seen:
                    continue
                seen.add((c.title, c.article))
                with st.expander(f"《{c.title}》{c.article} · {page_label(c.page_start, c.page_end)}"):
                    st.text(c.quote)
                    # One article can be cited by several chunks (or one chunk under two labels): number them.
                    show_source(c.doc_id, c.page_start, c.quote, key=f"review-{len(seen)}-{c.chunk_id}")
    left, right = st.columns(2)
    left.download_button("导出 Markdown", review_markdown(result), file_name="审查意见.md", mime="text/markdown")
    right.download_button(
        "导出 Word（DOCX）",
        review_docx(result),
        file_name="审查意见.docx",
        mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )
