"""Typed data passed between the pipeline stages: load → normalize → chunk → index → retrieve."""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from assistant.numerals import int_to_chinese


def article_label(article: int, paragraph: int | None = None, item: int | None = None) -> str:
    """第五十八条第一款第三项."""
    label = f"第{int_to_chinese(article)}条"
    label += f"第{int_to_chinese(paragraph)}款" if paragraph else ""
    return label + (f"第{int_to_chinese(item)}项" if item else "")


@dataclass(frozen=True)
class DocumentMeta:
    """What we know about a source document, independent of its text."""

    doc_id: str
    title: str
    source_path: str
    content_hash: str
    file_type: str  # pdf | txt | md | docx
    issuing_body: str = ""
    publication_date: str = ""
    effective_date: str = ""
    status: str = ""  # 有效 | 已废止 | 已修订 | 尚未生效 | "" (unknown)
    doc_type: str = ""  # law | regulation | rules | judicial | policy | guide
    page_count: int = 0
    ocr_pages: tuple[int, ...] = ()  # pages whose text came from text recognition
    ocr_confidence: float = 0.0  # mean recognition score of those pages
    ocr_rejected_pages: tuple[int, ...] = ()  # recognised too unreliably to be indexed

    def to_metadata(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "source_path": self.source_path,
            "content_hash": self.content_hash,
            "file_type": self.file_type,
            "issuing_body": self.issuing_body,
            "publication_date": self.publication_date,
            "effective_date": self.effective_date,
            "status": self.status,
            "doc_type": self.doc_type,
            "page_count": self.page_count,
            "ocr_pages": list(self.ocr_pages),
            "ocr_confidence": self.ocr_confidence,
            "ocr_rejected_pages": list(self.ocr_rejected_pages),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> DocumentMeta:
        fields = {k: meta[k] for k in cls.__dataclass_fields__ if k in meta}
        for key in ("ocr_pages", "ocr_rejected_pages"):
            if key in fields:
                fields[key] = tuple(fields[key])
        return cls(**fields)


@dataclass(frozen=True)
class PageText:
    """Raw text of one page as the loader extracted it (1-based page number)."""

    page: int
    text: str
    ocr_confidence: float | None = None  # set when the text was recognised from the page image


@dataclass(frozen=True)
class RawDocument:
    meta: DocumentMeta
    pages: list[PageText]


@dataclass
class NormalizedDocument:
    """Cleaned text of a whole document plus a map from character offsets back to source pages."""

    meta: DocumentMeta
    text: str
    # page_starts[i] is the offset in `text` where source page page_numbers[i] begins.
    page_starts: list[int] = field(default_factory=list)
    page_numbers: list[int] = field(default_factory=list)

    def page_at(self, offset: int) -> int:
        """Source page of the character at `offset` (1 for documents without pages)."""
        if not self.page_starts:
            return 1
        i = bisect_right(self.page_starts, offset) - 1
        return self.page_numbers[max(i, 0)]


@dataclass(frozen=True)
class CrossReference:
    """A reference inside a chunk's article to an article (of the same document or another law)."""

    law: str  # "" for the same document (本法, 本条例, a bare 第X条); else the law name as written
    article: int
    paragraph: int | None = None  # 款
    item: int | None = None  # 项
    kind: str = "refers"  # penalty | applies | refers
    sentence: str = ""  # the citing line, for display
    same_article: bool = False  # 前款, 本条第二款: within the citing article itself

    def to_json(self) -> dict[str, Any]:
        return {
            "law": self.law,
            "article": self.article,
            "paragraph": self.paragraph,
            "item": self.item,
            "kind": self.kind,
            "sentence": self.sentence,
            "same_article": self.same_article,
        }


@dataclass(frozen=True)
class ArticleLink:
    """An edge of the cross-reference graph: the `source` article cites the `target` article."""

    source_doc: str
    source_title: str
    source_article: str  # 第五十八条, or "" for a section of a policy document
    source_heading: str
    target_doc: str  # "" when the cited law is not indexed (then `law` says what was written)
    target_title: str
    target_article: int
    paragraph: int | None
    item: int | None
    kind: str
    sentence: str
    law: str  # the law name as written ("" = the citing document itself)

    @property
    def resolved(self) -> bool:
        return bool(self.target_doc)

    @property
    def target_label(self) -> str:
        return article_label(self.target_article, self.paragraph, self.item)

    def to_json(self, side: str) -> dict[str, Any]:
        """`side` = "source" for a cited_by entry, "target" for a cites entry."""
        if side == "source":
            return {
                "doc_id": self.source_doc,
                "title": self.source_title,
                "article": self.source_article,
                "heading_path": self.source_heading,
                "kind": self.kind,
                "cites": self.target_label,
                "sentence": self.sentence,
            }
        return {
            "doc_id": self.target_doc,
            "title": self.target_title or self.law,
            "article": article_label(self.target_article),
            "paragraph": self.paragraph,
            "item": self.item,
            "kind": self.kind,
            "resolved": self.resolved,
            "sentence": self.sentence,
        }


@dataclass(frozen=True)
class Chunk:
    """One retrievable unit: an article (or part of one) or a section of a policy document."""

    doc_id: str
    title: str
    article: str  # 第七十八条 (Chinese numerals) or ""
    heading_path: str  # 第四章 食品生产经营 > 第四节 特殊食品
    page_start: int
    page_end: int
    char_start: int  # offsets into NormalizedDocument.text; text == doc.text[char_start:char_end]
    char_end: int
    text: str
    part: int = 0  # 0 for a whole article; 1, 2, … for the parts of a split one
    references: tuple[CrossReference, ...] = ()  # filled at ingest (assistant/crossrefs.py)

    @property
    def chunk_id(self) -> str:
        """Derived from content, so re-ingesting the same text yields the same ids."""
        digest = hashlib.sha1(f"{self.article}|{self.part}|{self.text}".encode()).hexdigest()[:16]
        return f"{self.doc_id}:{digest}"

    @property
    def embedding_text(self) -> str:
        """Text the embedding model sees: the structural context first, then the passage."""
        context = " ".join(p for p in (self.title, self.heading_path.replace(" > ", " "), self.article) if p)
        return f"{context}\n{self.text}" if context else self.text

    def to_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "doc_id": self.doc_id,
            "title": self.title,
            "article": self.article,
            "heading_path": self.heading_path,
            "page_start": self.page_start,
            "page_end": self.page_end,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "part": self.part,
        }
        if self.references:
            meta["references"] = json.dumps([r.to_json() for r in self.references], ensure_ascii=False)
        return meta

    @classmethod
    def from_metadata(cls, text: str, meta: dict[str, Any]) -> Chunk:
        return cls(
            doc_id=str(meta["doc_id"]),
            title=str(meta.get("title", "")),
            article=str(meta.get("article", "")),
            heading_path=str(meta.get("heading_path", "")),
            page_start=int(meta.get("page_start", 1)),
            page_end=int(meta.get("page_end", 1)),
            char_start=int(meta.get("char_start", 0)),
            char_end=int(meta.get("char_end", 0)),
            text=text,
            part=int(meta.get("part", 0)),
            references=tuple(CrossReference(**r) for r in json.loads(meta.get("references") or "[]")),
        )


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    cited: bool = False  # an article the question names ("食品安全法第七十八条…"): always first
    focus: str = ""  # a sentence of the chunk to quote first (a penalty item naming the duty broken)

    def to_json(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "doc_id": c.doc_id,
            "title": c.title,
            "article": c.article,
            "heading_path": c.heading_path,
            "page_start": c.page_start,
            "page_end": c.page_end,
            "text": c.text,
            "score": round(float(self.score), 6),
        }


