"""Cross-references: the parser on real sentences of the bundled laws, and the graph built from them."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

from assistant.answering.penalty import _restating_items, with_penalties
from assistant.citegraph import CitationGraph
from assistant.crossrefs import parse_references
from assistant.engine import Assistant
from assistant.lookup import ArticleIndex
from assistant.types import Chunk, DocumentMeta, Hit
from tests.conftest import CORPUS

# 广告法第五十八条 (abridged to its lead and two items); its penalty words are in the lead.
AD_LAW_58 = (
    "第五十八条　有下列行为之一的，由市场监督管理部门责令停止发布广告，责令广告主在相应范围内消除影响，"
    "处广告费用一倍以上三倍以下的罚款：\n"
    "（三）违反本法第十八条规定发布保健食品广告的；\n"
    "（十）违反本法第三十八条第二款规定，利用不满十周岁的未成年人作为广告代言人的；\n"
    "医疗机构有前款规定违法行为，情节严重的，除由市场监督管理部门依照本法处罚外，卫生行政部门可以吊销诊疗科目。"
)


def _refs(text: str, own: int | None = None) -> list[tuple[str, int, int | None, int | None, str, bool]]:
    return [
        (r.law, r.article, r.paragraph, r.item, r.kind, r.same_article) for r in parse_references(text, own)
    ]


def test_penalty_items_name_the_duty_they_punish() -> None:
    refs = _refs(AD_LAW_58, 58)
    assert ("", 18, None, None, "penalty", False) in refs
    assert ("", 38, 2, None, "penalty", False) in refs
    assert ("", 58, 1, None, "refers", True) in refs  # 前款: inside the article itself
    assert all(r[1] != 58 or r[5] for r in refs), "the article's own heading is not a reference"


def test_other_law_items_and_item_ranges() -> None:
    # 食品安全法实施条例第七十条
    text = (
        "第七十条　除食品安全法第一百二十五条第一款、第一百二十六条规定的情形外，食品生产经营者的生产经营行为"
        "不符合食品安全法第三十三条第一款第五项、第七项至第十项的规定，或者不符合有关食品生产经营过程要求的"
        "食品安全国家标准的，依照食品安全法第一百二十六条第一款、本条例第七十五条的规定给予处罚。"
    )
    refs = _refs(text, 70)
    assert [r for r in refs if r[1] == 33] == [
        ("食品安全法", 33, 1, item, "penalty", False) for item in (5, 7, 8, 9, 10)
    ]
    assert ("食品安全法", 125, 1, None, "refers", False) in refs  # 除…外: an exclusion
    assert ("食品安全法", 126, 1, None, "applies", False) in refs
    assert ("", 75, None, None, "applies", False) in refs  # 本条例 = this document


def test_quoted_law_names_lists_and_article_ranges() -> None:
    text = (
        "违反《中华人民共和国广告法》第十六条、第十七条规定的，依照本法第二十条至第二十二条的规定处以罚款。"
    )
    refs = _refs(text)
    assert ("中华人民共和国广告法", 16, None, None, "penalty", False) in refs
    assert ("中华人民共和国广告法", 17, None, None, "penalty", False) in refs
    assert [r[1] for r in refs if r[4] == "applies"] == [20, 21, 22]


def test_previous_paragraphs_and_paragraph_lists() -> None:
    text = "第九条　第一款。\n第二款。\n违反前两款规定的，处一万元罚款；有本条第一款、第二款规定情形的，从重处罚。"
    refs = _refs(text, 9)
    assert {(r[2], r[5]) for r in refs} == {(1, True), (2, True)}


def test_a_duty_article_without_penalty_words_only_refers() -> None:
    refs = _refs(
        "第七十九条　保健食品广告除应当符合本法第七十三条第一款的规定外，还应当声明“本品不能代替药物”。", 79
    )
    assert [r[4] for r in refs] == ["refers"]


@pytest.fixture(scope="module")
def graph(corpus_chunks: tuple[list[Chunk], dict[str, DocumentMeta]]) -> CitationGraph:
    """The bundled corpus's graph from the ingest pipeline's stages before embedding."""
    chunks, documents = corpus_chunks
    return CitationGraph(chunks, ArticleIndex(chunks, documents))


def _doc(graph: CitationGraph, title: str) -> str:
    return next(e.source_doc for e in graph.edges if e.source_title == title)


def test_ad_law_article_18_is_punished_by_article_58(graph: CitationGraph) -> None:
    ad_law = _doc(graph, "中华人民共和国广告法")
    cited_by = graph.cited_by(ad_law, 18)
    assert cited_by[0].kind == "penalty"
    assert {e.source_article for e in graph.penalties_for(ad_law, 18)} >= {"第五十八条", "第六十一条"}
    assert "违反本法第十八条规定发布保健食品广告" in next(
        e.sentence for e in cited_by if e.source_article == "第五十八条"
    )


def test_references_across_documents_resolve_through_law_aliases(graph: CitationGraph) -> None:
    regulations = _doc(graph, "中华人民共和国食品安全法实施条例")
    cites = graph.cites(regulations, 70)
    assert {(e.target_title, e.target_article, e.kind) for e in cites} >= {
        ("中华人民共和国食品安全法", 33, "penalty"),
        ("中华人民共和国食品安全法", 126, "applies"),
        ("中华人民共和国食品安全法实施条例", 75, "applies"),
    }
    unresolved = {e.law for e in graph.edges if not e.resolved}
    assert {"刑法", "药品管理法"} <= unresolved, "laws that are not indexed stay in the graph as written"


@pytest.mark.slow
def test_graph_follows_the_index_through_reingest_and_removal(
    make_assistant: Callable[..., Assistant],
) -> None:
    assistant = make_assistant()
    assistant.ingest([CORPUS / "food-safety-law-implementing-regulations-2019.pdf"])
    result = assistant.lookup("实施条例第七十条")
    unresolved = {c["title"]: c["resolved"] for c in result.to_json()["cites"]}
    assert unresolved["食品安全法"] is False  # the law it cites is not indexed yet

    assistant.ingest([CORPUS / "food-safety-law-2025.pdf", CORPUS / "advertising-law-2021.pdf"])
    cites = assistant.lookup("实施条例第七十条").to_json()["cites"]
    assert {"title": "中华人民共和国食品安全法", "article": "第三十三条", "kind": "penalty"}.items() <= next(
        c for c in cites if c["article"] == "第三十三条"
    ).items()
    cited_by = assistant.lookup("广告法第十八条").to_json()["cited_by"]
    assert cited_by[0]["kind"] == "penalty" and "第五十八条" in {c["article"] for c in cited_by}

    assistant.ingest([CORPUS / "advertising-law-2021.pdf"])  # unchanged: the graph is unchanged
    assert assistant.lookup("广告法第十八条").to_json()["cited_by"] == cited_by

    regulations = next(r.meta.doc_id for r in assistant.documents() if "实施条例" in r.meta.title)
    assistant.delete_document(regulations)
    law = assistant.lookup("食品安全法第三十三条").to_json()
    assert all("实施条例" not in c["title"] for c in law["cited_by"])


def test_a_consequence_question_gets_the_penalty_article_first(graph: CitationGraph) -> None:
    ad_law = _doc(graph, "中华人民共和国广告法")
    articles = graph.articles
    snap = SimpleNamespace(articles=articles, citations=graph)
    duty = [Hit(c, 1.0, cited=True) for c in articles.article(ad_law, 18)]
    routed = with_penalties(snap, duty, [])  # type: ignore[arg-type]
    assert routed[0].chunk.article == "第五十八条" and routed[0].cited
    assert "违反本法第十八条规定发布保健食品广告的" in " ".join(
        h.chunk.text for h in routed if h.chunk.article == "第五十八条"
    )
    # The same duty cited earlier in the conversation; the retrieved article has no penalty edge.
    unrelated = [Hit(c, 0.5) for c in articles.article(ad_law, 2)]
    assert with_penalties(snap, unrelated, [(ad_law, 18)])[0].chunk.article == "第五十八条"  # type: ignore[arg-type]
    assert with_penalties(snap, unrelated, []) == unrelated  # type: ignore[arg-type]


def test_a_penalty_article_that_restates_the_duty_offers_the_item_restating_it(graph: CitationGraph) -> None:
    food_law = _doc(graph, "中华人民共和国食品安全法")
    articles = graph.articles
    snap = SimpleNamespace(articles=articles, citations=graph)
    # 第一百二十六条 punishes breaking 第四十五条 (health certificates) by describing the act, not by number.
    assert not graph.penalties_for(food_law, 45)
    found = [c for n in (144, 126) for c in articles.article(food_law, n)]
    candidates = _restating_items(snap, found, (food_law, 45))  # type: ignore[arg-type]
    chunks, item = next((chunks, item) for chunks, item in candidates if chunks[0].article == "第一百二十六条")
    assert "安排未取得健康证明" in item
    # The article's opening part comes along: it holds the fine.
    assert "拒不改正的，处五千元以上五万元以下罚款" in " ".join(c.text for c in chunks)


@pytest.mark.slow
def test_an_index_from_before_cross_references_gains_them_without_reembedding(
    make_assistant: Callable[..., Assistant],
) -> None:
    assistant = make_assistant()
    ad_law = CORPUS / "advertising-law-2021.pdf"
    assistant.ingest([ad_law])
    store = assistant.store
    ids = sorted(store.committed_ids())
    # What an older chunker left: the same chunks without references, and no chunk format recorded.
    for chunk in store.all_chunks():
        store.collection.update(ids=[chunk.chunk_id], metadatas=[{"references": ""}])
    store.registry.set_info("chunk_format", "1")
    assistant.searcher.snapshots._current = None
    assert assistant.lookup("广告法第十八条").cited_by == []

    report = assistant.ingest([ad_law])
    assert report.unchanged == [str(ad_law)] and sorted(store.committed_ids()) == ids
    assert "第五十八条" in {c.source_article for c in assistant.lookup("广告法第十八条").cited_by}
