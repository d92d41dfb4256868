"""Draft review (assistant/review): rules checked on realistic label and advert text, with every
rule reference resolved against the REAL corpus articles. Fast: the article index is built from the
bundled corpus text (load → normalize → chunk), without the embedding model."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.lookup import ArticleIndex
from assistant.review.engine import (
    Finding,
    ReviewEngine,
    all_references,
    compact_view,
    load_rules,
    normalized_view,
)

FSL = "中华人民共和国食品安全法"
AD = "中华人民共和国广告法"
REG = "中华人民共和国食品安全法实施条例"


# --- fixtures: the real corpus articles (conftest), no model ------------------------------------------------


@pytest.fixture(scope="module")
def articles(corpus_articles: ArticleIndex) -> ArticleIndex:
    assert {FSL, AD, REG} <= {m.title for m in corpus_articles.documents.values()}
    return corpus_articles


@pytest.fixture(scope="module")
def engine(articles: ArticleIndex) -> ReviewEngine:
    return ReviewEngine(articles)


def claims(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.kind == "prohibited_claim"]


def covering(findings: list[Finding], draft: str, phrase: str) -> list[Finding]:
    """Findings whose span overlaps the first occurrence of `phrase` in `draft`."""
    i = draft.find(phrase)
    assert i >= 0, f"test bug: {phrase!r} not in draft"
    return [f for f in findings if f.start >= 0 and f.start < i + len(phrase) and i < f.end]


def overlapping_any(findings: list[Finding], draft: str, phrase: str) -> list[Finding]:
    """Findings overlapping ANY occurrence of `phrase` in `draft`."""
    out: list[Finding] = []
    i = draft.find(phrase)
    while i >= 0:
        out += [f for f in findings if f.start >= 0 and f.start < i + len(phrase) and i < f.end]
        i = draft.find(phrase, i + 1)
    return out


# --- rule references resolve to real articles -----------------------------------------------------


def reference_problems(rules: dict[str, Any], articles: ArticleIndex) -> list[str]:
    """Every reference of `rules` that does not resolve to an indexed article (or to the 款/项 it
    names), or whose citation quote is not real article text. Empty when all is well."""
    engine = ReviewEngine(articles, rules)
    problems: list[str] = []
    for reference in sorted(all_references(rules)):
        result = articles.lookup(reference)
        if not result.found or result.ref is None:
            problems.append(f"{reference}: {result.message or '未找到'}")
            continue
        names_clause = bool(result.ref.paragraph or result.ref.item)
        if names_clause and result.highlight is None:
            problems.append(f"{reference}: {result.title}{result.article}中没有所写的款/项")
            continue
        citation = engine.citation(reference)
        if citation is None or not citation.quote.strip():
            problems.append(f"{reference}: 引用为空")
            continue
        if citation.quote not in result.text:
            problems.append(f"{reference}: 引文不是条文原文")
        if names_clause and result.highlight is not None:
            s, e = result.highlight
            if citation.quote != result.text[s:e]:
                problems.append(f"{reference}: 引文不是所写的款/项")
        if citation.page_start < 1 or citation.doc_id != result.doc_id:
            problems.append(f"{reference}: 页码或文档不对")
    return problems


def test_every_rule_reference_resolves_to_a_real_article(articles: ArticleIndex) -> None:
    rules = load_rules()
    references = all_references(rules)
    assert len(references) >= 20  # rules, required statements and number formats all cite law
    assert reference_problems(rules, articles) == []


def test_every_rule_and_statement_has_references() -> None:
    rules = load_rules()
    for section in ("rules", "required_statements", "number_formats"):
        for item in rules[section]:
            assert item.get("references"), f"{section}/{item['id']} cites nothing"


@pytest.mark.parametrize(
    "broken",
    [
        "食品安全法第九百条",  # article that does not exist
        "广告法第十八条第一款第九项",  # item that does not exist
        "广告法第十八条第五款",  # paragraph that does not exist
        "保健食品管理法第七十八条",  # law that is not in the corpus
    ],
)
def test_reference_check_detects_a_broken_reference(articles: ArticleIndex, broken: str) -> None:
    rules = copy.deepcopy(load_rules())
    rules["rules"][0]["references"] = [*rules["rules"][0]["references"], broken]
    problems = reference_problems(rules, articles)
    assert len(problems) == 1 and problems[0].startswith(broken), problems


def test_a_rule_whose_only_reference_is_broken_goes_silent(articles: ArticleIndex) -> None:
    """Why the reference check matters: a finding without a real citation is dropped, so a typo in
    rules.yaml would silently switch a rule off."""
    rules = copy.deepcopy(load_rules())
    for rule in rules["rules"]:
        if rule["family"] == "disease_claim":
            rule["references"] = ["食品安全法第九百条"]
    draft = "坚持服用半年可根治高血压。"
    assert any(f.family == "disease_claim" for f in ReviewEngine(articles).review(draft, "advert").findings)
    assert not any(
        f.family == "disease_claim" for f in ReviewEngine(articles, rules).review(draft, "advert").findings
    )
    assert reference_problems(rules, articles)


# --- rule families: positives and negatives on draft-like text ------------------------------------

# (family — or families separated by | —, document type, draft, the claim that must be flagged)
POSITIVES: list[tuple[str, str, str, str]] = [
    # disease_claim
    ("disease_claim", "advert", "XX牌天麻杜仲胶囊，精选道地药材，可治疗高血压引起的头晕头痛。", "治疗"),
    ("disease_claim", "advert", "坚持服用三个月，很多糖尿病患者都已经治愈。", "治愈"),
    ("disease_claim", "advert", "XX牌灵芝孢子粉，根治失眠多梦，一觉睡到天亮。", "根治"),
    ("disease_claim", "advert", "服用两个月后，王阿姨的老胃病完全痊愈。", "痊愈"),
    ("disease_claim", "label", "【产品特点】长期食用可预防心脑血管疾病。", "预防心脑血管疾病"),
    ("disease_claim", "advert", "一瓶在手，包治百病！全家老小都适用。", "包治百病"),
    ("disease_claim", "advert", "祖传配方，药到病除，效果看得见！", "药到病除"),
    ("disease_claim", "advert", "本品抗癌防癌，守护全家健康。", "抗癌"),
    # claiming to replace an antihypertensive: rules.yaml files it under medicine_comparison
    (
        "disease_claim|medicine_comparison",
        "advert",
        "XX牌罗布麻茶，天然降压药替代品，血压稳稳的。",
        "降压药替代",
    ),
    # efficacy_guarantee
    ("efficacy_guarantee", "advert", "经权威机构检测，临床观察有效率100%，放心选择。", "有效率100%"),
    ("efficacy_guarantee", "advert", "朋友圈都在转：有效率１００％，无效退款！", "有效率１００％"),
    ("efficacy_guarantee", "advert", "纯植物配方，无任何毒副作用，老人孩子都能吃。", "无任何毒副作用"),
    ("efficacy_guarantee", "label", "【注意事项】本品不能代替药物。特效配方，保证有效。", "保证有效"),
    ("efficacy_guarantee", "advert", "喝下去立竿见影，精神头马上就来。", "立竿见影"),
    ("efficacy_guarantee", "advert", "专家团队研制，三天见效，七天大变样！", "三天见效"),
    ("efficacy_guarantee", "advert", "不节食不运动，月瘦二十斤不是梦。", "瘦二十斤"),
    ("efficacy_guarantee", "label", "【产品特点】特效配方，吸收快。", "特效"),
    ("efficacy_guarantee", "advert", "纯天然提取，绝对安全，孕妇也能放心吃。", "绝对安全"),
    # medicine_comparison
    ("medicine_comparison", "advert", "是药三分毒！本品纯植物提取，比药物更安全。", "比药物更安全"),
    ("medicine_comparison", "advert", "XX牌银杏叶软胶囊可以替代药物长期服用。", "替代药物"),
    ("medicine_comparison", "advert", "坚持吃了三个月，降压药可以停了。", "降压药可以停"),
    ("medicine_comparison", "advert", "与降糖药相比，本品更加温和。", "与降糖药相比"),
    # endorsement
    ("endorsement", "advert", "北京知名心血管医生推荐，品质有保障。", "医生推荐"),
    ("endorsement", "advert", "三甲医院心内科都在用的好产品。", "三甲医院"),
    ("endorsement", "advert", "营养学专家推荐，每天两粒。", "专家推荐"),
    ("endorsement", "advert", "当红明星代言，同款热卖中！", "明星代言"),
    # state_organ_name
    ("state_organ_name", "advert", "XX牌人参蜂王浆，特供产品，外面买不到。", "特供"),
    ("state_organ_name", "advert", "高端礼盒，机关专供，送礼有面子。", "专供"),
    ("state_organ_name", "label", "XX牌红景天胶囊　国家机关指定用品", "国家机关指定"),
    ("state_organ_name", "advert", "国宴同款，人民大会堂专用。", "人民大会堂"),
    # necessity_claim
    ("necessity_claim", "advert", "全家人人必备的营养补充剂！", "人人必备"),
    ("necessity_claim", "advert", "XX牌鱼油，中老年人保障健康所必需的营养。", "健康所必需"),
    ("necessity_claim", "advert", "三高人群每天必吃，一天都不能停！", "每天必吃"),
    ("necessity_claim", "other", "不吃钙片迟早会骨折瘫痪！", "不吃钙片迟早会骨折"),
    # non_health_food_function
    (
        "non_health_food_function",
        "label",
        "XX牌蛋白粉固体饮料\n产品类别：固体饮料\n配料：乳清蛋白粉、大豆分离蛋白\n增强免疫力，每天一勺。",
        "增强免疫力",
    ),
    (
        "non_health_food_function",
        "label",
        "XX牌酸枣仁百合压片糖果\n产品类别：压片糖果\n功效：有助于改善睡眠，睡前两片。",
        "有助于改善睡眠",
    ),
    (
        "non_health_food_function",
        "advert",
        "【直播间】XX牌菊苣栀子茶（代用茶），每天一杯，护肝解酒！原价199，今天69元。",
        "护肝",
    ),
    (
        "non_health_food_function",
        "advert",
        "XX牌益生菌固体饮料，调节肠道菌群，全家都能喝！扫码下单。",
        "调节肠道菌群",
    ),
]

# (family the sentence is a near miss for, document type, compliant draft)
NEGATIVES: list[tuple[str, str, str]] = [
    # disease_claim: the mandatory warnings, negations and catalogue function names
    ("disease_claim", "label", "【注意事项】本品不能代替药物"),
    ("medicine_comparison", "advert", "弹幕里有朋友问吃了能不能把药停了，主播明确说不能：本品不能代替药物。"),
    ("disease_claim", "label", "本品为保健食品，不能治疗疾病，如有不适请及时就医。"),
    ("disease_claim", "label", "本品不具有治疗作用，不能代替药物。"),
    ("disease_claim", "label", "保健食品不是药物，不能代替药物治疗疾病"),
    ("disease_claim", "label", "【保健功能】辅助降血压\n【适宜人群】血压偏高者"),
    ("disease_claim", "label", "【保健功能】有助于维持血压健康水平"),
    ("disease_claim", "label", "【保健功能】有助于增强免疫力、缓解体力疲劳"),
    ("disease_claim", "label", "【保健功能】补充维生素C"),
    ("disease_claim", "label", "【保健功能】有助于改善睡眠\n【适宜人群】睡眠状况不佳者"),
    ("disease_claim", "label", "【注意事项】正在接受药物治疗的糖尿病患者，请在医生指导下食用。"),
    ("disease_claim", "label", "【注意事项】正在接受降压治疗的高血压患者请在医生指导下食用。"),
    ("disease_claim", "label", "【不适宜人群】少年儿童、孕妇、乳母、正在接受治疗的肿瘤患者"),
    # efficacy_guarantee
    ("efficacy_guarantee", "label", "【保质期】24个月\n开封后请于3个月内食用完毕。"),
    ("efficacy_guarantee", "label", "每批产品均经检验合格后出厂，我们保证产品质量。"),
    ("efficacy_guarantee", "label", "【食用量及食用方法】每日2次，每次2粒，连续食用30天。"),
    ("efficacy_guarantee", "label", "本品不含任何防腐剂和人工色素。"),
    # medicine_comparison
    ("medicine_comparison", "label", "【注意事项】不宜超过推荐量或与同类营养素补充剂同时食用"),
    ("medicine_comparison", "label", "正在服用降压药物者请在医生指导下食用，不要擅自停药。"),
    ("medicine_comparison", "label", "请勿与抗生素同时服用。"),
    ("medicine_comparison", "label", "本品不能作为降压药的替代品，请遵医嘱用药。"),
    # endorsement
    ("endorsement", "advert", "如您正在服用药物，请先咨询医生。"),
    ("endorsement", "label", "孕妇、乳母请在医生指导下食用。"),
    ("endorsement", "label", "根据中国营养学会推荐的膳食指南，成人每日钙推荐摄入量为800mg。"),
    ("endorsement", "label", "如对产品有任何疑问，欢迎致电消费者服务热线：400-100-2233"),
    # state_organ_name
    ("state_organ_name", "advert", "XX牌西洋参片是经国家市场监督管理总局注册的保健食品。"),
    ("state_organ_name", "label", "【执行标准】依据国家标准GB 16740-2014生产。"),
    ("state_organ_name", "label", "产品经国家市场监督管理总局备案，备案号：食健备G202331000123。"),
    # necessity_claim
    ("necessity_claim", "label", "赖氨酸是人体必需氨基酸，钙是人体必需的矿物质。"),
    ("necessity_claim", "label", "建议与均衡膳食、适量运动和规律作息相结合。"),
    ("necessity_claim", "advert", "健康离不开合理膳食和适量运动。"),
    # non_health_food_function: the same wording is lawful on a filed/registered health food
    (
        "non_health_food_function",
        "label",
        "XX牌灵芝孢子粉固体饮料\n产品类别：固体饮料\n【保健功能】有助于增强免疫力\n【备案号】食健备G202331000123",
    ),
    (
        "non_health_food_function",
        "label",
        "XX牌燕麦膳食纤维固体饮料\n产品类别：固体饮料\n富含膳食纤维\n本品为普通食品，不具有保健功能。",
    ),
    (
        "non_health_food_function",
        "label",
        "XX牌褪黑素维生素B6片\n【保健功能】有助于改善睡眠\n【注册号】国食健注G20190056",
    ),
]


def test_every_rule_family_has_positives_and_negatives() -> None:
    families = {rule["family"] for rule in load_rules()["rules"]}
    for family in families:
        assert sum(p[0] == family for p in POSITIVES) >= 3, family
        assert sum(n[0] == family for n in NEGATIVES) >= 3, family


@pytest.mark.parametrize(
    ("family", "doc_type", "draft", "claim"), POSITIVES, ids=[f"{p[0]}-{i}" for i, p in enumerate(POSITIVES)]
)
def test_prohibited_claim_is_flagged(
    engine: ReviewEngine, family: str, doc_type: str, draft: str, claim: str
) -> None:
    result = engine.review(draft, doc_type)
    hits = [f for f in covering(claims(result.findings), draft, claim) if f.family in family.split("|")]
    assert hits, [(f.rule, f.text) for f in result.findings]
    for f in hits:
        assert f.text == draft[f.start : f.end]
        assert f.citations


@pytest.mark.parametrize(
    ("family", "doc_type", "draft"), NEGATIVES, ids=[f"{n[0]}-{i}" for i, n in enumerate(NEGATIVES)]
)
def test_compliant_wording_is_not_flagged(
    engine: ReviewEngine, family: str, doc_type: str, draft: str
) -> None:
    result = engine.review(draft, doc_type)
    assert claims(result.findings) == [], [(f.rule, f.text) for f in claims(result.findings)]


def test_ordinary_food_claim_flagged_only_without_health_food_number(engine: ReviewEngine) -> None:
    base = "XX牌维生素C压片糖果\n产品类别：压片糖果\n【功效】增强免疫力\n"
    flagged = engine.review(base, "label")
    assert [f.rule for f in covering(flagged.findings, base, "增强免疫力")] == [
        "non-health-food-function-claim"
    ]
    filed = base + "【备案号】食健备G202331000123"
    assert not [f for f in engine.review(filed, "label").findings if f.family == "non_health_food_function"]
    registered = base + "【注册号】国食健注G20200123"
    assert not [
        f for f in engine.review(registered, "label").findings if f.family == "non_health_food_function"
    ]


@pytest.mark.xfail(
    strict=True,
    reason="known false positive: necessity-claim's lifestyle exception only covers the word order "
    "“不可或缺…均衡膳食”, not “均衡膳食…是…不可或缺”; left unfixed because a regex cannot tell whether the "
    "subject is the lifestyle or the product",
)
def test_lifestyle_is_indispensable_is_not_a_necessity_claim(engine: ReviewEngine) -> None:
    draft = "均衡膳食、适量运动和充足睡眠是健康生活方式中不可或缺的部分。"
    assert claims(engine.review(draft, "label").findings) == []


# --- split, traditional and full-width claims map back to the original text ----------------------


@pytest.mark.parametrize(
    ("draft", "claim", "family"),
    [
        ("家人们！坚持吃能治 疗糖尿病，效果杠杠的。", "治 疗", "disease_claim"),
        ("很多人反馈药到·病除，血糖稳稳的。", "药到·病除", "disease_claim"),
        ("血糖问题可以根-治！", "根-治", "disease_claim"),
        ("专门针对高血压，根　治不复发。", "根　治", "disease_claim"),
        ("【報紙廣告】XX牌深海魚油，根治高血壓！", "根治", "disease_claim"),
        ("本品可以治療失眠，一覺到天亮。", "治療", "disease_claim"),
        ("醫生推薦，值得信賴。", "醫生推薦", "endorsement"),
        ("连续服用３天见效！", "３天见效", "efficacy_guarantee"),
        ("不节食，一个月瘦２０斤！", "瘦２０斤", "efficacy_guarantee"),
        ("朋友圈都在转：有效率１００％！", "有效率", "efficacy_guarantee"),
        ("XX牌™深海鱼油㈱出品，可根治高血压。", "根治", "disease_claim"),  # NFKC expands ™ and ㈱
    ],
)
def test_obfuscated_claims_are_flagged_with_original_offsets(
    engine: ReviewEngine, draft: str, claim: str, family: str
) -> None:
    result = engine.review(draft, "advert")
    i = draft.index(claim)
    hits = [
        f for f in claims(result.findings) if f.family == family and f.start <= i and f.end >= i + len(claim)
    ]
    assert hits, [(f.rule, f.text, f.start, f.end) for f in result.findings]
    for f in hits:
        assert f.text == draft[f.start : f.end]
        assert claim in f.text


def test_views_map_every_character_back_to_the_draft() -> None:
    draft = "XX牌™鱼油：根-治高血壓，有效率１００％"
    norm = normalized_view(draft)
    compact = compact_view(norm)
    assert "根治高血压" in compact.text and "100%" in norm.text and "TM" in norm.text
    for view in (norm, compact):
        assert len(view.to_original) == len(view.text)
        assert all(0 <= o < len(draft) for o in view.to_original)
        assert view.to_original == sorted(view.to_original)


def test_full_width_malformed_number_keeps_original_text(engine: ReviewEngine) -> None:
    draft = "【朋友圈广告】备案号：食健备Ｇ２０２３９９００１２３４\n本品不能代替药物"
    errors = [f for f in engine.review(draft, "advert").findings if f.kind == "format_error"]
    assert [f.text for f in errors] == ["食健备Ｇ２０２３９９００１２３４"]
    assert draft[errors[0].start : errors[0].end] == errors[0].text


def test_full_width_valid_number_is_accepted(engine: ReviewEngine) -> None:
    draft = "备案号：食健備Ｇ２０２２４４０００５６７"
    assert [f for f in engine.review(draft, "label").findings if f.kind == "format_error"] == []


# --- exceptions only cancel the span they overlap ------------------------------------------------


def test_exception_cancels_only_the_overlapping_span(engine: ReviewEngine) -> None:
    draft = "XX牌葛根丹参片，保健功能：辅助降血压。本品不能代替药物，但坚持服用半年可根治高血压。"
    result = engine.review(draft, "advert")
    flagged = [f for f in covering(claims(result.findings), draft, "根治") if f.family == "disease_claim"]
    assert any(f.text == "根治" for f in flagged), [(f.rule, f.text) for f in result.findings]
    assert covering(result.findings, draft, "本品不能代替药物") == []
    assert covering(result.findings, draft, "辅助降血压") == []
    assert "no-substitute-for-medicine" not in {f.rule for f in result.findings}


# --- required statements -------------------------------------------------------------------------

LABEL_WITHOUT_STATEMENTS = """XX牌葡萄籽提取物胶囊
【注册号】国食健注G20190288
【原料】葡萄籽提取物、维生素C、维生素E
【辅料】微晶纤维素、硬脂酸镁、明胶空心胶囊
【功效成分及含量】每100g含：原花青素 25g、维生素C 5g
【保健功能】有助于抗氧化
【食用量及食用方法】每日2次，每次1粒，温开水送服
【规格】0.5g/粒
【贮藏方法】密封，置阴凉干燥处
【保质期】24个月
【生产企业】XX生物科技（浙江）有限公司"""

ADVERT_WITHOUT_STATEMENTS = """【网店详情页】XX牌葡萄籽提取物胶囊
保健功能：有助于抗氧化
功效成分：原花青素
限时优惠：原价168元，现价98元，两盒包邮！
订购热线：400-600-1234，点击链接立即下单。"""

COMPLIANT_LABEL = """XX牌钙维生素D软胶囊
【备案号】食健备G202332000456
【原料】碳酸钙、维生素D3
【辅料】大豆油、明胶、甘油、纯化水
【功效成分及含量】每粒含：钙 300mg、维生素D 5μg
【保健功能】补充钙、维生素D
【适宜人群】需要补充钙和维生素D的成人
【不适宜人群】少年儿童、孕妇、乳母
【食用量及食用方法】每日1次，每次1粒，随餐食用
【规格】1.2g/粒
【贮藏方法】密封，置阴凉干燥处，避免阳光直射
【保质期】24个月
【注意事项】本品不能代替药物；适宜人群外的人群不推荐食用本产品；不宜超过推荐量或与同类营养素补充剂同时食用；正在服用药物者请在医生指导下食用
【产品技术要求】见备案产品技术要求
【生产企业】XX营养科技（江苏）有限公司
【生产地址】江苏省苏州市XX区XX路18号
【生产许可证编号】SC12732050600789
【生产日期】见瓶底喷码
保健食品不是药物，不能代替药物治疗疾病"""

COMPLIANT_LEAFLET = """XX牌罗布麻芹菜籽胶囊　产品说明书
【注册号】国食健注G20200123
【主要原料】罗布麻叶提取物、芹菜籽提取物、葛根提取物
【辅料】微晶纤维素、硬脂酸镁
【标志性成分及含量】每100g含：总黄酮 2.4g
【保健功能】有助于维持血压健康水平
【适宜人群】血压偏高者
【不适宜人群】少年儿童、孕妇、乳母、低血压者
【食用量及食用方法】每日2次，每次3粒，温开水送服
【规格】0.4g/粒
【贮藏方法】密封，置阴凉干燥处
【保质期】24个月
【注意事项】
1. 本品不能代替药物。
2. 正在接受降压治疗的高血压患者请在医生指导下食用，不要擅自停药或减量。
3. 本品为保健食品，不具有治疗疾病的作用，如有不适请及时就医。
4. 适宜人群外的人群不推荐食用本产品。
【生产企业】XX健康科技（山东）有限公司
【生产许可证编号】SC12737010200211
【消费者服务热线】400-100-2233
保健食品不是药物，不能代替药物治疗疾病。"""

COMPLIANT_ADVERT = """【广播广告·15秒】
男声：长时间看屏幕，眼睛容易累？XX牌叶黄素酯片，功效成分叶黄素，保健功能：缓解视觉疲劳。
适宜人群：视力易疲劳者。不适宜人群：少年儿童、孕妇、乳母。
女声：本品不能代替药物。国食健注G20200355，粤食健广审（声）第241120-00088号。
订购热线：400-800-1234，限时优惠，详询各大药房。"""


def missing(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings if f.kind == "missing_statement"}


def test_label_without_statements_reports_each_missing_one(engine: ReviewEngine) -> None:
    result = engine.review(LABEL_WITHOUT_STATEMENTS)
    assert result.doc_type == "label"
    assert missing(result.findings) == {"no-substitute-for-medicine", "suitable-group", "unsuitable-group", "precautions"}
    for f in result.findings:
        assert f.kind == "missing_statement" and (f.start, f.end, f.text) == (-1, -1, "")


def test_unsuitable_group_alone_does_not_count_as_suitable_group(engine: ReviewEngine) -> None:
    draft = LABEL_WITHOUT_STATEMENTS + "\n【不适宜人群】少年儿童、孕妇、乳母\n【注意事项】本品不能代替药物"
    assert missing(engine.review(draft, "label").findings) == {"suitable-group"}
    draft = LABEL_WITHOUT_STATEMENTS + "\n【适宜人群】中老年人\n【注意事项】本品不能代替药物"
    assert missing(engine.review(draft, "label").findings) == {"unsuitable-group"}


def test_advert_is_checked_only_for_advert_statements(engine: ReviewEngine) -> None:
    result = engine.review(ADVERT_WITHOUT_STATEMENTS)
    assert result.doc_type == "advert"
    assert missing(result.findings) == {"no-substitute-for-medicine", "advert-approval-number"}


def test_ordinary_food_label_needs_no_health_food_warning(engine: ReviewEngine) -> None:
    draft = """XX牌蛋白粉固体饮料
