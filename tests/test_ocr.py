"""Text recognition of scans and photos: real RapidOCR on scanned-looking renders of bundled PDFs
(slow), and the checks that refuse bad images before any pixel is decoded (fast)."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

import pytest

from assistant.evaluation.badfiles import png_bomb
from assistant.evaluation.scans import render_pages, scanned_look, scanned_twin
from assistant.loaders import LoadError, load_document
from assistant.ocr import OcrLine, reading_order
from assistant.settings import PROJECT_ROOT, Settings

REGULATIONS = PROJECT_ROOT / "corpus" / "food-safety-law-implementing-regulations-2019.pdf"
slow = pytest.mark.slow


def _line(text: str, x0: float, y0: float, x1: float, y1: float) -> OcrLine:
    return OcrLine(text, (x0, y0, x1, y1), 0.99)


def test_reading_order_reads_two_columns_one_after_the_other() -> None:
    title = _line("标题", 100, 20, 900, 60)
    left = [_line(f"左{i}", 50, 100 + 40 * i, 480, 130 + 40 * i) for i in range(4)]
    right = [_line(f"右{i}", 520, 100 + 40 * i, 950, 130 + 40 * i) for i in range(4)]
    shuffled = [right[2], left[3], title, right[0], left[0], right[3], left[1], right[1], left[2]]
    assert [line.text for line in reading_order(shuffled, 1000)] == ["标题"] + [f"左{i}" for i in range(4)] + [
        f"右{i}" for i in range(4)
    ]


def test_reading_order_keeps_a_row_left_to_right_and_rows_top_to_bottom() -> None:
    lines = [_line("第二行", 50, 60, 900, 90), _line("条", 300, 12, 400, 42), _line("第一", 50, 10, 250, 40)]
    assert [line.text for line in reading_order(lines, 1000)] == ["第一", "条", "第二行"]


def _reason(path: Path, settings: Settings | None = None) -> str:
    with pytest.raises(LoadError) as info:
        load_document(path, settings or Settings(), {})
    reason = str(info.value)
    assert reason and "\n" not in reason
    return reason


def test_bad_images_are_refused_with_a_reason_before_recognition(tmp_path: Path) -> None:
    from PIL import Image

    assert "超过上限" in _reason(png_bomb(tmp_path / "huge.png"))
    assert "像素，超过上限" in _reason(png_bomb(tmp_path / "big.png", 9_000, 9_000))
    tiny = tmp_path / "tiny.png"
    Image.new("L", (1, 1), 255).save(tiny)
    assert "太小" in _reason(tiny)
    buffer = io.BytesIO()
    Image.new("L", (400, 400), 200).save(buffer, format="JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    assert "不完整或已损坏" in _reason(truncated)
    garbage = tmp_path / "photo.jpg"
    garbage.write_bytes(b"not an image at all" * 10)
    assert "已损坏或格式无法识别" in _reason(garbage)
    assert "文字识别已关闭" in _reason(tiny, Settings(ocr="never"))


def test_a_scan_without_ocr_is_refused_with_a_hint(tmp_path: Path) -> None:
    twin = tmp_path / "twin.pdf"
    scanned_twin(REGULATIONS, twin, pages=[2])
    assert "ASSISTANT_OCR=never" in _reason(twin, Settings(ocr="never"))


@slow
def test_a_scanned_page_recovers_its_article_headings_and_sentences(tmp_path: Path) -> None:
    twin = scanned_twin(REGULATIONS, tmp_path / "scanned.pdf", pages=[1])
    pages: list[int] = []
    raw = load_document(twin, Settings(data_dir=tmp_path), {}, on_ocr_page=pages.append)
    text = raw.pages[0].text.replace(" ", "")
    assert pages == [1] and raw.meta.ocr_pages == (1,) and raw.meta.ocr_confidence > 0.9
    assert "第二条" in text and "建立健全食品安全管理制度" in text


@slow
def test_an_image_upload_is_indexed_as_page_1(tmp_path: Path, make_assistant) -> None:  # type: ignore[no-untyped-def]
    photo = tmp_path / "notice-photo.png"
    scanned_look(render_pages(REGULATIONS, [2])[0], random.Random(7)).save(photo)
    assistant = make_assistant()
    report = assistant.ingest([photo])
    assert report.added == [str(photo)] and not report.failed
    (record,) = assistant.documents()
    assert record.meta.file_type == "png" and record.meta.page_count == 1 and record.meta.ocr_pages == (1,)
    chunks = assistant.store.document_chunks(record.meta.doc_id)
    assert chunks and all(c.page_start == c.page_end == 1 for c in chunks)
    hits = assistant.search("食品安全委员会负责分析食品安全形势", k=3)
    assert hits and hits[0].chunk.doc_id == record.meta.doc_id


@slow
def test_a_pdf_of_text_and_scanned_pages_keeps_page_order(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    scanned = scanned_twin(REGULATIONS, tmp_path / "page3.pdf", pages=[3])
    writer = PdfWriter()
    original = PdfReader(REGULATIONS)
    writer.add_page(original.pages[1])
    writer.add_page(PdfReader(scanned).pages[0])
    writer.add_page(original.pages[3])
    mixed = tmp_path / "mixed.pdf"
    with mixed.open("wb") as fh:
        writer.write(fh)
    raw = load_document(mixed, Settings(data_dir=tmp_path), {})
    assert raw.meta.ocr_pages == (2,)
    assert [p.ocr_confidence is not None for p in raw.pages] == [False, True, False]
    text_layer_page3 = re.sub(r"\s+", "", original.pages[2].extract_text())
    recognised = re.sub(r"\s+", "", raw.pages[1].text)
    assert recognised[:20] and recognised[:20] in text_layer_page3


@slow
def test_unreliable_pages_are_reported_and_left_out(tmp_path: Path, make_assistant) -> None:  # type: ignore[no-untyped-def]
    # A threshold no page reaches stands in for a page too blurred to read.
    twin = scanned_twin(REGULATIONS, tmp_path / "blurred.pdf", pages=[1])
    with pytest.raises(LoadError, match=r"置信度都低于 1\.00"):
        load_document(twin, Settings(data_dir=tmp_path, ocr_min_confidence=1.0), {})
    mixed = tmp_path / "docs" / "half-scanned.pdf"
    mixed.parent.mkdir()
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(REGULATIONS).pages[1])
    writer.add_page(PdfReader(twin).pages[0])
    with mixed.open("wb") as fh:
        writer.write(fh)
    assistant = make_assistant(ocr_min_confidence=1.0)
    report = assistant.ingest([mixed])
    assert report.added == [str(mixed)]
    assert [w.reason for w in report.warnings] == ["第 2 页扫描质量过低（文字识别置信度低于 1.00），未编入索引"]
    (record,) = assistant.documents()
    assert record.meta.ocr_rejected_pages == (2,) and record.meta.ocr_pages == ()
    assert all(c.page_end == 1 for c in assistant.store.document_chunks(record.meta.doc_id))


@slow
def test_a_multi_page_tiff_is_one_document_with_a_page_per_frame(tmp_path: Path) -> None:
    frames = [scanned_look(image, random.Random(i)) for i, image in enumerate(render_pages(REGULATIONS, [1, 2]))]
    tiff = tmp_path / "fax.tiff"
    frames[0].save(tiff, save_all=True, append_images=frames[1:], compression="tiff_deflate")
    raw = load_document(tiff, Settings(data_dir=tmp_path), {})
    assert raw.meta.page_count == 2 and raw.meta.ocr_pages == (1, 2)
    assert "第二条" in raw.pages[0].text and "第七条" in raw.pages[1].text
