"""Hybrid retrieval on the real bundled index (slow: needs the model and the ingested corpus)."""

from __future__ import annotations

import pytest

from assistant.engine import Assistant

pytestmark = pytest.mark.slow

FSL = "中华人民共和国食品安全法"
AD = "中华人民共和国广告法"


@pytest.mark.parametrize(
    ("question", "title", "article"),
    [
        ("少儿频道上可以播保健品广告吗？", AD, "第四十条"),
        ("保健食品标签不得涉及什么内容", FSL, "第七十八条"),
        ("保健品广告里能不能请明星代言？", AD, "第十八条"),
        ("哪些保健食品要注册，哪些只需要备案？", FSL, "第七十六条"),
        ("买到不符合安全标准的食品，可以要求十倍赔偿吗？", FSL, "第一百四十八条"),
        ("食品生产企业发现产品有安全问题要怎么召回？", FSL, "第六十三条"),
    ],
)
def test_paraphrased_questions_find_their_article(corpus_assistant: Assistant, question: str, title: str, article: str) -> None:
    hits = corpus_assistant.search(question, k=5)
    assert any(h.chunk.title == title and h.chunk.article == article for h in hits), [
        (h.chunk.title, h.chunk.article) for h in hits
    ]


def test_clause_reference_in_question_comes_first(corpus_assistant: Assistant) -> None:
    hits = corpus_assistant.search("食品安全法第78条对标签有什么要求", k=5)
    assert (hits[0].chunk.title, hits[0].chunk.article) == (FSL, "第七十八条")
    result = corpus_assistant.lookup("食品安全法第七十八条")
    assert result.found and "本品不能代替药物" in result.text and result.page_start >= 1


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_modes_and_rerank_switch(corpus_assistant: Assistant, mode: str) -> None:
    for rerank in (True, False):
        hits = corpus_assistant.search("保健食品广告审查批准", k=5, mode=mode, rerank=rerank)  # type: ignore[arg-type]
        assert len(hits) == 5


def test_filters_by_document_and_status(corpus_assistant: Assistant) -> None:
    docs = {r.meta.title: r.meta for r in corpus_assistant.documents()}
    ad = docs[AD].doc_id
    hits = corpus_assistant.search("保健食品", k=10, doc_ids=[ad])
    assert hits and all(h.chunk.doc_id == ad for h in hits)
    expired = corpus_assistant.search("保健食品质量提升行动", k=10, status="已届满")
    assert expired and all(docs[h.chunk.title].status == "已届满" for h in expired)
    in_force = corpus_assistant.search("保健食品质量提升行动", k=10, status="有效")
    assert all(docs[h.chunk.title].status == "有效" for h in in_force)


def test_traditional_and_fullwidth_queries_are_normalized(corpus_assistant: Assistant) -> None:
    hits = corpus_assistant.search("保健食品的標籤、說明書不得涉及疾病預防、治療功能", k=3)
    assert any(h.chunk.article == "第七十八条" for h in hits)
    hits = corpus_assistant.search("食品安全法第７８条", k=1)
    assert hits[0].chunk.article == "第七十八条"


def test_langchain_retriever_returns_documents_with_chunk_metadata(corpus_assistant: Assistant) -> None:
    retriever = corpus_assistant.retriever(k=3)
    docs = retriever.invoke("保健食品广告应当标明什么")
    assert len(docs) == 3
    for doc in docs:
        for key in ("doc_id", "title", "article", "heading_path", "page_start", "page_end", "char_start", "chunk_id"):
            assert key in doc.metadata


def test_cross_encoder_plumbing(corpus_assistant: Assistant, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """No registry package ships a trained Chinese cross-encoder, so this builds a small one from the
    bundled m3e-small BERT (an untrained scoring head: it proves loading from a local folder, scoring
    and blending, not ranking quality)."""
    import torch
    from sentence_transformers import CrossEncoder

    from assistant.embeddings import resolve_model_path
    from assistant.retrieve import CrossEncoderReranker

    torch.manual_seed(0)
    folder = tmp_path / "cross-encoder"
    CrossEncoder(str(resolve_model_path("m3e-small")), num_labels=1, device="cpu").save(str(folder))
    settings = corpus_assistant.settings.model_copy(update={"cross_encoder_path": folder})
    with_ce = Assistant(settings, embeddings=corpus_assistant.embeddings)
    try:
        assert isinstance(with_ce.searcher.reranker, CrossEncoderReranker)
        hits = with_ce.search("保健食品广告不得含有哪些内容", k=5)
        assert len(hits) == 5
        assert with_ce.search("食品安全法第78条", k=1)[0].chunk.article == "第七十八条"
    finally:
        with_ce.close()
