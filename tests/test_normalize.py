"""The text normalizer, rule by rule, on text extracted from the bundled corpus files.

Short excerpts copied from the real files are used as literals where they make a rule readable; every
rule is also checked on the fully loaded documents (PDFs read with the real loader, so running
headers, `— N —` footers, ~38-character hard wraps and `2015 年 4 月 24 日` spacing are all real)."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.loaders import markdown_to_text, split_front_matter
from assistant.normalize import (
    is_page_number_line,
    match_key,
    normalize_chars,
    normalize_document,
    normalize_query,
    normalize_spaces,
    to_simplified,
)
from assistant.types import DocumentMeta, PageText, RawDocument

from .conftest import CORPUS, MD_TWINS, doc, raw

SEED = "003_abeacf468765d9d9.txt"
FOOD_SAFETY_LAW = "food-safety-law-2025.pdf"
REGULATIONS = "food-safety-law-implementing-regulations-2019.pdf"
SHANGHAI_PLAN = "shanghai-health-food-quality-plan-2022.pdf"
LAW_STEMS = [
    "advertising-law-2021",
    "food-safety-law-2025",
    "food-safety-law-implementing-regulations-2019",
    "food-production-operation-supervision-inspection-measures-2021",
]
PDFS = sorted(p.name for p in CORPUS.glob("*.pdf"))
ALL_FILES = sorted(p.name for p in CORPUS.iterdir() if p.name != "MANIFEST.tsv")
RUNNING_HEADER = "法律法规文本（供学习参考）"
TONES = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ"
# `(chǎn)`: a bracketed lowercase syllable with a tone-marked vowel.
PINYIN_ANNOTATION = re.compile(rf"\([a-zü]*[{TONES}][a-zü]*\)")
FOOTER = re.compile(r"^\s*[—–-]\s*\d+\s*[—–-]\s*$")
CJK = r"\u3400-\u4dbf\u4e00-\u9fff"


def lines(name: str) -> list[str]:
    return doc(name).text.split("\n")


def raw_text(name: str) -> str:
    return "\n".join(p.text for p in raw(name).pages)


def md_paragraphs(stem: str) -> list[str]:
    """Paragraphs of a law's Markdown twin, as match keys."""
    _, body = split_front_matter((MD_TWINS / f"{stem}.md").read_text(encoding="utf-8"))
    keys = (match_key(line) for line in markdown_to_text(body).split("\n"))
    return [k for k in keys if k]


META = DocumentMeta(doc_id="t", title="t", source_path="/t", content_hash="0", file_type="txt")


def raw_doc(*pages: str) -> RawDocument:
    return RawDocument(meta=META, pages=[PageText(i, t) for i, t in enumerate(pages, start=1)])


# --- NFKC, full-width punctuation, control characters ------------------------------------------


def test_nfkc_folds_fullwidth_digits_and_letters() -> None:
    assert normalize_chars("１２３ＡＢＣ") == "123ABC"
    assert normalize_chars("ｇｍｐ") == "gmp"
    # Real: the Shanghai plan writes rates with a full-width percent sign.
    excerpt = "全市保健食品生产经营企业自查实施率 100％；"
    assert excerpt in raw_text(SHANGHAI_PLAN).replace("\n", "")
    assert normalize_query(excerpt) == "全市保健食品生产经营企业自查实施率100%；"
    assert "％" not in doc(SHANGHAI_PLAN).text
    assert "自查实施率100%；保健食品信息追溯实施率100%；" in doc(SHANGHAI_PLAN).text


def test_nfkc_keeps_chinese_fullwidth_punctuation() -> None:
    assert normalize_chars("甲，乙；丙：丁！戊？（己）") == "甲，乙；丙：丁！戊？（己）"
    assert (
        normalize_query("（GMP）和危害分析和关键控制点体系（HACCP）")
        == "（GMP）和危害分析和关键控制点体系（HACCP）"
    )
    for name in [FOOD_SAFETY_LAW, SHANGHAI_PLAN]:
        for page in raw(name).pages:
            cleaned = normalize_chars(page.text)
            for ch in "，；：！？（）":
                assert cleaned.count(ch) == page.text.count(ch), (name, page.page, ch)
            for ascii_ch in ",;:!?()":
                assert cleaned.count(ascii_ch) == page.text.count(ascii_ch), (name, page.page, ascii_ch)
    assert "良好生产规范（GMP）和危害分析和关键控制点体系（HACCP）" in doc(SHANGHAI_PLAN).text


