"""Generators of real test files (good and bad) for the ingestion tests and `eval reliability`. Everything is written into a
folder the caller owns; nothing here is mocked."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from assistant.settings import PROJECT_ROOT, Settings

CORPUS = PROJECT_ROOT / "corpus"

REGULATIONS_PDF = CORPUS / "food-safety-law-implementing-regulations-2019.pdf"
AMENDMENT_MD = CORPUS / "food-safety-law-amendment-decision-2025.md"
SPC_MD = CORPUS / "spc-provisions-food-drug-disputes-2021.md"


# --- text taken from the bundled corpus --------------------------------------------------------


def corpus_text(md: Path, max_chars: int | None = None) -> str:
    """The body of a corpus Markdown file as plain text (front matter and markup removed)."""
    text = md.read_text(encoding="utf-8")
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
    lines = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*]\s+|>\s?)", "", line)
        line = line.replace("**", "").strip()
        if line:
            lines.append(line)
    body = "\n".join(lines)
    if max_chars is None or len(body) <= max_chars:
        return body
    cut = body.rfind("\n", 0, max_chars)
    return body[: cut if cut > 0 else max_chars]


def amendment_text() -> str:
    """About 1,000 characters of the 2025 amendment decision (articles 一、 to the end)."""
    return corpus_text(AMENDMENT_MD)


def spc_text(max_chars: int = 1500) -> str:
    """The first articles of the SPC provisions on food and drug disputes."""
    return corpus_text(SPC_MD, max_chars)


# --- PDFs --------------------------------------------------------------------------------------


def encrypted_pdf(path: Path, user_password: str, owner_password: str | None = None) -> Path:
    """One real page of the implementing regulations, encrypted (RC4-128, pypdf's default)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(REGULATIONS_PDF).pages[0])
    writer.encrypt(user_password=user_password, owner_password=owner_password)
    buf = io.BytesIO()
    writer.write(buf)
    path.write_bytes(buf.getvalue())
    return path


def truncated_pdf(path: Path, fraction: float = 0.4) -> Path:
    data = REGULATIONS_PDF.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def html_as_pdf(path: Path) -> Path:
    """A web page saved with a .pdf extension (a common download mistake)."""
    html = "<!DOCTYPE html><html><head><meta charset='utf-8'><title>食品安全法</title></head>"
    html += "<body><p>第一条 为了保证食品安全，保障公众身体健康和生命安全，制定本法。</p></body></html>"
    path.write_text(html, encoding="utf-8")
    return path


def image_only_pdf(path: Path) -> Path:
    """A 'scanned' page: one raster image and no text layer."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (600, 800), (200, 200, 200))
    draw = ImageDraw.Draw(image)
    draw.rectangle((60, 60, 540, 140), fill=(90, 90, 90))
    for y in range(200, 740, 40):
        draw.line((60, y, 540, y), fill=(40, 40, 40), width=6)
    draw.ellipse((420, 620, 540, 740), outline=(150, 0, 0), width=8)
    pdf = FPDF(unit="pt", format="A4")
    pdf.add_page()
    pdf.image(image, x=40, y=40, w=500)
    pdf.output(str(path))
    return path


def _number_words(n: int) -> str:
    ones = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ]
    tens = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]

    def below_100(k: int) -> str:
        if k < 20:
            return ones[k]
        return tens[k // 10] + ("" if k % 10 == 0 else "-" + ones[k % 10])

    if n < 100:
        return below_100(n)
    rest = n % 100
    return f"{ones[n // 100]} hundred" + (f" and {below_100(rest)}" if rest else "")


def cjk_font() -> Path | None:
    """A CJK TrueType/OpenType font fpdf2 can embed, if the machine has one."""
    if shutil.which("fc-list") is None:
        return None
    try:
        out = subprocess.run(
            ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    candidates = sorted(
        {Path(line.split(":")[0].strip()) for line in out.splitlines() if line.strip()},
        key=lambda p: (p.suffix.lower() not in {".ttf", ".otf"}, str(p)),
    )
    return next((p for p in candidates if p.is_file()), None)


@dataclass(frozen=True)
class LongPdf:
    path: Path
    pages: int
    cjk: bool

    def marker(self, page: int) -> str:
        """A phrase that occurs on `page` only."""
        return f"备案记录第{page}号" if self.cjk else f"record {_number_words(page)},"


def long_pdf(path: Path, pages: int = 500) -> LongPdf:
    """`pages` pages with one short numbered paragraph each, in a CJK font if one is installed,
    otherwise in Latin text with the core Helvetica font. Every page's text differs from the others
    (the number is also spelled out), so no line looks like a running header."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    font = cjk_font()
    cjk = False
    if font is not None:
        try:
            pdf.add_font("cjk", fname=str(font))
            pdf.set_font("cjk", size=11)
            cjk = True
        except Exception:  # a collection or format this fpdf2 cannot embed: use Latin text
            cjk = False
    if not cjk:
        pdf.set_font("Helvetica", size=11)
    for n in range(1, pages + 1):
        pdf.add_page()
        if cjk:
            text = (
                f"第{n}页 备案记录第{n}号：保健食品生产企业应当按照备案的产品配方和生产工艺组织生产，"
                f"并如实记录第{n}批次的原料进货查验情况。"
            )
        else:
            words = _number_words(n)
            text = (
                f"Article {n}. For record {words}, the operator shall keep the purchase inspection "
                f"records of batch {words} for at least two years."
            )
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return LongPdf(path, pages, cjk)


# --- other files ---------------------------------------------------------------------------------


def xlsx_file(path: Path) -> Path:
    """A minimal (zip) workbook: the container is real even though no loader supports it."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        zf.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook/>')
    return path


def docx_bomb(path: Path, unpacked_mb: int = 64) -> Path:
    """A real Word document whose body part is padded with an XML comment of spaces: about 64 MB
    unpacked from about 64 KB packed (the shape of a decompression bomb, small enough for a test)."""
    import io

    import docx

    buffer = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("第一条 本文件的正文很短。")
    document.save(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        for info in source.infolist():
            part = source.read(info.filename)
            if info.filename == "word/document.xml":
                head, _, body = part.partition(b"?>")
                part = head + b"?><!--" + b" " * (unpacked_mb * 1024 * 1024) + b"-->" + body
            bomb.writestr(info.filename, part)
    return path


def pdf_stream_bomb(path: Path, unpacked_mb: int = 128) -> Path:
    """A one-page PDF whose content stream is a short text operator followed by `unpacked_mb` MB of
    deflated spaces: about 128 KB on disk for the default, far more once decoded."""
    packer = zlib.compressobj(9)
    block = b" " * (1024 * 1024)
    body = packer.compress(b"BT /F1 12 Tf 20 100 Td (x) Tj ET\n")
    for _ in range(unpacked_mb):
        body += packer.compress(block)
    body += packer.flush()
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]/Contents 4 0 R>>",
        b"<</Length %d/Filter/FlateDecode>>stream\n" % len(body) + body + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def png_bomb(path: Path, width: int = 30_000, height: int = 30_000) -> Path:
    """A PNG whose header declares width × height pixels (900 million by default, 2.7 GB decoded) and
    whose data stops after a few bytes: only a loader that trusts the header before decoding is safe."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\x00" * 64)))
    return path


