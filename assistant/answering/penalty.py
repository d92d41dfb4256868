"""Consequence questions ("违反了会怎么罚？") reach the penalty article that punishes breaking the
duty at hand: the article the question names, one the conversation cited, or (inside a
conversation) the best retrieved one — through the cross-reference graph's `penalty` edges."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import yaml

from assistant.numerals import article_number
from assistant.snapshot import Snapshot
from assistant.types import Chunk, Hit

_CUES_FILE = Path(__file__).resolve().parent.parent / "data" / "consequences.yaml"
_RETRIEVED_DUTIES = 2  # how many of the best retrieved articles may stand for "the duty at hand"
_MAX_CANDIDATES = 6  # penalty articles the judge chooses among (by one sentence each: cheap)
_SENTENCE_CHARS = 200


@lru_cache(maxsize=1)
def _question_cues() -> re.Pattern[str]:
    data = yaml.safe_load(_CUES_FILE.read_text(encoding="utf-8"))
    return re.compile("|".join(re.escape(str(c)) for c in data["question_cues"]))


def asks_consequence(question: str) -> bool:
    return bool(_question_cues().search(question))


def _key(doc_id: str, article: str) -> tuple[str, int] | None:
    number = article_number(article)
    return (doc_id, number) if number else None


def _punishes(snap: Snapshot, chunk: Chunk) -> bool:
    """Whether the chunk's article is itself a penalty article (then it answers the question)."""
    key = _key(chunk.doc_id, chunk.article)
    return "法律责任" in chunk.heading_path or bool(
        key and any(e.kind == "penalty" for e in snap.citations.edges_from(*key))
    )


def _naming_key(sentence: str) -> str:
    """What identifies a citing sentence inside its chunk (the graph keeps it cut to 200 characters)."""
    return sentence.rstrip("…")[:40]


def earlier_articles(snap: Snapshot, texts: list[str]) -> list[tuple[str, int]]:
    """Articles named in earlier turns' questions and answers ("《广告法》第十八条"), in order."""
    found: list[tuple[str, int]] = []
    for text in texts:
        for ref, doc_id in snap.articles.parse(text):
            if doc_id and (doc_id, ref.article) not in found:
                found.append((doc_id, ref.article))
    return found


def _penalty_articles(snap: Snapshot, duty: tuple[str, int]) -> list[tuple[tuple[list[Chunk], str], bool]]:
    """The articles that punish breaking `duty`, each as the part naming the duty and its opening part
    (the penalty), with the naming sentence, and whether it punishes the article as a whole."""
    out: list[tuple[tuple[list[Chunk], str], bool]] = []
    links = sorted(snap.citations.penalties_for(*duty), key=lambda e: bool(e.paragraph or e.item))
    for link in links:
        source = _key(link.source_doc, link.source_article)
        parts = snap.articles.article(*source) if source else []
        # The part naming the duty first, so its item (with the penalty's lead-in) is what gets quoted.
        naming = [p for p in parts if _naming_key(link.sentence) in p.text]
        chosen = list(dict.fromkeys([*naming, *parts[:1]]))
        if chosen and all(chosen != c for (c, _), _ in out):
            out.append(((chosen, link.sentence), not (link.paragraph or link.item)))
    return out


def with_penalties(
    snap: Snapshot,
    hits: list[Hit],
    earlier: list[tuple[str, int]],
    score: Callable[[list[str]], list[float]] | None = None,
    search_liability: Callable[[str], list[Chunk]] | None = None,
) -> list[Hit]:
    """`hits` with the penalty article for the duty at hand first. The duty: an article the question
    cites, then one the conversation cited, then, inside a conversation, the best retrieved ones
    (unless the best already punishes). Its penalty articles come from the graph (those of the first duty that has any);
    where it has none, `search_liability` may find one in the duty's document by its words.
    `score` (the judge, on each candidate's sentence naming the duty) picks the best of several;
    unchanged hits if there is none."""
    duties = [k for h in hits if h.cited and (k := _key(h.chunk.doc_id, h.chunk.article))]
    duties += earlier
    retrieved = [h.chunk for h in hits if not h.cited][:_RETRIEVED_DUTIES]
    # A retrieved article stands for the duty only inside a conversation: on single questions it
    # picked the wrong penalty more often than it found the right one.
    if earlier and retrieved and not _punishes(snap, retrieved[0]):
        duties += [k for c in retrieved if (k := _key(c.doc_id, c.article))]
    duties = list(dict.fromkeys(duties))
    # The first duty that is punished anywhere is the one the question is about; a penalty for
    # breaking it as a whole rules out those for single 款/项 of it.
    found = next((found for duty in duties if (found := _penalty_articles(snap, duty))), [])
    candidates = ([c for c, whole in found if whole] or [c for c, _ in found])[:_MAX_CANDIDATES]
    if not candidates and duties and search_liability is not None:
        candidates = [([c], c.text[:_SENTENCE_CHARS]) for c in search_liability(duties[0][0])]
    if not candidates:
        return hits
    if score is not None and len(candidates) > 1:
        values = score([sentence[:_SENTENCE_CHARS] for _, sentence in candidates])
        candidates = [c for _, c in sorted(zip(values, candidates, strict=True), key=lambda x: -x[0])]
    penalties, sentence = candidates[0]
    focus = sentence.rstrip("…")
    top = max((h.score for h in hits), default=0.0)
    ids = {c.chunk_id for c in penalties}
    routed = [Hit(c, top + 2.0, cited=True, focus=focus) for c in penalties]
    return routed + [h for h in hits if h.chunk.chunk_id not in ids]