@dataclass
class IngestFailure:
    path: str
    reason: str


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[IngestFailure] = field(default_factory=list)
    chunks: int = 0  # chunks in the index after the run
    warnings: list[IngestFailure] = field(default_factory=list)  # indexed, but with parts left out

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": [{"path": f.path, "reason": f.reason} for f in self.failed],
            "chunks": self.chunks,
            "warnings": [{"path": f.path, "reason": f.reason} for f in self.warnings],
        }


@dataclass(frozen=True)
class Citation:
    """A numbered source of an answer or review finding: the chunk, and the words quoted from it."""

    number: int
    chunk_id: str
    doc_id: str
    title: str
    article: str
    heading_path: str
    page_start: int
    page_end: int
    quote: str
    effective_date: str = ""
    status: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "article": self.article,
            "page_start": self.page_start,
            "page_end": self.page_end,
            "quote": self.quote,
            "number": self.number,
            "heading_path": self.heading_path,
            "effective_date": self.effective_date,
            "status": self.status,
        }


@dataclass
class AnswerSentence:
    text: str
    citations: list[int]  # citation numbers the sentence carries
    verified: bool = False
    reason: str = ""  # why verification failed


@dataclass
class Answer:
    question: str
    standalone_question: str
    answer: str
    refused: bool
    citations: list[Citation]
    sentences: list[AnswerSentence] = field(default_factory=list)
    generator: str = "extractive"
    closest_documents: list[str] = field(default_factory=list)
    closest_clauses: list[str] = field(default_factory=list)  # shown with a refusal, as pointers
    notice: str = ""  # e.g. "问题过长，已截断"
    continues_conversation: bool = False  # judged to continue the earlier turns (then rewritten)

    @property
    def verified(self) -> bool:
        """True when every sentence the generator wrote passed verification (none had to be dropped)."""
        return all(s.verified for s in self.sentences)

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "citations": [c.to_json() for c in self.citations],
            "verified": self.verified,
            "standalone_question": self.standalone_question,
            "continues_conversation": self.continues_conversation,
            "generator": self.generator,
            "sentences": [
                {"text": s.text, "citations": s.citations, "verified": s.verified, "reason": s.reason}
                for s in self.sentences
            ],
            "closest_documents": self.closest_documents,
            "closest_clauses": self.closest_clauses,
            "notice": self.notice,
        }