def text_flood(path: Path, max_chars: int) -> Path:
    """A plain-text "law" longer than `max_chars` characters (its articles repeated)."""
    article = "第一条 为了保证食品安全，保障公众身体健康和生命安全，制定本法。\n"
    path.write_text(article * (max_chars // len(article) + 1), encoding="utf-8")
    return path


def exe_file(path: Path) -> Path:
    path.write_bytes(
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00"
    )
    return path


@dataclass(frozen=True)
class BadFile:
    path: Path
    keywords: tuple[str, ...]  # the reason must mention at least one of these


def make_bad_files(folder: Path, duplicate_of: Path | None = None) -> dict[str, BadFile]:
    """Every kind of bad input, one file each, in `folder`. With `duplicate_of`, also a byte-for-byte
    copy of that file under a name that sorts after it."""
    folder.mkdir(parents=True, exist_ok=True)
    empty_txt = folder / "empty.txt"
    empty_txt.write_bytes(b"")
    empty_pdf = folder / "empty.pdf"
    empty_pdf.write_bytes(b"")
    no_ext = folder / "README"
    no_ext.write_text("第一条 本文件没有扩展名。", encoding="utf-8")
    bad = {
        "encrypted": BadFile(encrypted_pdf(folder / "encrypted.pdf", "secret"), ("加密",)),
        "truncated": BadFile(truncated_pdf(folder / "truncated.pdf"), ("损坏", "不是有效的 PDF")),
        "not_pdf": BadFile(html_as_pdf(folder / "webpage.pdf"), ("损坏", "不是有效的 PDF")),
        "empty_txt": BadFile(empty_txt, ("为空",)),
        "empty_pdf": BadFile(empty_pdf, ("为空",)),
        "scanned": BadFile(image_only_pdf(folder / "scanned.pdf"), ("扫描件", "OCR")),
        "xlsx": BadFile(xlsx_file(folder / "table.xlsx"), ("不支持",)),
        "exe": BadFile(exe_file(folder / "setup.exe"), ("不支持",)),
        "no_ext": BadFile(no_ext, ("不支持",)),
        "docx_bomb": BadFile(docx_bomb(folder / "bomb.docx"), ("压缩炸弹",)),
        "pdf_bomb": BadFile(pdf_stream_bomb(folder / "bomb.pdf"), ("压缩炸弹",)),
        "image_bomb": BadFile(png_bomb(folder / "poster.png"), ("超过上限",)),
        "text_flood": BadFile(text_flood(folder / "flood.txt", Settings().max_document_chars), ("超过上限",)),
    }
    if duplicate_of is not None:
        copy = folder / f"zz-copy-of-{duplicate_of.name}"
        shutil.copyfile(duplicate_of, copy)
        bad["duplicate"] = BadFile(copy, ("内容完全相同",))
    return bad


def make_good_files(folder: Path) -> tuple[Path, Path]:
    """Two good files: the amendment decision in GBK, and the SPC provisions in UTF-8."""
    folder.mkdir(parents=True, exist_ok=True)
    gbk = folder / "amendment-gbk.txt"
    gbk.write_bytes(amendment_text().encode("gbk"))
    utf8 = folder / "spc-provisions.txt"
    utf8.write_text(spc_text(), encoding="utf-8")
    return gbk, utf8


def snapshot(root: Path) -> set[Path]:
    """Every file and folder below `root`."""
    return set(root.rglob("*"))
