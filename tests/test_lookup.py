"""Clause-reference parsing and look-up, on a small synthetic article index (no model needed)."""

from __future__ import annotations

import pytest

from assistant.lookup import ArticleIndex, clause_span, join_parts
from assistant.numerals import int_to_chinese
from assistant.types import Chunk, DocumentMeta

FSL = "中华人民共和国食品安全法"
REG = "中华人民共和国食品安全法实施条例"
AD = "中华人民共和国广告法"

AD18 = (
    "第十八条 保健食品广告不得含有下列内容：\n（一）表示功效、安全性的断言或者保证；\n（二）涉及疾病预防、治疗功能；\n"
    "（三）声称或者暗示广告商品为保障健康所必需；\n（四）与药品、其他保健食品进行比较；\n（五）利用广告代言人作推荐、证明；\n"
    "（六）法律、行政法规规定禁止的其他内容。\n保健食品广告应当显著标明“本品不能代替药物”。"
)


def _meta(doc_id: str, title: str, status: str = "有效") -> DocumentMeta:
    return DocumentMeta(doc_id=doc_id, title=title, source_path=f"/x/{doc_id}", content_hash=doc_id, file_type="pdf", status=status)


def _chunk(doc_id: str, title: str, n: int, text: str | None = None, part: int = 0, start: int | None = None) -> Chunk:
    body = text or f"第{int_to_chinese(n)}条 {title}第{n}条的正文。"
    s = start if start is not None else n * 1000
    return Chunk(doc_id, title, f"第{int_to_chinese(n)}条", "", 1, 1, s, s + len(body), body, part)


@pytest.fixture(scope="module")
def index() -> ArticleIndex:
    chunks = [_chunk("fsl", FSL, n) for n in range(1, 155)]
    chunks += [_chunk("reg", REG, n) for n in range(1, 87)]
    chunks += [_chunk("ad", AD, n) for n in range(1, 75) if n != 18]
    chunks.append(_chunk("ad", AD, 18, AD18))
    docs = {"fsl": _meta("fsl", FSL), "reg": _meta("reg", REG), "ad": _meta("ad", AD)}
    return ArticleIndex(chunks, docs)


@pytest.mark.parametrize(
    ("reference", "doc_id", "article"),
    [
        ("食品安全法第七十八条", "fsl", "第七十八条"),
        ("《广告法》第十八条", "ad", "第十八条"),
        ("食品安全法实施条例第38条", "reg", "第三十八条"),
        ("食品安全法 第 七十六 条", "fsl", "第七十六条"),
        ("中华人民共和国食品安全法第七十九条", "fsl", "第七十九条"),
        ("广告法第18条第1款第4项", "ad", "第十八条"),
        ("食安法第７８条", "fsl", "第七十八条"),
        ("实施条例第三十八条", "reg", "第三十八条"),
        ("请问食品安全法第一百零五条怎么规定的？", "fsl", "第一百零五条"),
        ("食品安全法第一百一十条", "fsl", "第一百一十条"),
        ("食品安全法第十条", "fsl", "第十条"),
        ("食品安全法第一百五十四条", "fsl", "第一百五十四条"),
    ],
)
def test_references_resolve(index: ArticleIndex, reference: str, doc_id: str, article: str) -> None:
    result = index.lookup(reference)
    assert result.found, result.message
    assert (result.doc_id, result.article) == (doc_id, article)
    assert result.text.startswith(article)


def test_paragraph_and_item_are_highlighted(index: ArticleIndex) -> None:
    result = index.lookup("广告法第18条第1款第4项")
    assert result.highlight is not None
    s, e = result.highlight
    assert result.text[s:e] == "（四）与药品、其他保健食品进行比较；"
    second = index.lookup("广告法第十八条第二款")
    assert second.highlight is not None
    assert second.text[second.highlight[0] : second.highlight[1]] == "保健食品广告应当显著标明“本品不能代替药物”。"


def test_missing_article_is_not_found_with_nearest_suggestions(index: ArticleIndex) -> None:
    result = index.lookup("食品安全法第二百条")
    assert not result.found and not result.text
    assert result.suggestions[-1] == f"{FSL}第一百五十四条"
    assert "第二百条" in result.message


def test_unknown_law_is_not_found(index: ArticleIndex) -> None:
    result = index.lookup("化妆品监督管理条例第十条")
    assert not result.found and not result.text
    assert "化妆品监督管理条例" in result.message


def test_reference_without_law_name_asks_for_it(index: ArticleIndex) -> None:
    result = index.lookup("第七十八条")
    assert not result.found
    assert f"{FSL}第七十八条" in result.suggestions


def test_no_reference_at_all(index: ArticleIndex) -> None:
    assert not index.lookup("保健食品怎么备案").found


def test_second_reference_inherits_the_law(index: ArticleIndex) -> None:
    refs = index.parse("食品安全法第七十八条和第七十九条")
    assert [(r.article, d) for r, d in refs] == [(78, "fsl"), (79, "fsl")]


def test_longest_alias_wins(index: ArticleIndex) -> None:
    (ref, doc_id), = index.parse("食品安全法实施条例第三十八条")
    assert doc_id == "reg" and ref.law == REG


def test_in_force_version_wins_for_a_shared_title() -> None:
    old = _meta("old", AD, status="已修订")
    new = _meta("new", AD)
    chunks = [_chunk("old", AD, 1, "第一条 旧文本。"), _chunk("new", AD, 1, "第一条 新文本。")]
    index = ArticleIndex(chunks, {"old": old, "new": new})
    assert index.lookup("广告法第一条").doc_id == "new"


def test_split_article_is_joined_from_its_parts() -> None:
    a = Chunk("d", "t", "第五条", "", 3, 3, 100, 110, "第五条 第一款全文。", 1)
    b = Chunk("d", "t", "第五条", "", 3, 4, 111, 120, "第二款全文。", 2)
    c = Chunk("d", "t", "第五条", "", 4, 4, 120, 126, "句子续。", 3)
    assert join_parts([a, b, c]) == "第五条 第一款全文。\n第二款全文。句子续。"


def test_clause_span_out_of_range_is_none() -> None:
    assert clause_span(AD18, 5, None) is None
    assert clause_span(AD18, 1, 9) is None
