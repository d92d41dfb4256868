"""Draft review end to end on the real bundled index (slow: the model and the ingested corpus),
through `Assistant.review` and the `review` command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.engine import Assistant
from assistant.review.engine import Finding
from assistant.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

FSL = "中华人民共和国食品安全法"
AD = "中华人民共和国广告法"

NONCOMPLIANT_ADVERT = """【XX牌深海鱼油软胶囊 · 电视购物节目文稿】
主持人：各位观众朋友，血压高、血脂高、头晕胸闷，是不是困扰您很多年了？今天给您介绍的XX牌深海鱼油软胶囊，精选挪威深海鱼油，每粒含EPA和DHA 600mg。
主持人：很多老顾客反映，吃了我们的鱼油，三天见效，一个疗程下来，血管里的垃圾全清干净了！坚持服用，高血压、高血脂都能根治，再也不用担心中风、心梗。
嘉宾：我在三甲医院心内科工作了三十年，医生推荐的就是这款鱼油。它是纯天然提取，比药物更安全，没有任何副作用，很多患者都已经不用再吃药了。
主持人：这款产品还是特供产品，过去只有机关单位才能买到，今天首次向全国观众开放！
主持人：心动不如行动！今天原价每盒698元，现在订购只要298元，买三盒送两盒，全国包邮，货到付款！
订购热线：400-888-1234，前100名订购的观众朋友还将获赠价值199元的电子血压计一台。名额有限，赶快拿起电话拨打吧！"""

COMPLIANT_LABEL = """XX牌辅酶Q10维生素E软胶囊
【备案号】食健备G202437001045
【原料】辅酶Q10、维生素E（dl-α-醋酸生育酚）
【辅料】大豆油、明胶、甘油、纯化水、焦糖色
【功效成分及含量】每粒含：辅酶Q10 30mg、维生素E 15mg
【保健功能】有助于抗氧化
【适宜人群】中老年人
【不适宜人群】少年儿童、孕妇、乳母
【食用量及食用方法】每日1次，每次1粒，随餐用温开水送服
【规格】0.5g/粒
【贮藏方法】密封，置阴凉干燥处，避免阳光直射
【保质期】24个月
【注意事项】本品不能代替药物；适宜人群外的人群不推荐食用本产品；正在服用华法林等抗凝血药物者，请在医生指导下食用
【产品技术要求】见备案产品技术要求
【生产企业】XX生物科技（山东）有限公司
【生产许可证编号】SC12737010200211
【消费者服务热线】400-100-2233（工作日9:00—17:00）
保健食品不是药物，不能代替药物治疗疾病"""

# phrase in the advert → (family, a clause it must cite)
EXPECTED = [
    ("三天见效", "efficacy_guarantee", (AD, "第十八条第一款第一项")),
    ("根治", "disease_claim", (FSL, "第七十八条")),
    ("根治", "disease_claim", (AD, "第十八条第一款第二项")),
    ("三甲医院", "endorsement", (AD, "第十八条第一款第五项")),
    ("医生推荐", "endorsement", (AD, "第十八条第一款第五项")),
    ("比药物更安全", "medicine_comparison", (AD, "第十八条第一款第四项")),
    ("没有任何副作用", "efficacy_guarantee", (AD, "第十八条第一款第一项")),
    ("不用再吃药", "medicine_comparison", (AD, "第十八条第一款第四项")),
    ("特供", "state_organ_name", (AD, "第九条第二项")),
]


def _covering(findings: list[Finding], draft: str, phrase: str) -> list[Finding]:
    i = draft.index(phrase)
    return [f for f in findings if f.start >= 0 and f.start < i + len(phrase) and i < f.end]


def test_noncompliant_advert_is_flagged_with_real_citations(corpus_assistant: Assistant) -> None:
    assert len(NONCOMPLIANT_ADVERT) >= 300
    result = corpus_assistant.review(NONCOMPLIANT_ADVERT)
    assert result.doc_type == "advert" and result.notice == ""
    for phrase, family, clause in EXPECTED:
        hits = [f for f in _covering(result.findings, NONCOMPLIANT_ADVERT, phrase) if f.family == family]
        assert hits, (phrase, [(f.rule, f.text) for f in result.findings])
        assert any(clause in {(c.title, c.article) for c in f.citations} for f in hits), (phrase, clause)
    # the hotline and the prices are not findings
    for phrase in ("400-888-1234", "298元", "698元"):
        assert _covering(result.findings, NONCOMPLIANT_ADVERT, phrase) == [], phrase

    missing = {f.rule: f for f in result.findings if f.kind == "missing_statement"}
    assert set(missing) == {"no-substitute-for-medicine", "advert-approval-number"}
    cited = {(c.title, c.article): c for c in missing["no-substitute-for-medicine"].citations}
    assert (FSL, "第七十九条") in cited
    assert "本品不能代替药物" in cited[(AD, "第十八条第二款")].quote


def test_every_citation_is_indexed_text_with_a_page(corpus_assistant: Assistant) -> None:
    result = corpus_assistant.review(NONCOMPLIANT_ADVERT)
    assert result.findings
    for f in result.findings:
        assert f.citations, f.rule
        for c in f.citations:
            assert c.page_start >= 1 and c.page_end >= c.page_start
            article = corpus_assistant.lookup(c.title + c.article)
            assert article.found and c.quote and c.quote in article.text, (f.rule, c.title, c.article)
            assert c.doc_id == article.doc_id


def test_compliant_label_has_no_findings(corpus_assistant: Assistant) -> None:
    result = corpus_assistant.review(COMPLIANT_LABEL)
    assert result.doc_type == "label"
    assert result.findings == [], [(f.rule, f.text) for f in result.findings]
    assert result.notice == ""


def test_very_long_draft_is_truncated_with_a_notice(corpus_assistant: Assistant) -> None:
    draft = ((NONCOMPLIANT_ADVERT + "\n") * (100_000 // len(NONCOMPLIANT_ADVERT) + 1))[:100_000]
    assert len(draft) == 100_000
    limit = corpus_assistant.settings.max_draft_chars
    assert limit < len(draft)
    result = corpus_assistant.review(draft)
    assert result.notice and str(limit) in result.notice
    assert result.draft == draft[:limit]
    assert result.findings
    for f in result.findings:
        if f.start >= 0:
            assert 0 <= f.start < f.end <= limit
            assert f.text == draft[f.start : f.end]
    assert "no-substitute-for-medicine" in {f.rule for f in result.findings}


# --- command line --------------------------------------------------------------------------------


def _cli(
    corpus_assistant: Assistant, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ASSISTANT_INDEX_DIR": str(corpus_assistant.settings.index_dir),
        "ASSISTANT_DATA_DIR": str(corpus_assistant.settings.data_dir),
        "PYTHONIOENCODING": "utf-8",
    }
    return subprocess.run(
        [sys.executable, "-m", "assistant", "review", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=PROJECT_ROOT,
        timeout=600,
    )


def test_cli_review_from_stdin_as_json(corpus_assistant: Assistant) -> None:
    proc = _cli(corpus_assistant, "-", "--json", stdin=NONCOMPLIANT_ADVERT)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert payload["doc_type"] == "advert"
    findings = payload["findings"]
    assert findings
    texts = {f["text"] for f in findings}
    assert {"三天见效", "根治", "医生推荐", "比药物更安全", "特供"} <= texts
    for f in findings:
        assert {"kind", "rule", "text", "start", "end", "message", "severity", "citations"} <= set(f)
        assert f["citations"]
        if f["start"] >= 0:
            assert NONCOMPLIANT_ADVERT[f["start"] : f["end"]] == f["text"]


def test_cli_review_batch(corpus_assistant: Assistant, tmp_path: Path) -> None:
    batch = tmp_path / "drafts.jsonl"
    rows = [
        {"id": "bad-advert", "draft": NONCOMPLIANT_ADVERT},
        {"id": "good-label", "draft": COMPLIANT_LABEL},
    ]
    batch.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    proc = _cli(corpus_assistant, "--batch", str(batch))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.strip()]
    assert [ln["id"] for ln in lines] == ["bad-advert", "good-label"]
    bad, good = lines
    assert any(f["text"] == "根治" for f in bad["findings"])
    assert good["findings"] == []
