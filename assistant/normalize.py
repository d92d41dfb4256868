"""Chinese text cleaning, shared by ingestion and queries.

Rules, in order: character normalization (NFKC but keeping Chinese full-width punctuation,
traditional → simplified, pinyin annotations removed), web boilerplate lines, running headers /
footers and page-number lines, hard line wraps joined (also across page breaks), spaces removed
where PDF extraction put them between CJK and digits/CJK. Every output line remembers its source
page, so the document keeps a page map for every character range. Table rows (lines the loaders
mark with `tables.TABLE_ROW_MARK`) stay lines of their own: no wrap is joined into or out of them.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from assistant.tables import TABLE_ROW_MARK
from assistant.types import NormalizedDocument, RawDocument

# Full-width punctuation that NFKC would fold to ASCII; legal text is quoted verbatim, so keep it.
_KEEP_FULLWIDTH = "，；：！？（）"
_KEEP_SPLIT = re.compile(f"([{_KEEP_FULLWIDTH}])")

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_PUNCT = r"\u3000-\u303f\uff01-\uff0f\uff1a-\uff1f\u2014\u2018-\u201f\u2026\u00b7"
_TONE_VOWELS = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ"
# `生產(chǎn)` → `生產`: a bracketed pinyin syllable with a tone mark, glued to the preceding character.
_V = f"aeiouü{_TONE_VOWELS}"
_PINYIN = re.compile(
    rf"(?<=\S)\((?=[a-zü{_TONE_VOWELS}]*[{_TONE_VOWELS}])(?:[bpmfdtnlgkhjqxrzcsyw]h?)?[{_V}]{{1,3}}(?:ng|n|r)?\)"
)
_SPACE_RUN = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f]+")
_SPACE_NEAR_CJK = re.compile(
    rf"(?<=[{_CJK}{_CJK_PUNCT}])\s+(?=[{_CJK}{_CJK_PUNCT}0-9A-Za-z%％])"
    rf"|(?<=[0-9A-Za-z%％])\s+(?=[{_CJK}{_CJK_PUNCT}])"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u2028-\u202e\ufeff]")

# A structural heading keeps one space after its number: `第一章 总则`, `第七十八条 保健食品…`.
_NUM = r"[零〇一二三四五六七八九十百千两0-9]+"
_HEADING_SPACE = re.compile(rf"^(第{_NUM}[编章节条])\s+")

# Lines that start a new unit: never glued onto the previous line. A wrapped cross-reference
# (`…应当载明本法` / `第六十七条第一款…`, `第六十三条的规定…`) is a continuation, not a heading.
STRUCTURE_START = re.compile(
    rf"^(?:第{_NUM}[编章节条](?![的第款项、，和或及至规])|[一二三四五六七八九十]+[、.．]|[(（][一二三四五六七八九十]+[)）]"
    r"|\d{1,2}[.．、](?!\d)|[(（]\d{1,2}[)）]|[①-⑳]|附件|附则|目录)"
)

_PAGE_NUMBER = re.compile(
    r"^(?:[-—–‒―_~·\s]*\d{1,4}[-—–‒―_~·\s]*|第\s*\d+\s*页(?:\s*[,，/]?\s*共\s*\d+\s*页)?"
    r"|\d{1,4}\s*/\s*\d{1,4}|page\s*\d+(?:\s*of\s*\d+)?|-\s*[ivxlc]+\s*-)$",
    re.I,
)

# Web page boilerplate that converted pages carry (copyright notices, download tips, link lists).
_BOILERPLATE_LINE = re.compile(
    r"^(?:版权说明|版权声明|免责声明).{0,200}(?:上传|侵权|举报|下载|所有)"
    r"|^本站|^(?:\d+\.\s*)?本站|人人文库|文库网|^下载文件|^\d+/\d+$|^(?:点击)?下载(?:此|本)?文档"
)
_BOILERPLATE_BLOCK_START = {
    "温馨提示",
    "最新文档",
    "相关文档",
    "猜你喜欢",
    "评论",
    "提交评论",
    "文档简介",
    "相关推荐",
}
_LIST_LINE = re.compile(r"^(?:[-*•]\s|\d+[.、]\s)")


@lru_cache(maxsize=1)
def _t2s() -> object:
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return str(_t2s().convert(text))  # type: ignore[attr-defined]


def normalize_chars(text: str, keep_table_marks: bool = False) -> str:
    """NFKC (keeping Chinese full-width punctuation), traditional → simplified, pinyin removed,
    control characters dropped. Line breaks are preserved. Table-row marks are dropped too, except
    for `normalize_document`, which reads them to keep table rows apart."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    if not keep_table_marks:
        text = text.replace(TABLE_ROW_MARK, "")
    text = "".join(
        part if part and part in _KEEP_FULLWIDTH else unicodedata.normalize("NFKC", part)
        for part in _KEEP_SPLIT.split(text)
    )
    text = _PINYIN.sub("", text)
    return to_simplified(text)


def normalize_spaces(line: str) -> str:
    """Collapse spaces; drop those next to CJK (extraction artifacts); keep those inside Latin text."""
    line = _SPACE_RUN.sub(" ", line).strip()
    heading = _HEADING_SPACE.match(line)
    head, rest = (heading.group(1), line[heading.end() :]) if heading else ("", line)
    rest = _SPACE_NEAR_CJK.sub("", rest)
    if head:
        return f"{head} {rest}" if rest else head
    return rest


def normalize_query(text: str) -> str:
    """The same cleaning as documents get, for a one-off string (query, draft, reference)."""
    lines = [normalize_spaces(line) for line in normalize_chars(text).split("\n")]
    return "\n".join(line for line in lines if line)


def one_line_query(text: str) -> str:
    """A question as retrieval and the judge read it: normalized, on one line."""
    return normalize_query(text).replace("\n", " ")


