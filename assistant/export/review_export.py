"""A draft review as Markdown or DOCX, for download."""

from __future__ import annotations

import io
from datetime import date

from assistant.render import page_label
from assistant.review.engine import Finding, ReviewResult

KIND_LABELS = {"prohibited_claim": "违规用语", "missing_statement": "缺少必备声明", "format_error": "编号格式错误"}
TYPE_LABELS = {"label": "标签", "manual": "说明书", "advert": "广告", "other": "其他宣传材料"}
LAYER_LABELS = {"rule": "规则", "classifier": "分类模型"}


def type_line(result: ReviewResult) -> str:
    """The document type the draft was reviewed as, and why when it was detected."""
    kind = TYPE_LABELS.get(result.doc_type, result.doc_type)
    if result.doc_type_source != "detected":
        return f"文稿类型：{kind}（用户选择）"
    why = f"，依据：{'、'.join(result.doc_type_evidence[:6])}" if result.doc_type_evidence else "，未见标签或说明书的项目"
    return f"文稿类型：{kind}（自动判断{why}）"


def layer_label(finding: Finding) -> str:
    """Which layer found a finding; the classifier's probability beside it."""
    label = LAYER_LABELS.get(finding.layer, finding.layer)
    return f"{label}（{finding.score:.2f}）" if finding.score is not None else label


def review_markdown(result: ReviewResult, title: str = "文稿审查意见") -> str:
    lines = [f"# {title}", "", f"审查日期：{date.today()}　{type_line(result)}", ""]
    lines += ["## 文稿", "", "```text", result.draft.replace("```", "ʼʼʼ"), "```", ""]
    if not result.findings:
        lines += ["未发现问题。", ""]
        return "\n".join(lines)
    lines += [f"## 发现的问题（{len(result.findings)} 个）", ""]
    for n, f in enumerate(result.findings, start=1):
        where = f"“{f.text}”（第 {f.start + 1}–{f.end} 字）" if f.start >= 0 else "全文"
        lines.append(f"{n}. **{KIND_LABELS.get(f.kind, f.kind)}**：{where}　（发现方式：{layer_label(f)}）")
        lines.append(f"   - 问题：{f.message}")
        for c in f.citations:
            lines.append(f"   - 依据：《{c.title}》{c.article}（{page_label(c.page_start, c.page_end)}）：“{c.quote}”")
        lines.append("")
    lines.append("> 本意见由保健食品备案助手依据内置法规自动生成，供参考，不构成法律意见。")
    return "\n".join(lines) + "\n"


def review_docx(result: ReviewResult, title: str = "文稿审查意见") -> bytes:
    import docx
    from docx.shared import RGBColor

    document = docx.Document()
    document.add_heading(title, level=1)
    document.add_paragraph(f"审查日期：{date.today()}　{type_line(result)}")
    document.add_heading("文稿", level=2)
    paragraph = document.add_paragraph()
    pos = 0
    for f in sorted((f for f in result.findings if f.start >= 0), key=lambda f: f.start):
        if f.start < pos:
            continue
        paragraph.add_run(result.draft[pos : f.start])
        run = paragraph.add_run(result.draft[f.start : f.end])
        run.bold = True
        run.font.color.rgb = RGBColor(0xC0, 0x00, 0x00)
        pos = f.end
    paragraph.add_run(result.draft[pos:])
    document.add_heading(f"发现的问题（{len(result.findings)} 个）" if result.findings else "未发现问题", level=2)
    for n, f in enumerate(result.findings, start=1):
        where = f"“{f.text}”" if f.start >= 0 else "全文"
        document.add_paragraph(f"{n}. {KIND_LABELS.get(f.kind, f.kind)}：{where}　{f.message}（发现方式：{layer_label(f)}）")
        for c in f.citations:
            document.add_paragraph(
                f"依据《{c.title}》{c.article}（{page_label(c.page_start, c.page_end)}）：“{c.quote}”", style="Intense Quote"
            )
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
