"""The original page beside a citation: the passage found in the page's text (ignoring whitespace and
character width), boxed on the rendered page; text documents give the passage in its context."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.loaders import load_document
from assistant.preview import PreviewError, locate, passage_context, render_page
from assistant.settings import PROJECT_ROOT, Settings
from assistant.types import Chunk

ADVERTISING_LAW = PROJECT_ROOT / "corpus" / "advertising-law-2021.pdf"
PASSAGE = "推荐给个人自用的医疗器械的广告，应当显著标明“请仔细阅读产品说明书或者在医务人员的指导下购买和使用”。"


def test_locate_ignores_line_breaks_spaces_and_width() -> None:
    page = "第十六条　　医疗器械广告\r\n推荐给个人自用的医疗器械的广\r\n告，应当显著标明（一）"
    start, end = locate(page, "推荐给个人自用的医疗器械的广告，应当显著标明(一)")  # type: ignore[misc]
    assert page[start:end].replace("\r\n", "") == "推荐给个人自用的医疗器械的广告，应当显著标明（一）"


def test_locate_finds_the_leading_part_of_a_passage_that_continues_on_the_next_page() -> None:
    span = locate("……应当显著标明“请仔细阅读", "应当显著标明“请仔细阅读产品说明书或者在医务人员的指导下购买和使用”")
    assert span is not None
    assert locate("完全无关的文字内容", "应当显著标明“请仔细阅读产品说明书") is None


def test_a_pdf_page_is_rendered_with_the_passage_boxed(tmp_path: Path) -> None:
    from PIL import Image

    settings = Settings(data_dir=tmp_path)
    meta = load_document(ADVERTISING_LAW, settings).meta
    preview = render_page(meta, 4, PASSAGE, settings)
    assert preview.image.is_file() and preview.image.parent == settings.previews_dir
    assert len(preview.boxes) == 2  # the sentence runs over two lines
    width, height = Image.open(preview.image).size
    assert all(0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height for x0, y0, x1, y1 in preview.boxes)
    assert render_page(meta, 4, PASSAGE, settings) == preview  # cached
    with pytest.raises(PreviewError, match="没有第 99 页"):
        render_page(meta, 99, PASSAGE, settings)


def test_a_changed_source_file_is_not_shown(tmp_path: Path) -> None:
    copy = tmp_path / "law.pdf"
    copy.write_bytes(ADVERTISING_LAW.read_bytes())
    settings = Settings(data_dir=tmp_path)
    meta = load_document(copy, settings).meta
    copy.write_bytes(copy.read_bytes() + b"\n%changed")
    with pytest.raises(PreviewError, match="已被修改"):
        render_page(meta, 4, PASSAGE, settings)


def test_a_text_document_shows_the_passage_between_its_neighbours() -> None:
    def chunk(text: str, start: int) -> Chunk:
        return Chunk("doc", "题", "", "", 1, 1, start, start + len(text), text)

    chunks = [chunk("第一条 总则。", 0), chunk("第二条 保健食品标签应当真实。", 10), chunk("第三条 附则。", 30)]
    view = passage_context(chunks, "保健食品标签应当真实")
    assert (view.before, view.passage, view.after) == ("第一条 总则。", "第二条 保健食品标签应当真实。", "第三条 附则。")
    with pytest.raises(PreviewError):
        passage_context(chunks, "完全不存在的一句话内容")


@pytest.mark.slow
def test_a_scanned_page_is_boxed_from_its_recognised_lines(tmp_path: Path) -> None:
    from assistant.evaluation.scans import scanned_twin

    twin = scanned_twin(PROJECT_ROOT / "corpus" / "food-safety-law-implementing-regulations-2019.pdf", tmp_path / "scan.pdf", [1])
    settings = Settings(data_dir=tmp_path / "data")
    meta = load_document(twin, settings).meta  # recognises the page and fills the OCR cache
    assert meta.ocr_pages == (1,)
    preview = render_page(meta, 1, "第二条 食品生产经营者应当依照法律、法规和食品安全标准从事生产经营活动，建立健全食品安全管理制度", settings)
    assert len(preview.boxes) == 2