def test_ideographic_space() -> None:
    # Real article heading: `第七十八条　　保健食品…` keeps exactly one (ASCII) space.
    assert normalize_query("第七十八条　　保健食品的标签、说明书") == "第七十八条 保健食品的标签、说明书"
    assert normalize_query("　 　第四节 特殊食品") == "第四节 特殊食品"
    # Between CJK it is an extraction artifact; between Latin words it is a word space.
    assert (
        normalize_query("《上海市贯彻〈中共中央　国务院关于深化改革")
        == "《上海市贯彻〈中共中央国务院关于深化改革"
    )
    assert normalize_query("Good\u3000Manufacturing\u3000Practice") == "Good Manufacturing Practice"
    assert "\u3000" in raw_text(FOOD_SAFETY_LAW)
    for name in ALL_FILES:
        assert "\u3000" not in doc(name).text, name
    headings = re.findall(r"^第[一二三四五六七八九十百零]+条\s*", doc(FOOD_SAFETY_LAW).text, re.M)
    assert len(headings) == 154
    assert all(h.endswith("条 ") for h in headings)


def test_control_characters_removed_and_line_breaks_kept() -> None:
    text = "第一条\x00为了保证\u200b食品安全\ufeff，\x07制定本法。\r\n第二条\r在中华人民共和国境内"
    assert normalize_chars(text) == "第一条为了保证食品安全，制定本法。\n第二条\n在中华人民共和国境内"
    assert normalize_query("\t中华人民共和国\x0b食品安全法\u2028") == "中华人民共和国食品安全法"


# --- traditional → simplified, pinyin annotations ----------------------------------------------


def test_traditional_to_simplified_on_seed() -> None:
    source = raw_text(SEED)
    text = doc(SEED).text
    assert "保健食品備案產(chǎn)品管控細(xì)則" in source
    assert text.startswith("保健食品备案产品管控细则")
    for trad, simp in [
        ("備案", "备案"),
        ("產", "产"),
        ("說", "说"),
        ("檢驗", "检验"),
        ("證", "证"),
        ("國", "国"),
    ]:
        assert trad in source
        assert trad not in text
        assert simp in text
    assert normalize_chars("備案產品") == "备案产品"
    assert normalize_chars("標簽說明書規範") == "标签说明书规范"


def test_simplified_text_is_left_alone() -> None:
    """t2s must not touch text that is already simplified (显著, 干, 于 …)."""
    for stem in LAW_STEMS:
        body = markdown_to_text(split_front_matter((MD_TWINS / f"{stem}.md").read_text(encoding="utf-8"))[1])
        assert to_simplified(body) == body, stem


def test_pinyin_annotations_removed_from_seed() -> None:
    assert len(PINYIN_ANNOTATION.findall(raw_text(SEED))) > 500
    text = doc(SEED).text
    assert PINYIN_ANNOTATION.findall(text) == []
    assert normalize_chars("生產(chǎn)") == "生产"
    assert normalize_chars("版權(quán)說(shuō)明") == "版权说明"
    assert normalize_chars("質(zhì)量管理") == "质量管理"
    assert normalize_chars("專(zhuān)業(yè)") == "专业"


def test_brackets_that_are_not_pinyin_stay() -> None:
    text = doc(SEED).text
    for kept in ["(如维生素C、钙)", "(SC编号)", "(DRIs)", "(MOS)", "(ALT/AST)", "(A-Z)", "(1-9)"]:
        assert kept in text, kept
    assert normalize_chars("(GMP)") == "(GMP)"
    assert normalize_chars("生产許可(GMP)") == "生产许可(GMP)"
    assert normalize_chars("(ma)") == "(ma)"  # no tone mark: not an annotation


