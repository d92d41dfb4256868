"""Shared fixtures. The real embedding model is loaded once per test session and shared."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from assistant.chunking import LegalChunker
from assistant.embeddings import LocalSentenceEmbeddings
from assistant.engine import Assistant
from assistant.extraction import prepare_document
from assistant.loaders import load_document, read_manifest
from assistant.lookup import ArticleIndex
from assistant.normalize import normalize_document
from assistant.settings import PROJECT_ROOT, Settings
from assistant.types import Chunk, DocumentMeta, NormalizedDocument, RawDocument

CORPUS = PROJECT_ROOT / "corpus"
MD_TWINS = Path(__file__).parent / "data" / "md-twins"


@cache
def raw(name: str) -> RawDocument:
    """A bundled corpus file as loaded, once per test session (shared by the normalizer and chunker tests)."""
    return load_document(CORPUS / name, Settings(), read_manifest(CORPUS))


@cache
def doc(name: str) -> NormalizedDocument:
    return normalize_document(raw(name))


@pytest.fixture(scope="session")
def corpus_chunks() -> tuple[list[Chunk], dict[str, DocumentMeta]]:
    """The bundled corpus as ingest prepares it (load → normalize → chunk → references), without the model."""
    settings = Settings()
    chunker = LegalChunker(settings.chunk_max_chars, settings.chunk_min_chars)
    chunks: list[Chunk] = []
    documents: dict[str, DocumentMeta] = {}
    for path in sorted([*CORPUS.glob("*.pdf"), *CORPUS.glob("*.md")]):
        normalized, prepared = prepare_document(path, settings, chunker)
        assert normalized.meta.title, f"{path.name} has no title in MANIFEST.tsv"
        chunks += prepared
        documents[normalized.meta.doc_id] = normalized.meta
    return chunks, documents


@pytest.fixture(scope="session")
def corpus_articles(corpus_chunks: tuple[list[Chunk], dict[str, DocumentMeta]]) -> ArticleIndex:
    """The bundled corpus's articles for exact look-up."""
    return ArticleIndex(*corpus_chunks)


@pytest.fixture(scope="session")
def embeddings() -> LocalSentenceEmbeddings:
    return LocalSentenceEmbeddings(Settings())


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings whose index and data folders live in this test's temporary folder."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "index_dir": tmp_path / "index",
            "data_dir": tmp_path / "data",
            "corpus_dir": CORPUS,
        }
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture
def make_assistant(
    make_settings: Callable[..., Settings], embeddings: LocalSentenceEmbeddings
) -> Iterator[Callable[..., Assistant]]:
    """An `Assistant` on a temporary index that reuses the session's loaded model."""
    made: list[Assistant] = []

    def factory(**overrides: Any) -> Assistant:
        assistant = Assistant(make_settings(**overrides), embeddings=embeddings)
        made.append(assistant)
        return assistant

    yield factory
    for assistant in made:
        assistant.close()


@pytest.fixture(scope="session")
def corpus_assistant(tmp_path_factory: pytest.TempPathFactory, embeddings: LocalSentenceEmbeddings) -> Iterator[Assistant]:
    """The whole bundled corpus ingested once into a temporary index (about a minute)."""
    root = tmp_path_factory.mktemp("corpus-index")
    settings = Settings(index_dir=root / "index", data_dir=root / "data", corpus_dir=CORPUS)
    assistant = Assistant(settings, embeddings=embeddings)
    report = assistant.ingest()
    assert not report.failed, report.failed
    yield assistant
    assistant.close()
