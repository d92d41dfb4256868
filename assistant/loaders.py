"""Files → pages of raw text plus document metadata. One loader per format; errors are `LoadError`s
with a specific one-line reason in Chinese, so a batch can report them and go on."""

from __future__ import annotations

import csv
import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from assistant.ocr import OcrCache
from assistant.settings import DEFAULT_MAX_COMPRESSION_RATIO, DEFAULT_MAX_UNPACKED_MB, Settings
from assistant.tables import Cell, cell_text, strip_marks, table_lines
from assistant.types import DocumentMeta, PageText, RawDocument

SUPPORTED_SUFFIXES = {".pdf", ".txt", ".md", ".markdown", ".docx", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}
MANIFEST_NAME = "MANIFEST.tsv"


OcrProgress = Callable[[int], None] | None  # called with each page number recognised


class LoadError(Exception):
    """A file that cannot be turned into text; `str(err)` is the user-facing reason."""


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_doc_id(path: Path) -> str:
    """Stable id from the file name: a readable ASCII slug plus a hash of the full name.

    The same file name always maps to the same id, so a changed file replaces its old version."""
    name = unicodedata.normalize("NFKC", path.name)
    slug = re.sub(r"[^a-z0-9]+", "-", Path(name).stem.lower()).strip("-")[:40] or "doc"
    return f"{slug}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def read_manifest(folder: Path) -> dict[str, dict[str, str]]:
    """Rows of `MANIFEST.tsv` in `folder`, keyed by file name (empty if there is none)."""
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        return {}
    with manifest.open(encoding="utf-8", newline="") as fh:
        return {row["file"]: row for row in csv.DictReader(fh, delimiter="\t") if row.get("file")}


