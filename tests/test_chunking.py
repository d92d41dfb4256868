"""The legal-structure chunker on the bundled corpus (PDFs read with the real loader and normalizer),
checked against what the Markdown twins of the law PDFs prove, plus synthetic edge cases."""

from __future__ import annotations

import re
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.chunking import PREAMBLE_ARTICLE, LegalChunker
from assistant.normalize import is_page_number_line, normalize_document
from assistant.settings import Settings
from assistant.types import Chunk, DocumentMeta, NormalizedDocument, PageText, RawDocument

from .conftest import CORPUS, MD_TWINS, doc, raw

MAX_CHARS = Settings().chunk_max_chars
MIN_CHARS = Settings().chunk_min_chars
LAW_STEMS = [
    "advertising-law-2021",
    "food-safety-law-2025",
    "food-safety-law-implementing-regulations-2019",
    "food-production-operation-supervision-inspection-measures-2021",
]
FOOD_SAFETY_LAW = "food-safety-law-2025.pdf"
SHANGHAI_PLAN = "shanghai-health-food-quality-plan-2022.pdf"
ALL_FILES = sorted(p.name for p in CORPUS.iterdir() if p.name != "MANIFEST.tsv")
RUNNING_HEADER = "法律法规文本（供学习参考）"


@cache
def chunks(name: str) -> list[Chunk]:
    return LegalChunker(MAX_CHARS, MIN_CHARS).chunk(doc(name))


def markdown_articles(stem: str) -> set[str]:
    text = (MD_TWINS / f"{stem}.md").read_text(encoding="utf-8")
    return set(re.findall(r"^(?:- \*\*)?(第[一二三四五六七八九十百零]+条)", text, re.M))


META = DocumentMeta(doc_id="t", title="t", source_path="/t", content_hash="0", file_type="txt")


def plain_doc(text: str) -> NormalizedDocument:
    return NormalizedDocument(meta=META, text=text, page_starts=[0], page_numbers=[1])


def check_invariants(d: NormalizedDocument, out: list[Chunk], pages: range) -> None:
    end = 0
    for c in out:
        assert c.text == d.text[c.char_start : c.char_end]
        assert c.char_start < c.char_end
        assert c.char_start >= end, "chunks are in order and do not overlap"
        end = c.char_end
        assert c.page_start in pages and c.page_end in pages
        assert c.page_start <= c.page_end
        assert c.doc_id == d.meta.doc_id


# --- laws in the corpus --------------------------------------------------------------------------


@pytest.mark.parametrize("stem", LAW_STEMS)
def test_articles_match_markdown_twin(stem: str) -> None:
    articles = {c.article for c in chunks(f"{stem}.pdf")} - {PREAMBLE_ARTICLE}
    expected = markdown_articles(stem)
    assert len(expected) > 50
    assert articles == expected


@pytest.mark.parametrize("stem", LAW_STEMS)
def test_law_chunks_are_clean_and_paged(stem: str) -> None:
    name = f"{stem}.pdf"
    out = chunks(name)
    page_count = raw(name).meta.page_count
    assert page_count == len(raw(name).pages) > 1
    assert all(c.article for c in out), "every chunk of a law has an article id"
    assert [c.article for c in out].count(PREAMBLE_ARTICLE) == 1
    for c in out:
        assert 1 <= c.page_start <= c.page_end <= page_count
        assert RUNNING_HEADER not in c.text
        assert not any(is_page_number_line(line) for line in c.text.split("\n"))
    crossing = [c for c in out if c.page_start != c.page_end]
    assert crossing, "some article crosses a page break"
    for c in crossing:
        assert c.text.startswith(c.article if c.part <= 1 else "")
        assert not any(line.strip() == RUNNING_HEADER for line in c.text.split("\n"))
        assert not re.search(r"[—-]\s*\d+\s*[—-]", c.text)


def test_article_crossing_a_page_break_in_the_pdf() -> None:
    """第五十九条 of the Food Safety Law starts on PDF page 13 and ends on page 14, mid-word (`联|系方式`)."""
    (c,) = [c for c in chunks(FOOD_SAFETY_LAW) if c.article == "第五十九条"]
    assert (c.page_start, c.page_end) == (13, 14)
    assert "检验合格证号、销售日期以及购货者名称、地址、联系方式等相关内容，并保存相关凭证。" in c.text
    assert c.text.endswith("记录和凭证保存期限应当符合本法第五十条第二款的规定。")
    assert "\n" not in c.text