# --- web boilerplate ---------------------------------------------------------------------------


def test_boilerplate_removed_from_seed() -> None:
    source = raw_text(SEED)
    text = doc(SEED).text
    for junk in [
        "版權(quán)說(shuō)明",
        "溫馨提示",
        "本站",
        "人人文庫(kù)",
        "最新文檔",
        "提交評(píng)論",
        "0/150",
    ]:
        assert junk in source, junk
    for junk in ["版权说明", "温馨提示", "本站", "人人文库", "最新文档", "提交评论", "0/150", "文档简介"]:
        assert junk not in text, junk
    # Items of the 最新文档 list and of the 温馨提示 list.
    for item in ["滁州市市直单位招聘65人", "JJG 1211-2025", "OFFICE2007", "WinRAR", "侵权或不适当内容"]:
        assert item not in text, item
    assert not any(line in {"评论", "0/150", "提交评论"} for line in text.split("\n"))
    # The real content stays, from the first to the last sentence.
    assert "备案流程通常20个工作日内完成" in text
    assert text.startswith("保健食品备案产品管控细则汇报人")
    assert text.endswith("触发系统自动预警并冻结可疑账户。")


def test_boilerplate_blocks_on_excerpt() -> None:
    excerpt = (
        "版權(quán)說(shuō)明:本文檔由用戶提供并上傳,收益歸屬內(nèi)容提供方,若內(nèi)容存在侵權(quán),請(qǐng)進(jìn)行舉報(bào)或認(rèn)領(lǐng)\n"
        "文檔簡(jiǎn)介\n"
        "時(shí)效性備案流程通常20個(gè)工作日內(nèi)完成。\n"
        "溫馨提示\n"
        "- 1. 本站所有資源如無(wú)特殊說(shuō)明,都需要本地電腦安裝OFFICE2007和PDF閱讀器。\n"
        "- 5. 人人文庫(kù)網(wǎng)僅提供信息存儲(chǔ)空間。\n"
        "最新文檔\n"
        "- JJG 1211-2025 自動(dòng)氣象站風(fēng)向傳感器檢定規(guī)程\n"
        "評(píng)論\n"
        "0/150\n"
        "提交評(píng)論"
    )
    assert normalize_document(raw_doc(excerpt)).text == "时效性备案流程通常20个工作日内完成。"


def test_list_after_boilerplate_block_only() -> None:
    """A list that is not under a boilerplate heading is content."""
    text = "备案材料\n- 1. 产品配方\n- 2. 生产工艺"
    assert normalize_document(raw_doc(text)).text == text


# --- running headers, footers, page numbers ---------------------------------------------------


@pytest.mark.parametrize(
    "line", ["— 6 —", "- 12 -", "第 3 页", "第3页 共36页", "3/36", "— 36 —", "Page 3 of 10", " 7 "]
)
def test_is_page_number_line(line: str) -> None:
    assert is_page_number_line(line)


@pytest.mark.parametrize(
    "line", ["第三条", "2025年", "第七十八条 保健食品", "（一）", "1.规范保健食品", "2022年9月16日"]
)
def test_is_not_page_number_line(line: str) -> None:
    assert not is_page_number_line(line)


@pytest.mark.parametrize("name", PDFS)
def test_running_header_and_footer_removed(name: str) -> None:
    pages = raw(name).pages
    footers = [ln for p in pages for ln in p.text.split("\n") if FOOTER.match(ln)]
    assert len(footers) >= len(pages) - 1, "the real layout has a `— N —` footer on each page"
    out = lines(name)
    assert not any(ln == RUNNING_HEADER for ln in out)
    assert not any(FOOTER.match(ln) or is_page_number_line(ln) for ln in out)
    assert RUNNING_HEADER not in doc(name).text
    if name != SHANGHAI_PLAN:
        headers = sum(p.text.split("\n")[0].strip() == RUNNING_HEADER for p in pages)
        assert headers == len(pages)


