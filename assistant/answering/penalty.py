"""Consequence questions ("违反了会怎么罚？") reach the penalty article that punishes breaking the
duty at hand: the article the question names, one the previous turn cited, or the best retrieved
one — through the cross-reference graph's `penalty` edges."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

from assistant.numerals import chinese_to_int
from assistant.snapshot import Snapshot
from assistant.types import Chunk, Hit

_CUES_FILE = Path(__file__).resolve().parent.parent / "data" / "consequences.yaml"
_RETRIEVED_DUTIES = 2  # how many of the best retrieved articles may stand for "the duty at hand"


@lru_cache(maxsize=1)
def _question_cues() -> re.Pattern[str]:
    data = yaml.safe_load(_CUES_FILE.read_text(encoding="utf-8"))
    return re.compile("|".join(re.escape(str(c)) for c in data["question_cues"]))


def asks_consequence(question: str) -> bool:
    return bool(_question_cues().search(question))


def _key(doc_id: str, article: str) -> tuple[str, int] | None:
    number = chinese_to_int(article[1:-1]) if article.endswith("条") else None
    return (doc_id, number) if number else None


def _punishes(snap: Snapshot, chunk: Chunk) -> bool:
    """Whether the chunk's article is itself a penalty article (then it answers the question)."""
    key = _key(chunk.doc_id, chunk.article)
    return "法律责任" in chunk.heading_path or bool(
        key and any(e.kind == "penalty" for e in snap.citations.edges_from(*key))
    )


def earlier_articles(snap: Snapshot, texts: list[str]) -> list[tuple[str, int]]:
    """Articles named in earlier turns' questions and answers ("《广告法》第十八条"), in order."""
    found: list[tuple[str, int]] = []
    for text in texts:
        for ref, doc_id in snap.articles.parse(text):
            if doc_id and (doc_id, ref.article) not in found:
                found.append((doc_id, ref.article))
    return found


def with_penalties(snap: Snapshot, hits: list[Hit], earlier: list[tuple[str, int]]) -> list[Hit]:
    """`hits` with the penalty articles for the duty at hand first (cited by the question, then by
    the conversation, then the best retrieved articles that have one); unchanged if none has."""
    duties = [k for h in hits if h.cited and (k := _key(h.chunk.doc_id, h.chunk.article))]
    duties += earlier
    retrieved = [h.chunk for h in hits if not h.cited][:_RETRIEVED_DUTIES]
    if retrieved and not _punishes(snap, retrieved[0]):
        duties += [k for c in retrieved if (k := _key(c.doc_id, c.article))]
    penalties: list[Chunk] = []
    for doc_id, number in dict.fromkeys(duties):
        # A penalty for breaking the article as a whole before one for breaking a single 款/项 of it.
        links = sorted(snap.citations.penalties_for(doc_id, number), key=lambda e: bool(e.paragraph or e.item))
        for link in links:
            source = _key(link.source_doc, link.source_article)
            parts = snap.articles.article(*source) if source else []
            # Of a long penalty article: its opening part (the penalty) and the part naming the duty.
            naming = [p for p in parts if link.sentence.rstrip("…")[:40] in p.text]
            penalties += [p for p in [*parts[:1], *naming] if p not in penalties]
        if penalties:
            break  # the first duty that is punished anywhere is the one the question is about
    if not penalties:
        return hits
    top = max((h.score for h in hits), default=0.0)
    ids = {c.chunk_id for c in penalties}
    return [Hit(c, top + 2.0, cited=True) for c in penalties] + [
        h for h in hits if h.chunk.chunk_id not in ids
    ]
