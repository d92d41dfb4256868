"""培训场次: a trainer's Q&A session — question queue, cited answers, handout export."""

from __future__ import annotations

from datetime import date

import streamlit as st

from assistant.export.handout import HandoutError, handout_docx, handout_markdown, handout_pdf
from assistant.sessions import split_question_list
from assistant.types import Citation
from assistant.ui.common import citation_header, get_assistant, show_citation_body

assistant = get_assistant()
store = assistant.sessions
st.title("培训场次")
st.caption("为宣讲或培训准备问答：收集听众问题，逐条或一次性生成带出处的回答，导出讲义。")

sessions = store.all()
if "trainer_created" in st.session_state:  # a widget's value may only be set before the widget is created
    st.session_state["trainer_session"] = st.session_state.pop("trainer_created")
with st.sidebar:
    st.subheader("场次")
    options = [s.id for s in sessions]
    labels = {s.id: f"{s.title}（{s.held_on}）" if s.held_on else s.title for s in sessions}
    current = st.selectbox(
        "打开已有场次", options, format_func=labels.__getitem__, index=None, placeholder="选择场次", key="trainer_session"
    )
    with st.form("new_session", clear_on_submit=True):
        st.write("新建场次")
        title = st.text_input("名称", placeholder="例如：保健食品经营者法规宣讲")
        held_on = st.date_input("日期", value=date.today(), format="YYYY-MM-DD")
        audience = st.text_input("对象", placeholder="例如：辖区保健食品经营企业")
        if st.form_submit_button("创建", use_container_width=True) and title.strip():
            st.session_state["trainer_created"] = store.create(title, str(held_on), audience)
            st.rerun()

if current is None:
    st.info("请在左侧新建或打开一个培训场次。")
    st.stop()

session = store.get(current)
st.subheader(session.title, anchor=False)
st.caption("　".join(p for p in (f"日期：{session.held_on}" if session.held_on else "", f"对象：{session.audience}" if session.audience else "") if p))

with st.expander("添加问题", expanded=not session.questions), st.form("add_questions", clear_on_submit=True):
    pasted = st.text_area("每行一个问题（可直接粘贴问题清单）", height=120)
    if st.form_submit_button("加入队列") and pasted.strip():
        store.add_questions(current, split_question_list(pasted))
        st.rerun()

pending = [q for q in session.questions if not q.answered]
left, right = st.columns([1, 1])
if right.button(f"全部回答（{len(pending)} 个待答）", type="primary", disabled=not pending, use_container_width=True):
    bar = st.progress(0.0, text="准备中……")

    def on_progress(i: int, total: int, text: str) -> None:
        bar.progress((i - 1) / max(total, 1), text=f"正在回答（{i}/{total}）：{text[:30]}")

    assistant.answer_session(current, on_progress)
    bar.progress(1.0, text="全部回答完毕")
    st.rerun()

for n, q in enumerate(session.questions, start=1):
    with st.container(border=True):
        head, up, down, answer_one, drop = st.columns([8, 1, 1, 2, 1])
        head.text(f"{n}. {q.text}")
        if up.button("↑", key=f"up-{q.id}", help="上移", disabled=n == 1):
            store.move(current, q.id, -1)
            st.rerun()
        if down.button("↓", key=f"down-{q.id}", help="下移", disabled=n == len(session.questions)):
            store.move(current, q.id, 1)
            st.rerun()
        if answer_one.button("重新回答" if q.answered else "回答", key=f"ans-{q.id}"):
            with st.spinner("正在检索条文……"):
                assistant.answer_session(current, only=[q.id])
            st.rerun()
        if drop.button("删除", key=f"del-{q.id}"):
            store.remove_question(q.id)
            st.rerun()
        if q.answer:
            if q.answer["refused"]:
                st.info(q.answer["answer"])
            else:
                st.text(q.answer["answer"])
                for c in q.answer["citations"]:
                    cite = Citation(chunk_id="", **{k: c.get(k, "") for k in ("number", "doc_id", "title", "article", "heading_path", "page_start", "page_end", "quote", "effective_date", "status")})
                    with st.expander(citation_header(cite)):
                        show_citation_body(cite, key=f"trainer-{q.id}-{cite.number}")

if session.questions:
    st.subheader("导出讲义", anchor=False)
    a, b, c = st.columns(3)
    a.download_button("Markdown", handout_markdown(session), file_name=f"{session.title}.md", mime="text/markdown", use_container_width=True)
    b.download_button(
        "Word（DOCX）",
        handout_docx(session),
        file_name=f"{session.title}.docx",
        mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        use_container_width=True,
    )
    try:
        pdf = handout_pdf(session, assistant.settings.pdf_font)
    except HandoutError as err:
        c.caption(str(err))
    else:
        c.download_button("PDF", pdf, file_name=f"{session.title}.pdf", mime="application/pdf", use_container_width=True)
