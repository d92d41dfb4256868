"""Tables kept as rows: every data row one line carrying its column headers, from DOCX tables, ruled
PDF tables and OCR'd table blocks; the normalizer keeps row lines apart and the chunker cuts a long
table between rows, so a question about one row finds it. Files are generated in tmp_path."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.chunking import LegalChunker
from assistant.engine import Assistant
from assistant.evaluation.badfiles import amendment_text, cjk_font
from assistant.loaders import docx_text, load_document, open_docx
from assistant.normalize import normalize_document, normalize_query
from assistant.ocr import OcrLine, OcrPage, reading_order
from assistant.pdf_tables import pdf_table_texts
from assistant.settings import PROJECT_ROOT, Settings
from assistant.tables import TABLE_ROW_MARK, Cell, table_lines
from assistant.types import DocumentMeta, PageText, RawDocument

MakeAssistant = Callable[..., Assistant]
META = DocumentMeta(doc_id="t", title="t", source_path="/t", content_hash="0", file_type="txt")
HEADER = ("营养素", "每日最低用量", "每日最高用量")
VITAMIN_C = "营养素：维生素C；每日最低用量：100mg；每日最高用量：1000mg"
# Names and amounts as a nutrient-supplement catalogue lists them (the amounts only need to differ).
NUTRIENTS = [
    ("维生素A", "250μg", "800μg"),
    ("维生素D", "5μg", "15μg"),
    ("维生素E", "5mg", "150mg"),
    ("维生素K", "20μg", "100μg"),
    ("维生素B1", "0.5mg", "20mg"),
    ("维生素B2", "0.5mg", "20mg"),
    ("维生素B6", "0.5mg", "10mg"),
    ("维生素B12", "1μg", "10μg"),
    ("烟酸", "5mg", "15mg"),
    ("叶酸", "100μg", "400μg"),
    ("泛酸", "2mg", "20mg"),
    ("生物素", "10μg", "100μg"),
    ("胆碱", "150mg", "1500mg"),
    ("钙", "200mg", "1000mg"),
    ("镁", "100mg", "300mg"),
    ("钾", "500mg", "1500mg"),
    ("维生素C", "100mg", "1000mg"),
    ("铁", "5mg", "20mg"),
    ("锌", "3mg", "20mg"),
    ("硒", "15μg", "100μg"),
    ("铜", "0.3mg", "1.5mg"),
    ("锰", "1mg", "3mg"),
    ("铬", "15μg", "150μg"),
    ("钼", "20μg", "60μg"),
]
FUNCTIONS = [
    (str(n), name)
    for n, name in enumerate(
        [
            "有助于增强免疫力",
            "有助于抗氧化",
            "辅助保护化学性肝损伤",
            "缓解视觉疲劳",
            "有助于改善睡眠",
            "有助于维持血脂健康水平",
            "有助于维持血糖健康水平",
            "有助于维持血压健康水平",
            "对化学性肝损伤有辅助保护作用",
            "有助于促进骨健康",
            "改善缺铁性贫血",
            "有助于调节肠道菌群",
            "有助于消化",
            "有助于润肠通便",
            "辅助保护胃黏膜",
            "有助于改善黄褐斑",
            "有助于改善痤疮",
            "有助于改善皮肤水分状况",
            "耐缺氧",
            "有助于缓解运动疲劳",
            "有助于控制体内脂肪",
            "清咽润喉",
            "有助于改善记忆",
        ],
        start=1,
    )
]
BEFORE = "营养素补充剂的原料应当列入保健食品原料目录，产品中营养素的每日用量应当在下表规定的范围之内。"
AFTER = "生产企业应当在产品标签上标注每日用量，未列入本目录的营养素不得作为营养素补充剂的原料使用。"


def _lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()]


def _normalized(*pages: str) -> str:
    raw = RawDocument(META, [PageText(i, text) for i, text in enumerate(pages, start=1)])
    return normalize_document(raw).text


# --- row lines ------------------------------------------------------------------------------------


def test_every_data_row_carries_its_headers_and_merged_cells_read_sensibly() -> None:
    title = [
        Cell("表1 营养素每日用量"),
        Cell("表1 营养素每日用量", span_left=True),
        Cell("表1 营养素每日用量", span_left=True),
    ]
    header = [Cell("营养素"), Cell("每日用量"), Cell("每日用量", span_left=True)]
    subheader = [Cell("营养素", span_above=True), Cell("最低"), Cell("最高")]
    section = [Cell("维生素类"), Cell("维生素类", span_left=True), Cell("维生素类", span_left=True)]
    vitamin_c = [Cell("维生素C"), Cell("100mg"), Cell("1000mg")]
    vitamin_d = [Cell("维生素D"), Cell("5μg"), Cell()]  # an empty cell is left out
    lines = table_lines([title, header, subheader, section, vitamin_c, vitamin_d])
    assert all(line.startswith(TABLE_ROW_MARK) for line in lines)
    assert [line[1:] for line in lines] == [
        "表1 营养素每日用量",
        "维生素类",
        "营养素：维生素C；每日用量·最低：100mg；每日用量·最高：1000mg",
        "营养素：维生素D；每日用量·最低：5μg",
    ]
    # A category spanning rows is repeated in each row it covers.
    category = table_lines(
        [
            [Cell("类别"), Cell("营养素")],
            [Cell("维生素"), Cell("维生素C")],
            [Cell("维生素", span_above=True), Cell("维生素D")],
        ]
    )
    assert [line[1:] for line in category] == [
        "类别：维生素；营养素：维生素C",
        "类别：维生素；营养素：维生素D",
    ]
    # One column, or no data row: a framed box, its rows as they are.
    assert [line[1:] for line in table_lines([[Cell("注：用量以成人计。")]])] == ["注：用量以成人计。"]
    assert [line[1:] for line in table_lines([[Cell("申请人"), Cell("某公司")]])] == ["申请人；某公司"]


def test_row_lines_are_never_joined_with_hard_wrapped_text() -> None:
    """A hard-wrapped page (many lines of one width, no sentence end) around a table: the wrapped
    lines join into paragraphs, the rows stay lines of their own, without their marks."""
    wrapped = "保健食品生产企业应当按照注册或者备案的产品配方和生产工艺组织生产并且"  # 36 wide, no 。
    page = "\n".join(
        [wrapped] * 14
        + [TABLE_ROW_MARK + VITAMIN_C, TABLE_ROW_MARK + "营养素：钙；每日最低用量：200mg", wrapped, "完。"]
    )
    lines = _lines(_normalized(page))
    assert lines[0] == wrapped * 14  # the wraps were joined: the layout is hard-wrapped
    assert lines[1:3] == [VITAMIN_C, "营养素：钙；每日最低用量：200mg"]
    assert lines[3] == wrapped + "完。"
    assert TABLE_ROW_MARK not in _normalized(page)
    assert normalize_query(TABLE_ROW_MARK + "维生素C") == "维生素C"


def test_a_long_table_is_cut_between_rows_and_every_part_keeps_the_headers() -> None:
    rows = [[Cell(h) for h in HEADER]] + [[Cell(c) for c in row] for row in NUTRIENTS * 2]
    doc = normalize_document(RawDocument(META, [PageText(1, "\n".join([BEFORE, *table_lines(rows), AFTER]))]))
    chunks = LegalChunker(max_chars=600, min_chars=80).chunk(doc)
    table_chunks = [c for c in chunks if "营养素：" in c.text]
    assert len(table_chunks) >= 3
    for chunk in table_chunks:
        for line in chunk.text.split("\n"):
            if line not in (BEFORE, AFTER):
                assert re.fullmatch(r"营养素：[^；]+；每日最低用量：[^；]+；每日最高用量：[^；]+", line), line
    assert sum(c.text.count(VITAMIN_C) for c in chunks) == 2


# --- DOCX -----------------------------------------------------------------------------------------


def _docx(path: Path, rows: list[tuple[str, str, str]] = NUTRIENTS, functions: bool = False) -> Path:
    """A catalogue: a heading, prose, the nutrient table, prose, a labelling section; with `functions`
    also a table of health functions and the text of the 2025 amendment decision."""
    import docx

    document = docx.Document()
    document.add_paragraph("一、营养素补充剂的原料")
    document.add_paragraph(BEFORE)
    table = document.add_table(rows=len(rows) + 1, cols=3)
    for cells, values in zip(table.rows, [HEADER, *rows], strict=True):
        for cell, value in zip(cells.cells, values, strict=True):
            cell.text = value
    document.add_paragraph(AFTER)
    document.add_paragraph("二、标签和说明书")
    document.add_paragraph(
        "保健食品的标签、说明书不得涉及疾病预防、治疗功能，内容应当真实，与注册或者备案的内容相一致，"
        "载明适宜人群、不适宜人群、功效成分或者标志性成分及其含量等，并声明“本品不能代替药物”。"
    )
    if functions:
        document.add_paragraph("三、允许声称的保健功能")
        table = document.add_table(rows=len(FUNCTIONS) + 1, cols=2)
        for cells, values in zip(table.rows, [("序号", "保健功能"), *FUNCTIONS], strict=True):
            for cell, value in zip(cells.cells, values, strict=True):
                cell.text = value
        document.add_paragraph("四、食品安全法修正")
        for line in amendment_text().splitlines():
            document.add_paragraph(line)
    document.save(path)
    return path


def test_docx_table_rows_stay_in_body_order_one_line_each(tmp_path: Path) -> None:
    path = _docx(tmp_path / "目录.docx", NUTRIENTS[13:17])
    raw = load_document(path, Settings(), {})
    lines = _lines(normalize_document(raw).text)
    start = lines.index(BEFORE)
    assert lines[start + 1 : start + 6] == [
        "营养素：钙；每日最低用量：200mg；每日最高用量：1000mg",
        "营养素：镁；每日最低用量：100mg；每日最高用量：300mg",
        "营养素：钾；每日最低用量：500mg；每日最高用量：1500mg",
        VITAMIN_C,
        AFTER,
    ]
    # Drafts read without the marks the normalizer uses.
    draft = docx_text(open_docx(path.read_bytes()))
    assert TABLE_ROW_MARK not in draft and VITAMIN_C in draft


def test_a_docx_table_row_is_found_by_a_question_about_it(
    tmp_path: Path, make_assistant: MakeAssistant
) -> None:
    path = _docx(tmp_path / "营养素补充剂目录.docx", functions=True)
    assistant = make_assistant()
    report = assistant.ingest([path])
    assert not report.failed, report.failed
    chunks = assistant.store.document_chunks(assistant.documents()[0].meta.doc_id)
    assert len(chunks) >= 6
    assert sum(1 for c in chunks if "每日最低用量" in c.text) >= 2  # the table is cut into parts
    assert any("序号：12；保健功能：有助于调节肠道菌群" in c.text for c in chunks)
    hits = assistant.search("维生素C的每日用量范围", k=3)
    assert any(VITAMIN_C in hit.chunk.text for hit in hits), [h.chunk.text[:60] for h in hits]


# --- PDF ------------------------------------------------------------------------------------------


def _table_pdf(path: Path) -> Path:
    """Two pages: prose only, then prose, a ruled table (fpdf2's `table()`) and prose."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    font = cjk_font()
    if font is None:
        pytest.skip("no CJK font on this machine (Debian: fonts-noto-cjk)")
    pdf = FPDF(format="A4")
    pdf.add_font("cjk", fname=str(font))
    pdf.set_font("cjk", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 7, "保健食品原料目录管理办法。" + AFTER * 3)
    pdf.add_page()
    pdf.multi_cell(0, 7, BEFORE)
    pdf.ln(3)
    with pdf.table(col_widths=(50, 40, 40), headings_style=FontFace(emphasis="")) as table:
        for values in [HEADER, *NUTRIENTS[12:17]]:
            row = table.row()
            for value in values:
                row.cell(value)
    pdf.ln(3)
    pdf.multi_cell(0, 7, AFTER)
    pdf.output(str(path))
    return path


def test_a_ruled_pdf_table_becomes_row_lines_and_other_pages_keep_pypdf_text(tmp_path: Path) -> None:
    from pypdf import PdfReader

    path = _table_pdf(tmp_path / "目录.pdf")
    raw = load_document(path, Settings(ocr="never"), {})
    assert raw.pages[0].text == PdfReader(path).pages[0].extract_text()  # no table: as before
    page = [line.replace(TABLE_ROW_MARK, "") for line in _lines(raw.pages[1].text)]
    assert "营养素：胆碱；每日最低用量：150mg；每日最高用量：1500mg" in page
    assert VITAMIN_C in page
    lines = _lines(normalize_document(raw).text)
    start = lines.index(BEFORE)
    assert lines[start + 1] == "营养素：胆碱；每日最低用量：150mg；每日最高用量：1500mg"
    assert lines[start + 5] == VITAMIN_C
    assert lines[start + 6] == AFTER


def test_the_bundled_pdfs_have_no_ruled_table_and_keep_their_text() -> None:
    """None of the bundled PDFs draws a table: table reading changes none of their pages."""
    from pypdf import PdfReader

    for pdf in sorted((PROJECT_ROOT / "corpus").glob("*.pdf")):
        pages = dict.fromkeys(range(1, len(PdfReader(pdf).pages) + 1), "text")
        assert pdf_table_texts(pdf.read_bytes(), pages) == {}, pdf.name


# --- OCR ------------------------------------------------------------------------------------------


def _box(text: str, x0: float, y0: float, x1: float, y1: float) -> OcrLine:
    return OcrLine(text, (x0, y0, x1, y1), 0.99)


def _ocr_text(lines: list[OcrLine], width: int = 1000) -> str:
    return OcrPage(tuple(reading_order(lines, width)), width, 1400).text


def test_ocr_table_rows_become_labelled_lines() -> None:
    columns = [(100, 300), (420, 620), (740, 940)]
    lines = [_box("表1 营养素每日用量", 100, 20, 500, 50)]
    for r, values in enumerate([HEADER, *NUTRIENTS[13:16], ("维生素D", "5μg", "")]):
        y = 80 + 40 * r
        for (x0, x1), value in zip(columns, values, strict=True):
            if value:  # data cells narrower than their column, left-aligned; headers centred
                lines.append(_box(value, x0 + (0 if r else 20), y, x1 - (60 if r else 20), y + 28))
    lines.append(_box("以上用量适用于成年人。", 100, 320, 600, 348))
    text = _ocr_text(lines[::-1])
    assert [line.replace(TABLE_ROW_MARK, "") for line in _lines(text)] == [
        "表1 营养素每日用量",
        "营养素：钙；每日最低用量：200mg；每日最高用量：1000mg",
        "营养素：镁；每日最低用量：100mg；每日最高用量：300mg",
        "营养素：钾；每日最低用量：500mg；每日最高用量：1500mg",
        "营养素：维生素D；每日最低用量：5μg",
        "以上用量适用于成年人。",
    ]
    assert _lines(_normalized(text))[1] == "营养素：钙；每日最低用量：200mg；每日最高用量：1000mg"


def test_ocr_paragraphs_are_unchanged_and_split_boxes_of_a_line_join() -> None:
    paragraph = [_box(f"第{i}行文字", 80, 100 + 40 * i, 900, 130 + 40 * i) for i in range(5)]
    assert _ocr_text(paragraph) == "\n".join(f"第{i}行文字" for i in range(5))
    # A heading number recognised apart from its text: one line (the normalizer drops the space).
    split = [
        _box("第七条", 80, 20, 200, 50),
        _box("保健食品应当标注每日用量。", 240, 20, 900, 50),
        *paragraph,
    ]
    assert _ocr_text(split).split("\n")[0] == "第七条 保健食品应当标注每日用量。"
    assert TABLE_ROW_MARK not in _ocr_text(split)


def test_ocr_two_column_table_is_not_read_as_a_two_column_page() -> None:
    """A label column and a value column with a gap near the middle: read row by row."""
    rows = [
        ("项目", "要求"),
        ("原料", "列入保健食品原料目录"),
        ("用量", "在规定范围之内"),
        ("标签", "标注每日用量"),
    ]
    lines = [
        box
        for r, (label, value) in enumerate(rows)
        for box in (
            _box(label, 100, 100 + 40 * r, 200, 128 + 40 * r),
            _box(value, 560, 100 + 40 * r, 900, 128 + 40 * r),
        )
    ]
    assert [line.replace(TABLE_ROW_MARK, "") for line in _lines(_ocr_text(lines))] == [
        "项目：原料；要求：列入保健食品原料目录",
        "项目：用量；要求：在规定范围之内",
        "项目：标签；要求：标注每日用量",
    ]


@pytest.mark.parametrize("blocks", [0, 1])
def test_docx_without_or_with_an_empty_table(tmp_path: Path, blocks: int) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("保健食品标签应当标注每日用量。")
    for _ in range(blocks):
        document.add_table(rows=2, cols=2)
    buffer = io.BytesIO()
    document.save(buffer)
    assert docx_text(open_docx(buffer.getvalue()), marked=True) == "保健食品标签应当标注每日用量。"


@pytest.mark.slow
def test_a_scanned_table_is_read_as_row_lines(tmp_path: Path) -> None:
    """The ruled table page rendered to a PNG (no text layer) and recognised with the real OCR models."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(_table_pdf(tmp_path / "目录.pdf"))
    scan = tmp_path / "目录.png"
    document[1].render(scale=200 / 72).to_pil().save(scan)
    document.close()
    lines = _lines(normalize_document(load_document(scan, Settings(), {})).text)
    start = lines.index(BEFORE)
    assert lines[start + 1] == "营养素：胆碱；每日最低用量：150mg；每日最高用量：1500mg"
    assert lines[start + 5 : start + 7] == [VITAMIN_C, AFTER]