def discover(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Expand folders into their files. Returns (files, folders scanned)."""
    files: list[Path] = []
    folders: list[Path] = []
    for p in paths:
        if p.is_dir():
            folders.append(p.resolve())
            for f in sorted(p.rglob("*")):
                if f.is_file() and not f.name.startswith(".") and f.name != MANIFEST_NAME:
                    files.append(f)
        else:
            files.append(p)
    return files, folders


# --- format loaders ------------------------------------------------------------------------------


def _load_pdf(
    path: Path, data: bytes, settings: Settings, on_ocr_page: OcrProgress = None
) -> tuple[list[PageText], dict[str, Any]]:
    from pypdf import apply_configuration
    from pypdf.errors import LimitReachedError

    cap = settings.max_pdf_stream_mb * 1024 * 1024
    limits = {
        name: cap
        for name in (
            "maximum_declared_stream_length",
            "array_based_stream_maximum_output_length",
            "jbig2_maximum_output_length",
            "lzw_maximum_output_length",
            "run_length_maximum_output_length",
            "zlib_maximum_output_length",
            "brotli_maximum_output_length",
            "image_maximum_buffer_size",
        )
    }
    try:
        with apply_configuration(None, **limits, stream_decoding_work_maximum_length=4 * cap):
            return _read_pdf(data, settings, on_ocr_page)
    except LimitReachedError as err:
        raise LoadError(
            f"PDF 中的数据流解码后超过上限 {settings.max_pdf_stream_mb} MB（疑似压缩炸弹，"
            "ASSISTANT_MAX_PDF_STREAM_MB），已拒绝"
        ) from err


def _read_pdf(data: bytes, settings: Settings, on_ocr_page: OcrProgress) -> tuple[list[PageText], dict[str, Any]]:
    import io

    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PdfReadError

    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise LoadError("不是有效的 PDF 文件（缺少 %PDF 文件头），可能已损坏或扩展名错误")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # Many "encrypted" PDFs only restrict printing and open with an empty password.
            try:
                ok = reader.decrypt("")
            except Exception as err:  # pypdf raises several types for unsupported crypto
                raise LoadError(f"PDF 已加密，无法解密：{err}") from err
            if not ok:
                raise LoadError("PDF 已加密（需要打开密码），请提供未加密的版本")
        n_pages = len(reader.pages)
    except LoadError:
        raise
    except FileNotDecryptedError as err:
        raise LoadError("PDF 已加密（需要打开密码），请提供未加密的版本") from err
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as err:
        raise LoadError(f"PDF 文件已损坏或不完整，无法解析（{type(err).__name__}）") from err
    if n_pages == 0:
        raise LoadError("PDF 没有任何页面")
    if n_pages > settings.max_pdf_pages:
        raise LoadError(
            f"PDF 共 {n_pages} 页，超过上限 {settings.max_pdf_pages} 页（可调整 ASSISTANT_MAX_PDF_PAGES）"
        )
    from assistant.pdf_tables import may_draw_table, pdf_table_texts

    pages: list[PageText] = []
    ruled: set[int] = set()  # pages whose drawing could be a table, for `pdf_table_texts`
    for i, page in enumerate(reader.pages, start=1):
        try:
            # extract_text swallows decoding errors (a bomb would pass as an empty page): decode first.
            contents = page.get_contents()
            content = contents.get_data() if contents is not None else b""
            text = page.extract_text() or ""
        except LimitReachedError:
            raise
        except Exception as err:  # a single broken page should not sink the document
            raise LoadError(f"PDF 第 {i} 页无法提取文字，文件可能已损坏（{type(err).__name__}）") from err
        pages.append(PageText(i, text))
        if text.strip() and may_draw_table(page, content):
            ruled.add(i)
    if settings.ocr != "always":  # with ocr=always every page is recognised instead
        tables = pdf_table_texts(data, {p.page: p.text for p in pages if p.page in ruled})
        pages = [replace(p, text=tables[p.page]) if p.page in tables else p for p in pages]
    if settings.ocr != "never":
        pages = _recognize_pdf_pages(data, pages, settings, on_ocr_page)
    if not any(p.text.strip() for p in pages):
        if settings.ocr == "never":
            raise LoadError("PDF 没有可提取的文字层（可能是扫描件或图片），文字识别（OCR）已关闭（ASSISTANT_OCR=never）")
        raise LoadError("PDF 没有文字层，是扫描件或图片，文字识别（OCR）后也没有识别出可用的文字")
    info: dict[str, Any] = {}
    try:
        title = reader.metadata.get("/Title") if reader.metadata else None
        if isinstance(title, str) and title.strip():
            info["title"] = title.strip()
    except Exception:
        pass
    return pages, info


def _unusable_text_layer(text: str) -> bool:
    """Too little text for a page, or mostly private-use glyphs, replacement and control characters
    (fonts without a Unicode map extract as garbage)."""
    letters = [c for c in text if not c.isspace()]
    if len(letters) < 20:
        return True
    garbage = sum(1 for c in letters if unicodedata.category(c) in {"Co", "Cn", "Cc"} or c == "\ufffd")
    return garbage > 0.3 * len(letters)


def render_pdf_page(page: Any, scale: float) -> Any:
    """A pypdfium2 page as a PIL image at `scale` × 72 dpi."""
    return page.render(scale=scale).to_pil()


def _recognize_pdf_pages(
    data: bytes, pages: list[PageText], settings: Settings, on_ocr_page: OcrProgress
) -> list[PageText]:
    """Pages without a usable text layer that carry an image (or every page with ocr=always), rendered
    with pypdfium2 and recognised; the others keep their text layer."""
    wanted = [p.page for p in pages if settings.ocr == "always" or _unusable_text_layer(p.text)]
    if not wanted:
        return pages
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as err:
        raise LoadError(f"PDF 页面无法渲染以做文字识别（{err}）") from err
    recognized = {}
    cache, digest = OcrCache(settings.ocr_cache_dir), content_hash(data)
    try:
        for number in wanted:
            page = document[number - 1]
            if settings.ocr == "auto" and not any(page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,))):
                continue  # a blank or nearly blank page, not a scan
            width, height = page.get_size()
            scale = settings.ocr_dpi / 72
            # A huge page is rendered smaller rather than into gigabytes of pixels.
            scale = min(scale, (settings.max_image_pixels / max(width * height, 1.0)) ** 0.5)
            recognized[number] = cache.recognise(digest, number, settings.ocr_dpi, partial(render_pdf_page, page, scale))
            if on_ocr_page:
                on_ocr_page(number)
    finally:
        document.close()
    return [
        PageText(p.page, recognized[p.page].text, recognized[p.page].confidence) if p.page in recognized else p
        for p in pages
    ]


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
_MIN_IMAGE_SIDE = 32


def _load_image(
    path: Path, data: bytes, settings: Settings, on_ocr_page: OcrProgress = None
) -> tuple[list[PageText], dict[str, Any]]:
    """A photo or scan (PNG, JPEG, TIFF incl. multi-page): every frame recognised as one page.
    Sizes are checked from the header, before any pixel is decoded."""
    import io

    from PIL import Image, UnidentifiedImageError

    if settings.ocr == "never":
        raise LoadError("图片需要文字识别（OCR）才能导入，而文字识别已关闭（ASSISTANT_OCR=never）")
    Image.MAX_IMAGE_PIXELS = settings.max_image_pixels  # Pillow's own guard, in case a frame differs
    try:
        image = Image.open(io.BytesIO(data))
        frames = getattr(image, "n_frames", 1)
    except Image.DecompressionBombError as err:  # Pillow's guard fires at twice our limit, on open
        raise LoadError(
            f"图片像素数超过上限 {settings.max_image_pixels:,}（ASSISTANT_MAX_IMAGE_PIXELS），已拒绝"
        ) from err
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise LoadError(f"图片文件已损坏或格式无法识别（{type(err).__name__}）") from err
    if frames > settings.max_pdf_pages:
        raise LoadError(f"图片共 {frames} 页，超过上限 {settings.max_pdf_pages} 页（ASSISTANT_MAX_PDF_PAGES）")
    pages = []
    cache, digest = OcrCache(settings.ocr_cache_dir), content_hash(data)
    for index in range(frames):
        try:
            image.seek(index)
            width, height = image.size
            if width * height > settings.max_image_pixels:
                raise LoadError(
                    f"图片 {width}×{height} 像素，超过上限 {settings.max_image_pixels:,} 像素"
                    "（ASSISTANT_MAX_IMAGE_PIXELS），已拒绝"
                )
            if min(width, height) < _MIN_IMAGE_SIDE:
                raise LoadError(f"图片只有 {width}×{height} 像素，太小，无法识别文字")
            frame = image.convert("RGB")  # decodes: a truncated file fails here
        except (OSError, ValueError, EOFError, SyntaxError, Image.DecompressionBombError) as err:
            where = f"第 {index + 1} 页" if frames > 1 else ""
            raise LoadError(f"图片{where}数据不完整或已损坏，无法解码（{type(err).__name__}）") from err
        recognized = cache.recognise(digest, index + 1, 0, frame.copy)
        pages.append(PageText(index + 1, recognized.text, recognized.confidence))
        if on_ocr_page:
            on_ocr_page(index + 1)
    if not any(p.text.strip() for p in pages):
        raise LoadError("图片中没有识别出文字（文字识别 OCR 结果为空），请确认图片清晰、方向正确")
    return pages, {}


def decode_text(data: bytes) -> str:
    """Bytes → str: UTF-8 (with or without BOM) first, then detected encodings (GBK/GB18030, Big5…)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise LoadError("无法识别文本编码（不是 UTF-8、GBK/GB18030 等常见编码），可能是二进制文件")
    encoding = best.encoding.lower().replace("-", "_")
    # GB2312 and GBK are subsets of GB18030; decoding with the superset loses nothing.
    if encoding in {"gb2312", "gbk", "hz", "gb18030"}:
        encoding = "gb18030"
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as err:
        raise LoadError(f"文本编码识别为 {best.encoding}，但解码失败") from err


def _load_txt(
    path: Path, data: bytes, settings: Settings, on_ocr_page: OcrProgress = None
) -> tuple[list[PageText], dict[str, Any]]:
    text = decode_text(data)
    if "\x00" in text:
        raise LoadError("文本中含有二进制内容（NUL 字符），不是纯文本文件")
    # Form feeds separate pages in text exported from PDFs; keep them as page breaks.
    parts = text.split("\f")
    return [PageText(i, t) for i, t in enumerate(parts, start=1)], {}


_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError:
        return {}, text
    return (meta if isinstance(meta, dict) else {}), text[m.end() :]


def markdown_to_text(body: str) -> str:
    """Markdown markup → plain text lines (headings, list markers, emphasis, quotes, comments removed)."""
    body = re.sub(r"<!--.*?-->", "", body, flags=re.S)
    lines = []
    for line in body.splitlines():
        stripped = line.strip()
        if re.fullmatch(r"(?:-{3,}|\*{3,}|_{3,})", stripped):
            continue
        stripped = re.sub(r"^#{1,6}\s*", "", stripped)
        stripped = re.sub(r"^>\s?", "", stripped)
        stripped = re.sub(r"^(?:[-*+])\s+", "", stripped)
        stripped = re.sub(r"\*\*(.+?)\*\*|__(.+?)__", lambda m: m.group(1) or m.group(2), stripped)
        stripped = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", stripped)
        lines.append(stripped)
    return "\n".join(lines)


def _load_md(
    path: Path, data: bytes, settings: Settings, on_ocr_page: OcrProgress = None
) -> tuple[list[PageText], dict[str, Any]]:
    meta, body = split_front_matter(decode_text(data))
    info: dict[str, Any] = {}
    for key, field in (
        ("title", "title"),
        ("author", "issuing_body"),
        ("issuing_body", "issuing_body"),
        ("publication_date", "publication_date"),
        ("date", "publication_date"),
        ("effective_date", "effective_date"),
        ("status", "status"),
    ):
        if meta.get(key) and not info.get(field):
            info[field] = str(meta[key])
    return [PageText(1, markdown_to_text(body))], info


def open_docx(
    data: bytes, max_unpacked_mb: int = DEFAULT_MAX_UNPACKED_MB, max_ratio: int = DEFAULT_MAX_COMPRESSION_RATIO
) -> Any:
    """A python-docx Document from bytes, or LoadError with the reason. The zip's parts are checked
    first: a part that would unpack far beyond its packed size, or parts that together exceed the
    limit, are refused before anything is decompressed (zipfile never reads past a part's declared size)."""
    import io
    import zipfile

    import docx

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as err:
        raise LoadError(f"DOCX 文件已损坏或不是 Word 文档（{type(err).__name__}）") from err
    unpacked = sum(i.file_size for i in infos)
    if unpacked > max_unpacked_mb * 1024 * 1024:
        raise LoadError(f"DOCX 解压后约 {unpacked // (1024 * 1024)} MB，超过上限 {max_unpacked_mb} MB（ASSISTANT_MAX_UNPACKED_MB），已拒绝")
    for info in infos:
        if info.file_size > 1024 * 1024 and info.file_size > max_ratio * max(info.compress_size, 1):
            raise LoadError(
                f"DOCX 中的 {info.filename} 压缩比约 {info.file_size // max(info.compress_size, 1)} 倍，"
                f"超过上限 {max_ratio} 倍（疑似压缩炸弹，ASSISTANT_MAX_COMPRESSION_RATIO），已拒绝"
            )
    try:
        return docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as err:
        raise LoadError(f"DOCX 文件已损坏或不是 Word 文档（{type(err).__name__}）") from err
    except Exception as err:
        raise LoadError(f"DOCX 文件无法打开（{type(err).__name__}）") from err


def docx_table_grid(table: Any) -> list[list[Cell]]:
    """A python-docx table as a grid: a horizontally merged cell appears once (then `span_left`),
    a vertically merged one is repeated in each row it covers (`span_above`); grid columns a row
    starts after or ends before are empty cells."""
    grid: list[list[Cell]] = []
    above: list[Any] = []  # the <w:tc> element at each grid column of the previous row
    for row in table.rows:
        elements: list[Any] = [None] * row.grid_cols_before + [cell._tc for cell in row.cells]
        cells: list[Cell] = [Cell()] * row.grid_cols_before
        texts = {id(cell._tc): cell_text(cell.text) for cell in row.cells}
        for col, element in enumerate(elements[row.grid_cols_before :], start=row.grid_cols_before):
            text = texts[id(element)]
            if col > 0 and element is elements[col - 1]:
                cells.append(Cell(text, span_left=True))
            elif col < len(above) and element is above[col]:
                cells.append(Cell(text, span_above=True))
            else:
                cells.append(Cell(text))
        grid.append(cells)
        above = elements
    return grid


def docx_text(document: Any, marked: bool = False) -> str:
    """Paragraphs and tables in body order; a table's data rows one line each, with their column
    headers (`tables.table_lines`). `marked` keeps the table-row marks the normalizer needs (ingest);
    other readers (drafts) get plain lines."""
    from docx.table import Table

    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            try:
                rows = table_lines(docx_table_grid(block))
            except (ValueError, KeyError, IndexError, AttributeError, TypeError) as err:
                raise LoadError(f"DOCX 中的表格结构已损坏，无法读取（{type(err).__name__}）") from err
            lines += rows if marked else [strip_marks(row) for row in rows]
        else:
            lines.append(block.text)
    return "\n".join(lines)


def _load_docx(
    path: Path, data: bytes, settings: Settings, on_ocr_page: OcrProgress = None
) -> tuple[list[PageText], dict[str, Any]]:
    document = open_docx(data, settings.max_unpacked_mb, settings.max_compression_ratio)
    info: dict[str, Any] = {}
    title = (document.core_properties.title or "").strip()
    if title:
        info["title"] = title
    return [PageText(1, docx_text(document, marked=True))], info


_LOADERS: dict[str, Callable[[Path, bytes, Settings, OcrProgress], tuple[list[PageText], dict[str, Any]]]] = {
    ".pdf": _load_pdf,
    ".txt": _load_txt,
    ".md": _load_md,
    ".markdown": _load_md,
    ".docx": _load_docx,
    **dict.fromkeys(IMAGE_SUFFIXES, _load_image),
}

_TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
_DOC_TYPES = ("law", "regulation", "rules", "judicial", "policy", "guide")


def _page_list(pages: tuple[int, ...]) -> str:
    return "、".join(str(p) for p in pages[:10]) + ("等" if len(pages) > 10 else "")


def load_document(
    path: Path,
    settings: Settings,
    manifest: dict[str, dict[str, str]] | None = None,
    on_ocr_page: OcrProgress = None,
) -> RawDocument:
    """Read one file into pages of raw text with metadata, or raise `LoadError` with the reason."""
    suffix = path.suffix.lower()
    if suffix not in _LOADERS:
        raise LoadError(f"不支持的文件类型“{path.suffix or '（无扩展名）'}”，支持 PDF、TXT、Markdown、DOCX 和图片（PNG、JPEG、TIFF）")
    if not path.is_file():
        raise LoadError("文件不存在或不是普通文件")
    size = path.stat().st_size
    if size == 0:
        raise LoadError("文件为空（0 字节）")
    if size > settings.max_file_mb * 1024 * 1024:
        raise LoadError(f"文件大小 {size / 1048576:.0f} MB 超过上限 {settings.max_file_mb} MB")
    if suffix in _TEXT_SUFFIXES and size > 4 * settings.max_document_chars:
        # No encoding needs more than 4 bytes a character: refused before decoding hundreds of MB.
        raise LoadError(
            f"文本文件 {size / 1048576:.0f} MB，文字必然超过上限 {settings.max_document_chars:,} 字"
            "（ASSISTANT_MAX_DOCUMENT_CHARS），已拒绝"
        )
    data = path.read_bytes()
    pages, info = _LOADERS[suffix](path, data, settings, on_ocr_page)
    recognized = [p for p in pages if p.ocr_confidence is not None and p.text.strip()]
    rejected = tuple(p.page for p in recognized if (p.ocr_confidence or 0.0) < settings.ocr_min_confidence)
    accepted = [p for p in recognized if p.page not in rejected]
    if rejected:
        pages = [replace(p, text="") if p.page in rejected else p for p in pages]
    if not any(p.text.strip() for p in pages):
        if rejected:
            raise LoadError(
                f"扫描页文字识别的置信度都低于 {settings.ocr_min_confidence:.2f}（第 {_page_list(rejected)} 页），"
                "文字不可靠，未导入；请提供更清晰的扫描件"
            )
        raise LoadError("文件中没有文字内容")
    chars = sum(len(p.text) for p in pages)
    if chars > settings.max_document_chars:
        raise LoadError(
            f"提取出的文字共 {chars:,} 字，超过上限 {settings.max_document_chars:,} 字"
            "（ASSISTANT_MAX_DOCUMENT_CHARS），已拒绝"
        )
    row = (manifest or {}).get(path.name, {})
    doc_type = row.get("doc_type", "")
    meta = DocumentMeta(
        doc_id=make_doc_id(path),
        title=row.get("title") or info.get("title", ""),
        source_path=str(path.resolve()),
        content_hash=content_hash(data),
        file_type=suffix.lstrip(".").replace("markdown", "md"),
        issuing_body=row.get("issuing_body") or info.get("issuing_body", ""),
        publication_date=row.get("publication_date") or info.get("publication_date", ""),
        effective_date=row.get("effective_date") or info.get("effective_date", ""),
        status=row.get("status") or info.get("status", ""),
        doc_type=doc_type if doc_type in _DOC_TYPES else "",
        page_count=len(pages) if suffix == ".pdf" or suffix in IMAGE_SUFFIXES else 0,
        ocr_pages=tuple(p.page for p in accepted),
        ocr_confidence=round(sum(p.ocr_confidence or 0.0 for p in accepted) / len(accepted), 3) if accepted else 0.0,
        ocr_rejected_pages=rejected,
    )
    return RawDocument(meta=meta, pages=pages)
