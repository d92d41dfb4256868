"""Consequence questions ("违反了会怎么罚？") reach the penalty article that punishes breaking the
duty at hand: the article the question names, one the conversation cited, or (inside a
conversation) the best retrieved one — through the cross-reference graph's `penalty` edges."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import yaml

from assistant.normalize import char_bigrams
from assistant.numerals import article_number
from assistant.sentences import split_sentences
from assistant.snapshot import Snapshot
from assistant.types import Chunk, Hit

_CUES_FILE = Path(__file__).resolve().parent.parent / "data" / "consequences.yaml"
_RETRIEVED_DUTIES = 2  # how many of the best retrieved articles may stand for "the duty at hand"
_MAX_CANDIDATES = 6  # penalty articles the judge chooses among (by one sentence each: cheap)
_SENTENCE_CHARS = 200
_RESTATING = 3  # penalty articles found by their words that the judge chooses among


@lru_cache(maxsize=1)
def _question_cues() -> re.Pattern[str]:
    data = yaml.safe_load(_CUES_FILE.read_text(encoding="utf-8"))
    return re.compile("|".join(re.escape(str(c)) for c in data["question_cues"]))


def asks_consequence(question: str) -> bool:
    return bool(_question_cues().search(question))


def _key(doc_id: str, article: str) -> tuple[str, int] | None:
    number = article_number(article)
    return (doc_id, number) if number else None


def _in_liability_chapter(chunk: Chunk) -> bool:
    return "法律责任" in chunk.heading_path


def _punishes(snap: Snapshot, chunk: Chunk) -> bool:
    """Whether the chunk's article is itself a penalty article (then it answers the question)."""
    key = _key(chunk.doc_id, chunk.article)
    return _in_liability_chapter(chunk) or bool(
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


def _liability_chapter(snap: Snapshot, doc_id: str) -> list[Chunk]:
    return [
        c
        for parts in snap.articles.articles.get(doc_id, {}).values()
        for c in parts
        if _in_liability_chapter(c)
    ]


def _restating_items(
    snap: Snapshot, chunks: list[Chunk], duty: tuple[str, int]
) -> list[tuple[list[Chunk], str]]:
    """Penalty articles found by their words, each with the sentence (usually an item, "（六）安排未取得
    健康证明的人员…") that restates the duty's act most closely. A penalty article that describes the act
    instead of citing the duty's number has no `penalty` edge; its opening is a lead-in shared by many
    acts, so the item is what tells the candidates apart, and what ranks them: the `_RESTATING` whose
    item shares most with the duty. Words shared by many of the candidates' sentences (违反本法规定,
    监督管理部门) count for little."""
    duty_words = char_bigrams("".join(c.text for c in snap.articles.article(*duty)))
    sentences = {c.chunk_id: [s.text for s in split_sentences(c.text, min_chars=6)] for c in chunks}
    spread: dict[str, int] = {}
    for texts in sentences.values():
        for text in texts:
            for bigram in char_bigrams(text) & duty_words:
                spread[bigram] = spread.get(bigram, 0) + 1

    def restating(text: str) -> float:
        return sum(1 / spread[b] for b in char_bigrams(text) & duty_words if b in spread)

    ranked: list[tuple[float, list[Chunk], str]] = []
    for chunk in chunks:
        texts = sentences[chunk.chunk_id] or [chunk.text[:_SENTENCE_CHARS]]
        shared, item = max(((restating(t), t) for t in texts), key=lambda x: x[0])
        key = _key(chunk.doc_id, chunk.article)
        # The article's opening part with the item's part: the opening holds the penalty itself.
        parts = snap.articles.article(*key)[:1] if key else []
        ranked.append((shared, list(dict.fromkeys([chunk, *parts])), item))
    ranked.sort(key=lambda r: -r[0])  # stable: equal ones keep the chapter's order
    return [(found, item) for _, found, item in ranked[:_RESTATING]]


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
    where it has none, the duty's document's 法律责任 chapter is read for the articles that restate its
    act — or, where the "duty" is itself a penalty article (the earlier turn asked for the advertiser's
    fine, this one asks "代言人呢？"), `search_liability` finds one there by the question's words.
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
    if not candidates and duties:
        duty = duties[0]
        if any(_in_liability_chapter(c) for c in snap.articles.article(*duty)):
            searched = search_liability(duty[0]) if search_liability is not None else []
            candidates = [([c], c.text[:_SENTENCE_CHARS]) for c in searched]
        else:
            candidates = _restating_items(snap, _liability_chapter(snap, duty[0]), duty)
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
