"""The library API that the CLI, the Streamlit app and the tests share: one object per process that
owns the settings, the embedding model and the store, created lazily and reused."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from assistant.embeddings import LocalSentenceEmbeddings
from assistant.ingest import IngestProgress, ingest_paths
from assistant.normalize import normalize_query
from assistant.settings import Settings
from assistant.store import DocumentRecord, Store
from assistant.types import Hit, IngestReport


class Assistant:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._embeddings: LocalSentenceEmbeddings | None = None
        self._store: Store | None = None
        self._lock = threading.RLock()

    @property
    def embeddings(self) -> LocalSentenceEmbeddings:
        with self._lock:
            if self._embeddings is None:
                self._embeddings = LocalSentenceEmbeddings(self.settings)
            return self._embeddings

    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = Store(self.settings, self.settings.embedding_model)
            return self._store

    # --- ingestion ---------------------------------------------------------------------------------

    def ingest(self, paths: list[Path] | None = None, progress: IngestProgress | None = None) -> IngestReport:
        return ingest_paths(
            paths or [self.settings.corpus_dir], self.settings, self.store, self.embeddings, progress
        )

    def rebuild_index(self) -> None:
        """Drop every chunk and document record, keeping the index location."""
        for record in self.store.registry.documents(state=None):
            self.store.delete_document(record.meta.doc_id)
        self.store.registry.set_info("embedding_model", self.settings.embedding_model)

    def index_is_empty(self) -> bool:
        return not self.store.registry.documents()

    def documents(self) -> list[DocumentRecord]:
        return self.store.registry.documents()

    def delete_document(self, doc_id: str) -> bool:
        return self.store.delete_document(doc_id)

    # --- retrieval (dense for now) -------------------------------------------------------------------

    def search(
        self, query: str, k: int | None = None, doc_ids: list[str] | None = None, status: str | None = None
    ) -> list[Hit]:
        k = k or self.settings.search_k
        text = normalize_query(query)
        if not text:
            return []
        where: dict[str, Any] | None = None
        clauses: list[dict[str, Any]] = []
        if doc_ids:
            clauses.append({"doc_id": {"$in": list(doc_ids)}})
        if status:
            clauses.append({"status": status})
        if len(clauses) == 1:
            where = clauses[0]
        elif clauses:
            where = {"$and": clauses}
        vector = self.embeddings.embed_query(text)
        return [Hit(chunk, score) for chunk, score in self.store.dense_search(vector, k, where)]

    def warm_up(self) -> None:
        """Load the model and open the index now rather than on the first question."""
        self.embeddings.embed_query("预热")
        _ = self.store
