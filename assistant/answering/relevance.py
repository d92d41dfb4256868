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

from assistant.retrieve import RelevanceSignals

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class Verdict:
    answerable: bool
    reason: str = ""  # shown to the user when not answerable
    subject: str = ""


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


def assess(question: str, signals: RelevanceSignals, titles: list[str]) -> Verdict:
    if signals.cited_article:
        return Verdict(True)
    subject = out_of_scope_subject(question, titles)
    if subject:
        return Verdict(
            False,
            f"文档库收录的是我国食品、保健食品监管的法律法规和文件，不涉及“{subject}”方面的规定。",
            subject,
        )
    if answerable_probability(signals) < refusal_model()["threshold"]:
        return Verdict(False, "文档库中没有找到与这个问题足够相关的条文。")
    return Verdict(True)
