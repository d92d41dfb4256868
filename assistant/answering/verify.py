"""Citation verification, run after every generator: each answer sentence must carry a `[n]` marker
pointing at a retrieved chunk that supports it — every number in the sentence and most of its key
terms occur in that chunk — and every cited article must exist in the index."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.normalize import match_key
from assistant.sentences import markers, split_answer, strip_markers
from assistant.tokenize import content_terms
from assistant.types import AnswerSentence, Chunk

_ARABIC = re.compile(r"\d+(?:\.\d+)?")
_CHINESE_QUANTITY = re.compile(
    r"[零一二两三四五六七八九十百千万]+(?=倍|日|天|年|个月|月|小时|个工作日|万元|元|次|周|%)"
)
# Words of the fixed frame the generators put around quotations; not claims that need support.
_FRAME = re.compile(
    r"根据|依据|按照|规定|指出|要求|明确|其中|如下|以下|相关|条文|内容|原文|《[^》]*》|第[零一二三四五六七八九十百千0-9]+[条款项章节]"
)
_TITLE = re.compile(r"《[^》]*》")
MIN_TERM_SUPPORT = 0.75


@dataclass(frozen=True)
class SupportContext:
    chunks: dict[int, Chunk]  # citation number → chunk
    existing_chunk_ids: set[str]


def numbers_in(text: str) -> set[str]:
    return set(_ARABIC.findall(text)) | set(_CHINESE_QUANTITY.findall(text))


def _support_key(chunk: Chunk) -> str:
    return match_key(f"{chunk.title}{chunk.heading_path}{chunk.article}{chunk.text}")


def check_sentence(sentence: str, context: SupportContext) -> AnswerSentence:
    cited = markers(sentence)
    body = strip_markers(sentence)
    if not cited:
        return AnswerSentence(sentence, [], False, "没有引用标记")
    unknown = [n for n in cited if n not in context.chunks]
    if unknown:
        return AnswerSentence(sentence, cited, False, f"引用编号 {unknown} 不在检索结果中")
    missing_ids = [n for n in cited if context.chunks[n].chunk_id not in context.existing_chunk_ids]
    if missing_ids:
        return AnswerSentence(sentence, cited, False, f"引用 {missing_ids} 的条文不在索引中")
    support = "".join(_support_key(context.chunks[n]) for n in cited)
    support_raw = "".join(
        f"{context.chunks[n].title}{context.chunks[n].heading_path}{context.chunks[n].article}{context.chunks[n].text}"
        for n in cited
    )
    # Whole numbers are compared, not substrings: "3日" is not supported by "30日", nor "四倍" by "第一百四十八条".
    support_numbers = numbers_in(support_raw)
    absent_numbers = [n for n in numbers_in(_TITLE.sub("", body)) if n not in support_numbers]
    if absent_numbers:
        return AnswerSentence(
            sentence, cited, False, f"数字 {'、'.join(sorted(absent_numbers))} 不见于所引条文"
        )
    terms = [k for k in (match_key(t) for t in content_terms(_FRAME.sub(" ", body))) if k]
    if terms:
        share = sum(t in support for t in terms) / len(terms)
        if share < MIN_TERM_SUPPORT:
            return AnswerSentence(sentence, cited, False, f"关键词只有 {share:.0%} 见于所引条文")
    return AnswerSentence(sentence, cited, True)


def verify(answer: str, context: SupportContext) -> list[AnswerSentence]:
    return [check_sentence(s, context) for s in split_answer(answer)]
