"""Exact clause look-up: parse references such as `食品安全法第七十八条`, `《广告法》第十八条第一款第四项`,
`实施条例第38条`, resolve the law name through an alias table built from the indexed titles, and
return the article verbatim (with the 款/项 span marked), or "not found" with real suggestions.
Nothing here ever composes article text: it is always the indexed chunks, joined."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from assistant.normalize import normalize_query
from assistant.numerals import article_number, chinese_to_int, int_to_chinese
from assistant.types import ArticleLink, Chunk, DocumentMeta, article_label

_NUM = r"[零〇一二三四五六七八九十百千两0-9]+"
_REFERENCE = re.compile(
    rf"(?P<before>[《》\u3400-\u9fff（）()、]{{0,60}}?)\s*第\s*(?P<article>{_NUM})\s*条"
    rf"(?:\s*第\s*(?P<para>{_NUM})\s*款)?(?:\s*第\s*(?P<item>{_NUM})\s*项)?"
)
_ITEM_LINE = re.compile(r"^[(（][一二三四五六七八九十]+[)）]")
_ALIASES_FILE = Path(__file__).parent / "data" / "law_aliases.yaml"
_IN_FORCE = {"有效", ""}


@dataclass(frozen=True)
class ClauseRef:
    law: str  # law name as it resolved ("" when the text names none)
    article: int
    paragraph: int | None = None  # 款
    item: int | None = None  # 项
    start: int = 0  # span of the reference in the normalized text
    end: int = 0
    law_written: str = ""  # what preceded 第X条, for messages

    @property
    def article_label(self) -> str:
        return article_label(self.article)

    @property
    def label(self) -> str:
        return f"{self.law}{article_label(self.article, self.paragraph, self.item)}"


@dataclass
class LookupResult:
    found: bool
    query: str
    ref: ClauseRef | None = None
    doc_id: str = ""
    title: str = ""
    article: str = ""
    heading_path: str = ""
    text: str = ""
    page_start: int = 0
    page_end: int = 0
    status: str = ""
    effective_date: str = ""
    highlight: tuple[int, int] | None = None  # span of the cited 款/项 inside `text`
    suggestions: list[str] = field(default_factory=list)
    message: str = ""
    chunks: list[Chunk] = field(default_factory=list)
    cited_by: list[ArticleLink] = field(default_factory=list)  # filled from the citation graph
    cites: list[ArticleLink] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        if not self.found:
            return {"found": False, "suggestions": self.suggestions, "message": self.message}
        return {
            "found": True,
            "doc_id": self.doc_id,
            "title": self.title,
            "article": self.article,
            "text": self.text,
            "page_start": self.page_start,
            "page_end": self.page_end,
            "heading_path": self.heading_path,
            "status": self.status,
            "effective_date": self.effective_date,
            "highlight": list(self.highlight) if self.highlight else None,
            "cited_by": [c.to_json("source") for c in self.cited_by],
            "cites": [c.to_json("target") for c in self.cites],
        }


@lru_cache(maxsize=1)
def curated_aliases() -> dict[str, list[str]]:
    data = yaml.safe_load(_ALIASES_FILE.read_text(encoding="utf-8")) or {}
    return {str(k): [str(a) for a in v] for k, v in (data.get("aliases") or {}).items()}


def _name_variants(title: str) -> set[str]:
    variants = {title}
    bare = re.sub(r"^中华人民共和国", "", title)
    variants.add(bare)
    for v in list(variants):
        variants.add(re.sub(r"[（(][^）)]*[）)]$", "", v))
    return {normalize_query(v) for v in variants if len(v) >= 2}


class ArticleIndex:
    """Articles of every indexed document, and the alias table for law names."""

    def __init__(self, chunks: list[Chunk], documents: dict[str, DocumentMeta]) -> None:
        self.documents = documents
        self.articles: dict[str, dict[int, list[Chunk]]] = {}
        for c in sorted(chunks, key=lambda c: (c.doc_id, c.char_start, c.part)):
            number = article_number(c.article)
            if number is not None:
                self.articles.setdefault(c.doc_id, {}).setdefault(number, []).append(c)
        self.aliases = self._build_aliases()

    def _build_aliases(self) -> dict[str, str]:
        """alias → doc_id; when several documents share a name, the one in force with articles wins."""
        by_title: dict[str, list[str]] = {}
        for doc_id, meta in self.documents.items():
            by_title.setdefault(meta.title, []).append(doc_id)

        def rank(doc_id: str) -> tuple[int, int, str]:
            meta = self.documents[doc_id]
            return (
                0 if meta.status in _IN_FORCE else 1,
                0 if doc_id in self.articles else 1,
                meta.effective_date,
            )

        aliases: dict[str, str] = {}
        curated = curated_aliases()
        for title, doc_ids in by_title.items():
            best = sorted(doc_ids, key=rank)[0]
            names = _name_variants(title) | {normalize_query(a) for a in curated.get(title, [])}
            for name in names:
                current = aliases.get(name)
                if current is None or rank(best) < rank(current):
                    aliases[name] = best
        return aliases

    # --- parsing ----------------------------------------------------------------------------------

    def resolve_law(self, before: str) -> tuple[str, str]:
        """The doc_id and alias of the longest law name that `before` ends with ("" if none)."""
        # "…司法解释" is how people often name a judicial interpretation whose title ends in "…解释".
        cleaned = re.sub(r"[《》\s]", "", before).replace("司法解释", "解释")
        best, best_doc = "", ""
        for alias, doc_id in self.aliases.items():
            a = re.sub(r"[《》\s]", "", alias).replace("司法解释", "解释")
            if a and cleaned.endswith(a) and len(a) > len(best):
                best, best_doc = a, doc_id
        return best_doc, best

    def parse(self, text: str) -> list[tuple[ClauseRef, str]]:
        """Every clause reference in `text`, each with the doc_id its law name resolves to ("" if none)."""
        normalized = normalize_query(text).replace("\n", " ")
        refs: list[tuple[ClauseRef, str]] = []
        for m in _REFERENCE.finditer(normalized):
            article = chinese_to_int(m.group("article"))
            if article is None or article <= 0:
                continue
            doc_id, alias = self.resolve_law(m.group("before"))
            if not doc_id and refs and len(m.group("before")) <= 2:
                doc_id = refs[-1][1]  # "食品安全法第七十八条和第七十九条": the second inherits the law
            para = chinese_to_int(m.group("para")) if m.group("para") else None
            item = chinese_to_int(m.group("item")) if m.group("item") else None
            title = self.documents[doc_id].title if doc_id else ""
            start = m.start("before") + (
                len(m.group("before")) - len(alias) if alias else len(m.group("before"))
            )
            refs.append(
                (
                    ClauseRef(
                        title, article, para, item, max(start, m.start()), m.end(), m.group("before").strip()
                    ),
                    doc_id,
                )
            )
        return refs

    # --- look-up ----------------------------------------------------------------------------------

    def lookup(self, query: str) -> LookupResult:
        refs = self.parse(query)
        if not refs:
            return LookupResult(
                found=False,
                query=query,
                message="没有识别出条文引用。请写成“法规名称＋第X条”，例如：食品安全法第七十八条。",
                suggestions=[f"{self.documents[d].title}第一条" for d in list(self.articles)[:3]],
            )
        ref, doc_id = refs[0]
        if not doc_id:
            return self._unknown_law(query, ref)
        parts = self.articles.get(doc_id, {}).get(ref.article)
        if not parts:
            return self._missing_article(query, ref, doc_id)
        return self._found(query, ref, doc_id, parts)

    def article(self, doc_id: str, number: int) -> list[Chunk]:
        return self.articles.get(doc_id, {}).get(number, [])

    def neighbours(self, doc_id: str, number: int) -> tuple[int | None, int | None]:
        numbers = sorted(self.articles.get(doc_id, {}))
        before = [n for n in numbers if n < number]
        after = [n for n in numbers if n > number]
        return (before[-1] if before else None, after[0] if after else None)

    def _found(self, query: str, ref: ClauseRef, doc_id: str, parts: list[Chunk]) -> LookupResult:
        text = join_parts(parts)
        meta = self.documents[doc_id]
        return LookupResult(
            found=True,
            query=query,
            ref=ref,
            doc_id=doc_id,
            title=meta.title,
            article=parts[0].article,
            heading_path=parts[0].heading_path,
            text=text,
            page_start=min(c.page_start for c in parts),
            page_end=max(c.page_end for c in parts),
            status=meta.status,
            effective_date=meta.effective_date,
            highlight=clause_span(text, ref.paragraph, ref.item),
            chunks=parts,
        )

    def _missing_article(self, query: str, ref: ClauseRef, doc_id: str) -> LookupResult:
        title = self.documents[doc_id].title
        numbers = sorted(self.articles.get(doc_id, {}))
        if not numbers:
            return LookupResult(False, query, ref, message=f"《{title}》没有按“条”编排，无法按条号查询。")
        nearest = sorted(numbers, key=lambda n: (abs(n - ref.article), n))[:3]
        return LookupResult(
            found=False,
            query=query,
            ref=ref,
            suggestions=[f"{title}第{int_to_chinese(n)}条" for n in sorted(nearest)],
            message=f"《{title}》没有{ref.article_label}（共{len(numbers)}条，最后一条是第{int_to_chinese(numbers[-1])}条）。",
        )

    def _unknown_law(self, query: str, ref: ClauseRef) -> LookupResult:
        having = [d for d, arts in self.articles.items() if ref.article in arts]
        written = re.sub(r"[《》\s]", "", ref.law_written)
        if written:
            # Laws whose names share the most characters with what was written.
            scored = sorted(self.articles, key=lambda d: -len(set(written) & set(self.documents[d].title)))
            suggestions = [
                f"{self.documents[d].title}{ref.article_label}" for d in scored[:3] if d in having
            ] or [self.documents[d].title for d in scored[:3]]
            message = f"文档库中没有名为“{written}”的法规，无法查询其{ref.article_label}。"
        else:
            suggestions = [f"{self.documents[d].title}{ref.article_label}" for d in having[:5]]
            message = f"请写明法规名称，例如“食品安全法{ref.article_label}”。"
        return LookupResult(False, query, ref, suggestions=suggestions, message=message)


def join_parts(parts: list[Chunk]) -> str:
    """The article's text from its chunks: parts split at a line break are re-joined with one."""
    out = parts[0].text
    for prev, cur in itertools.pairwise(parts):
        out += ("\n" if cur.char_start > prev.char_end else "") + cur.text
    return out


def clause_span(text: str, paragraph: int | None, item: int | None) -> tuple[int, int] | None:
    """Span of 第N款 (paragraph = a line that is not an item) / 第M项 (an item line of that paragraph)."""
    if not paragraph and not item:
        return None
    paragraphs: list[list[tuple[int, int, bool]]] = []  # per 款: (start, end, is_item) lines
    pos = 0
    for line in text.split("\n"):
        span = (pos, pos + len(line), bool(_ITEM_LINE.match(line)))
        if span[2] and paragraphs:
            paragraphs[-1].append(span)
        else:
            paragraphs.append([span])
        pos += len(line) + 1
    p = paragraph or 1
    if p > len(paragraphs):
        return None
    lines = paragraphs[p - 1]
    if item:
        items = [ln for ln in lines if ln[2]]
        if item > len(items):
            return None
        return items[item - 1][0], items[item - 1][1]
    return lines[0][0], lines[-1][1]