产品类别：固体饮料
配料：乳清蛋白粉、大豆分离蛋白、麦芽糊精、低聚果糖
营养成分表（每100g）：能量 1620kJ、蛋白质 60.0g、脂肪 3.5g、碳水化合物 25.0g、钠 300mg
净含量：400g
食用方法：每次20g，用200mL温水冲调后饮用
贮存条件：常温、阴凉干燥处
保质期：18个月
产品标准号：GB/T 29602
生产许可证编号：SC10631011500456"""
    result = engine.review(draft)
    assert result.doc_type == "label"
    assert "no-substitute-for-medicine" not in missing(result.findings)
    assert result.findings == []


def test_health_food_in_solid_drink_form_still_needs_the_warning(engine: ReviewEngine) -> None:
    draft = (
        "XX牌蛋白质粉（固体饮料剂型）\n【备案号】食健备G202332000456\n【功效成分及含量】每100g含：蛋白质 80g\n"
        "【保健功能】补充蛋白质\n【适宜人群】需要补充蛋白质的成人\n【不适宜人群】少年儿童、孕妇、乳母"
    )
    assert "no-substitute-for-medicine" in missing(engine.review(draft, "label").findings)


@pytest.mark.parametrize(("draft", "kind"), [(COMPLIANT_LABEL, "label"), (COMPLIANT_LEAFLET, "manual")])
def test_complete_compliant_label_has_no_findings(engine: ReviewEngine, draft: str, kind: str) -> None:
    result = engine.review(draft)
    assert result.doc_type == kind and result.doc_type_source == "detected" and result.doc_type_evidence
    assert result.findings == [], [(f.rule, f.text) for f in result.findings]
    assert engine.review(draft, "label").findings == []


def test_complete_compliant_advert_has_no_findings(engine: ReviewEngine) -> None:
    result = engine.review(COMPLIANT_ADVERT)
    assert result.doc_type == "advert"
    assert result.findings == [], [(f.rule, f.text) for f in result.findings]


# --- approval / filing number formats ------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "食健备G202331000123",
        "食健备J202300000123",
        "国食健注G20200123",
        "国食健注J20190056",
        "国食健字G20100456",
        "卫食健字(2001)第0123号",
        "SC12731011500123",
    ],
)
def test_valid_numbers_produce_no_finding(engine: ReviewEngine, number: str) -> None:
    draft = f"XX牌维生素C咀嚼片\n【批准文号】{number}\n【保健功能】补充维生素C"
    assert [f for f in engine.review(draft, "other").findings if f.kind == "format_error"] == []


@pytest.mark.parametrize(
    ("number", "rule"),
    [
        ("食健备G2023310001", "filing-domestic"),  # too short
        ("食健备G20233100012345", "filing-domestic"),  # too long
        ("食健备G202399000123", "filing-domestic"),  # province code 99
        ("食健备G31000123", "filing-domestic"),  # year missing
        ("食健备X202331000123", "filing-domestic"),  # wrong letter
        ("食健备J202331000123", "filing-imported"),  # imported numbers carry 00, not a province
        ("国食健注X20200123", "registration"),  # wrong letter
        ("国食健注G2020012", "registration"),  # too short
        ("国食健注20200123", "registration"),  # letter missing
        ("国食健字G20180123", "registration-old-guoshijianzi"),  # 国食健字 ended in 2016
        ("SC1273101150012", "production-license"),  # 13 digits
    ],
)
def test_malformed_numbers_are_reported_verbatim(engine: ReviewEngine, number: str, rule: str) -> None:
    draft = f"XX牌维生素C咀嚼片\n【批准文号】{number}\n【保健功能】补充维生素C"
    errors = [f for f in engine.review(draft, "other").findings if f.kind == "format_error"]
    assert [(f.rule, f.text) for f in errors] == [(rule, number)]
    f = errors[0]
    assert draft[f.start : f.end] == number and f.start == draft.index(number)
    expected = "第六十七条第一款第八项" if rule == "production-license" else "第七十六条第一款"
    assert (FSL, expected) in {(c.title, c.article) for c in f.citations}


# --- document type detection ---------------------------------------------------------------------


def test_typical_label_is_detected_as_label(engine: ReviewEngine) -> None:
    assert engine.review(COMPLIANT_LABEL).doc_type == "label"
    assert engine.review(LABEL_WITHOUT_STATEMENTS).doc_type == "label"


def test_typical_advert_is_detected_as_advert(engine: ReviewEngine) -> None:
    draft = (
        "【朋友圈广告】XX牌鱼油软胶囊，深海好鱼油！\n"
        "限时优惠：原价298元，今天只要168元，买二送一。\n订购热线：400-888-1234，名额有限，赶快拨打！"
    )
    assert engine.review(draft).doc_type == "advert"
    assert engine.review(ADVERT_WITHOUT_STATEMENTS).doc_type == "advert"


def test_explicit_type_overrides_detection(engine: ReviewEngine) -> None:
    assert engine.review(COMPLIANT_LABEL, "advert").doc_type == "advert"
    assert engine.review(COMPLIANT_LABEL, "nonsense").doc_type == "label"  # unknown type → auto


# --- citations, order and JSON contract ----------------------------------------------------------

NONCOMPLIANT = """【电视购物广告】
主持人：各位观众朋友，高血压困扰您多年了吗？今天给您带来XX牌天麻杜仲胶囊！
专家：我们这款产品能根治高血压，三天见效，比药物更安全，无任何毒副作用！三甲医院医生推荐！
主持人：特供产品，人人必备！有效率１００％！
备案号：食健备G2023990001
订购热线：400-888-6666，前100名下单送两盒！"""

EXPECTED_CITATION = {
    "disease_claim": (FSL, "第七十八条"),
    "efficacy_guarantee": (AD, "第十八条第一款第一项"),
    "medicine_comparison": (AD, "第十八条第一款第四项"),
    "endorsement": (AD, "第十八条第一款第五项"),
    "state_organ_name": (AD, "第九条第二项"),
    "necessity_claim": (AD, "第十八条第一款第三项"),
    "non_health_food_function": (REG, "第三十八条第一款"),
}


def test_every_finding_cites_real_article_text(engine: ReviewEngine, articles: ArticleIndex) -> None:
    drafts = [NONCOMPLIANT, LABEL_WITHOUT_STATEMENTS, ADVERT_WITHOUT_STATEMENTS] + [p[2] for p in POSITIVES]
    seen = 0
    for draft in drafts:
        for f in engine.review(draft).findings:
            seen += 1
            assert len(f.citations) >= 1, f.rule
            for c in f.citations:
                assert c.title and c.article.startswith("第") and c.quote.strip()
                assert c.page_start >= 1 and c.page_end >= c.page_start
                article = articles.lookup(c.title + c.article)
                assert article.found and c.quote in article.text, (f.rule, c.article)
            if f.family in EXPECTED_CITATION:
                assert EXPECTED_CITATION[f.family] in {(c.title, c.article) for c in f.citations}, f.rule
    assert seen > 30


def test_noncompliant_advert_findings(engine: ReviewEngine) -> None:
    result = engine.review(NONCOMPLIANT)
    assert result.doc_type == "advert"
    for phrase, family in [
        ("根治", "disease_claim"),
        ("三天见效", "efficacy_guarantee"),
        ("比药物更安全", "medicine_comparison"),
        ("无任何毒副作用", "efficacy_guarantee"),
        ("三甲医院", "endorsement"),
        ("医生推荐", "endorsement"),
        ("特供", "state_organ_name"),
        ("人人必备", "necessity_claim"),
        ("有效率１００％", "efficacy_guarantee"),
    ]:
        assert any(f.family == family for f in covering(result.findings, NONCOMPLIANT, phrase)), phrase
    assert [f.text for f in result.findings if f.kind == "format_error"] == ["食健备G2023990001"]
    assert missing(result.findings) == {"no-substitute-for-medicine", "advert-approval-number"}
    assert overlapping_any(result.findings, NONCOMPLIANT, "400-888-6666") == []


def test_findings_are_sorted_by_position(engine: ReviewEngine) -> None:
    findings = engine.review(NONCOMPLIANT).findings
    placed = [f for f in findings if f.start >= 0]
    assert [(f.start, f.end) for f in placed] == sorted((f.start, f.end) for f in placed)
    first_missing = next(i for i, f in enumerate(findings) if f.start < 0)
    assert all(f.start < 0 for f in findings[first_missing:])  # missing statements come last


FINDING_KEYS = {"kind", "rule", "text", "start", "end", "message", "severity", "citations"}
CITATION_KEYS = {"doc_id", "title", "article", "page_start", "page_end", "quote"}


def test_json_contract(engine: ReviewEngine) -> None:
    result = engine.review(NONCOMPLIANT)
    payload = json.loads(json.dumps(result.to_json(), ensure_ascii=False))
    assert {"findings", "doc_type", "notice"} <= set(payload)
    assert payload["findings"]
    kinds = set()
    for item in payload["findings"]:
        assert set(item) >= FINDING_KEYS, set(item)
        kinds.add(item["kind"])
        assert isinstance(item["start"], int) and isinstance(item["end"], int)
        assert item["severity"] in {"high", "medium", "low"} and item["message"]
        assert item["citations"]
        for c in item["citations"]:
            assert set(c) >= CITATION_KEYS, set(c)
            assert isinstance(c["page_start"], int) and c["page_start"] >= 1
    assert kinds == {"prohibited_claim", "missing_statement", "format_error"}


# --- fuzz ----------------------------------------------------------------------------------------

# Claim words, negations, number prefixes, separators and characters NFKC expands or combines.
_FRAGMENT_WORDS = """
治疗 根治 治療 高血壓 本品不能代替药物 不能 药到 病除 有效率 １００％ 100% 三天见效 医生推荐 特供 专供
人人必备 固体饮料 增强免疫力 食健备G 食健备J 国食健注 国食健字 卫食健字( SC 2023 31 000123 第 号
辅助降血压 适宜人群 不适宜人群 热线 限时优惠 ™ ㈱ ﬁ Ⅻ ① ｶ 〇 、 ， 。 · -
"""
FRAGMENTS = [*_FRAGMENT_WORDS.split(), "\n", " ", "　", "\u0301"]


@settings(max_examples=150, deadline=None)
@given(
    draft=st.one_of(
        st.text(max_size=200),
        st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=40).map("".join),
    ),
    doc_type=st.sampled_from(["auto", "label", "advert", "other"]),
)
def test_random_drafts_never_raise_and_offsets_stay_in_bounds(
    engine: ReviewEngine, draft: str, doc_type: str
) -> None:
    result = engine.review(draft, doc_type)
    assert result.doc_type in {"label", "manual", "advert", "other"}
    for f in result.findings:
        if f.start >= 0:
            assert 0 <= f.start < f.end <= len(draft)
            assert f.text == draft[f.start : f.end]
        else:
            assert f.kind == "missing_statement" and f.end == -1
        assert f.citations
