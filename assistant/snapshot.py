"""An in-memory view of the committed index at one registry generation: every chunk, the BM25
side index and the article index. Rebuilt only when the registry's generation changes (a document
was added, replaced or removed), never per query."""

from __future__ import annotations

import math
import shutil
import threading
from dataclasses import dataclass, field

import numpy as np

from assistant.citegraph import CitationGraph
from assistant.lookup import ArticleIndex
from assistant.normalize import match_key
from assistant.sparse import SparseIndex
from assistant.store import Store
from assistant.tokenize import TOKENIZER_VERSION
from assistant.types import Chunk, DocumentMeta


@dataclass
class Snapshot:
    generation: str
    chunks: dict[str, Chunk]  # chunk id → chunk
    documents: dict[str, DocumentMeta]
    sparse: SparseIndex
    articles: ArticleIndex
    citations: CitationGraph
    match_keys: dict[str, tuple[str, str]]  # chunk id → (match key of text, of title+heading+article)
    vector_ids: list[str] = field(default_factory=list)  # chunk ids, in the row order of `vectors`
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    _idf: dict[str, float] = field(default_factory=dict)

    @property
    def idf_absent(self) -> float:
        """The IDF of a term that occurs in no chunk."""
        return math.log((len(self.match_keys) + 1) / 0.5)

    def idf(self, term_key: str) -> float:
        """Inverse document frequency of a normalized term over the chunks (substring containment)."""
        value = self._idf.get(term_key)
        if value is None:
            df = sum(1 for body, head in self.match_keys.values() if term_key in body or term_key in head)
            value = math.log((len(self.match_keys) + 1) / (df + 0.5))
            self._idf[term_key] = value
        return value

    def dense_search(self, query: np.ndarray, k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """Exact cosine nearest chunks (vectors are normalized), ties broken by chunk id. Chroma's
        HNSW search is approximate and its result for the same vector varied between processes;
        at this library's size an exact scan costs well under a millisecond and always agrees."""
        if not self.vector_ids:
            return []
        scores = self.vectors @ query.astype(np.float32)
        order = sorted(
            (i for i, cid in enumerate(self.vector_ids) if allowed is None or cid in allowed),
            key=lambda i: (-round(float(scores[i]), 6), self.vector_ids[i]),
        )
        return [(self.vector_ids[i], float(scores[i])) for i in order[: max(1, k)]]


class SnapshotCache:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._current: Snapshot | None = None
        self._lock = threading.Lock()

    def current(self) -> Snapshot:
        generation = self.store.registry.generation()
        snap = self._current
        if snap is not None and snap.generation == generation:
            return snap
        with self._lock:
            if self._current is None or self._current.generation != generation:
                self._current = self._load(generation)
            return self._current

    def _load(self, generation: str) -> Snapshot:
        documents = {r.meta.doc_id: r.meta for r in self.store.registry.documents()}
        pairs = [(c, v) for c, v in self.store.all_chunks_with_vectors() if c.doc_id in documents]
        chunks = [c for c, _ in pairs]
        # The folder name carries the tokenizer version, so a tokenizer change rebuilds the side index.
        folder = self.store.settings.index_dir / "bm25" / f"gen-{generation}-tok{TOKENIZER_VERSION}"
        sparse = None
        if folder.is_dir():
            try:
                sparse = SparseIndex.load(folder)
                if set(sparse.chunk_ids) != {c.chunk_id for c in chunks}:
                    sparse = None  # written for a different state of the collection
            except Exception:
                sparse = None
        if sparse is None:
            sparse = SparseIndex.build(chunks)
            # An empty index (first run, before ingesting) has nothing to persist; bm25s cannot save it.
            try:
                if chunks:
                    sparse.save(folder)
                for old in folder.parent.glob("gen-*"):
                    if old != folder and not old.name.endswith(".tmp"):
                        shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass  # a read-only index still works; the side index is rebuilt in memory
        articles = ArticleIndex(chunks, documents)
        return Snapshot(
            generation=generation,
            chunks={c.chunk_id: c for c in chunks},
            documents=documents,
            sparse=sparse,
            articles=articles,
            citations=CitationGraph(chunks, articles),
            match_keys={
                c.chunk_id: (match_key(c.text), match_key(f"{c.title}{c.heading_path}{c.article}"))
                for c in chunks
            },
            vector_ids=[c.chunk_id for c in chunks],
            vectors=(
                np.asarray([v for _, v in pairs], dtype=np.float32)
                if pairs
                else np.zeros((0, 0), dtype=np.float32)
            ),
        )
