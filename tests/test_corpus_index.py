"""Integration: the bundled corpus ingested into a temporary index, checked against what the source
texts prove (the Markdown twins of the law PDFs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.engine import Assistant
from assistant.normalize import is_page_number_line
from assistant.store import DocumentRecord

from .conftest import MD_TWINS

pytestmark = pytest.mark.slow

LAW_PDFS = [
    "advertising-law-2021",
    "food-safety-law-2025",
    "food-safety-law-implementing-regulations-2019",
    "food-production-operation-supervision-inspection-measures-2021",
]
RUNNING_HEADER = "法律法规文本（供学习参考）"


def _record(assistant: Assistant, file_name: str) -> DocumentRecord:
    return next(r for r in assistant.documents() if Path(r.meta.source_path).name == file_name)


def _markdown_articles(stem: str) -> set[str]:
    text = (MD_TWINS / f"{stem}.md").read_text(encoding="utf-8")
    return set(re.findall(r"^(?:- \*\*)?(第[一二三四五六七八九十百零]+条)", text, re.M))


@pytest.mark.parametrize("stem", LAW_PDFS)
def test_pdf_articles_match_markdown_twin(corpus_assistant: Assistant, stem: str) -> None:
    record = _record(corpus_assistant, f"{stem}.pdf")
    chunks = corpus_assistant.store.document_chunks(record.meta.doc_id)
    articles = {c.article for c in chunks} - {"题注"}
    assert articles == _markdown_articles(stem)
    assert all(c.article for c in chunks), "every chunk of a law has an article id"
    for c in chunks:
        assert 1 <= c.page_start <= c.page_end <= record.meta.page_count
        assert RUNNING_HEADER not in c.text
        assert not any(is_page_number_line(line) for line in c.text.split("\n"))
    assert any(c.page_start != c.page_end for c in chunks), "some article crosses a page break"


def test_registry_and_store_agree(corpus_assistant: Assistant) -> None:
    records = corpus_assistant.documents()
    assert len(records) == len([p for p in (Path(__file__).parent.parent / "corpus").iterdir() if p.name != "MANIFEST.tsv"])
    for record in records:
        assert len(corpus_assistant.store.document_chunks(record.meta.doc_id)) == record.chunk_count > 0


def test_search_finds_label_article_with_page(corpus_assistant: Assistant) -> None:
    hits = corpus_assistant.search("保健食品标签不得涉及什么内容", k=5)
    found = [h for h in hits if h.chunk.title == "中华人民共和国食品安全法" and h.chunk.article == "第七十八条"]
    assert found, [(h.chunk.title, h.chunk.article) for h in hits]
    assert found[0].chunk.page_start >= 1


def test_reingest_of_unchanged_corpus_skips_everything(corpus_assistant: Assistant) -> None:
    before = corpus_assistant.store.chunk_count()
    report = corpus_assistant.ingest()
    assert not report.added and not report.updated and not report.removed and not report.failed
    assert len(report.unchanged) == len(corpus_assistant.documents())
    assert report.chunks == before
