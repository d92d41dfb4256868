"""The original page beside a citation: the source page rendered as an image with the cited passage
boxed — boxes from pypdfium2's character positions for text-layer PDFs, from the recognised lines
(the OCR cache) for scans and photos. Rendered on demand and cached under the data directory.
Text documents have no pages to show: their passage is shown in its surrounding text instead."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from assistant.loaders import IMAGE_SUFFIXES, content_hash, render_pdf_page
from assistant.ocr import OcrCache, OcrPage
from assistant.settings import Settings
from assistant.types import Chunk, DocumentMeta

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
PREVIEW_DPI = 110  # readable on screen, quick to render
HIGHLIGHT = (255, 200, 0)


class PreviewError(Exception):
    """The page cannot be shown (source file gone, changed, or not a paged format); the reason in Chinese."""


@dataclass(frozen=True)
class PagePreview:
    image: Path  # a PNG under the data directory
    page: int
    boxes: tuple[Box, ...]  # where the passage is (empty: not located on this page)


@dataclass(frozen=True)
class SourceView:
    """What a citation opens: the page image (PDFs, images), or the passage in its surrounding text."""

    preview: PagePreview | None
    before: str = ""
    passage: str = ""
    after: str = ""


def is_paged(meta: DocumentMeta) -> bool:
    suffix = Path(meta.source_path).suffix.lower()
    return suffix == ".pdf" or suffix in IMAGE_SUFFIXES


def passage_context(chunks: list[Chunk], passage: str) -> SourceView:
    """The chunk holding the passage with the chunks before and after it (document order)."""
    for index, chunk in enumerate(chunks):
        if locate(chunk.text, passage[:40]) is not None:
            before = chunks[index - 1].text if index else ""
            after = chunks[index + 1].text if index + 1 < len(chunks) else ""
            return SourceView(None, before, chunk.text, after)
    raise PreviewError("在文档中没有找到这段引文（文档可能已重新索引）")


def _folded(text: str) -> Iterator[tuple[int, str]]:
    """(index in `text`, character) with whitespace dropped and full-/half-width forms folded, so a
    passage of the cleaned index text can be found in the page's raw text."""
    for index, char in enumerate(text):
        for folded in unicodedata.normalize("NFKC", char):
            if not folded.isspace():
                yield index, folded


def locate(page_text: str, passage: str, min_chars: int = 6) -> tuple[int, int] | None:
    """[start, end) of `passage` in `page_text` (indices of page_text), ignoring whitespace and width;
    when the whole passage is not on the page (it continues on the next), its longest leading part
    that is. None if not even `min_chars` of it are."""
    mapped = list(_folded(page_text))
    haystack = "".join(c for _, c in mapped)
    needle = "".join(c for _, c in _folded(passage))
    length = len(needle)
    while length >= min_chars:
        at = haystack.find(needle[:length])
        if at >= 0:
            return mapped[at][0], mapped[at + length - 1][0] + 1
        length = length * 2 // 3
    return None


def _merge_line_boxes(boxes: list[Box]) -> list[Box]:
    """Character boxes → one box per text line (boxes that overlap vertically and follow each other)."""
    merged: list[list[float]] = []
    for x0, y0, x1, y1 in boxes:
        if merged and min(y1, merged[-1][3]) - max(y0, merged[-1][1]) > 0.5 * (y1 - y0) and x0 >= merged[-1][0]:
            last = merged[-1]
            last[:] = [min(last[0], x0), min(last[1], y0), max(last[2], x1), max(last[3], y1)]
        else:
            merged.append([x0, y0, x1, y1])
    return [(b[0], b[1], b[2], b[3]) for b in merged]


def _text_layer_boxes(page: Any, passage: str, scale: float) -> list[Box]:
    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range()
        span = locate(text, passage)
        if span is None:
            return []
        height = page.get_height()
        boxes = []
        for index in range(*span):
            if text[index].isspace():
                continue
            left, bottom, right, top = textpage.get_charbox(index)
            boxes.append((left * scale, (height - top) * scale, right * scale, (height - bottom) * scale))
        return _merge_line_boxes(boxes)
    finally:
        textpage.close()


