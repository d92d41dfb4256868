"""Legal-structure chunker.

Laws (documents with 第X条 articles): split along 编/章/节/条; an article is one chunk when it fits,
otherwise it is split at 款/项 (line) boundaries and, inside an over-long paragraph, at sentence ends.
Text before the first article (title, revision history) becomes the 题注 chunk; the table of
contents is dropped. Policy documents and slide text: split along 一、 / （一） / 1． headings, then
sentences, with a size limit. Chunk text is always an exact slice of the normalized document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.numerals import chinese_to_int, int_to_chinese
from assistant.types import Chunk, NormalizedDocument

_NUM = r"[零〇一二三四五六七八九十百千两0-9]+"
_ARTICLE = re.compile(rf"^第({_NUM})条(?=\s|$|[^的之款项])")
_LEVEL_HEADING = re.compile(rf"^第({_NUM})([编章节])\s*(\S.*)?$")
_TOC_ENTRY = re.compile(rf"第{_NUM}章")
_POLICY_HEADINGS = (
    re.compile(r"^[一二三四五六七八九十]{1,3}、"),
    re.compile(r"^[(（][一二三四五六七八九十]{1,3}[)）]"),
    re.compile(r"^\d{1,2}[.．](?!\d)"),
)
PREAMBLE_ARTICLE = "题注"
_LEVELS = {"编": 0, "章": 1, "节": 2}


@dataclass
class _Span:
    start: int
    end: int


def _lines(text: str) -> list[_Span]:
    spans, pos = [], 0
    for line in text.split("\n"):
        spans.append(_Span(pos, pos + len(line)))
        pos += len(line) + 1
    return spans


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _heading_label(number: str, kind: str, name: str) -> str:
    name = re.sub(r"\s+", "", name or "")
    return f"第{number}{kind} {name}".strip()


class LegalChunker:
    def __init__(self, max_chars: int = 600, min_chars: int = 80) -> None:
        self.max_chars = max_chars
        self.min_chars = min_chars
        # Used only inside an over-long paragraph: break at sentence ends, then clause ends.
        self._sentence_splitter = RecursiveCharacterTextSplitter(
            chunk_size=max_chars,
            chunk_overlap=0,
            separators=["\n", "。", "！", "？", "；", "，", ""],
            keep_separator="end",
            add_start_index=True,
            strip_whitespace=False,
        )

    # --- public -----------------------------------------------------------------------------

    def chunk(self, doc: NormalizedDocument) -> list[Chunk]:
        if self._find_articles(doc.text):
            return self._chunk_law(doc)
        return self._chunk_policy(doc)

    # --- laws ---------------------------------------------------------------------------------

    def _find_articles(self, text: str) -> list[tuple[int, int]]:
        """(line index, article number) of each article heading, numbers strictly increasing."""
        found: list[tuple[int, int]] = []
        last = 0
        for i, span in enumerate(_lines(text)):
            m = _ARTICLE.match(text[span.start : span.end])
            if not m:
                continue
            n = chinese_to_int(m.group(1))
            if n is None:
                continue
            followed_by_space = text[span.start + m.end() : span.start + m.end() + 1] in {" ", ""}
            # A cross-reference that happens to start a line ("第六十三条的规定…") is not a heading:
            # real headings are followed by a space or continue the numbering.
            if n == last + 1 or (followed_by_space and n > last):
                found.append((i, n))
                last = n
        return found if len(found) >= 2 else []

    def _chunk_law(self, doc: NormalizedDocument) -> list[Chunk]:
        text = doc.text
        spans = _lines(text)
        article_lines = dict(self._find_articles(text))
        path: list[str] = ["", "", ""]
        chunks: list[Chunk] = []
        preamble: list[_Span] = []
        current: tuple[int, int, str] | None = None  # (start offset, article number, heading path)
        seen_article = False
        preamble_done = False

        def close(end: int) -> None:
            nonlocal current
            if current is None:
                return
            start, number, heading = current
            chunks.extend(self._article_chunks(doc, start, end, f"第{int_to_chinese(number)}条", heading))
            current = None

        for i, span in enumerate(spans):
            line = text[span.start : span.end]
            if i in article_lines:
                close(span.start)
                seen_article = True
                current = (span.start, article_lines[i], " > ".join(p for p in path if p))
                continue
            level = _LEVEL_HEADING.match(line)
            if level and len(line) <= 40 and not line.endswith("。") and len(_TOC_ENTRY.findall(line)) <= 1:
                close(span.start)
                preamble_done = True
                depth = _LEVELS[level.group(2)]
                path[depth] = _heading_label(level.group(1), level.group(2), level.group(3) or "")
                for deeper in range(depth + 1, 3):
                    path[deeper] = ""
                continue
            # The 题注 is the text before the table of contents / first heading; it must stay one slice.
            if not seen_article and current is None and not preamble_done:
                if len(_TOC_ENTRY.findall(line)) >= 2 or re.fullmatch(r"目\s*录", line):
                    preamble_done = True
                    continue
                preamble.append(span)
        close(len(text))

        if preamble:
            start, end = _trim(text, preamble[0].start, preamble[-1].end)
            if end > start:
                chunks.insert(0, self._make(doc, start, end, PREAMBLE_ARTICLE, "", 0))
        return chunks

    def _article_chunks(
        self, doc: NormalizedDocument, start: int, end: int, article: str, heading: str
    ) -> list[Chunk]:
        start, end = _trim(doc.text, start, end)
        if end - start <= self.max_chars:
            return [self._make(doc, start, end, article, heading, 0)]
        pieces = self._pack(doc.text, start, end)
        return [self._make(doc, s, e, article, heading, n) for n, (s, e) in _numbered(pieces)]

    # --- policy documents --------------------------------------------------------------------

    def _chunk_policy(self, doc: NormalizedDocument) -> list[Chunk]:
        text = doc.text
        spans = _lines(text)
        path: list[str] = ["", "", ""]
        sections: list[tuple[int, int, str]] = []
        sec_start: int | None = None
        sec_path = ""
        for span in spans:
            line = text[span.start : span.end]
            level = next((lvl for lvl, rx in enumerate(_POLICY_HEADINGS) if rx.match(line)), None)
            if level is None:
                if sec_start is None:
                    sec_start, sec_path = span.start, " > ".join(p for p in path if p)
                continue
            if sec_start is not None:
                sections.append((sec_start, span.start, sec_path))
            path[level] = _short_heading(line)
            for deeper in range(level + 1, 3):
                path[deeper] = ""
            sec_start, sec_path = span.start, " > ".join(p for p in path if p)
        if sec_start is not None:
            sections.append((sec_start, len(text), sec_path))

        chunks: list[Chunk] = []
        for s, e, heading in self._merge_small(text, sections):
            s, e = _trim(text, s, e)
            if e <= s:
                continue
            if e - s <= self.max_chars:
                chunks.append(self._make(doc, s, e, "", heading, 0))
            else:
                for n, (ps, pe) in _numbered(self._pack(text, s, e)):
                    chunks.append(self._make(doc, ps, pe, "", heading, n))
        return chunks

    def _merge_small(self, text: str, sections: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
        """A heading-only section (e.g. `一、工作目标` followed at once by `（一）…`) joins the next one."""
        merged: list[tuple[int, int, str]] = []
        carry: int | None = None
        for s, e, heading in sections:
            start = carry if carry is not None else s
            carry = None
            if len(text[start:e].strip()) < self.min_chars:
                carry = start
                continue
            merged.append((start, e, heading))
        if carry is not None:
            if merged:
                s, _, heading = merged[-1]
                merged[-1] = (s, len(text), heading)
            else:
                merged.append((carry, len(text), ""))
        return merged

    # --- splitting helpers ---------------------------------------------------------------------

    def _pack(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """Split text[start:end] into pieces of at most max_chars, preferring line (款/项) boundaries."""
        units: list[tuple[int, int]] = []
        for span in _lines(text[start:end]):
            s, e = _trim(text, start + span.start, start + span.end)
            if e <= s:
                continue
            if e - s <= self.max_chars:
                units.append((s, e))
                continue
            for piece in self._sentence_splitter.create_documents([text[s:e]]):
                ps = s + int(piece.metadata["start_index"])
                pe = ps + len(piece.page_content)
                ps, pe = _trim(text, ps, pe)
                if pe > ps:
                    units.append((ps, pe))
        pieces: list[tuple[int, int]] = []
        for s, e in units:
            if pieces and e - pieces[-1][0] <= self.max_chars:
                pieces[-1] = (pieces[-1][0], e)
            else:
                pieces.append((s, e))
        # A short tail reads better with its predecessor, if that keeps the piece reasonable.
        if (
            len(pieces) >= 2
            and pieces[-1][1] - pieces[-1][0] < self.min_chars
            and pieces[-1][1] - pieces[-2][0] <= int(self.max_chars * 1.25)
        ):
            pieces[-2:] = [(pieces[-2][0], pieces[-1][1])]
        return pieces

    def _make(
        self, doc: NormalizedDocument, start: int, end: int, article: str, heading: str, part: int
    ) -> Chunk:
        return Chunk(
            doc_id=doc.meta.doc_id,
            title=doc.meta.title,
            article=article,
            heading_path=heading,
            page_start=doc.page_at(start),
            page_end=doc.page_at(max(start, end - 1)),
            char_start=start,
            char_end=end,
            text=doc.text[start:end],
            part=part,
        )


def _numbered(pieces: list[tuple[int, int]]) -> list[tuple[int, tuple[int, int]]]:
    """Part numbers 1..n for a real split; a single piece (its short tail merged back) is the whole unit: 0."""
    if len(pieces) == 1:
        return [(0, pieces[0])]
    return list(enumerate(pieces, start=1))


def _short_heading(line: str) -> str:
    """`1．规范保健食品生产经营许可备案。一是…` → `1．规范保健食品生产经营许可备案`."""
    head = re.split(r"[。；：:]", line, maxsplit=1)[0]
    return head[:40]