@pytest.mark.parametrize("stem", LAW_STEMS)
def test_article_parts_are_numbered(stem: str) -> None:
    """An article is one chunk with part 0, or parts 1..n (n >= 2) in order, each a whole line run."""
    name = f"{stem}.pdf"
    text = doc(name).text
    by_article: dict[str, list[Chunk]] = {}
    for c in chunks(name):
        by_article.setdefault(c.article, []).append(c)
    for article, parts in by_article.items():
        assert len({c.heading_path for c in parts}) == 1
        if len(parts) == 1:
            assert parts[0].part == 0, f"{article} is whole but numbered as part {parts[0].part}"
            continue
        assert [c.part for c in parts] == list(range(1, len(parts) + 1)), article
        assert parts[0].text.startswith(article)
        for c in parts:
            assert len(c.text) <= MAX_CHARS * 1.25
            assert c.char_start == 0 or text[c.char_start - 1] == "\n"
            assert c.char_end == len(text) or text[c.char_end] == "\n"
        assert "\n".join(c.text for c in parts) == text[parts[0].char_start : parts[-1].char_end]


def test_food_safety_law_article_78() -> None:
    (c,) = [c for c in chunks(FOOD_SAFETY_LAW) if c.article == "第七十八条"]
    assert c.heading_path == "第四章 食品生产经营 > 第四节 特殊食品"
    assert c.part == 0
    assert c.text.startswith("第七十八条 保健食品的标签、说明书不得涉及疾病预防、治疗功能")
    assert c.text.endswith("保健食品的功能和成分应当与标签、说明书相一致。")
    assert c.page_start == c.page_end == 17


def test_heading_paths_follow_chapters_and_sections() -> None:
    paths = {c.article: c.heading_path for c in chunks(FOOD_SAFETY_LAW)}
    assert paths["第一条"] == "第一章 总则"
    assert paths["第三十三条"] == "第四章 食品生产经营 > 第一节 一般规定"
    assert paths["第八十七条"] == "第五章 食品检验"  # the 节 of chapter 4 does not leak into chapter 5
    assert paths["第一百五十四条"] == "第十章 附则"


def test_preamble_chunk() -> None:
    first = chunks(FOOD_SAFETY_LAW)[0]
    assert first.article == PREAMBLE_ARTICLE
    assert first.text.startswith("中华人民共和国食品安全法")
    assert "2025年9月12日" in first.text
    assert "第一章" not in first.text
    assert "目录" not in first.text
    assert first.page_start == first.page_end == 1
    for stem in LAW_STEMS:
        preamble = chunks(f"{stem}.pdf")[0]
        assert preamble.article == PREAMBLE_ARTICLE
        assert "第一章" not in preamble.text and "第一条" not in preamble.text


def test_table_of_contents_dropped() -> None:
    text = "\n".join(c.text for c in chunks(FOOD_SAFETY_LAW))
    assert "第二章食品安全风险监测和评估第三章" in doc(FOOD_SAFETY_LAW).text
    assert "第二章食品安全风险监测和评估第三章" not in text


# --- policy document -----------------------------------------------------------------------------


def test_shanghai_plan_heading_paths() -> None:
    out = chunks(SHANGHAI_PLAN)
    assert not any(c.article for c in out)
    item1 = next(c for c in out if "规范保健食品生产经营许可备案。一是" in c.text)
    assert "二、主要措施 > （一）优化行政服务，规范保健食品市场准入" in item1.heading_path
    assert item1.heading_path.endswith("> 1.规范保健食品生产经营许可备案")
    item2 = next(c for c in out if c.text.startswith("2.服务保健食品产品注册备案"))
    assert item2.heading_path.startswith("二、主要措施 > （一）优化行政服务")
    guarantees = next(c for c in out if "（一）统一思想认识，强化工作协同" in c.text)
    assert guarantees.heading_path == "三、保障措施 > （一）统一思想认识，强化工作协同"
    for c in out:
        assert len(c.text) <= MAX_CHARS * 1.25
        assert 1 <= c.page_start <= c.page_end <= 6


def test_shanghai_plan_covers_all_text() -> None:
    d = doc(SHANGHAI_PLAN)
    out = chunks(SHANGHAI_PLAN)
    covered = "".join(d.text[c.char_start : c.char_end] for c in out)
    assert re.sub(r"\s", "", covered) == re.sub(r"\s", "", d.text)


# --- synthetic cases ----------------------------------------------------------------------------

