"""条文查询: an article verbatim by reference, with prev/next navigation and the articles that cite it
(penalty first) or that it cites, each a link; keyword/semantic search."""

from __future__ import annotations

import streamlit as st

from assistant.numerals import int_to_chinese
from assistant.render import escape_markdown, highlight_html, page_label, term_spans
from assistant.retrieve import Mode
from assistant.tokenize import content_terms
from assistant.ui.common import STATUS_LABELS, get_assistant, show_source

assistant = get_assistant()
st.title("条文查询")
CITED_BY_KINDS = {"penalty": "罚则", "applies": "适用", "refers": "提及"}
CITES_KINDS = {"penalty": "所罚违反", "applies": "适用", "refers": "提及"}
tab_ref, tab_search = st.tabs(["按条号查询", "关键词 / 语义检索"])


def open_reference(reference: str) -> None:
    """Button callback: runs before the text input is created, the only time its value may be set."""
    st.session_state["lookup_ref"] = reference


if pending := st.session_state.pop("lookup_pending", None):
    st.session_state["lookup_ref"] = pending  # sent here from a refusal's clause pointer in 智能问答

with tab_ref:
    reference = st.text_input(
        "条文引用", key="lookup_ref", placeholder="例如：食品安全法第七十八条、《广告法》第十八条第一款第四项"
    )
    if reference:
        result = assistant.lookup(reference)
        if not result.found:
            st.warning(result.message)
            if result.suggestions:
                st.write("您可能要找：")
                for suggestion in result.suggestions:
                    st.button(
                        suggestion, key=f"sugg-{suggestion}", on_click=open_reference, args=(suggestion,)
                    )
        else:
            st.subheader(f"《{result.title}》{result.article}", anchor=False)
            meta = [result.heading_path, page_label(result.page_start, result.page_end)]
            meta += [
                f"施行日期 {result.effective_date}" if result.effective_date else "",
                STATUS_LABELS.get(result.status, result.status),
            ]
            st.caption(escape_markdown(" · ".join(m for m in meta if m)))
            spans = [result.highlight] if result.highlight else []
            # highlight_html escapes the text itself.
            st.markdown(highlight_html(result.text, spans), unsafe_allow_html=True)
            show_source(result.doc_id, result.page_start, result.text, key=f"lookup-{result.doc_id}-{result.article}")
            number = result.ref.article if result.ref else 0
            before, after = assistant.neighbours(result.doc_id, number)
            left, right = st.columns(2)
            short = result.title
            if before:
                left.button(
                    f"← 第{int_to_chinese(before)}条",
                    use_container_width=True,
                    on_click=open_reference,
                    args=(f"{short}第{int_to_chinese(before)}条",),
                )
            if after:
                right.button(
                    f"第{int_to_chinese(after)}条 →",
                    use_container_width=True,
                    on_click=open_reference,
                    args=(f"{short}第{int_to_chinese(after)}条",),
                )
            if result.cited_by:
                st.markdown("##### 引用本条的条文")
                st.caption("“罚则”是对违反本条的处罚规定。")
                for n, link in enumerate(result.cited_by):
                    label = f"{CITED_BY_KINDS.get(link.kind, link.kind)} · 《{link.source_title}》{link.source_article}"
                    st.button(
                        label,
                        key=f"cited-by-{n}",
                        on_click=open_reference,
                        args=(f"{link.source_title}{link.source_article}",),
                    )
                    st.caption(escape_markdown(link.sentence))
            if result.cites:
                st.markdown("##### 本条引用的条文")
                st.caption("“所罚违反”：本条对违反该条的行为规定了处罚。")
                for n, link in enumerate(result.cites):
                    kind = CITES_KINDS.get(link.kind, link.kind)
                    if link.resolved:
                        target = f"{link.target_title}{link.target_label}"
                        st.button(
                            f"{kind} · 《{link.target_title}》{link.target_label}",
                            key=f"cites-{n}",
                            on_click=open_reference,
                            args=(target,),
                        )
                    else:
                        st.markdown(
                            escape_markdown(
                                f"{kind} · {link.law or '本文件'}{link.target_label}（文档库未收录）"
                            )
                        )

with tab_search:
    query = st.text_input("检索内容", key="search_query", placeholder="例如：保健食品广告 审查批准")
    modes: dict[Mode, str] = {"hybrid": "综合（关键词＋语义）", "bm25": "关键词", "dense": "语义"}
    mode = st.radio("检索方式", list(modes), format_func=modes.__getitem__, horizontal=True)
    if query:
        hits = assistant.search(query, k=10, mode=mode)
        if not hits:
            st.info("没有找到相关段落。")
        terms = list(content_terms(query))
        for rank, hit in enumerate(hits, start=1):
            c = hit.chunk
            with st.container(border=True):
                st.markdown(f"**{rank}\\. 《{escape_markdown(c.title)}》{escape_markdown(c.article)}**")
                st.caption(
                    escape_markdown(
                        " · ".join(p for p in (c.heading_path, page_label(c.page_start, c.page_end)) if p)
                    )
                )
                html = highlight_html(c.text, term_spans(c.text, terms))  # escapes the text itself
                st.markdown(html, unsafe_allow_html=True)
