"""Hybrid retrieval: dense search in Chroma + BM25 over jieba tokens, fused with reciprocal-rank
fusion, reranked, with clause references put first. Exposed to LangChain as a `BaseRetriever`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.embeddings import LocalSentenceEmbeddings, VectorCache
from assistant.judge import Judge, passage_inputs
from assistant.normalize import match_key, one_line_query
from assistant.query_terms import expand_query, lay_terms
from assistant.sentences import sentence_probe, split_sentences
from assistant.settings import Settings
from assistant.snapshot import Snapshot, SnapshotCache
from assistant.store import Store
from assistant.tokenize import content_terms
from assistant.types import Chunk, Hit

Mode = Literal["hybrid", "dense", "bm25"]
RRF_K = 60
_WEIGHTS_FILE = Path(__file__).parent / "data" / "rerank_weights.json"
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_AUTHORITY = {"law": 1.0, "regulation": 1.0, "rules": 1.0, "judicial": 0.9, "policy": 0.6, "guide": 0.2}
FEATURES = (
    "rrf",
    "dense",
    "dense_rr",
    "bm25",
    "bm25_rr",
    "coverage",
    "idf_coverage",
    "expanded_coverage",
    "heading",
    "numbers",
    "doc_named",
    "authority",
    "preamble",
)


@lru_cache(maxsize=1)
def default_weights() -> dict[str, float]:
    data = json.loads(_WEIGHTS_FILE.read_text(encoding="utf-8"))
    return {k: float(v) for k, v in data["weights"].items()}


@dataclass(frozen=True)
class RelevanceSignals:
    top_score: float = 0.0  # reranker score of the best candidate
    max_dense: float = 0.0  # best cosine similarity between the question and any candidate
    top3_idf_coverage: float = 0.0  # IDF-weighted share of the question's words found in the top 3 hits
    oov_share: float = 0.0  # IDF-weighted share of the question's words that occur nowhere in the library
    best_sentence_coverage: float = 0.0  # the same share as top3_idf_coverage, in the best single sentence
    best_sentence_similarity: float = 0.0  # cosine of the question and the closest sentence of the top 3
    cited_article: bool = False  # the question cites an article that exists

    FEATURES: ClassVar[list[str]] = [
        "top_score",
        "max_dense",
        "top3_idf_coverage",
        "oov_share",
        "best_sentence_coverage",
        "best_sentence_similarity",
    ]

    def vector(self) -> list[float]:
        """The features the refusal model reads, in its order."""
        return [float(getattr(self, name)) for name in self.FEATURES]


@dataclass(frozen=True)
class JudgeReading:
    """How far the judge reads down the fused candidates of one search."""

    depth: int  # candidates it reads at most
    budget: int  # characters (question + window, summed) after which it stops; 0: no limit


@dataclass
class _Ranking:
    query: str  # normalized
    snap: Snapshot
    candidates: list[Candidate]
    hits: list[Hit]  # cited articles first, then the ranked candidates
    top_score: float
    cited_article: bool


@dataclass
class Candidate:
    chunk: Chunk
    dense: float | None = None
    dense_rank: int | None = None
    bm25: float | None = None
    bm25_rank: int | None = None
    rrf: float = 0.0
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0


def rrf_fuse(rankings: list[list[str]], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal-rank fusion: each list contributes 1/(k + rank) for every id it ranks (rank from 1)."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, cid in enumerate(ranking, start=1):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (k + rank)
    return fused


def _doc_aliases_in(query: str, snap: Snapshot) -> set[str]:
    """Documents the question names ("广告法…", "实施条例里…")."""
    spans: list[tuple[int, int, str]] = []
    for alias, doc_id in snap.articles.aliases.items():
        if len(alias) >= 3:
            start = query.find(alias)
            while start >= 0:
                spans.append((start, start + len(alias), doc_id))
                start = query.find(alias, start + 1)
    # "修改食品安全法的决定" names the decision, not the law inside it: only maximal matches count.
    return {
        d for s, e, d in spans if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _ in spans)
    }


def _keys(text: str) -> list[str]:
    return [k for k in (match_key(t) for t in content_terms(text)) if k]


def compute_features(
    query: str, candidates: list[Candidate], snap: Snapshot, expand_from: str | None = None
) -> None:
    terms = _keys(query)
    expanded = _keys(expand_query(query, expand_from))
    idf = {t: snap.idf(t) for t in terms}
    idf_total = sum(idf.values()) or 1.0
    numbers = set(_NUMBER.findall(query))
    named = _doc_aliases_in(query, snap)
    dense_values = [c.dense for c in candidates if c.dense is not None]
    lo, hi = (min(dense_values), max(dense_values)) if dense_values else (0.0, 1.0)
    bm25_max = max((c.bm25 or 0.0 for c in candidates), default=0.0) or 1.0
    for cand in candidates:
        ch = cand.chunk
        body, head = snap.match_keys[ch.chunk_id]
        meta = snap.documents.get(ch.doc_id)
        cand.features = {
            "rrf": cand.rrf * RRF_K / 2,
            "dense": ((cand.dense - lo) / (hi - lo)) if cand.dense is not None and hi > lo else 0.0,
            "dense_rr": 1.0 / cand.dense_rank if cand.dense_rank else 0.0,
            "bm25": (cand.bm25 or 0.0) / bm25_max,
            "bm25_rr": 1.0 / cand.bm25_rank if cand.bm25_rank else 0.0,
            "coverage": sum(t in body or t in head for t in terms) / len(terms) if terms else 0.0,
            "idf_coverage": sum(idf[t] for t in terms if t in body or t in head) / idf_total,
            "expanded_coverage": (
                sum(t in body or t in head for t in expanded) / len(expanded) if expanded else 0.0
            ),
            "heading": sum(t in head for t in terms) / len(terms) if terms else 0.0,
            "numbers": sum(n in ch.text for n in numbers) / len(numbers) if numbers else 0.0,
            "doc_named": 1.0 if ch.doc_id in named else (-1.0 if named else 0.0),
            "authority": _AUTHORITY.get(meta.doc_type if meta else "", 0.5),
            "preamble": 1.0 if ch.article == "题注" else 0.0,
        }


class FeatureReranker:
    """A linear model over measurable signals; weights fitted on the golden set's training split."""

    name = "features"

    def __init__(self, weights: dict[str, float] | None = None) -> None:
        self.weights = weights or default_weights()

    def score(self, query: str, candidates: list[Candidate]) -> None:
        for cand in candidates:
            cand.score = sum(self.weights.get(name, 0.0) * value for name, value in cand.features.items())