_ITEMS = [
    "（一）用非食品原料生产的食品或者添加食品添加剂以外的化学物质和其他可能危害人体健康物质的食品；",
    "（二）致病性微生物，农药残留、兽药残留、生物毒素、重金属等污染物质以及其他危害人体健康的物质含量超过食品安全标准限量的食品；",
    "（三）用超过保质期的食品原料、食品添加剂生产的食品、食品添加剂；",
    "（四）超范围、超限量使用食品添加剂的食品；",
    "（五）营养成分不符合食品安全标准的专供婴幼儿和其他特定人群的主辅食品；",
    "（六）腐败变质、油脂酸败、霉变生虫、污秽不洁、混有异物、掺假掺杂或者感官性状异常的食品、食品添加剂；",
    "（七）病死、毒死或者死因不明的禽、畜、兽、水产动物肉类及其制品；",
    "（八）未按规定进行检疫或者检疫不合格的肉类，或者未经检验或者检验不合格的肉类制品。",
]
_PARAGRAPHS = [
    "第三十四条 禁止生产经营下列食品、食品添加剂、食品相关产品：",
    "食品生产经营者应当依照法律、法规和食品安全标准从事生产经营活动，保证食品安全，诚信自律，对社会和公众负责，接受社会监督，承担社会责任。",
    "县级以上地方人民政府依照本法和国务院的规定，确定本级食品安全监督管理、卫生行政部门和其他有关部门的职责。有关部门在各自职责范围内负责本行政区域的食品安全监督管理工作。",
]


def test_long_article_split_at_lines() -> None:
    article = "\n".join([*_PARAGRAPHS, *_ITEMS])
    text = f"第三十三条 食品生产经营应当符合食品安全标准。\n{article}\n第三十五条 国家对食品生产经营实行许可制度。"
    max_chars = 300
    assert len(article) > max_chars
    d = plain_doc(text)
    out = LegalChunker(max_chars=max_chars, min_chars=80).chunk(d)
    check_invariants(d, out, range(1, 2))
    parts = [c for c in out if c.article == "第三十四条"]
    assert len(parts) >= 2
    assert [c.part for c in parts] == list(range(1, len(parts) + 1))
    assert {c.article for c in out} == {"第三十三条", "第三十四条", "第三十五条"}
    for c in parts:
        assert len(c.text) <= max_chars * 1.25
        assert text[c.char_start - 1] == "\n" and text[c.char_end] == "\n", "split at line boundaries"
    assert "\n".join(c.text for c in parts) == article


def test_overlong_paragraph_split_at_sentences() -> None:
    sentence = "县级以上地方人民政府依照本法和国务院的规定，确定本级食品安全监督管理、卫生行政部门和其他有关部门的职责。"
    paragraph = sentence * 8
    text = f"第一条 为了保证食品安全，制定本法。\n第二条 {paragraph}\n第三条 本法自公布之日起施行。"
    d = plain_doc(text)
    out = LegalChunker(max_chars=200, min_chars=40).chunk(d)
    check_invariants(d, out, range(1, 2))
    parts = [c for c in out if c.article == "第二条"]
    assert [c.part for c in parts] == list(range(1, len(parts) + 1))
    assert len(parts) >= 3
    for c in parts:
        assert len(c.text) <= 250
        assert c.text.endswith("。")
    assert "".join(c.text for c in parts) == f"第二条 {paragraph}"


def test_cross_reference_at_line_start_is_not_an_article() -> None:
    text = (
        "第六条 县级以上地方人民政府对本行政区域的食品安全监督管理工作负责。\n"
        "第七条 食品安全风险监测结果表明存在食品安全隐患的，应当及时通知。\n"
        "接到通知的食品生产经营者应当立即进行自查，发现食品不符合食品安全标准的，应当依照食品安全法\n"
        "第六十三条的规定停止生产、经营，实施食品召回，并报告相关情况。\n"
        "第六十三条规定的其他情形，依照本条例处理。\n"
        "第八条 国务院卫生行政部门发现需要对农药进行安全性评估的，应当提出安全性评估建议。"
    )
    d = plain_doc(text)
    out = LegalChunker().chunk(d)
    check_invariants(d, out, range(1, 2))
    assert [c.article for c in out] == ["第六条", "第七条", "第八条"]
    assert "第六十三条的规定停止生产" in out[1].text
    assert out[1].text.endswith("依照本条例处理。")


