"""The offline generator: it selects sentences from the retrieved chunks and quotes them.

Every sentence it writes is either a sentence taken verbatim from a cited chunk or a fixed frame
(「根据《…》第X条：」) around one, so it cannot state anything the documents do not say. Prompt
injection inside a document is inert here: document text is only ever quoted, never obeyed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.answering.quantities import asks_quantity, states_asked_quantity
from assistant.embeddings import VectorCache
from assistant.judge import Judge
from assistant.normalize import match_key, one_line_query
from assistant.query_terms import expand_query
from assistant.sentences import Sentence, sentence_probe, split_sentences
from assistant.tokenize import content_terms
from assistant.types import Chunk, Hit

_ARTICLE_HEAD = re.compile(r"^第[零一二三四五六七八九十百千0-9]+条\s*")
_ITEM = re.compile(r"^[(（][一二三四五六七八九十]+[)）]")
_EXCEPTION_START = re.compile(r"^(?:但是|但|除|不过|然而|其中|前款|依照前款)")
_NUMBER = re.compile(r"\d|[一二两三四五六七八九十百千]+(?:倍|日|个工作日|年|个月|万元)")
_ASKS_DEFINITION = re.compile(r"定义|什么意思|含义|是指什么|指什么|指的是|是什么")
_DEFINITION = re.compile(r"^(?:[(（][一二三四五六七八九十]+[)）])?“?([^，。；“”]{2,20}?)”?[，,]?(?:是)?指")
# Citation-marker syntax inside a document ("…[1]") would be read as one of our own markers and
# attach the quoted text to another source; quoted, its brackets are widened so it stays inert text.
_MARKER_LIKE = re.compile(r"\[(\d{1,2})\]")


@dataclass
class Selected:
    hit_rank: int
    chunk: Chunk
    sentences: list[Sentence]
    score: float


@dataclass
class Draft:
    """What a generator produced, before verification: text with `[n]` markers and its sources."""

    text: str
    sources: dict[int, Chunk]  # citation number → chunk
    quotes: dict[int, str]  # citation number → quoted words


def _repeats_title(chunk: Chunk, sentence: Sentence) -> bool:
    """A line that only repeats the document's title (a cover page, a running head) or the section
    heading it stands under answers nothing; the citation label names them anyway."""
    key = match_key(sentence.text)
    return key in match_key(chunk.title) or key in match_key(chunk.heading_path.split(" > ")[-1])


def _lead_in(sentences: list[Sentence], colon: int, limit: int = 3) -> list[Sentence]:
    """The lead-in of an enumerated list: the clause ending in "：" and the clauses of its sentence
    before it. A penalty article's lead-in holds the fine in an earlier clause ("…责令改正，给予警告；
    拒不改正的，处五千元以上五万元以下罚款；情节严重的，…吊销许可证："), which an answer about one of
    its items must quote."""
    start = colon
    while (
        start > 0
        and colon - start < limit
        and sentences[start - 1].text.endswith(("；", ";"))
        and not _ITEM.match(sentences[start - 1].text)
    ):
        start -= 1
    return sentences[start : colon + 1]


def _whole_sentence(sentences: list[Sentence], idx: int, limit: int = 2) -> list[Sentence]:
    """The clauses after clause `idx` up to the end of its sentence ("。"), at most `limit`: a duty
    split at "；" comes with its condition or consequence ("…进行审查；未经审查，不得发布。"). The
    clauses before it are left out: on the dev questions they pushed the answering clause off the
    first line without adding evidence. Enumerated items are left to the item rules."""
    out = []
    i = idx
    while (
        i + 1 < len(sentences)
        and i - idx < limit
        and sentences[i].text.endswith("；")
        and not _ITEM.match(sentences[i + 1].text)
    ):
        i += 1
        out.append(sentences[i])
    return out


def _figure_first(
    question: str, ranked: list[tuple[float, Sentence]], share: float
) -> list[tuple[float, Sentence]]:
    """`ranked` with the best sentence stating the asked figure moved to the front, if it is close enough."""
    best = ranked[0][0]
    for i, (prob, sentence) in enumerate(ranked):
        if prob < share * best:
            break
        if states_asked_quantity(question, sentence.text):
            return [ranked[i], *ranked[:i], *ranked[i + 1 :]] if i else ranked
    return ranked


def _join_lead_ins(quoted: list[str]) -> list[str]:
    """A lead-in ("……不得含有下列内容：") and the first item quoted after it form one sentence and
    one line: "……不得含有下列内容：（三）声称或者暗示……"."""
    out: list[str] = []
    for text in quoted:
        if out and out[-1].endswith(("：", ":")) and _ITEM.match(text) and not _ITEM.match(out[-1]):
            out[-1] += text
        else:
            out.append(text)
    return out


def _marked(hit: Hit, sentence: str) -> bool:
    """Whether `sentence` is the one the retrieval marked in the hit (`Hit.focus`)."""
    return bool(hit.focus) and hit.focus[:20] in sentence


def source_label(chunk: Chunk) -> str:
    """《title》第X条, or 《title》（section heading） for documents without articles."""
    if chunk.article and chunk.article != "题注":
        return f"《{chunk.title}》{chunk.article}"
    section = chunk.heading_path.split(" > ")[-1] if chunk.heading_path else ""
    return f"《{chunk.title}》（{section}）" if section else f"《{chunk.title}》"


class ExtractiveGenerator:
    name = "extractive"

    def __init__(
        self, vectors: VectorCache, judge: Judge | None = None, max_sources: int = 3, max_sentences: int = 4
    ) -> None:
        self.vectors = vectors
        self.judge = judge
        self.max_sources = max_sources
        self.max_sentences = max_sentences
        self.shortlist = 16
        self.whole_chunk_chars = 320
        self.relative_floor = 0.7  # sentences scoring below this share of the best are not quoted
        self.depth = 5  # hits whose sentences compete
        # A question asking for a figure opens with the sentence stating it when the judge rates that
        # sentence at least this share of the source's best (the best often restates the duty alone).
        self.figure_share = 0.3
        # The judge reads the sentences of a passage's windows scoring at least this share of its best.
        self.window_floor = 0.5
        # A clause split at "；" is quoted with the rest of its sentence (the condition and its
        # consequence belong together: "…进行审查；未经审查，不得发布。").
        self.whole_sentence = True

    def _candidates(self, hits: list[Hit]) -> list[tuple[int, Chunk, Sentence]]:
        out = []
        for rank, hit in enumerate(hits[: self.depth], start=1):
            for s in split_sentences(hit.chunk.text, min_chars=6):
                if not _repeats_title(hit.chunk, s):
                    out.append((rank, hit.chunk, s))
        return out

    def _score(self, question: str, cands: list[tuple[int, Chunk, Sentence]]) -> list[tuple[int, float]]:
        """(candidate index, score) for the most promising sentences, best first."""
        terms = [k for k in (match_key(t) for t in content_terms(expand_query(question))) if k]
        wants_number = bool(
            re.search(
                r"多少|几|多久|多长|期限|比例|倍|上限|最高|最低|什么时候|何时|哪天|哪一天|日期|指标", question
            )
        )
        wants_definition = bool(_ASKS_DEFINITION.search(question))
        question_key = match_key(question)
        cheap = []
        for i, (rank, _chunk, sentence) in enumerate(cands):
            key = match_key(sentence.text)
            coverage = sum(t in key for t in terms) / len(terms) if terms else 0.0
            bonus = 0.15 if wants_number and _NUMBER.search(sentence.text) else 0.0
            if wants_definition:
                # "预包装食品，指……": the statute's own definition of the word asked about.
                defined = _DEFINITION.match(_ARTICLE_HEAD.sub("", sentence.text))
                if defined and match_key(defined.group(1)) in question_key:
                    bonus += 0.3
            # The reranker's order counts, gently: a lower-ranked clause can still win on its words.
            rank_prior = 0.3 * (self.depth + 1 - rank) / self.depth
            cheap.append((i, 0.45 * coverage + rank_prior + bonus))
        # Only the most promising sentences go through the model: keeps an answer well under a second.
        shortlist = sorted(cheap, key=lambda x: -x[1])[: self.shortlist]
        q_vec = self.vectors.query(question)
        sims = self.vectors.documents([sentence_probe(cands[i][2].text) for i, _ in shortlist]) @ q_vec
        lo, hi = float(sims.min()), float(sims.max())
        scored = [
            (i, base + 0.45 * ((float(sim) - lo) / (hi - lo) if hi > lo else 0.0))
            for (i, base), sim in zip(shortlist, sims, strict=True)
        ]
        return sorted(scored, key=lambda x: -x[1])

    def _with_context(
        self, chunk: Chunk, chosen: Sentence, whole_if_short: bool = True, whole_sentence: bool = False
    ) -> list[Sentence]:
        """The sentence, plus the lead-in of an enumerated item and an exception right after it.
        A short article is quoted whole (`whole_if_short`): its conditions and exceptions belong to
        every sentence. `whole_sentence`: a clause ending in "；" comes with the rest of
        its sentence ("应当在发布前……进行审查；未经审查，不得发布。")."""
        sentences = split_sentences(chunk.text, min_chars=2)
        if whole_if_short and len(chunk.text) <= self.whole_chunk_chars:
            return [
                s
                for s in sentences
                if not (s.start == 0 and _ARTICLE_HEAD.fullmatch(s.text)) and not _repeats_title(chunk, s)
            ]
        idx = next((i for i, s in enumerate(sentences) if s.start == chosen.start), None)
        if idx is None:
            return [chosen]
        group = [chosen]
        if _ITEM.match(chosen.text):
            lead = next((j for j in range(idx - 1, -1, -1) if sentences[j].text.endswith(("：", ":"))), None)
            if lead is not None:
                group[:0] = _lead_in(sentences, lead)
        if chosen.text.endswith(("：", ":")):
            group[:0] = _lead_in(sentences, idx)[:-1]
            group += [s for s in sentences[idx + 1 : idx + 7] if _ITEM.match(s.text)]
        if idx + 1 < len(sentences) and _EXCEPTION_START.match(sentences[idx + 1].text):
            group.append(sentences[idx + 1])
        if whole_sentence and not _ITEM.match(chosen.text):
            group += _whole_sentence(sentences, idx)
        return sorted({s.start: s for s in group}.values(), key=lambda s: s.start)

    def _select_judged(self, question: str, hits: list[Hit]) -> list[Selected]:
        """The judge reads every sentence of the best hits. The sentence most likely to answer
        opens the answer; a further source is quoted only when one of its sentences also answers
        (`second_source`), and a further sentence of a source only when it scores close to that
        source's best (`extra_sentence`): sentences that add nothing the question asked are left out."""
        assert self.judge is not None
        q = one_line_query(question)
        figure = asks_quantity(q)
        calibration = self.judge.calibration
        scored: list[tuple[float, int, Chunk, Sentence, list[tuple[float, Sentence]]]] = []
        for rank, hit in enumerate(hits[: self.max_sources], start=1):
            # Only where the judge already saw an answer: the windows scoring close to the passage's
            # best, of the first hit, a cited article, and hits that could be quoted as a further source.
            scored_windows = self.judge.windows(q, hit.chunk)
            top = max(p for _, p in scored_windows)
            if rank > 1 and not hit.cited and top < calibration.second_source:
                continue
            promising = [w for w, p in scored_windows if p >= self.window_floor * top]
            sentences = [
                s
                for s in split_sentences(hit.chunk.text, min_chars=6)
                if not _repeats_title(hit.chunk, s) and any(s.text in w for w in promising)
            ]
            if not sentences:
                continue
            probs = self.judge.sentences(q, hit.chunk, [_ARTICLE_HEAD.sub("", s.text) for s in sentences])
            ranked = sorted(zip(probs, sentences, strict=True), key=lambda x: (-x[0], x[1].start))
            focus = [s for s in split_sentences(hit.chunk.text, min_chars=6) if _marked(hit, s.text)]
            if focus:  # a sentence the retrieval marked (a penalty item naming the duty) is quoted first
                ranked = [(ranked[0][0], focus[0]), *[r for r in ranked if r[1].start != focus[0].start]]
            if figure:
                ranked = _figure_first(q, ranked, self.figure_share)
            scored.append((ranked[0][0], rank, hit.chunk, ranked[0][1], ranked))
        if not scored:
            return []
        # An article the question names stays first, whatever the judge thinks of its sentences.
        # Of those, the sentence the retrieval marked first.
        scored.sort(
            key=lambda x: (
                not hits[x[1] - 1].cited,
                not _marked(hits[x[1] - 1], x[3].text),
                -x[0],
                x[1],
            )
        )
        chosen: list[Selected] = []
        for i, (best, rank, chunk, sentence, ranked) in enumerate(scored):
            if i > 0 and best < calibration.second_source:
                break
            group = self._with_context(
                chunk, sentence, whole_if_short=False, whole_sentence=self.whole_sentence
            )
            for prob, extra in ranked[1:]:
                if prob >= calibration.extra_sentence * best and prob >= calibration.second_source:
                    more = self._with_context(
                        chunk, extra, whole_if_short=False, whole_sentence=self.whole_sentence
                    )
                    group += [s for s in more if s not in group]
            chosen.append(Selected(rank, chunk, sorted(set(group), key=lambda s: s.start), best))
        return chosen

    def select(self, question: str, hits: list[Hit]) -> list[Selected]:
        if self.judge is not None:
            return self._select_judged(question, hits)
        cands = self._candidates(hits)
        if not cands:
            return []
        ranked = self._score(question, cands)
        floor = ranked[0][1] * self.relative_floor
        chosen: dict[str, Selected] = {}
        # First the best sentence of each source, so one long clause cannot crowd out the others
        # (a penalty article's five items used to fill every slot and push the answering clause out).
        for i, score in ranked:
            if score < floor or len(chosen) >= self.max_sources:
                break
            rank, chunk, sentence = cands[i]
            if chunk.chunk_id not in chosen:
                chosen[chunk.chunk_id] = Selected(rank, chunk, self._with_context(chunk, sentence), score)
        # Then further strong sentences from the sources already chosen.
        used = len(chosen)
        for i, score in ranked:
            if used >= self.max_sentences or score < floor:
                break
            rank, chunk, sentence = cands[i]
            entry = chosen.get(chunk.chunk_id)
            if entry is None or any(s.start == sentence.start for s in entry.sentences):
                continue
            for s in self._with_context(chunk, sentence):
                if not any(x.start == s.start for x in entry.sentences):
                    entry.sentences.append(s)
            used += 1
        for entry in chosen.values():
            entry.sentences.sort(key=lambda s: s.start)
        return sorted(chosen.values(), key=lambda e: -e.score)

    def generate(self, question: str, hits: list[Hit]) -> Draft:
        selected = self.select(question, hits)
        sources: dict[int, Chunk] = {}
        quotes: dict[int, str] = {}
        lines: list[str] = []
        for number, entry in enumerate(selected, start=1):
            sources[number] = entry.chunk
            quoted = _join_lead_ins(
                [_MARKER_LIKE.sub(r"［\1］", _ARTICLE_HEAD.sub("", s.text)) for s in entry.sentences]
            )
            quotes[number] = "".join(quoted)
            label = source_label(entry.chunk)
            if number == 1:
                # The direct answer: the best evidence, quoted, in a fixed frame.
                lines.append(f"根据{label}：{quoted[0]}[1]")
                lines.extend(f"{q}[1]" for q in quoted[1:])
                if len(selected) > 1:
                    lines.append("")
                    lines.append("相关规定：")
            else:
                lines.append(f"{label}：{quoted[0]}[{number}]")
                lines.extend(f"{q}[{number}]" for q in quoted[1:])
        return Draft("\n".join(lines), sources, quotes)
