"""智能问答: a conversation with cited answers; follow-up questions use the history."""

from __future__ import annotations

import streamlit as st

from assistant.answering.followup import turn_of
from assistant.answering.llm import GeneratorError
from assistant.ui.common import citation_header, get_assistant, show_citation_body

assistant = get_assistant()
st.title("智能问答")
st.caption("用日常中文提问，回答只引用文档库中的条文，每句都标注出处；文档没有涉及的问题会如实说明。")

GENERATORS = {
    "extractive": "摘录条文（离线）",
    "openai": "语言模型（需配置服务）",
    "local": "本地模型（需配置 GGUF 文件）",
}
with st.sidebar:
    st.subheader("问答设置")
    generator = st.selectbox(
        "回答方式", list(GENERATORS), format_func=GENERATORS.__getitem__, index=0, key="chat_generator"
    )
    docs = {r.meta.doc_id: r.meta.title for r in assistant.documents()}
    chosen_docs = st.multiselect(
        "只在这些文档中检索",
        list(docs),
        format_func=docs.__getitem__,
        key="chat_docs",
        placeholder="全部文档",
    )
    if st.button("新对话", use_container_width=True):
        st.session_state["chat_history"] = []
        st.rerun()

history: list[dict] = st.session_state.setdefault("chat_history", [])


def open_in_lookup(reference: str) -> None:
    st.session_state["lookup_pending"] = reference  # the look-up page fills its input with it


if st.session_state.get("lookup_pending"):
    st.switch_page("views/lookup.py")


def show_answer(answer, turn: int) -> None:  # type: ignore[no-untyped-def]
    if answer.continues_conversation:
        st.caption(f"接上文理解为：{answer.standalone_question}")
    if answer.notice:
        st.caption(answer.notice)
    if answer.refused:
        st.info(answer.answer)
        # The nearest articles, one click away in 条文查询 (sections without an article number are not).
        for i, label in enumerate(c for c in answer.closest_clauses if c.endswith("条")):
            st.button(f"查看 {label}", key=f"clause-{turn}-{i}", on_click=open_in_lookup, args=(label,))
        return
    st.text(answer.answer)
    for c in answer.citations:
        with st.expander(citation_header(c)):
            show_citation_body(c, key=f"chat-{turn}-{c.number}")


for number, turn in enumerate(history):
    with st.chat_message("user"):
        st.text(turn["question"])
    with st.chat_message("assistant"):
        show_answer(turn["answer"], number)

question = st.chat_input("请输入问题，例如：保健食品标签上必须写哪些内容？")
if question:
    with st.chat_message("user"):
        st.text(question)
    turns = [turn_of(t["answer"]) for t in history]
    with st.chat_message("assistant"):
        try:
            with st.spinner("正在检索条文……"):
                answer = assistant.ask(
                    question, history=turns, generator=generator, doc_ids=chosen_docs or None
                )
        except GeneratorError as err:
            st.error(str(err))
        else:
            show_answer(answer, len(history))
            history.append({"question": question, "answer": answer})
