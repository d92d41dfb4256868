"""A trainer session's handout — every question, its answer and the cited clauses quoted with
document, article and page — as Markdown, DOCX or PDF."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

from assistant.render import page_label
from assistant.sessions import TrainingSession

# Debian's fonts-noto-cjk (installed by scripts/setup.sh) and other common places for a CJK font.
FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
DISCLAIMER = "本讲义由保健食品备案助手依据内置法规文档自动生成，引用均注明出处，供培训参考，不构成法律意见。"


class HandoutError(RuntimeError):
    pass


def _header(session: TrainingSession) -> list[str]:
    meta = [f"日期：{session.held_on}" if session.held_on else "", f"对象：{session.audience}" if session.audience else ""]
    return [session.title, "　".join(m for m in meta if m), f"共 {len(session.questions)} 个问题　生成于 {date.today()}"]


def _cited(citation: dict[str, Any]) -> str:
    pages = page_label(int(citation.get("page_start", 1)), int(citation.get("page_end", 1)))
    return f"[{citation.get('number', '')}]《{citation.get('title', '')}》{citation.get('article', '')}（{pages}）"


def handout_markdown(session: TrainingSession) -> str:
    title, meta, count = _header(session)
    lines = [f"# {title}", ""]
    if meta:
        lines += [meta, ""]
    lines += [count, ""]
    for n, q in enumerate(session.questions, start=1):
        lines += [f"## 问题 {n}：{q.text}", ""]
        if not q.answer:
            lines += ["（尚未回答）", ""]
            continue
        lines += [q.answer["answer"], ""]
        if q.answer.get("citations"):
            lines += ["**引用条文**", ""]
            for c in q.answer["citations"]:
                lines.append(f"- {_cited(c)}：“{c.get('quote', '')}”")
            lines.append("")
    lines += ["---", "", DISCLAIMER, ""]
    return "\n".join(lines)


def handout_docx(session: TrainingSession) -> bytes:
    import docx

    title, meta, count = _header(session)
    document = docx.Document()
    document.add_heading(title, level=0)
    if meta:
        document.add_paragraph(meta)
    document.add_paragraph(count)
    for n, q in enumerate(session.questions, start=1):
        document.add_heading(f"问题 {n}：{q.text}", level=2)
        if not q.answer:
            document.add_paragraph("（尚未回答）")
            continue
        for line in q.answer["answer"].split("\n"):
            if line.strip():
                document.add_paragraph(line)
        for c in q.answer.get("citations", []):
            document.add_paragraph(f"{_cited(c)}：“{c.get('quote', '')}”", style="Intense Quote")
    document.add_paragraph(DISCLAIMER)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def find_cjk_font(configured: Path | None = None) -> Path:
    for candidate in ([configured] if configured else []) + [Path(p) for p in FONT_CANDIDATES]:
        if candidate and candidate.is_file():
            return candidate
    raise HandoutError("导出 PDF 需要中文字体：请安装 fonts-noto-cjk（scripts/setup.sh 会安装），或设置 ASSISTANT_PDF_FONT。")


def handout_pdf(session: TrainingSession, font: Path | None = None) -> bytes:
    from fpdf import FPDF

    font_path = find_cjk_font(font)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font("cjk", fname=str(font_path))
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def para(text: str, size: float = 10.5, gap: float = 2.0, color: tuple[int, int, int] = (0, 0, 0)) -> None:
        pdf.set_font("cjk", size=size)
        pdf.set_text_color(*color)
        pdf.multi_cell(width, size * 0.55, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    title, meta, count = _header(session)
    para(title, size=18, gap=3)
    if meta:
        para(meta, size=10.5, gap=1, color=(90, 90, 90))
    para(count, size=10.5, gap=5, color=(90, 90, 90))
    for n, q in enumerate(session.questions, start=1):
        para(f"问题 {n}：{q.text}", size=13, gap=2)
        if not q.answer:
            para("（尚未回答）")
            continue
        para(q.answer["answer"])
        for c in q.answer.get("citations", []):
            para(f"{_cited(c)}：“{c.get('quote', '')}”", size=9.5, gap=1.5, color=(70, 70, 70))
        pdf.ln(3)
    para(DISCLAIMER, size=9, color=(110, 110, 110))
    return bytes(pdf.output())