def _recognised_boxes(recognised: OcrPage, passage: str, scale: float) -> list[Box]:
    """Boxes of the recognised lines the passage covers (OCR gives lines, not characters)."""
    starts, text = [], ""
    for line in recognised.lines:
        starts.append(len(text))
        text += line.text + "\n"
    span = locate(text, passage)
    if span is None:
        return []
    start, end = span
    return [
        (line.box[0] * scale, line.box[1] * scale, line.box[2] * scale, line.box[3] * scale)
        for line, at in zip(recognised.lines, starts, strict=True)
        if at < end and at + len(line.text) > start
    ]


def _parse_box(line: str) -> Box:
    x0, y0, x1, y1 = (float(v) for v in line.split())
    return x0, y0, x1, y1


def _draw(image: Any, boxes: list[Box]) -> Any:
    from PIL import Image, ImageDraw

    base = image.convert("RGB")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle((x0 - 2, y0 - 2, x1 + 2, y1 + 2), fill=(*HIGHLIGHT, 70), outline=(*HIGHLIGHT, 255), width=2)
    return Image.alpha_composite(base.convert("RGBA"), overlay).convert("RGB")


def render_page(meta: DocumentMeta, page: int, passage: str, settings: Settings) -> PagePreview:
    """The page of the document's source file as a PNG with the passage boxed (cached)."""
    source = Path(meta.source_path)
    suffix = source.suffix.lower()
    if not is_paged(meta):
        raise PreviewError("该文档不是 PDF 或图片，没有原始页面可显示")
    key = hashlib.sha1(f"{meta.content_hash}|{page}|{passage}|{PREVIEW_DPI}".encode()).hexdigest()[:20]
    target = settings.previews_dir / f"{meta.doc_id}-p{page}-{key}.png"
    boxes_file = target.with_suffix(".boxes")
    if target.is_file() and boxes_file.is_file():
        return PagePreview(target, page, tuple(_parse_box(line) for line in boxes_file.read_text().splitlines() if line))
    try:
        data = source.read_bytes()
    except OSError as err:
        raise PreviewError("原始文件已不存在或无法读取，无法显示原页面") from err
    if content_hash(data) != meta.content_hash:
        raise PreviewError("原始文件在索引后已被修改，请重新索引后再查看原页面")
    cache = OcrCache(settings.ocr_cache_dir)
    if suffix == ".pdf":
        image, boxes = _pdf_page(data, meta, page, passage, settings, cache)
    else:
        image, boxes = _image_page(data, meta, page, passage, cache)
    stored = [" ".join(f"{v:.1f}" for v in box) for box in boxes]
    boxes = [_parse_box(line) for line in stored]  # as a cached preview returns them
    target.parent.mkdir(parents=True, exist_ok=True)
    _draw(image, boxes).save(target, format="PNG", compress_level=3)
    boxes_file.write_text("\n".join(stored), encoding="utf-8")
    return PagePreview(target, page, tuple(boxes))


def _pdf_page(
    data: bytes, meta: DocumentMeta, number: int, passage: str, settings: Settings, cache: OcrCache
) -> tuple[Any, list[Box]]:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        if not 1 <= number <= len(document):
            raise PreviewError(f"文档没有第 {number} 页")
        page = document[number - 1]
        scale = PREVIEW_DPI / 72
        image = render_pdf_page(page, scale)
        if number in meta.ocr_pages:
            # Normally cached at ingest; an index built before the cache existed recognises once here.
            recognised = cache.recognise(
                meta.content_hash, number, settings.ocr_dpi, partial(render_pdf_page, page, settings.ocr_dpi / 72)
            )
            return image, _recognised_boxes(recognised, passage, image.width / recognised.width)
        return image, _text_layer_boxes(page, passage, scale)
    finally:
        document.close()


def _image_page(data: bytes, meta: DocumentMeta, number: int, passage: str, cache: OcrCache) -> tuple[Any, list[Box]]:
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.seek(number - 1)
    frame = image.convert("RGB")
    recognised = cache.recognise(meta.content_hash, number, 0, frame.copy)
    # Photos are shown at most 1600 px wide; the boxes scale with them.
    scale = min(1.0, 1600 / max(frame.width, 1))
    if scale < 1.0:
        frame = frame.resize((round(frame.width * scale), round(frame.height * scale)))
    return frame, _recognised_boxes(recognised, passage, scale)
