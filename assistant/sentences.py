"""Sentence splitting with offsets, for extractive selection and for citation verification."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ARTICLE_HEAD = re.compile(r"^第[零一二三四五六七八九十百千0-9]+条\s*")
_SENTENCE = re.compile(r"[^。！？；!?;\n]+[。！？；!?;]?")
_MARKER = re.compile(r"\[(\d{1,2})\]")
_LABEL_LINE = re.compile(r"[\u4e00-\u9fff]{2,8}[：:]")


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int  # offsets in the source text
    end: int


def split_sentences(text: str, min_chars: int = 2) -> list[Sentence]:
    out = []
    for m in _SENTENCE.finditer(text):
        raw = m.group()
        lead = len(raw) - len(raw.lstrip())
        body = raw.strip()
        if len(body) >= min_chars:
            out.append(Sentence(body, m.start() + lead, m.start() + lead + len(body)))
    return out


def sentence_probe(text: str) -> str:
    """What of a sentence is embedded to compare it with a question: without its 第X条 head, and
    only its start (slide text without punctuation runs on; its start is enough to judge it)."""
    return _ARTICLE_HEAD.sub("", text)[:160]


def markers(sentence: str) -> list[int]:
    """Citation numbers `[n]` carried by a sentence."""
    return [int(n) for n in _MARKER.findall(sentence)]


def strip_markers(sentence: str) -> str:
    return _MARKER.sub("", sentence).strip()


def split_answer(answer: str) -> list[str]:
    """An answer's sentences, each keeping the `[n]` markers that follow its end punctuation."""
    pieces: list[str] = []
    for line in answer.split("\n"):
        line = line.strip()
        if not line or _LABEL_LINE.fullmatch(line):
            continue  # empty, or a section label such as "相关规定：" that states nothing
        # A marker right after 。 belongs to the sentence before it.
        for m in re.finditer(r"[^。！？；!?;]+[。！？；!?;]?(?:\s*\[\d{1,2}\])*", line):
            piece = m.group().strip()
            if strip_markers(piece):
                pieces.append(piece)
            elif pieces:
                pieces[-1] += piece
    return pieces
