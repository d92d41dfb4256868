"""The answer chain (LangChain LCEL): standalone question → retrieve → relevance gate → generate →
citation verification → Answer. The generator is chosen by a setting or per call."""

from __future__ import annotations

import re
import threading
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda

from assistant.answering.extractive import Draft, ExtractiveGenerator, source_label
from assistant.answering.followup import Turn, is_follow_up, rewrite_follow_up, without_opener
from assistant.answering.followup_judge import FollowUpJudge
from assistant.answering.llm import ChatGenerator, GeneratorError, make_chat_model
from assistant.answering.local_llm import local_chat_generator, local_server
from assistant.answering.penalty import asks_consequence, earlier_articles, with_penalties
from assistant.answering.relevance import assess, judged, lacks_asked_quantity
from assistant.answering.verify import SupportContext, verify
from assistant.judge import Judge
from assistant.normalize import match_key, one_line_query
from assistant.retrieve import HybridSearcher, JudgeReading
from assistant.sentences import split_sentences, strip_markers
from assistant.settings import Settings
from assistant.snapshot import Snapshot
from assistant.types import Answer, Chunk, Citation, Hit

REFUSAL_PREFIX = "抱歉，内置文档无法回答这个问题"


def closest_documents(hits: list[Any], limit: int = 3) -> list[str]:
    return list(dict.fromkeys(hit.chunk.title for hit in hits))[:limit]


def closest_clauses(hits: list[Any], limit: int = 3) -> list[str]:
    """Labels (《title》第X条) of the nearest retrieved passages, for a reader who wants to look."""
    return list(dict.fromkeys(source_label(hit.chunk) for hit in hits))[:limit]


def refusal_text(reason: str, closest: list[str], clauses: list[str] | None = None) -> str:
    text = f"{REFUSAL_PREFIX}：{reason}为避免误导，不作推测。"
    if clauses:
        # Pointers only, not an answer: the reader decides whether they help.
        text += "可自行查阅的相近条文（未必回答了这个问题）：" + "、".join(clauses) + "。"
    elif closest:
        text += "可能相关的文档：" + "、".join(f"《{t}》" for t in closest) + "。"
    return text


def _quote_for(chunk: Chunk, answer_sentences: list[str]) -> str:
    """The sentences of `chunk` that share the most words with the answer sentences citing it."""
    keys = [match_key(s) for s in answer_sentences]
    scored = []
    for s in split_sentences(chunk.text, min_chars=4):
        k = match_key(s.text)
        overlap = max((len(set(k) & set(a)) / max(len(set(k)), 1) for a in keys), default=0.0)
        scored.append((overlap, s))
    best = sorted(scored, key=lambda x: -x[0])[:2]
    return "".join(s.text for _, s in sorted(best, key=lambda x: x[1].start)) or chunk.text[:200]