def test_running_header_needs_most_pages() -> None:
    """A line on top of every page is a running header; one on two pages out of six is content."""
    pages = [f"内部资料\n第{c}章 总则\n本章正文{c}。\n— {n} —" for n, c in enumerate("一二三四五六", 1)]
    pages[0] = pages[0].replace("内部资料\n", "内部资料\n注：以下为正文\n")
    pages[1] = pages[1].replace("内部资料\n", "内部资料\n注：以下为正文\n")
    text = normalize_document(raw_doc(*pages)).text
    assert "内部资料" not in text
    assert text.count("注：以下为正文") == 2
    assert text.startswith("注：以下为正文\n第一章 总则\n本章正文一。")
    assert "— " not in text


# --- hard line wraps ---------------------------------------------------------------------------


def test_article_78_is_one_line() -> None:
    text = doc(FOOD_SAFETY_LAW).text
    start = text.index("第七十八条")
    end = text.index("本品不能代替药物”。", start) + len("本品不能代替药物”。")
    assert "\n" not in text[start:end]
    assert text[start:end].startswith("第七十八条 保健食品的标签、说明书不得涉及疾病预防、治疗功能")
    # The raw page has it over four wrapped lines.
    page = next(p for p in raw(FOOD_SAFETY_LAW).pages if "第七十八条" in p.text)
    raw_lines = page.text[page.text.index("第七十八条") :].split("\n")
    assert not raw_lines[0].endswith("。")


def _page_break_continuations(name: str) -> list[tuple[int, str, str]]:
    """(page, last line, next page's first line) where a sentence runs over a page break in the PDF."""
    found = []
    pages = raw(name).pages
    for page, nxt in pairwise(pages):
        body = [ln for ln in page.text.split("\n") if ln.strip() and not is_page_number_line(ln)]
        following = [ln for ln in nxt.text.split("\n") if ln.strip() and ln.strip() != RUNNING_HEADER]
        if body and following and not body[-1].rstrip().endswith(("。", "；", "：", "）")):
            found.append((page.page, body[-1].strip(), following[0].strip()))
    return found


def test_sentence_across_page_break_is_joined() -> None:
    breaks = _page_break_continuations(FOOD_SAFETY_LAW)
    # Real: page 13 ends `…检验合格证号、销售日期以及购货者名称、地址、联` and page 14 goes on `系方式…`.
    assert (13, "格证号、销售日期以及购货者名称、地址、联", "系方式等相关内容，并保存相关凭证。记录和") in [
        (p, a[-20:], b[:20]) for p, a, b in breaks
    ]
    d = doc(FOOD_SAFETY_LAW)
    for page, last, first in breaks:
        joined = normalize_spaces(last) + normalize_spaces(first)
        at = d.text.find(joined)
        assert at >= 0, joined
        assert d.page_at(at) == page
        assert d.page_at(at + len(joined) - 1) == page + 1


@pytest.mark.parametrize(
    ("name", "excerpt", "page"),
    [
        (FOOD_SAFETY_LAW, "购货者名称、地址、联系方式等相关内容", 13),
        (FOOD_SAFETY_LAW, "责令停业，直至由原发证部门吊销许可证", 30),
        (FOOD_SAFETY_LAW, "终身不得从事食品检验工作", 32),
        (REGULATIONS, "情况复杂的，经实施查封、扣押措施", 8),
        ("advertising-law-2021.pdf", "本广告仅供医学药学专业人士阅读", 3),
        (
            "food-production-operation-supervision-inspection-measures-2021.pdf",
            "日常监督检查结果记录表至下次",
            7,
        ),
        (SHANGHAI_PLAN, "有效满足产业转型升级和市民消费升级需要", 1),
        (SHANGHAI_PLAN, "加强食品安全信用信息管理和应用", 3),
    ],
)
def test_page_break_wraps_with_page_map(name: str, excerpt: str, page: int) -> None:
    d = doc(name)
    at = d.text.index(excerpt)
    assert d.page_at(at) == page
    assert d.page_at(at + len(excerpt) - 1) == page + 1