class CrossEncoderReranker(FeatureReranker):
    """A local cross-encoder folder (configured by the user), blended with the feature score."""

    name = "cross-encoder"

    def __init__(self, path: Path, device: str = "cpu", weights: dict[str, float] | None = None) -> None:
        super().__init__(weights)
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(str(path), device=device, local_files_only=True)

    def score(self, query: str, candidates: list[Candidate]) -> None:
        super().score(query, candidates)
        if not candidates:
            return
        raw = self.model.predict([(query, c.chunk.text) for c in candidates], show_progress_bar=False)
        values = [float(v) for v in raw]
        lo, hi = min(values), max(values)
        for cand, value in zip(candidates, values, strict=True):
            cand.features["cross_encoder"] = (value - lo) / (hi - lo) if hi > lo else 0.0
            cand.score += self.weights.get("cross_encoder", 1.0) * cand.features["cross_encoder"]


class HybridSearcher:
    def __init__(
        self,
        settings: Settings,
        embeddings: LocalSentenceEmbeddings,
        store: Store,
        judge: Judge | None = None,
    ) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self.vectors = VectorCache(embeddings)
        self.store = store
        self.snapshots = SnapshotCache(store)
        self.judge = judge
        self._reranker: FeatureReranker | None = None

    @property
    def reranker(self) -> FeatureReranker:
        if self._reranker is None:
            path = self.settings.cross_encoder_path
            self._reranker = (
                CrossEncoderReranker(path, self.settings.embedding_device) if path else FeatureReranker()
            )
        return self._reranker

    def candidates(
        self,
        query: str,
        mode: Mode = "hybrid",
        doc_ids: list[str] | None = None,
        status: str | None = None,
        depth: int | None = None,
        expand_from: str | None = None,
    ) -> tuple[str, Snapshot, list[Candidate]]:
        """Normalized query, the snapshot used, and the fused candidates (unranked by the reranker).
        `expand_from`: the words whose statutory terms the keyword side adds (default: the query's)."""
        snap = self.snapshots.current()
        q = one_line_query(query)
        if not q:
            return q, snap, []
        depth = depth or self.settings.candidate_depth
        allowed_docs = {
            d
            for d, meta in snap.documents.items()
            if (not doc_ids or d in doc_ids) and (not status or meta.status == status)
        }
        cands: dict[str, Candidate] = {}
        rankings: list[list[str]] = []
        allowed = None
        if doc_ids or status:
            allowed = {cid for cid, c in snap.chunks.items() if c.doc_id in allowed_docs}
        if mode in ("hybrid", "dense") and snap.chunks:
            ranking = []
            for rank, (cid, score) in enumerate(snap.dense_search(self.vectors.query(q), depth, allowed), 1):
                cand = cands.setdefault(cid, Candidate(snap.chunks[cid]))
                cand.dense, cand.dense_rank = score, rank
                ranking.append(cid)
            rankings.append(ranking)
        if mode in ("hybrid", "bm25"):
            ranking = []
            for rank, (cid, score) in enumerate(snap.sparse.search(expand_query(q, expand_from), depth, allowed), start=1):
                if cid not in snap.chunks:
                    continue
                cand = cands.setdefault(cid, Candidate(snap.chunks[cid]))
                cand.bm25, cand.bm25_rank = score, rank
                ranking.append(cid)
            rankings.append(ranking)
        for cid, value in rrf_fuse(rankings).items():
            cands[cid].rrf = value
        return q, snap, list(cands.values())

    def search(
        self,
        query: str,
        k: int = 5,
        mode: Mode = "hybrid",
        rerank: bool = True,
        doc_ids: list[str] | None = None,
        status: str | None = None,
        reading: JudgeReading | None = None,
        expand_from: str | None = None,
    ) -> list[Hit]:
        """`reading`: how far the judge reads down the fused candidates (default: the settings');
        `expand_from`: the words whose statutory terms the keyword side adds (default: the query's)."""
        return self._ranking(query, mode, rerank, doc_ids, status, reading, expand_from).hits[:k]

    def _ranking(
        self,
        query: str,
        mode: Mode,
        rerank: bool,
        doc_ids: list[str] | None,
        status: str | None,
        reading: JudgeReading | None = None,
        expand_from: str | None = None,
    ) -> _Ranking:
        q, snap, cands = self.candidates(query, mode, doc_ids, status, expand_from=expand_from)
        if not q:
            return _Ranking(q, snap, [], [], 0.0, False)
        compute_features(q, cands, snap, expand_from)
        if rerank:
            self.reranker.score(q, cands)
        else:
            for c in cands:
                c.score = c.rrf if mode == "hybrid" else (c.dense if mode == "dense" else c.bm25) or 0.0
        ranked = sorted(cands, key=lambda c: (-round(c.score, 9), c.chunk.chunk_id))
        ranked = _drop_near_duplicates(ranked, snap)
        if rerank and self.judge is not None and ranked:
            default = JudgeReading(self.settings.judge_depth, self.settings.judge_budget)
            ranked = self._judged(q, ranked, reading or default)
        referenced = self._referenced_articles(q, snap, doc_ids, status)
        top = ranked[0].score if ranked else 0.0
        hits = [Hit(c, top + 1.0, cited=True) for c in referenced]
        seen = {c.chunk_id for c in referenced}
        hits += [Hit(c.chunk, c.score) for c in ranked if c.chunk.chunk_id not in seen]
        return _Ranking(q, snap, cands, hits, top, bool(referenced))

    def _judged(self, q: str, ranked: list[Candidate], reading: JudgeReading) -> list[Candidate]:
        """The judge reorders the best fused candidates: its probability that a passage answers the
        question, plus a prior for the feature reranker's order (`rerank_prior` for its first, 0 for
        the last of `reading.depth`). Candidates not judged keep their fused order after them."""
        assert self.judge is not None
        depth = min(reading.depth, len(ranked))
        span = max(depth - 1, 1)  # the prior's scale does not change when the budget stops early
        # The judge's time grows with what it reads: past `reading.budget` characters of windows it
        # stops (deep candidates of long articles seldom overtake the fused order's head anyway).
        budget, spent = reading.budget, 0
        for i, cand in enumerate(ranked[:depth]):
            spent += sum(len(q) + len(x) for x in passage_inputs(cand.chunk.title, cand.chunk.article, cand.chunk.text))
            if budget and spent > budget and i >= 3:
                depth = i
                break
        head, tail = ranked[:depth], ranked[depth:]
        prior = self.judge.calibration.rerank_prior
        for i, (cand, p) in enumerate(zip(head, self.judge.passages(q, [c.chunk for c in head]), strict=True)):
            cand.features["judge"] = p
            cand.score = p + prior * (1 - i / span)
        head.sort(key=lambda c: (-round(c.score, 9), c.chunk.chunk_id))
        for i, cand in enumerate(tail, start=1):
            cand.score = -i / 1000  # not judged: below every judged candidate, in the fused order
        return head + tail

    def vocabulary_share(self, query: str) -> float:
        """IDF-weighted share of the question's words that occur somewhere in the library: a refusal
        points at the nearest clauses only for a question asked in the library's own words."""
        snap = self.snapshots.current()
        terms = _question_terms(one_line_query(query), snap)
        total = sum(t.weight for t in terms)
        return sum(t.weight for t in terms if not t.absent) / total if total else 0.0

    def search_with_signals(
        self,
        query: str,
        k: int = 5,
        mode: Mode = "hybrid",
        rerank: bool = True,
        doc_ids: list[str] | None = None,
        status: str | None = None,
        expand_from: str | None = None,
    ) -> tuple[list[Hit], RelevanceSignals]:
        """Hits, plus the signals the answer layer uses to decide whether anything is relevant enough
        (computed only here: a plain search does not pay for the sentence vectors)."""
        r = self._ranking(query, mode, rerank, doc_ids, status, expand_from=expand_from)
        if not r.query:
            return [], RelevanceSignals()
        terms = _question_terms(r.query, r.snap)
        top3 = [h.chunk for h in r.hits[:3]]
        sentences = [s.text for c in top3 for s in split_sentences(c.text, min_chars=6)]
        top3_keys = [key for c in top3 for key in r.snap.match_keys.get(c.chunk_id, ())]
        signals = RelevanceSignals(
            top_score=r.top_score,
            max_dense=max((c.dense or 0.0 for c in r.candidates), default=0.0),
            top3_idf_coverage=_coverage(terms, top3_keys),
            oov_share=sum(t.weight for t in terms if t.absent) / (sum(t.weight for t in terms) or 1.0),
            best_sentence_coverage=max((_coverage(terms, [match_key(s)]) for s in sentences), default=0.0),
            best_sentence_similarity=self._best_similarity(r.query, sentences),
            cited_article=r.cited_article,
        )
        return r.hits[:k], signals

    def _best_similarity(self, q: str, sentences: list[str]) -> float:
        """Cosine similarity of the question and the closest sentence of the top hits: a whole
        chunk's vector blurs a clause that answers exactly."""
        if not sentences:
            return 0.0
        return float(
            (self.vectors.documents([sentence_probe(s) for s in sentences]) @ self.vectors.query(q)).max()
        )

    def _referenced_articles(
        self, q: str, snap: Snapshot, doc_ids: list[str] | None, status: str | None
    ) -> list[Chunk]:
        """Chunks of the articles the question cites explicitly ("食品安全法第七十八条…")."""
        out: list[Chunk] = []
        for ref, doc_id in snap.articles.parse(q):
            if not doc_id or (doc_ids and doc_id not in doc_ids):
                continue
            if status and snap.documents[doc_id].status != status:
                continue
            out.extend(snap.articles.article(doc_id, ref.article))
        return out