class AnswerService:
    def __init__(
        self,
        settings: Settings,
        searcher: HybridSearcher,
        judge: Judge | None = None,
        followup_judge: FollowUpJudge | None = None,
    ) -> None:
        self.settings = settings
        self.searcher = searcher
        self.judge = judge
        self.followup_judge = followup_judge
        self.extractive = ExtractiveGenerator(searcher.vectors, judge)
        self._chat: ChatGenerator | None = None
        self._local: tuple[str, ChatGenerator] | None = None
        self._lock = threading.Lock()

    def chat_generator(self) -> ChatGenerator:
        with self._lock:
            if self._chat is None:
                self._chat = ChatGenerator(make_chat_model(self.settings))
            return self._chat

    def local_generator(self) -> ChatGenerator:
        """The same chat generator, talking to the process's xllamacpp server for the GGUF file
        in `local_model_path` (started on first use; rebuilt if that server was restarted)."""
        server = local_server(self.settings)
        base_url = server.base_url  # starts the server, or raises a GeneratorError saying why not
        with self._lock:
            if self._local is None or self._local[0] != base_url:
                self._local = (base_url, local_chat_generator(self.settings, server))
            return self._local[1]

    def _generator(self, name: str) -> Any:
        if name == "extractive":
            return self.extractive
        if name == "openai":
            return self.chat_generator()
        if name == "local":
            return self.local_generator()
        raise GeneratorError(f"未知的回答方式：{name}（可选 extractive、openai、local）")

    # --- chain steps ---------------------------------------------------------------------------

    def _standalone(self, state: dict[str, Any]) -> dict[str, Any]:
        question, history = state["question"], state["history"]
        notice = ""
        limit = self.settings.max_question_chars
        if len(question) > limit:
            question = question[:limit]
            notice = f"问题过长（超过 {limit} 字），只使用了前 {limit} 字。"
        standalone, continues = without_opener(question), False
        if history:
            continues = (
                self.followup_judge.continues(question, [t.question for t in history])
                if self.followup_judge is not None
                else is_follow_up(question)
            )
        if continues:
            if state["generator"] != "extractive":
                standalone = self._generator(state["generator"]).condense(question, history)
            else:
                standalone = rewrite_follow_up(question, history, continues=True)
        return {
            **state,
            "question": question,
            "standalone": standalone,
            "continues": continues,
            # A follow-up's statutory terms come from its own words, not the earlier question it carries.
            "expand_from": question if continues else None,
            "notice": notice,
        }

    def _retrieve(self, state: dict[str, Any]) -> dict[str, Any]:
        question, doc_ids, status = state["standalone"], state["doc_ids"], state["status"]
        snap = self.searcher.snapshots.current()
        titles = [m.title for m in snap.documents.values()]
        if self.judge is None:
            hits, signals = self.searcher.search_with_signals(
                question,
                k=self.settings.answer_k,
                doc_ids=doc_ids,
                status=status,
                expand_from=state["expand_from"],
            )
            hits = self._route_consequence(state, snap, hits)
            return {**state, "hits": hits, "verdict": assess(question, signals, titles)}
        reading = None
        if state["continues"]:
            reading = JudgeReading(self.settings.followup_judge_depth, self.settings.followup_judge_budget)
        hits = self.searcher.search(
            question,
            k=self.settings.answer_k,
            doc_ids=doc_ids,
            status=status,
            reading=reading,
            expand_from=state["expand_from"],
        )
        hits = self._route_consequence(state, snap, hits)
        # The searcher has just judged most of these passages (all but those past the judge's
        # reading budget): the judge's cache answers for them at no cost.
        q = one_line_query(question)
        best = max(self.judge.passages(q, [h.chunk for h in hits]), default=0.0)
        cited = any(h.cited for h in hits)
        familiar = self.searcher.vocabulary_share(q)
        verdict = judged(question, best, self.judge.calibration.gate, cited, titles, familiar)
        return {**state, "hits": hits, "verdict": verdict}

    def _route_consequence(self, state: dict[str, Any], snap: Snapshot, hits: list[Hit]) -> list[Hit]:
        """A question about the consequence of breaking a duty gets the article that punishes it first."""
        question = state["standalone"]
        if not asks_consequence(question):
            return hits
        history: list[Turn] = state["history"]
        earlier: list[tuple[str, int]] = []
        if history and state["continues"]:
            # The articles the conversation cited, the latest turn's first.
            texts = [
                text
                for t in reversed(history)
                for text in (*t.articles, t.standalone_question or t.question, t.answer)
            ]
            earlier = earlier_articles(snap, texts)
        q = one_line_query(question)
        judge = self.judge

        def liability(doc_id: str) -> list[Chunk]:
            found = self.searcher.search(
                question, k=20, doc_ids=[doc_id], status=state["status"], expand_from=state["expand_from"]
            )
            return [h.chunk for h in found if "法律责任" in h.chunk.heading_path][:3]

        score = (lambda sentences: judge.score(q, sentences)) if judge is not None else None
        return with_penalties(snap, hits, earlier, score, liability)

    def _generate(self, state: dict[str, Any]) -> dict[str, Any]:
        if not state["verdict"].answerable or not state["hits"]:
            return {**state, "draft": None}
        draft: Draft = self._generator(state["generator"]).generate(state["standalone"], state["hits"])
        return {**state, "draft": draft}

    def _finalize(self, state: dict[str, Any]) -> Answer:
        hits, draft = state["hits"], state["draft"]
        closest = closest_documents(hits)
        # Clause pointers only where retrieval came close; a question about the weather gets none.
        verdict = state["verdict"]
        clauses = closest_clauses(hits) if verdict.answerable or verdict.near_miss else []
        base = {
            "question": state["question"],
            "standalone_question": state["standalone"],
            "generator": state["generator"],
            "closest_documents": closest,
            "closest_clauses": clauses,
            "notice": state["notice"],
            "continues_conversation": state["continues"],
        }
        if draft is None or not draft.text.strip():
            reason = state["verdict"].reason or "检索到的条文不足以回答这个问题。"
            return Answer(answer=refusal_text(reason, closest, clauses), refused=True, citations=[], **base)
        snap = self.searcher.snapshots.current()
        checked = verify(draft.text, SupportContext(draft.sources, set(snap.chunks)))
        kept = [s for s in checked if s.verified]
        if not kept:
            return Answer(
                answer=refusal_text("生成的内容无法在检索到的条文中得到印证。", closest, clauses),
                refused=True,
                citations=[],
                sentences=checked,
                **base,
            )
        # The user's own words: a rewrite carries the earlier turn's wording, and with it a 几名/多少
        # that this turn no longer asks (conversations-diagnosis.md: 1 turn fixed, none broken).
        if lacks_asked_quantity(state["question"], [strip_markers(s.text) for s in kept]):
            return Answer(
                answer=refusal_text(
                    "相关条文没有规定这个问题所问的具体数字（数额、期限或次数）。", closest, clauses
                ),
                refused=True,
                citations=[],
                sentences=checked,
                **base,
            )
        # Unsupported sentences are dropped; citations are renumbered in order of first use.
        used: list[int] = []
        for s in kept:
            used += [n for n in s.citations if n not in used]
        renumber = {old: new for new, old in enumerate(used, start=1)}
        text = _rewrite_markers(_rebuild(draft.text, kept), renumber)
        citations = []
        for old in used:
            chunk = draft.sources[old]
            meta = snap.documents.get(chunk.doc_id)
            quote = draft.quotes.get(old) or _quote_for(chunk, [s.text for s in kept if old in s.citations])
            citations.append(
                Citation(
                    number=renumber[old],
                    chunk_id=chunk.chunk_id,
                    doc_id=chunk.doc_id,
                    title=chunk.title,
                    article=chunk.article,
                    heading_path=chunk.heading_path,
                    page_start=chunk.page_start,
                    page_end=chunk.page_end,
                    quote=quote,
                    effective_date=meta.effective_date if meta else "",
                    status=meta.status if meta else "",
                )
            )
        for s in kept:
            s.text = _rewrite_markers(s.text, renumber)
            s.citations = [renumber[n] for n in s.citations]
        # `sentences` keeps the dropped ones too (verified=False, with the reason), for the record.
        return Answer(answer=text, refused=False, citations=citations, sentences=checked, **base)

    # --- public ----------------------------------------------------------------------------------

    def chain(self) -> Runnable[dict[str, Any], Answer]:
        return (
            RunnableLambda(self._standalone)
            | RunnableLambda(self._retrieve)
            | RunnableLambda(self._generate)
            | RunnableLambda(self._finalize)
        )

    def answer(
        self,
        question: str,
        history: list[Turn] | None = None,
        generator: str | None = None,
        doc_ids: list[str] | None = None,
        status: str | None = None,
    ) -> Answer:
        chosen = generator or self.settings.generator
        if not question.strip():
            return Answer(question, "", "请输入问题。", refused=True, citations=[], generator=chosen)
        state = {
            "question": question.strip(),
            "history": history or [],
            "generator": chosen,
            "doc_ids": doc_ids,
            "status": status,
        }
        return self.chain().invoke(state)


def _rebuild(original: str, kept: list[Any]) -> str:
    """The answer text with unverified sentences removed, keeping the original line structure."""
    kept_texts = [s.text for s in kept]
    lines = []
    for line in original.split("\n"):
        pieces = [p for p in kept_texts if p in line]
        if pieces:
            lines.append("".join(pieces))
        elif not line.strip() or line.strip().endswith("："):
            lines.append(line)
    text = "\n".join(lines).strip()
    return re.sub(r"\n{3,}", "\n\n", re.sub(r"(^|\n)相关规定：\s*$", "", text)).strip()


def _rewrite_markers(text: str, renumber: dict[int, int]) -> str:
    return re.sub(r"\[(\d{1,2})\]", lambda m: f"[{renumber.get(int(m.group(1)), int(m.group(1)))}]", text)
