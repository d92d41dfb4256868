"""文档库: the indexed documents; upload, delete and re-index."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from assistant.library import accepted_types, save_upload
from assistant.ui.common import STATUS_LABELS, admin_gate, get_assistant, progress_bar

assistant = get_assistant()
st.title("文档库")
# Upload, re-index and delete need it. Their widgets are disabled without it, and each action checks
# it again: the server does not enforce `disabled`.
can_change = admin_gate(assistant.settings)

overview = st.container()  # filled after the upload section, so a new upload is listed at once

st.subheader("上传新文档", anchor=False)
files = st.file_uploader(
    "支持 PDF、TXT、Markdown、DOCX 和扫描件图片（PNG、JPEG、TIFF），可多选",
    type=accepted_types(),
    accept_multiple_files=True,
    disabled=not can_change,
)
if files and st.button("导入并建立索引", type="primary", disabled=not can_change) and can_change:
    paths = [save_upload(f.name, f.getvalue(), assistant.settings) for f in files]
    bar = st.progress(0.0, text="准备中……")
    report = assistant.ingest(paths, progress_bar(bar))
    bar.progress(1.0, text="完成")
    for p in report.added + report.updated:
        st.success(f"{Path(p).name}：已导入")
    for p in report.unchanged:
        st.info(f"{Path(p).name}：内容未变化，已跳过")
    for failure in report.failed:
        st.error(f"{Path(failure.path).name}：{failure.reason}")
    for warning in report.warnings:
        st.warning(f"{Path(warning.path).name}：{warning.reason}")

records = assistant.documents()
with overview:
    st.caption(f"共 {len(records)} 个文档，{sum(r.chunk_count for r in records)} 个段落。")
    st.dataframe(
        [
            {
                "标题": r.meta.title,
                "发布机关": r.meta.issuing_body,
                "公布日期": r.meta.publication_date,
                "施行日期": r.meta.effective_date,
                "状态": STATUS_LABELS.get(r.meta.status, r.meta.status),
                "段落数": r.chunk_count,
                "页数": r.meta.page_count or None,
                "文字识别页": len(r.meta.ocr_pages) or None,
                "识别置信度": r.meta.ocr_confidence or None,
                "文件": Path(r.meta.source_path).name,
            }
            for r in records
        ],
        use_container_width=True,
        hide_index=True,
    )

st.subheader("管理文档", anchor=False)
if records:
    by_id = {r.meta.doc_id: r for r in records}
    chosen = st.selectbox("选择文档", list(by_id), format_func=lambda d: by_id[d].meta.title)
    left, right = st.columns(2)
    if left.button("重新索引", use_container_width=True, disabled=not can_change) and can_change:
        source = Path(by_id[chosen].meta.source_path)
        if source.exists():
            assistant.delete_document(chosen)
            report = assistant.ingest([source])
            st.success("已重新索引。") if not report.failed else st.error(report.failed[0].reason)
        else:
            st.error("源文件已不存在，无法重新索引。")
    if right.button("从索引中删除", use_container_width=True, disabled=not can_change) and can_change:
        assistant.delete_document(chosen)
        st.success("已删除。")
        st.rerun()