@dataclass(frozen=True)
class _QuestionTerm:
    weight: float  # IDF in the library
    keys: tuple[str, ...]  # the word and its statutory equivalents, as match keys
    absent: bool  # occurs nowhere in the library


def _question_terms(query: str, snap: Snapshot) -> list[_QuestionTerm]:
    out = []
    for term in content_terms(query):
        key = match_key(term)
        if not key:
            continue
        legal = [match_key(t) for lay, words in lay_terms().items() if lay in term for t in words]
        weight = snap.idf(key)
        out.append(_QuestionTerm(weight, (key, *legal), weight >= snap.idf_absent))
    return out


def _coverage(terms: list[_QuestionTerm], texts: list[str]) -> float:
    """IDF-weighted share of the question's words (or their statutory equivalents) found in `texts`."""
    total = sum(t.weight for t in terms)
    covered = sum(t.weight for t in terms if any(k in text for k in t.keys for text in texts))
    return covered / total if total else 0.0


def _drop_near_duplicates(ranked: list[Candidate], snap: Snapshot) -> list[Candidate]:
    """The same passage from two files (e.g. a PDF and its text twin) is shown once, at its best rank."""
    seen: set[str] = set()
    out = []
    for cand in ranked:
        key = snap.match_keys[cand.chunk.chunk_id][0][:80]
        if key in seen:
            continue
        seen.add(key)
        out.append(cand)
    return out


class AssistantRetriever(BaseRetriever):
    """LangChain retriever over the hybrid searcher; document metadata carry every chunk field."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    searcher: Any
    k: int = 5
    mode: str = "hybrid"
    rerank: bool = True
    doc_ids: list[str] | None = None
    status: str | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        hits = self.searcher.search(
            query, k=self.k, mode=self.mode, rerank=self.rerank, doc_ids=self.doc_ids, status=self.status
        )
        return [hit_to_document(h) for h in hits]


def hit_to_document(hit: Hit) -> Document:
    return Document(
        page_content=hit.chunk.text,
        metadata={**hit.chunk.to_metadata(), "chunk_id": hit.chunk.chunk_id, "score": hit.score},
    )
