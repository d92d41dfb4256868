"""The review claim classifier (assistant/models/review) beside the rules: it loads offline from the
committed files, separates violations from compliant look-alikes on sentences held out of its
training, and its findings carry a rule's clause and say which layer found them. Also the document
type read from content and the items a label or 说明书 must carry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.lookup import ArticleIndex
from assistant.review.classifier import BUNDLED_REVIEW_MODEL, COMPLIANT, ClaimClassifier
from assistant.review.engine import ReviewEngine, load_rules
from assistant.settings import PROJECT_ROOT
from assistant.training.review_train import class_labels, load_sentences, train_review

AD = "中华人民共和国广告法"
FSL = "中华人民共和国食品安全法"


@pytest.fixture(scope="module")
def classifier() -> ClaimClassifier:
    return ClaimClassifier()


@pytest.fixture(scope="module")
def engine(corpus_articles: ArticleIndex, classifier: ClaimClassifier) -> ReviewEngine:
    return ReviewEngine(corpus_articles, classifier=classifier)


@pytest.fixture(scope="module")
def rules_only(corpus_articles: ArticleIndex) -> ReviewEngine:
    return ReviewEngine(corpus_articles)


def test_the_committed_model_is_compact_and_knows_every_rule() -> None:
    files = {p.name: p.stat().st_size for p in BUNDLED_REVIEW_MODEL.iterdir()}
    assert {"model.onnx", "labels.json", "calibration.json", "tokenizer.json", "training.json"} <= set(files)
    assert sum(files.values()) <= 40 * 1024 * 1024
    labels = json.loads((BUNDLED_REVIEW_MODEL / "labels.json").read_text(encoding="utf-8"))
    assert labels == class_labels() and labels[0] == COMPLIANT
    assert not any(name.endswith((".safetensors", ".bin", ".pt")) for name in files)  # no checkpoints


def test_held_out_sentences_separate_violations_from_look_alikes(classifier: ClaimClassifier) -> None:
    """The tenth of the helper-written sentences the trainer never saw (split by a hash of the text)."""
    held_out = [s for s in load_sentences() if s.split == "dev"]
    assert len(held_out) >= 300
    flagged = np.array([classifier.flags(classifier.predict(s.text)) for s in held_out])
    violation = np.array([s.label != COMPLIANT for s in held_out])
    assert flagged[violation].mean() >= 0.85
    assert flagged[~violation].mean() <= 0.05


@pytest.mark.parametrize(
    ("sentence", "families"),
    [
        ("我家老爷子吃了小半年，现在上下楼梯膝盖一点都不打软了", {"disease_claim", "endorsement"}),
        ("这款鱼油的吸收率甩开隔壁那几个牌子好几条街", {"medicine_comparison"}),
        ("孕妇小孩老人都能放心吃，吃多久都不会有依赖", {"efficacy_guarantee"}),
    ],
)
def test_a_violation_in_words_no_pattern_lists_is_found_by_the_classifier(
    engine: ReviewEngine, rules_only: ReviewEngine, sentence: str, families: set[str]
) -> None:
    draft = f"XX牌氨糖钙片，天猫旗舰店有售。{sentence}。本品不能代替药物。"
    assert not [f for f in rules_only.review(draft, "advert").findings if f.kind == "prohibited_claim"]
    found = [f for f in engine.review(draft, "advert").findings if f.kind == "prohibited_claim"]
    assert found, sentence
    assert all(f.layer == "classifier" and f.score is not None for f in found)
    start = draft.index(sentence)
    assert any(f.family in families and start <= f.start and f.end <= start + len(sentence) for f in found)


def test_every_finding_carries_a_clause_and_its_layer(engine: ReviewEngine) -> None:
    draft = (
        "【限时秒杀】深海鱼油软胶囊，根治高血脂！我妈吃了三个月，体检单上的箭头全没了。"
        "隔壁牌子的鱼油跟它比差远了。今天下单立减50元。"
    )
    result = engine.review(draft)
    layers = {f.layer for f in result.findings}
    assert {"rule", "classifier"} <= layers
    for f in result.findings:
        assert f.citations, f.rule
        assert all(c.quote and c.page_start >= 1 for c in f.citations)
        payload = f.to_json()
        assert payload["layer"] in {"rule", "classifier"}
    assert "根治" in {f.text for f in result.findings if f.layer == "rule"}


def test_compliant_label_lines_are_not_flagged(engine: ReviewEngine) -> None:
    for line in [
        "【不适宜人群】少年儿童、孕妇、乳母、糖尿病患者",
        "【注意事项】本品不能代替药物；如正在服用降压药物，请咨询医生后食用",
        "【保健功能】有助于维持血压健康水平",
        "【功效成分及含量】每粒含：大豆异黄酮 30 mg",
        "消费者服务热线：400-100-2233（工作日9:00—17:00）",
    ]:
        assert not [f for f in engine.review(line, "label").findings if f.kind == "prohibited_claim"], line


# --- what the text is decides what it must contain --------------------------------------------------

PASTED_ADVERT = (
    "家人们，今天直播间给大家带来的是XX牌辅酶Q10软胶囊，每粒含辅酶Q10 30mg，有助于抗氧化。"
    "一盒60粒，今天下单只要129元，拍二发三，3号链接冲！"
)


def test_an_advert_pasted_as_auto_is_told_the_mandatory_statement_is_missing(
    rules_only: ReviewEngine,
) -> None:
    result = rules_only.review(PASTED_ADVERT, "auto")
    assert result.doc_type == "advert" and result.doc_type_source == "detected"
    assert {"直播间", "下单"} & set(result.doc_type_evidence)
    missing = {f.rule: f for f in result.findings if f.kind == "missing_statement"}
    assert {"no-substitute-for-medicine", "advert-approval-number"} <= set(missing)
    cited = {(c.title, c.article) for c in missing["no-substitute-for-medicine"].citations}
    assert (FSL, "第七十九条") in cited
    payload = result.to_json()
    assert payload["doc_type_source"] == "detected" and payload["doc_type_evidence"]


LEAFLET = """XX牌钙维生素D软胶囊说明书
【主要原料】碳酸钙、维生素D3
【功效成分及含量】每粒含：钙 300 mg、维生素D 5 μg
【保健功能】补充钙、维生素D
【适宜人群】需要补充钙和维生素D的成人
【不适宜人群】少年儿童、孕妇、乳母
【食用量及食用方法】每日1次，每次1粒
【规格】1.2 g/粒
【贮藏方法】密封，置阴凉干燥处
【保质期】24个月
【注意事项】本品不能代替药物；不宜超过推荐量或与同类营养素补充剂同时食用
【备案号】食健备G202231000123"""

ITEMS = {
    "health-function": "【保健功能】补充钙、维生素D",
    "suitable-group": "【适宜人群】需要补充钙和维生素D的成人",
    "unsuitable-group": "【不适宜人群】少年儿童、孕妇、乳母",
    "functional-ingredient-content": "【功效成分及含量】每粒含：钙 300 mg、维生素D 5 μg",
    "dosage-and-usage": "【食用量及食用方法】每日1次，每次1粒",
    "specification": "【规格】1.2 g/粒",
    "storage": "【贮藏方法】密封，置阴凉干燥处",
    "shelf-life": "【保质期】24个月",
    "approval-number": "【备案号】食健备G202231000123",
}


def test_a_complete_leaflet_is_read_as_one_and_lacks_nothing(rules_only: ReviewEngine) -> None:
    result = rules_only.review(LEAFLET)
    assert result.doc_type == "manual" and "说明书" in result.doc_type_evidence
    assert result.findings == [], [(f.rule, f.text) for f in result.findings]


@pytest.mark.parametrize("item", sorted(ITEMS))
def test_each_required_item_of_a_leaflet_is_reported_when_missing(
    rules_only: ReviewEngine, item: str
) -> None:
    draft = LEAFLET.replace(ITEMS[item] + "\n", "").replace("\n" + ITEMS[item], "")
    assert draft != LEAFLET
    missing = [f for f in rules_only.review(draft, "manual").findings if f.kind == "missing_statement"]
    assert [f.rule for f in missing] == [item]
    assert missing[0].citations and all(c.title == FSL for c in missing[0].citations)


def test_a_heading_with_nothing_after_it_is_missing(rules_only: ReviewEngine) -> None:
    draft = LEAFLET.replace("【保质期】24个月", "【保质期】")
    assert "shelf-life" in {f.rule for f in rules_only.review(draft, "manual").findings}
    label = LEAFLET.replace("说明书", "").replace(
        "【规格】1.2 g/粒", "【规格】1.2 g/粒　净含量：72 g（1.2 g/粒×60粒）"
    )
    assert rules_only.review(label).doc_type == "label"


def test_required_items_name_rules_of_the_rule_file() -> None:
    ids = {item["id"] for item in load_rules()["required_statements"]}
    assert set(ITEMS) | {"precautions", "no-substitute-for-medicine", "advert-approval-number"} == ids


@pytest.mark.slow
def test_train_review_runs_end_to_end_on_a_tiny_slice(tmp_path: Path) -> None:
    data = tmp_path / "raw"
    data.mkdir()
    rows = [
        json.loads(line)
        for source in sorted((PROJECT_ROOT / "evals" / "training" / "review" / "raw").glob("*.jsonl"))
        for line in source.read_text(encoding="utf-8").splitlines()[:200]
    ]
    tiny = [r for r in rows if r["label"] == COMPLIANT][:20] + [r for r in rows if r["label"] != COMPLIANT][:20]
    (data / "tiny.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in tiny), encoding="utf-8")
    report = train_review(data, tmp_path / "review", epochs=0.2)
    assert "threshold" in report.dev_metrics
    trained = ClaimClassifier(tmp_path / "review")
    assert 0.0 <= trained.predict("本品可以治疗糖尿病").violation <= 1.0
    assert not list((tmp_path / "review").glob("checkpoint*"))