_MATCH_DROP = re.compile(r"[\s\W_]+", re.U)


def match_key(text: str) -> str:
    """Normalized text without any whitespace or punctuation, for robust containment checks."""
    return _MATCH_DROP.sub("", normalize_chars(text)).lower()


def char_bigrams(text: str) -> set[str]:
    """The pairs of adjacent characters of `match_key(text)`: what two Chinese texts share, without a
    tokenizer."""
    key = match_key(text)
    return {key[i : i + 2] for i in range(len(key) - 1)}


# --- line-level rules -------------------------------------------------------------------------


@dataclass
class _Line:
    page: int
    text: str
    raw_width: float  # display width as extracted, used to detect hard wraps
    table: bool = False  # a table row: a line of its own, never part of a wrapped paragraph


def _display_width(line: str) -> float:
    return sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.5 for ch in line.strip())


def is_page_number_line(line: str) -> bool:
    return bool(_PAGE_NUMBER.match(line.strip()))


def _drop_boilerplate(lines: list[_Line]) -> list[_Line]:
    kept: list[_Line] = []
    in_block = False
    for ln in lines:
        t = ln.text
        if t in _BOILERPLATE_BLOCK_START:
            in_block = True
            continue
        if in_block and _LIST_LINE.match(t):
            continue
        in_block = False
        if _BOILERPLATE_LINE.search(t):
            continue
        kept.append(ln)
    return kept


def _header_key(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", text))


_MAX_RUNNING_CHARS = 30


def _may_run(text: str) -> bool:
    """Running headers/footers are short and are not sentences; body text that merely repeats
    with other numbers on every page (a register of records, a form) must survive."""
    return len(text) <= _MAX_RUNNING_CHARS and not text.endswith(("。", "；", "，", "：", ".", ";", ","))


def _drop_running_lines(pages: list[list[_Line]]) -> list[list[_Line]]:
    """Remove page-number lines, and lines repeated at the top or bottom of most pages."""
    edge_counts: Counter[str] = Counter()
    for lines in pages:
        edges = {_header_key(ln.text) for ln in lines[:2] + lines[-2:] if _may_run(ln.text)}
        edge_counts.update(k for k in edges if k)
    threshold = max(3, int(len(pages) * 0.5 + 0.5))
    running = {k for k, n in edge_counts.items() if n >= threshold and len(pages) >= 3}
    out = []
    for lines in pages:
        keep = []
        for i, ln in enumerate(lines):
            at_edge = i < 2 or i >= len(lines) - 2
            if is_page_number_line(ln.text):
                continue
            if at_edge and _header_key(ln.text) in running:
                continue
            keep.append(ln)
        out.append(keep)
    return out


def _wrap_width(lines: list[_Line]) -> float | None:
    """Width of a hard-wrapped layout, or None if the text is not hard-wrapped."""
    widths = sorted(ln.raw_width for ln in lines if ln.raw_width > 0 and not ln.table)
    if len(widths) < 12:
        return None
    width = widths[int(len(widths) * 0.9)]
    near = sum(1 for w in widths if width - 2.5 <= w <= width + 1)
    if width < 12 or width > 80 or near < 0.3 * len(widths):
        return None
    return width


_SENTENCE_END = tuple("。！？!?；;:：")


def _join_wraps(lines: list[_Line], width: float | None) -> list[list[_Line]]:
    """Group lines into paragraphs: a (nearly) full-width line not ending a sentence continues on the next."""
    paragraphs: list[list[_Line]] = []
    for ln in lines:
        if paragraphs and width is not None:
            prev = paragraphs[-1][-1]
            # Lines with digits or spaces are narrower than full CJK lines, so "nearly full" counts.
            if (
                not prev.table
                and not ln.table
                and prev.raw_width >= 0.75 * width
                and not prev.text.endswith(_SENTENCE_END)
                and not STRUCTURE_START.match(ln.text)
            ):
                paragraphs[-1].append(ln)
                continue
        paragraphs.append([ln])
    return paragraphs


def _glue(left: str, right: str) -> str:
    """Join two pieces of a wrapped line: no space between CJK, one space between Latin words."""
    if (
        left
        and right
        and left[-1].isascii()
        and right[0].isascii()
        and left[-1].isalnum()
        and right[0].isalnum()
    ):
        return " "
    return ""


def normalize_document(raw: RawDocument) -> NormalizedDocument:
    pages: list[list[_Line]] = []
    for page in raw.pages:
        lines = []
        for raw_line in normalize_chars(page.text, keep_table_marks=True).split("\n"):
            table = TABLE_ROW_MARK in raw_line
            if table:
                raw_line = raw_line.replace(TABLE_ROW_MARK, "")
            text = normalize_spaces(raw_line)
            if text:
                lines.append(_Line(page.page, text, _display_width(raw_line), table))
        pages.append(lines)
    pages = _drop_running_lines(pages)
    flat = _drop_boilerplate([ln for lines in pages for ln in lines])
    paragraphs = _join_wraps(flat, _wrap_width(flat))

    out: list[str] = []
    page_starts: list[int] = []
    page_numbers: list[int] = []
    pos = 0
    for para in paragraphs:
        if out:
            out.append("\n")
            pos += 1
        prev_text = ""
        for ln in para:
            piece = _glue(prev_text, ln.text) + ln.text if prev_text else ln.text
            if not page_numbers or page_numbers[-1] != ln.page:
                page_starts.append(pos + (len(piece) - len(ln.text)))
                page_numbers.append(ln.page)
            out.append(piece)
            pos += len(piece)
            prev_text = ln.text
    text = "".join(out)
    return NormalizedDocument(meta=raw.meta, text=text, page_starts=page_starts, page_numbers=page_numbers)
