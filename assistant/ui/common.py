"""What every page shares: the one assistant per process, first-run indexing, the admin gate, citation
rendering."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import streamlit as st

from assistant.admin import AdminMode, AdminSession, admin_mode
from assistant.engine import Assistant
from assistant.ingest import IngestProgress
from assistant.preview import PreviewError
from assistant.render import escape_markdown, page_label
from assistant.settings import Settings, get_settings
from assistant.store import IndexMismatchError

STATUS_LABELS = {"有效": "现行有效", "已届满": "实施期已届满", "参考资料": "参考资料（非官方文本）", "": "状态未知"}


_loading = threading.Lock()
_loaded: Assistant | None = None


def load_assistant() -> Assistant:
    """The process's one assistant, models loaded and index open — built once per process, not per
    interaction; the launcher (`assistant.ui.serve`) starts this while the server starts, so the
    first visitor does not wait for it. An index built by another embedding model is explained by
    ensure_index, which offers the rebuild."""
    global _loaded
    with _loading:
        if _loaded is None:
            assistant = Assistant(get_settings())
            with contextlib.suppress(IndexMismatchError):
                assistant.warm_up()
            _loaded = assistant
        return _loaded


@st.cache_resource(show_spinner="正在加载模型和索引……")
def get_assistant() -> Assistant:
    return load_assistant()


def ensure_index(assistant: Assistant) -> None:
    """Build the index of the corpus folder on first run, with a visible progress bar (without that folder,
    e.g. an installed package run elsewhere, say where documents come in); an index built by another
    embedding model (e.g. after an upgrade) is rebuilt on request."""
    try:
        empty = assistant.index_is_empty()
    except IndexMismatchError as error:
        st.warning(str(error))
        allowed = admin_gate(assistant.settings)
        rebuild = st.button("用当前模型重建索引（原有文档全部重新索引）", type="primary", disabled=not allowed)
        if not (rebuild and allowed):  # the server does not enforce `disabled`: check again
            st.stop()
        _build(assistant, assistant.rebuild_index(), "正在用当前模型重建索引……")
        st.rerun()
    corpus = assistant.settings.corpus_dir
    if empty and not corpus.is_dir():
        # An installed package has no bundled corpus: the library page is where documents come in.
        st.info(escape_markdown(f"索引为空：请在“文档库”页上传法规文档，或把文档放进 {corpus} 文件夹后刷新页面。"))
    elif empty:
        _build(assistant, [corpus], "首次运行：正在为内置法规文档建立索引（约一两分钟），之后会直接复用。")


def admin_gate(settings: Settings) -> bool:
    """Render the admin gate (the mode is decided by assistant.admin) and say whether this session may
    change the library now: a password form, a 退出管理 button once unlocked, or the warning of an app
    open to the network without a password."""
    address = st.get_option("server.address")
    mode = admin_mode(settings, address)
    session = st.session_state.setdefault("admin_session", AdminSession())
    if mode is AdminMode.open:
        return True
    if mode is AdminMode.open_by_choice:
        st.caption("未设置管理员密码，且已允许开放管理（ASSISTANT_ALLOW_OPEN_ADMIN=true）：网络中的任何人都能修改文档库。")
        return True
    if mode is AdminMode.locked:
        where = f"地址 {address}" if address else "所有网络接口"
        st.warning(
            f"本应用在{where}上监听，网络中的其他电脑也能打开，且未设置管理员密码：任何人都能上传、重新索引或删除"
            "文档，因此这些操作已停用。请设置环境变量 ASSISTANT_ADMIN_PASSWORD（管理员密码）后重新启动应用，"
            "再在此输入密码管理文档库；如确需让网络中的所有人都能修改文档库，请设置 ASSISTANT_ALLOW_OPEN_ADMIN=true。"
        )
        return False
    if session.may_change(mode):
        left, right = st.columns([4, 1])
        left.caption("已进入管理模式：可以上传、重新索引和删除文档。")
        right.button("退出管理", on_click=session.lock, use_container_width=True)
        return True
    with st.form("admin-login", clear_on_submit=True):
        st.caption("上传、重新索引和删除文档需要管理员密码；查询、问答和审查无需密码。")
        attempt = st.text_input("管理员密码", type="password")
        submitted = st.form_submit_button("进入管理")
    if submitted:
        if session.try_unlock(settings, attempt):
            st.rerun()
        st.error("管理员密码不正确，请重新输入。")
    return False


def _build(assistant: Assistant, paths: list[Path], message: str) -> None:
    st.info(message)
    bar = st.progress(0.0, text="准备中……")
    report = assistant.ingest(paths, progress=progress_bar(bar))
    bar.progress(1.0, text=f"索引完成：{len(report.added)} 个文档，{report.chunks} 个段落。")
    for failure in report.failed:
        st.warning(f"{Path(failure.path).name}：{failure.reason}")
    for warning in report.warnings:
        st.info(f"{Path(warning.path).name}：{warning.reason}")


def progress_bar(bar: Any) -> IngestProgress:
    """Ingest progress on a Streamlit progress bar: the file in hand, and each scanned page recognised."""
    state: dict[str, Any] = {}

    def on_file(path: Path, index: int, total: int) -> None:
        state.update(fraction=(index - 1) / max(total, 1), label=f"正在处理（{index}/{total}）：{path.name}")
        bar.progress(state["fraction"], text=state["label"])

    def on_ocr_page(page: int) -> None:
        bar.progress(state.get("fraction", 0.0), text=f"{state.get('label', '')} · 文字识别第 {page} 页")

    return IngestProgress(on_file=on_file, on_ocr_page=on_ocr_page)


def citation_header(c: Any) -> str:
    """`[1] 《title》第X条 · 第N页` — plain text, for expander labels (never interpreted as Markdown)."""
    return f"[{c.number}] 《{c.title}》{c.article} · {page_label(c.page_start, c.page_end)}"


def show_citation_body(c: Any, key: str) -> None:
    meta = [
        c.heading_path,
        page_label(c.page_start, c.page_end),
        f"施行日期 {c.effective_date}" if c.effective_date else "",
        STATUS_LABELS.get(c.status, c.status),
    ]
    st.caption(escape_markdown(" · ".join(m for m in meta if m)))
    st.text(c.quote)
    show_source(c.doc_id, c.page_start, c.quote, key)


def show_source(doc_id: str, page: int, passage: str, key: str) -> None:
    """On request, the cited page with the passage boxed (PDFs, scans, photos), or the passage in its
    surrounding text (text documents); rendered only when asked, so it never delays an answer."""
    if not st.toggle("查看原文", key=f"source-{key}", help="显示引文所在的原始页面（PDF、扫描件、图片），其他文档显示上下文"):
        return
    try:
        with st.spinner("正在打开原文……"):
            view = get_assistant().source_view(doc_id, page, passage)
    except PreviewError as error:
        st.warning(str(error))
        return
    if view.preview is not None:
        located = "黄色框为引文位置" if view.preview.boxes else "未能在该页自动定位引文"
        st.image(str(view.preview.image), caption=f"原文第 {view.preview.page} 页（{located}）")
        return
    st.caption("该文档没有分页的原件，以下为引文及其上下文：")
    if view.before:
        st.text(view.before)
    st.success(escape_markdown(view.passage), icon=":material/format_quote:")
    if view.after:
        st.text(view.after)


# Streamlit's own widgets carry English strings ("Upload", "200MB per file", toolbar tooltips, the
# "Running…"/"Stop" indicator). This constant stylesheet swaps or hides them; it contains no user or
# document content, so injecting it as HTML is safe.
CHINESE_CHROME_CSS = """
<style>
[data-testid="stFileUploaderDropzone"] [data-testid="stBaseButton-secondary"] [data-testid="stMarkdownContainer"] p {font-size: 0;}
[data-testid="stFileUploaderDropzone"] [data-testid="stBaseButton-secondary"] [data-testid="stMarkdownContainer"] p::after {content: "选择文件"; font-size: 0.875rem;}
[data-testid="stFileUploaderDropzoneInstructions"] span {font-size: 0;}
[data-testid="stFileUploaderDropzoneInstructions"] span::after {content: "拖放文件到此处，单个文件不超过 200MB"; font-size: 0.8rem;}
[data-testid="stElementToolbar"] {display: none;}
[data-testid="stStatusWidget"] {visibility: hidden;}
</style>
"""


def apply_chinese_chrome() -> None:
    st.markdown(CHINESE_CHROME_CSS, unsafe_allow_html=True)  # constant CSS, no untrusted text
