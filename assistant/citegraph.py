"""The cross-reference graph of the indexed library: which article cites which, and how (`penalty`,
`applies`, `refers`). Built from the references stored with each chunk at ingest
(`assistant/crossrefs.py`); law names are resolved here through the look-up's alias table, so a
reference to a law that is not indexed stays in the graph as unresolved, with its text."""

from __future__ import annotations

from typing import Any

from assistant.lookup import ArticleIndex
from assistant.numerals import article_number
from assistant.types import ArticleLink, Chunk

_KIND_ORDER = {"penalty": 0, "applies": 1, "refers": 2}


class CitationGraph:
    def __init__(self, chunks: list[Chunk], articles: ArticleIndex) -> None:
        self.articles = articles
        self.edges: list[ArticleLink] = []
        self._cited_by: dict[tuple[str, int], list[ArticleLink]] = {}
        self._cites: dict[tuple[str, int | str], list[ArticleLink]] = {}
        resolved_law: dict[str, str] = {}
        for chunk in chunks:
            own = article_number(chunk.article)
            for ref in chunk.references:
                if ref.same_article:
                    continue
                if ref.law:
                    if ref.law not in resolved_law:
                        resolved_law[ref.law] = articles.resolve_law(ref.law)[0]
                    target_doc = resolved_law[ref.law]
                else:
                    target_doc = chunk.doc_id
                if target_doc and ref.article not in articles.articles.get(target_doc, {}):
                    target_doc = ""  # a number the cited document does not have: keep it as written
                if target_doc == chunk.doc_id and ref.article == own:
                    continue
                edge = ArticleLink(
                    source_doc=chunk.doc_id,
                    source_title=chunk.title,
                    source_article=chunk.article,
                    source_heading=chunk.heading_path,
                    target_doc=target_doc,
                    target_title=articles.documents[target_doc].title if target_doc else "",
                    target_article=ref.article,
                    paragraph=ref.paragraph,
                    item=ref.item,
                    kind=ref.kind,
                    sentence=ref.sentence,
                    law=ref.law,
                )
                self.edges.append(edge)
                if target_doc:
                    self._cited_by.setdefault((target_doc, ref.article), []).append(edge)
                self._cites.setdefault((chunk.doc_id, own if own is not None else chunk.chunk_id), []).append(
                    edge
                )

    def cited_by(self, doc_id: str, article: int) -> list[ArticleLink]:
        """Articles citing this one, penalty edges first; one entry per citing article and kind."""
        return _distinct(
            self._cited_by.get((doc_id, article), []), lambda e: (e.source_doc, e.source_article)
        )

    def cites(self, doc_id: str, article: int) -> list[ArticleLink]:
        """Articles this one cites (also those of laws that are not indexed), penalty edges first."""
        return _distinct(
            self._cites.get((doc_id, article), []), lambda e: (e.target_doc or e.law, e.target_article)
        )

    def edges_from(self, doc_id: str, article: int) -> list[ArticleLink]:
        """Every edge out of one article, one per reference (款 and 项 kept apart)."""
        return list(self._cites.get((doc_id, article), []))

    def penalties_for(self, doc_id: str, article: int) -> list[ArticleLink]:
        """The articles that punish violating this one."""
        return [e for e in self.cited_by(doc_id, article) if e.kind == "penalty"]


def _distinct(edges: list[ArticleLink], key: Any) -> list[ArticleLink]:
    seen: set[Any] = set()
    out = []
    for e in sorted(edges, key=lambda e: _KIND_ORDER.get(e.kind, 3)):
        k = (*key(e), e.kind)
        if k not in seen:
            seen.add(k)
            out.append(e)
    return sorted(out, key=lambda e: (_KIND_ORDER.get(e.kind, 3), e.source_doc, e.target_article))