def test_cross_reference_on_real_text() -> None:
    """Real: 第十一条 of the implementing regulations cites `食品安全法第二十九条` across a wrap."""
    arts = [c.article for c in chunks("food-safety-law-implementing-regulations-2019.pdf")]
    assert "第二十九条" in arts  # the regulation's own article 29 …
    assert arts.count("第二十九条") == 1  # … and not the cited one
    (c,) = [c for c in chunks("food-safety-law-implementing-regulations-2019.pdf") if c.article == "第十一条"]
    assert "依照食品安全法第二十九条的规定制定食品安全地方标准" in c.text


def test_arabic_numbered_articles_get_chinese_ids() -> None:
    text = (
        "第1条 为了规范广告活动，制定本办法。\n第2条 本办法适用于保健食品广告。\n第3条 广告应当真实、合法。"
    )
    d = plain_doc(text)
    out = LegalChunker().chunk(d)
    check_invariants(d, out, range(1, 2))
    assert [c.article for c in out] == ["第一条", "第二条", "第三条"]
    # Full-width digits from a Word or web source go through NFKC first.
    raw_doc = RawDocument(META, [PageText(1, "第１条　总则。\n第２条　定义。\n第１１０条　附则。")])
    assert [c.article for c in LegalChunker().chunk(normalize_document(raw_doc))] == [
        "第一条",
        "第二条",
        "第一百一十条",
    ]


def test_text_without_articles_is_a_policy_document() -> None:
    d = plain_doc(
        "一、工作目标\n"
        + "坚持目标导向，进一步促进保健食品产业高质量发展。" * 5
        + "\n二、主要措施\n（一）优化行政服务\n"
        + "规范保健食品市场准入。" * 10
    )
    out = LegalChunker(max_chars=200, min_chars=20).chunk(d)
    check_invariants(d, out, range(1, 2))
    assert all(c.article == "" for c in out)
    assert out[0].heading_path == "一、工作目标"
    assert out[-1].heading_path == "二、主要措施 > （一）优化行政服务"


# --- every corpus file ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FILES)
def test_chunk_invariants_on_corpus(name: str) -> None:
    d = doc(name)
    out = chunks(name)
    assert out
    pages = range(1, max(raw(name).meta.page_count, 1) + 1)
    check_invariants(d, out, pages)
    for c in out:
        assert c.page_start == d.page_at(c.char_start)
        assert c.page_end == d.page_at(c.char_end - 1)
        assert c.text == c.text.strip()
        if c.article != PREAMBLE_ARTICLE:
            assert len(c.text) <= MAX_CHARS * 1.25, (c.article, c.heading_path, len(c.text))
    assert len({c.chunk_id for c in out}) == len(out)


# --- fuzz -----------------------------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "第一条 ",
        "第二条",
        "第三条 ",
        "第2条 ",
        "第十条之一",
        "第六十三条的规定",
        "第一章 总则",
        "第一节 一般规定",
        "目录",
        "第一章第二章",
        "（一）",
        "一、",
        "1.",
        "\n",
        "\n\n",
        " ",
        "。",
        "，",
        "— 6 —",
        RUNNING_HEADER,
        "生產(chǎn)",
    ]
)
FUZZ_TEXT = st.lists(st.one_of(st.text(max_size=30), FRAGMENTS), max_size=40).map("".join)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(FUZZ_TEXT, min_size=1, max_size=5), st.integers(min_value=20, max_value=300))
def test_fuzz_chunk_normalized_pages(pages: list[str], max_chars: int) -> None:
    d = normalize_document(RawDocument(META, [PageText(i, t) for i, t in enumerate(pages, start=1)]))
    out = LegalChunker(max_chars=max_chars, min_chars=max_chars // 5).chunk(d)
    check_invariants(d, out, range(1, len(pages) + 1))
    for c in out:
        if c.article != PREAMBLE_ARTICLE:
            assert len(c.text) <= int(max_chars * 1.25)


@FUZZ
@given(FUZZ_TEXT, st.integers(min_value=20, max_value=300), st.lists(st.integers(0, 400), max_size=4))
def test_fuzz_chunk_raw_text(text: str, max_chars: int, breaks: list[int]) -> None:
    """The chunker on text that did not go through the normalizer (spaces, blank lines, any page map)."""
    starts = sorted({0, *(b for b in breaks if b < len(text))})
    d = NormalizedDocument(META, text, starts, list(range(1, len(starts) + 1)))
    out = LegalChunker(max_chars=max_chars, min_chars=max_chars // 5).chunk(d)
    check_invariants(d, out, range(1, len(starts) + 1))
