"""Is the library able to answer this? A scope check (subjects the library does not cover) and a
relevance gate: a logistic model over retrieval signals, calibrated on the golden set
(`python -m assistant eval calibrate-refusal` writes data/refusal.json)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from assistant.retrieve import RelevanceSignals

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class Verdict:
    answerable: bool
    reason: str = ""  # shown to the user when not answerable
    subject: str = ""  # the uncovered subject of a scope refusal
    near_miss: bool = False  # refused, but the nearest clauses came close: worth pointing at


@lru_cache(maxsize=1)
def scope() -> dict[str, list[str]]:
    data = yaml.safe_load((DATA_DIR / "scope.yaml").read_text(encoding="utf-8")) or {}
    return {k: [str(t) for t in v] for k, v in data.items() if isinstance(v, list)}


@lru_cache(maxsize=1)
def refusal_model() -> dict[str, Any]:
    return dict(json.loads((DATA_DIR / "refusal.json").read_text(encoding="utf-8")))


def answerable_probability(signals: RelevanceSignals) -> float:
    """Logistic model over the retrieval signals, fitted by `eval calibrate-refusal`."""
    model = refusal_model()
    z = model["bias"] + sum(
        w * (x - m) / s
        for w, x, m, s in zip(model["weights"], signals.vector(), model["mean"], model["std"], strict=True)
    )
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def out_of_scope_subject(question: str, titles: list[str]) -> str:
    """The uncovered subject the question is about, or "" (a subject named by an indexed title is covered)."""
    s = scope()

    def covered(term: str) -> bool:
        return any(term in t for t in titles)

    for term in s.get("foreign", []) + s.get("other_fields", []):
        if term in question and not covered(term):
            return term
    if not any(a in question for a in s.get("food_anchors", [])):
        for term in s.get("other_products", []):
            if term in question and not covered(term):
                return term
    return ""


_ASKS_QUANTITY = re.compile(r"多少|几[年天日次倍岁批周月名人]|几个(?:月|工作日|人)|多久|多长时间|哪天|哪一天")
_NUMERAL = r"(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百千万]+)"
# The figure a question asks for must come in its unit: "几年" is not answered by "十万元".
_ASKED_UNIT = [
    (re.compile(r"几年|多少年"), re.compile(_NUMERAL + r"\s*年")),
    (re.compile(r"几个?月|多少个月"), re.compile(_NUMERAL + r"\s*个?月")),
    (re.compile(r"几天|多少天|几日|多少日|工作日"), re.compile(_NUMERAL + r"\s*(?:个工作日|日|天)")),
    # A fine is stated in yuan or as a multiple (of the goods' value, of the advertising fee).
    (
        re.compile(r"多少钱|多少费|费用|多少元|罚多少|罚款|多少万|收费|审评费"),
        re.compile(_NUMERAL + r"\s*(?:万?元|倍)"),
    ),
    (re.compile(r"多少倍|几倍"), re.compile(_NUMERAL + r"\s*倍")),
    (re.compile(r"多少分|几分"), re.compile(_NUMERAL + r"\s*分")),
    (re.compile(r"多少例|几例"), re.compile(_NUMERAL + r"\s*例")),
    (re.compile(r"多少家|几家"), re.compile(_NUMERAL + r"\s*家")),
    (re.compile(r"率|比例|占比|百分之几"), re.compile(_NUMERAL + r"\s*%|百分之|[一二三四五六七八九]成")),
]
_ANY_QUANTITY = re.compile(
    _NUMERAL + r"\s*(?:倍|日|天|个工作日|年|个月|月|万?元|次|批|周|岁|%|名|人|家)"
    r"|\d|每年|每月|每日|每天|每周|每季度|立即|当日|当天|及时"
)


def lacks_asked_quantity(question: str, quoted: list[str]) -> bool:
    """The question asks for a figure (an amount, a period, a count) and no quoted clause states one
    in the unit asked for: the documents do not give it, and the nearest clause without it is no answer."""
    if not _ASKS_QUANTITY.search(question):
        return False
    wanted = next((unit for asks, unit in _ASKED_UNIT if asks.search(question)), _ANY_QUANTITY)
    # Document titles ("（2022—2024年）") in the frame state nothing.
    bodies = [re.sub(r"《[^》]*》", "", q) for q in quoted]
    return not any(wanted.search(b) for b in bodies)


def _scope_refusal(question: str, titles: list[str]) -> Verdict | None:
    subject = out_of_scope_subject(question, titles)
    if not subject:
        return None
    return Verdict(
        False,
        f"文档库收录的是我国食品、保健食品监管的法律法规和文件，不涉及“{subject}”方面的规定。",
        subject,
    )


def judged(
    question: str, best: float, gate: float, cited_article: bool, titles: list[str], familiar: float
) -> Verdict:
    """Answer when the judge finds a retrieved passage that answers the question (`best`, its
    probability, reaches the calibrated `gate`); a question citing an existing article is a look-up
    and is always answered. A refused question in the library's own words (`familiar`: the share of
    its words the library uses) came close: the nearest clauses are worth pointing at."""
    if cited_article:
        return Verdict(True)
    scope_refusal = _scope_refusal(question, titles)
    if scope_refusal is not None:
        return scope_refusal
    if best < gate:
        return Verdict(False, "文档库中没有找到能回答这个问题的条文。", near_miss=familiar >= 0.5)
    return Verdict(True)


def assess(question: str, signals: RelevanceSignals, titles: list[str]) -> Verdict:
    if signals.cited_article:
        return Verdict(True)
    scope_refusal = _scope_refusal(question, titles)
    if scope_refusal is not None:
        return scope_refusal
    probability, threshold = answerable_probability(signals), refusal_model()["threshold"]
    if probability < threshold:
        return Verdict(
            False, "文档库中没有找到与这个问题足够相关的条文。", near_miss=probability >= threshold / 2
        )
    return Verdict(True)
