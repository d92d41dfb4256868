"""Follow-up questions ("那注册呢？") rewritten into standalone questions from the chat history.

Whether a question continues the conversation is the follow-up judge's decision
(`followup_judge.py`; `is_follow_up` judges by form when it is switched off). The rewrite itself is
rule-based (extractive mode): a continuation either swaps a slot term into the previous question
(备案 → 注册) or is appended to it as context."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from assistant.normalize import normalize_query
from assistant.types import Answer

_SLOTS_FILE = Path(__file__).resolve().parent.parent / "data" / "followup_slots.yaml"
_ELLIPTIC_START = re.compile(r"^(?:那|那么|那如果|如果是|如果|要是|还有|另外|再问|换成|改成|是不是也|也)")
_TRAILING = re.compile(r"(?:呢|吗|啊|呀)?[？?。！!]*$")
# "还有个事，…" / "另外问下，…" / "对了，…": a spoken opener before a whole question says only that a
# question follows; the search and the judge read the question without it.
_OPENER = re.compile(r"^(?:另外|还有|对了|顺便|再)(?:个事|个问题|一件事|一个问题|问一下|问下|问问)?[，,：:]\s*")
_PRONOUN = re.compile(r"这个|这种|这样|这条|该条|上述|它|他们|这些|那个|那种|前者|后者")


@dataclass(frozen=True)
class Turn:
    """One exchange of a conversation, as the UI keeps it."""

    question: str
    answer: str = ""
    standalone_question: str = ""
    articles: tuple[str, ...] = ()  # the articles the answer cited ("《广告法》第十八条"), for follow-ups


def turn_of(answer: Answer) -> Turn:
    """What the conversation keeps of an answered turn (the chat and the evaluation build the same)."""
    return Turn(
        answer.question,
        answer.answer,
        answer.standalone_question,
        tuple(f"《{c.title}》{c.article}" for c in answer.citations),
    )


@lru_cache(maxsize=1)
def slots() -> list[list[str]]:
    data = yaml.safe_load(_SLOTS_FILE.read_text(encoding="utf-8")) or {}
    return [[str(t) for t in group] for group in data.get("slots", [])]


def without_opener(question: str) -> str:
    rest = _OPENER.sub("", question.strip())
    return rest if len(rest) >= 4 else question.strip()


def is_follow_up(question: str) -> bool:
    q = question.strip()
    core = _TRAILING.sub("", _ELLIPTIC_START.sub("", q))
    return bool(_ELLIPTIC_START.match(q)) or len(core) <= 6 or bool(_PRONOUN.search(q))


def rewrite_follow_up(question: str, history: list[Turn], continues: bool | None = None) -> str:
    """A standalone version of `question` given earlier turns (the question itself, without a spoken
    opener, if it stands alone). `continues`: the follow-up judge's decision; None decides by the
    question's form alone."""
    question = normalize_query(question).replace("\n", " ")
    if not history or not (is_follow_up(question) if continues is None else continues):
        return without_opener(question)
    previous = history[-1].standalone_question or history[-1].question
    previous = normalize_query(previous).replace("\n", " ")
    # "另外，…" loses its opening word, and with it the comma after it.
    core = _TRAILING.sub("", _ELLIPTIC_START.sub("", without_opener(question))).strip().lstrip("，,、；;：: ")
    for group in slots():
        new_terms = [t for t in group if t in core]
        old_terms = [t for t in group if t in previous and t not in core]
        # The earlier question already names the new term ("是要注册还是备案？" → "备案要准备哪些材料？"):
        # nothing to swap, the follow-up asks within its frame.
        if new_terms and old_terms and not any(t in previous for t in new_terms):
            # Longest first, so "特殊医学用途配方食品" is not half-replaced via "食品".
            old = max(old_terms, key=len)
            rewritten = previous.replace(old, max(new_terms, key=len))
            rest = core
            for t in new_terms:
                rest = rest.replace(t, "")
            return rewritten if not rest.strip("的是了 ") else f"{rewritten}（{core}）"
    base = _TRAILING.sub("", previous)
    return f"{base}，{core}？" if core else previous
