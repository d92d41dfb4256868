"""Conversations: the follow-up judge, follow-ups through the library API and `ask --batch` with history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assistant.answering.followup import turn_of
from assistant.answering.followup_judge import FollowUpJudge
from assistant.engine import Assistant
from assistant.retrieve import Candidate, JudgeReading
from assistant.settings import PROJECT_ROOT
from assistant.training.followup_train import train_followup
from assistant.types import Hit


@pytest.fixture(scope="module")
def followup_judge() -> FollowUpJudge:
    return FollowUpJudge()


@pytest.mark.parametrize(
    ("earlier", "question"),
    [
        ("保健食品广告里能说可以治疗高血压吗？", "如果已经发了，会被怎么罚？"),
        ("保健食品广告需要审查吗？", "如果没审查就发出去了，会怎么罚？"),
        ("网络食品交易第三方平台要对入网商户做什么审查？", "做不到的话平台要担什么责任"),
        ("国产保健食品备案要交哪些材料？", "进口的也一样吗"),
        ("食品生产许可证要去哪个部门申请？", "多久能批下来"),
    ],
)
def test_follow_ups_that_need_the_conversation_continue_it(
    followup_judge: FollowUpJudge, earlier: str, question: str
) -> None:
    assert followup_judge.continues(question, [earlier])


@pytest.mark.parametrize(
    ("earlier", "question"),
    [
        ("保健食品广告里能说可以治疗高血压吗？", "保健食品的标签上必须标注哪些内容？"),
        ("保健食品广告里能说可以治疗高血压吗？", "另外，食品生产许可证的有效期是几年？"),
        ("食品生产许可证要去哪个部门申请？", "那消费者买到过期食品可以要求几倍赔偿？"),
    ],
)
def test_new_topics_stand_alone_whatever_their_first_word(
    followup_judge: FollowUpJudge, earlier: str, question: str
) -> None:
    assert not followup_judge.continues(question, [earlier])


@pytest.mark.slow
def test_a_follow_up_about_the_penalty_reaches_the_article_that_punishes_the_duty(
    corpus_assistant: Assistant,
) -> None:
    first = corpus_assistant.ask("保健食品广告不得含有哪些内容？")
    assert not first.refused
    turn = turn_of(first)
    follow_up = corpus_assistant.ask("已经发出去了，会被怎么罚？", history=[turn])
    assert not follow_up.refused
    assert "违反本法第十八条规定发布保健食品广告的" in follow_up.answer
    assert follow_up.citations[0].article == "第五十八条"

    switch = corpus_assistant.ask("保健食品的标签上必须标注哪些内容？", history=[turn])
    assert switch.standalone_question == "保健食品的标签上必须标注哪些内容？"
    assert all(c.article != "第五十八条" for c in switch.citations)


@pytest.mark.slow
def test_a_penalty_follow_up_quotes_the_item_that_restates_the_duty_and_its_fine(
    corpus_assistant: Assistant,
) -> None:
    """食品安全法第一百二十六条 punishes breaking 第四十五条 without naming it: no graph edge leads there."""
    first = corpus_assistant.ask("我开了家面馆，帮工要不要办健康证？")
    follow_up = corpus_assistant.ask("没办就让他上岗了，查到了怎么处理？", history=[turn_of(first)])
    assert follow_up.citations[0].article == "第一百二十六条"
    assert "安排未取得健康证明" in follow_up.answer
    assert "拒不改正的，处五千元以上五万元以下罚款" in follow_up.answer


@pytest.mark.slow
def test_a_follow_up_is_read_deeper_and_expanded_from_its_own_words(
    corpus_assistant: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rewritten follow-up finds its passage lower down the fused order than a single question does,
    and its rewrite carries the earlier question, whose everyday words were expanded when it was asked."""
    searcher = corpus_assistant.searcher
    judged, search = searcher._judged, searcher.search
    readings: list[JudgeReading] = []
    expanded_from: list[str | None] = []

    def spy_judged(q: str, ranked: list[Candidate], reading: JudgeReading) -> list[Candidate]:
        readings.append(reading)
        return judged(q, ranked, reading)

    def spy_search(query: str, *args: Any, **kwargs: Any) -> list[Hit]:
        expanded_from.append(kwargs.get("expand_from"))
        return search(query, *args, **kwargs)

    monkeypatch.setattr(searcher, "_judged", spy_judged)
    monkeypatch.setattr(searcher, "search", spy_search)
    first = corpus_assistant.ask("给超市采购经理塞红包，让他多进我们的货，算违法吗？")
    single = JudgeReading(corpus_assistant.settings.judge_depth, corpus_assistant.settings.judge_budget)
    assert readings and set(readings) == {single}
    assert expanded_from == [None]
    readings.clear()
    follow_up = corpus_assistant.ask("老板本人也要担责吗？", history=[turn_of(first)])
    assert follow_up.continues_conversation
    s = corpus_assistant.settings
    assert readings[0] == JudgeReading(s.followup_judge_depth, s.followup_judge_budget) != single
    assert expanded_from[1:] and set(expanded_from[1:]) == {"老板本人也要担责吗？"}


@pytest.mark.slow
def test_ask_batch_accepts_conversations(corpus_assistant: Assistant, tmp_path: Path) -> None:
    lines = [
        {
            "id": "follow-up",
            "question": "已经发出去了，会被怎么罚？",
            "history": [
                {
                    "question": "保健食品广告不得含有哪些内容？",
                    "answer": "见《中华人民共和国广告法》第十八条。",
                }
            ],
        },
        {"id": "broken", "question": "会被怎么罚？", "history": "保健食品广告"},
        {"id": "alone", "question": "保健食品广告不得含有哪些内容？"},
    ]
    batch = tmp_path / "conversations.jsonl"
    batch.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    env = {
        **os.environ,
        "ASSISTANT_INDEX_DIR": str(corpus_assistant.settings.index_dir),
        "ASSISTANT_DATA_DIR": str(corpus_assistant.settings.data_dir),
    }
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", "--batch", str(batch), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=600,
        check=True,
    ).stdout
    results = {r["id"]: r for r in map(json.loads, out.splitlines())}
    follow_up = results["follow-up"]
    assert follow_up["continues_conversation"] and "保健食品广告" in follow_up["standalone_question"]
    assert follow_up["citations"][0]["article"] == "第五十八条"
    assert "history" in results["broken"]["error"]
    assert results["alone"]["continues_conversation"] is False
    assert results["alone"]["standalone_question"] == "保健食品广告不得含有哪些内容？"


@pytest.mark.slow
def test_train_followup_runs_end_to_end_on_a_tiny_slice(tmp_path: Path) -> None:
    data = tmp_path / "raw"
    data.mkdir()
    source = PROJECT_ROOT / "evals" / "training" / "followup" / "raw" / "followup_a.jsonl"
    (data / "tiny.jsonl").write_text(
        "\n".join(source.read_text(encoding="utf-8").splitlines()[:40]), encoding="utf-8"
    )
    report = train_followup(data, tmp_path / "followup", epochs=0.2)
    assert set(report.dev_metrics) >= {"dev_accuracy", "dev_wrong_merges", "threshold"}
    trained = FollowUpJudge(tmp_path / "followup")
    assert 0.0 <= trained.probability("经营者呢？", ["生产者要承担什么责任？"]) <= 1.0
    assert not list((tmp_path / "followup").glob("checkpoint*"))
    assert {p.name for p in (tmp_path / "followup").iterdir()} >= {
        "model.onnx",
        "calibration.json",
        "training.json",
    }
