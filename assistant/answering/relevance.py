"""Is the library able to answer this? A scope check (subjects the library does not cover) and a
relevance gate: a logistic model over retrieval signals, calibrated on the golden set
(`python -m assistant eval calibrate-refusal` writes data/refusal.json)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from assistant.answering.quantities import asks_quantity, states_asked_quantity
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


def lacks_asked_quantity(question: str, quoted: list[str]) -> bool:
    """The question asks for a figure (an amount, a period, a count) and no quoted clause states one
    in the unit asked for: the documents do not give it, and the nearest clause without it is no answer."""
    return asks_quantity(question) and not any(states_asked_quantity(question, q) for q in quoted)


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