@pytest.mark.parametrize("stem", LAW_STEMS)
def test_wraps_agree_with_markdown_paragraphs(stem: str) -> None:
    """Against the Markdown twin: no normalized line spans two paragraphs (nothing over-joined), and
    a paragraph is only split where the PDF line ended a sentence (every hard wrap joined)."""
    paragraphs = md_paragraphs(stem)
    out = [
        ln for ln in lines(f"{stem}.pdf") if len(re.findall(r"第[一二三四五六七八九十]+章", ln)) < 2
    ]  # TOC
    keys = [match_key(ln) for ln in out]
    for line, key in zip(out, keys, strict=True):
        assert any(key in p for p in paragraphs), line
    for a, b, ka, kb in zip(out, out[1:], keys, keys[1:], strict=False):
        if any(ka + kb in p for p in paragraphs):
            assert a.endswith(("。", "；")), (a[-20:], b[:20])


def test_wrap_before_cross_reference_is_joined() -> None:
    """Real: article 第七十条 of the Food Safety Law wraps right before `第六十七条第一款…`."""
    page = next(p for p in raw(FOOD_SAFETY_LAW).pages if "载明本法\n第六十七条第一款" in p.text)
    assert page.page == 16
    text = doc(FOOD_SAFETY_LAW).text
    assert "标签、说明书应当载明本法第六十七条第一款第一项至第六项、第八项、第九项规定的事项" in text
    assert "\n第六十七条第一款" not in text


def test_wrapped_latin_words_keep_a_space() -> None:
    body = ["保健食品生产企业应当按照良好生产规范组织生产，建立与所生产的保健食品相适应的生"] * 14
    body[6] = "保健食品生产企业应当实施良好生产规范，即国际上通行的生产质量管理规范Good"
    body[7] = "Manufacturing Practice（GMP），并定期对其实施情况进行自查，确保生产"
    text = normalize_document(raw_doc("\n".join(body))).text
    assert "国际上通行的生产质量管理规范Good Manufacturing Practice（GMP），" in text
    assert "\n" not in text


# --- spaces next to CJK ------------------------------------------------------------------------


def test_spaces_between_cjk_and_digits_removed() -> None:
    assert normalize_spaces("30 个工作日") == "30个工作日"
    assert normalize_spaces("2015 年 4 月 24 日") == "2015年4月24日"
    regs = raw_text(REGULATIONS)
    assert "自食品安全地方标准公布之日起 30 个工作日内" in regs
    assert "自食品安全地方标准公布之日起30个工作日内" in doc(REGULATIONS).text
    assert "30 个工作日" not in doc(REGULATIONS).text
    assert "2015 年 4 月 24 日" in raw_text(FOOD_SAFETY_LAW)
    assert "2015年4月24日第十二届全国人民代表大会常务委员会第十四次会议修订" in doc(FOOD_SAFETY_LAW).text
    assert (
        "2021年12月24日国家市场监督管理总局令第49号公布"
        in doc("food-production-operation-supervision-inspection-measures-2021.pdf").text
    )


def test_latin_spacing_kept() -> None:
    # Real excerpt from the seed's (boilerplate) list: the Latin part keeps its space.
    assert (
        normalize_query("JJG 1211-2025 自动气象站风向传感器检定规程")
        == "JJG 1211-2025自动气象站风向传感器检定规程"
    )
    assert normalize_query("Good Manufacturing Practice") == "Good Manufacturing Practice"
    assert normalize_query("下载最新的 WinRAR 软件解压") == "下载最新的WinRAR软件解压"
    assert normalize_query("GB 15193  食品毒理学评价程序") == "GB 15193食品毒理学评价程序"


def test_heading_keeps_one_space() -> None:
    assert normalize_spaces("第一章 总 则") == "第一章 总则"
    assert normalize_spaces("第四节  特殊食品") == "第四节 特殊食品"
    assert normalize_spaces("第一条") == "第一条"


@pytest.mark.parametrize("name", ALL_FILES)
def test_no_space_next_to_cjk_in_corpus(name: str) -> None:
    stray = re.compile(rf"[{CJK}] [{CJK}0-9A-Za-z]|[0-9A-Za-z] [{CJK}]")
    for line in lines(name):
        body = re.sub(r"^第[零〇一二三四五六七八九十百千两0-9]+[编章节条] ", "", line)
        assert not stray.search(body), line
        assert line == line.strip()


