"""The library API that the CLI, the Streamlit app and the tests share: one object per process that
owns the settings, the embedding model and the store, created lazily and reused."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from assistant.answering.chain import AnswerService
from assistant.answering.followup import Turn
from assistant.answering.followup_judge import BUNDLED_FOLLOWUP_MODEL, FollowUpJudge
from assistant.embeddings import LocalSentenceEmbeddings, index_model_id
from assistant.ingest import IngestProgress, ingest_paths
from assistant.judge import Judge
from assistant.lookup import LookupResult
from assistant.preview import PreviewError, SourceView, is_paged, passage_context, render_page
from assistant.retrieve import AssistantRetriever, HybridSearcher, Mode
from assistant.review.classifier import BUNDLED_REVIEW_MODEL, ClaimClassifier
from assistant.review.engine import ReviewEngine, ReviewResult
from assistant.sessions import SessionStore
from assistant.settings import Settings
from assistant.store import DocumentRecord, Store
from assistant.types import Answer, Hit, IngestReport


class Assistant:
    def __init__(
        self,
        settings: Settings,
        embeddings: LocalSentenceEmbeddings | None = None,
        judge: Judge | None = None,
        claim_classifier: ClaimClassifier | None = None,
        followup_judge: FollowUpJudge | None = None,
    ) -> None:
        """`embeddings`, `judge`, `claim_classifier` and `followup_judge` let several assistants (e.g.
        tests on separate indexes) share loaded models."""
        self.settings = settings
        self._embeddings = embeddings
        self._judge = judge
        self._claim_classifier = claim_classifier
        self._followup_judge = followup_judge
        self._store: Store | None = None
        self._searcher: HybridSearcher | None = None
        self._answers: AnswerService | None = None
        self._reviewer: ReviewEngine | None = None
        self._reviewer_generation = ""
        self._sessions: SessionStore | None = None
        self._lock = threading.RLock()

    @property
    def embeddings(self) -> LocalSentenceEmbeddings:
        with self._lock:
            if self._embeddings is None:
                self._embeddings = LocalSentenceEmbeddings(self.settings)
            return self._embeddings

    @property
    def claim_classifier(self) -> ClaimClassifier | None:
        """The trained review classifier, or None when the `review_classifier` setting is off."""
        if not self.settings.review_classifier:
            return None
        with self._lock:
            if self._claim_classifier is None:
                self._claim_classifier = ClaimClassifier(
                    self.settings.review_model_path or BUNDLED_REVIEW_MODEL
                )
            return self._claim_classifier

    @property
    def followup_judge(self) -> FollowUpJudge | None:
        """The trained follow-up judge, or None when the `followup_judge` setting is off."""
        if not self.settings.followup_judge:
            return None
        with self._lock:
            if self._followup_judge is None:
                self._followup_judge = FollowUpJudge(
                    self.settings.followup_model_path or BUNDLED_FOLLOWUP_MODEL, self.settings.torch_threads
                )
            return self._followup_judge

    @property
    def judge(self) -> Judge | None:
        """The trained relevance judge, or None when the `judge` setting is off."""
        if not self.settings.judge:
            return None
        with self._lock:
            if self._judge is None:
                self._judge = Judge(
                    self.settings.judge_path,
                    backend=self.settings.judge_backend,
                    cache_dir=self.settings.model_cache_dir,
                    threads=self.settings.torch_threads,
                )
            return self._judge

    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = Store(self.settings, index_model_id(self.settings))
            return self._store

    # --- ingestion ---------------------------------------------------------------------------------

    def ingest(self, paths: list[Path] | None = None, progress: IngestProgress | None = None) -> IngestReport:
        return ingest_paths(
            paths or [self.settings.corpus_dir], self.settings, self.store, self.embeddings, progress
        )

    def rebuild_index(self) -> list[Path]:
        """Drop every chunk and document record, keeping the index location; also an index built by
        another embedding model. Returns what to index again: the corpus folder and every other
        document the index held that still exists (uploaded documents survive a model change)."""
        with self._lock:
            if self._store is None:
                self._store = Store(self.settings, index_model_id(self.settings), check_model=False)
            store = self._store
        records = store.registry.documents(state=None)
        for record in records:
            store.delete_document(record.meta.doc_id)
        store.registry.set_info("embedding_model", index_model_id(self.settings))
        corpus = self.settings.corpus_dir.resolve()
        others = dict.fromkeys(Path(r.meta.source_path) for r in records)
        return [
            self.settings.corpus_dir,
            *(p for p in others if p.is_file() and corpus not in p.resolve().parents),
        ]

    def index_is_empty(self) -> bool:
        return not self.store.registry.documents()

    def documents(self) -> list[DocumentRecord]:
        return self.store.registry.documents()

    def delete_document(self, doc_id: str) -> bool:
        return self.store.delete_document(doc_id)

    # --- retrieval ----------------------------------------------------------------------------------

    @property
    def searcher(self) -> HybridSearcher:
        with self._lock:
            if self._searcher is None:
                self._searcher = HybridSearcher(self.settings, self.embeddings, self.store, self.judge)
            return self._searcher

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: Mode = "hybrid",
        rerank: bool = True,
        doc_ids: list[str] | None = None,
        status: str | None = None,
    ) -> list[Hit]:
        """Hybrid search (dense + BM25, fused and reranked); cited articles come first."""
        return self.searcher.search(query, k or self.settings.search_k, mode, rerank, doc_ids, status)

    def lookup(self, reference: str) -> LookupResult:
        """The article a reference such as `食品安全法第七十八条` names, verbatim, or suggestions; with the
        articles that cite it (penalty first) and those it cites."""
        snap = self.searcher.snapshots.current()
        result = snap.articles.lookup(reference)
        if result.found and result.ref is not None:
            result.cited_by = snap.citations.cited_by(result.doc_id, result.ref.article)
            result.cites = snap.citations.cites(result.doc_id, result.ref.article)
        return result

    @property
    def answers(self) -> AnswerService:
        with self._lock:
            if self._answers is None:
                self._answers = AnswerService(self.settings, self.searcher, self.judge, self.followup_judge)
            return self._answers

    def ask(
        self,
        question: str,
        history: list[Turn] | None = None,
        generator: str | None = None,
        doc_ids: list[str] | None = None,
        status: str | None = None,
    ) -> Answer:
        """An answer with numbered citations, or an honest refusal; `history` enables follow-ups."""
        return self.answers.answer(question, history, generator, doc_ids, status)

    def review(self, draft: str, doc_type: str = "auto") -> ReviewResult:
        """Findings in a label / leaflet / advert draft, each citing the clause it rests on."""
        snap = self.searcher.snapshots.current()
        if self._reviewer is None or self._reviewer_generation != snap.generation:
            self._reviewer = ReviewEngine(snap.articles, classifier=self.claim_classifier)
            self._reviewer_generation = snap.generation
        limit = self.settings.max_draft_chars
        notice = ""
        if len(draft) > limit:
            draft = draft[:limit]
            notice = f"文稿过长（超过 {limit} 字），只审查了前 {limit} 字。"
        result = self._reviewer.review(draft, doc_type)
        result.notice = notice
        return result

    @property
    def sessions(self) -> SessionStore:
        """Trainer sessions, saved under the data directory."""
        with self._lock:
            if self._sessions is None:
                self._sessions = SessionStore(self.settings.sessions_db)
            return self._sessions

    def answer_session(
        self,
        session_id: int,
        progress: Callable[[int, int, str], None] | None = None,
        only: list[int] | None = None,
    ) -> int:
        """Answer a session's pending questions (or just `only`), saving each answer as it is done."""
        return self.sessions.answer_pending(session_id, lambda q: self.ask(q).to_json(), progress, only)

    def neighbours(self, doc_id: str, article: int) -> tuple[int | None, int | None]:
        """Numbers of the articles before and after `article` in a document (for prev/next navigation)."""
        return self.searcher.snapshots.current().articles.neighbours(doc_id, article)

    def source_view(self, doc_id: str, page: int, passage: str) -> SourceView:
        """What a citation opens: its source page with the passage boxed (PDFs, scans, photos; rendered
        on first use, then cached), or the passage in its surrounding text. Raises PreviewError."""
        record = self.store.registry.get(doc_id)
        if record is None:
            raise PreviewError("该文档已不在索引中")
        if is_paged(record.meta):
            return SourceView(render_page(record.meta, page, passage, self.settings))
        return passage_context(self.store.document_chunks(doc_id), passage)

    def retriever(self, **kwargs: Any) -> AssistantRetriever:
        """A LangChain retriever over this assistant's index."""
        return AssistantRetriever(searcher=self.searcher, **kwargs)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
            self._searcher = None
            self._answers = None
        if self._sessions is not None:
            self._sessions.close()
            self._sessions = None

    def warm_up(self) -> None:
        """Load the models, open the index and load the word segmenter now rather than on the first
        question — the models in one thread, the index and a first search in another (the app's cold
        start waits for this)."""

        def models() -> None:
            self.embeddings.embed_query("预热")
            if self.judge is not None:
                self.judge.score("预热", ["预热"])
            if self.followup_judge is not None:
                self.followup_judge.probability("预热", ["预热"])

        def index() -> None:  # a first search opens the index snapshot, loads jieba and the query word lists
            self.searcher.search("保健食品标签", k=1, rerank=False)

        with ThreadPoolExecutor(max_workers=2) as pool:
            for loading in [pool.submit(models), pool.submit(index)]:
                loading.result()