# --- match_key, queries ------------------------------------------------------------------------


def test_match_key() -> None:
    assert (
        match_key("第七十八条　保健食品的標籤、說明書，不得涉及疾病預防！")
        == "第七十八条保健食品的标签说明书不得涉及疾病预防"
    )
    assert match_key("（GMP） Good  Manufacturing") == match_key("(gmp)goodmanufacturing")
    assert match_key("2015 年 4 月 24 日") == match_key("2015年4月24日")
    # Real: the traditional seed and its normalized form share keys, pinyin included.
    excerpt = "時(shí)效性備案流程通常20個(gè)工作日內(nèi)完成,注冊(cè)審批需3-6個(gè)月"
    assert match_key(excerpt) == match_key("时效性：备案流程通常20个工作日内完成，注册审批需36个月")
    assert match_key(excerpt) in match_key(doc(SEED).text)


@pytest.mark.parametrize("name", ALL_FILES)
def test_normalize_query_is_idempotent_on_documents(name: str) -> None:
    assert normalize_query(doc(name).text) == doc(name).text


# --- page map ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FILES)
def test_page_map_in_range_and_monotonic(name: str) -> None:
    d = doc(name)
    pages = [p.page for p in raw(name).pages]
    assert d.page_starts[0] == 0
    assert d.page_starts == sorted(set(d.page_starts))
    assert d.page_numbers == sorted(set(d.page_numbers))
    previous = d.page_at(0)
    for offset in range(len(d.text)):
        page = d.page_at(offset)
        assert min(pages) <= page <= max(pages)
        assert page >= previous
        previous = page
    assert d.page_at(len(d.text) - 1) == max(p.page for p in raw(name).pages if p.text.strip())


@pytest.mark.parametrize("stem", LAW_STEMS)
def test_page_map_puts_each_article_on_its_pdf_page(stem: str) -> None:
    heading = re.compile(r"^(第[一二三四五六七八九十百零]+条)[\u3000 ]")
    pdf_page: dict[str, int] = {}
    for page in raw(f"{stem}.pdf").pages:
        for line in page.text.split("\n"):
            m = heading.match(line)
            if m:
                pdf_page.setdefault(m.group(1), page.page)
    d = doc(f"{stem}.pdf")
    found = {
        m.group(1): d.page_at(m.start())
        for m in re.finditer(r"^(第[一二三四五六七八九十百零]+条) ", d.text, re.M)
    }
    assert len(found) > 50
    assert found == pdf_page


# --- fuzz --------------------------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "第一条",
        "第七十八条　　",
        "第2条 ",
        "第六十三条的规定",
        "第一章 总则",
        "（一）",
        "一、",
        "1．",
        "\n",
        "\r\n",
        "\u3000",
        "。",
        "— 6 —",
        "第3页 共36页",
        RUNNING_HEADER,
        "生產(chǎn)",
        "温馨提示\n- 1. 本站",
        "评论\n0/150\n提交评论",
        "2015 年 4 月 24 日",
        "Good Manufacturing",
        "１２３ＡＢＣ",
    ]
)
FUZZ_TEXT = st.lists(st.one_of(st.text(max_size=20), FRAGMENTS), max_size=30).map("".join)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(FUZZ_TEXT)
def test_fuzz_normalize_query(text: str) -> None:
    out = normalize_query(text)
    assert "\r" not in out and "\u3000" not in out and "\x00" not in out
    assert all(line and line == line.strip() for line in out.split("\n")) or out == ""
    assert isinstance(match_key(text), str)


@FUZZ
@given(st.lists(FUZZ_TEXT, min_size=1, max_size=6))
def test_fuzz_normalize_document(pages: list[str]) -> None:
    d = normalize_document(raw_doc(*pages))
    assert "\n\n" not in d.text and not d.text.startswith("\n") and not d.text.endswith("\n")
    assert d.page_starts == sorted(d.page_starts)
    previous = 1
    for offset in range(len(d.text) + 1):
        page = d.page_at(offset)
        assert 1 <= page <= len(pages)
        assert page >= previous
        previous = page
