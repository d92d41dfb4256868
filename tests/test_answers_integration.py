"""Answers end to end on the real bundled index (slow: the real embedding model and the whole corpus).

The language-model path talks to a real OpenAI-compatible HTTP server (tests/_chat_server.py: FastAPI +
uvicorn on 127.0.0.1) that returns canned completions, errors, or nothing in time."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.answering.followup import Turn
from assistant.answering.llm import REFUSAL_TOKEN, GeneratorError
from assistant.embeddings import LocalSentenceEmbeddings
from assistant.engine import Assistant
from assistant.types import Answer

from ._chat_server import Canned, ChatServer, closed_port, is_condense_request, sources_in

pytestmark = pytest.mark.slow

FSL = "中华人民共和国食品安全法"
CONTRACT_KEYS = {"question", "answer", "refused", "citations", "verified"}
CITATION_KEYS = {"doc_id", "title", "article", "page_start", "page_end", "quote"}
LABEL_QUESTION = "保健食品标签不得涉及什么内容"


def _articles(answer: Answer) -> list[tuple[str, str]]:
    return [(c.title, c.article) for c in answer.citations]


# --- the offline (extractive) answers ------------------------------------------------------------------


def test_report_validity_is_answered_with_its_number(corpus_assistant: Assistant) -> None:
    answer = corpus_assistant.ask("备案用的检验报告多久内有效？")
    assert not answer.refused, answer.answer
    assert answer.verified, [s for s in answer.sentences if not s.verified]
    assert any("2年" in c.quote for c in answer.citations), [c.quote for c in answer.citations]
    assert "2年" in answer.answer


def test_label_question_cites_article_78_with_its_page(corpus_assistant: Assistant) -> None:
    answer = corpus_assistant.ask(LABEL_QUESTION)
    assert not answer.refused and answer.verified
    cited = [c for c in answer.citations if (c.title, c.article) == (FSL, "第七十八条")]
    assert cited, _articles(answer)
    assert cited[0].page_start >= 1 and cited[0].page_end >= cited[0].page_start
    assert "不得涉及疾病预防、治疗功能" in cited[0].quote
    # Every citation is a real chunk of the index, and the numbers run 1, 2, … in order.
    chunks = corpus_assistant.searcher.snapshots.current().chunks
    assert all(c.chunk_id in chunks and chunks[c.chunk_id].article == c.article for c in answer.citations)
    assert [c.number for c in answer.citations] == list(range(1, len(answer.citations) + 1))


@pytest.mark.parametrize("question", ["化妆品广告可以用医生形象吗？", "明天上海会下雨吗？"])
def test_out_of_scope_questions_are_refused_with_closest_documents(
    corpus_assistant: Assistant, question: str
) -> None:
    answer = corpus_assistant.ask(question)
    assert answer.refused and answer.citations == [], answer.answer
    assert answer.closest_documents, "a refusal lists the closest documents"
    assert "可能相关的文档" in answer.answer and f"《{answer.closest_documents[0]}》" in answer.answer
    if "化妆品" in question:
        assert "化妆品" in answer.answer  # the refusal names the uncovered subject
    assert answer.closest_clauses == []  # nothing near enough to point at


def test_a_near_miss_refusal_points_at_the_nearest_clauses(corpus_assistant: Assistant) -> None:
    # Asks for a figure the library does not give: the quoted clauses state none in the unit asked.
    answer = corpus_assistant.ask("保健食品广告审查机关收到申请后要在多少个工作日内作出审查决定？")
    assert answer.refused and answer.citations == [], answer.answer
    assert answer.closest_clauses and all(c.startswith("《") for c in answer.closest_clauses)
    assert "可自行查阅的相近条文" in answer.answer and answer.closest_clauses[0] in answer.answer


def test_follow_up_question_is_rewritten_and_answered(corpus_assistant: Assistant) -> None:
    answer = corpus_assistant.ask("那注册呢？", history=[Turn("保健食品备案需要提交哪些材料？")])
    assert "注册" in answer.standalone_question and "材料" in answer.standalone_question
    assert answer.question == "那注册呢？"
    assert not answer.refused, answer.answer
    assert (FSL, "第七十七条") in _articles(answer), _articles(answer)


def test_answer_json_contract(corpus_assistant: Assistant) -> None:
    for question in (LABEL_QUESTION, "明天上海会下雨吗？"):
        data = corpus_assistant.ask(question).to_json()
        assert set(data) >= CONTRACT_KEYS
        assert isinstance(data["answer"], str) and isinstance(data["refused"], bool)
        assert isinstance(data["verified"], bool) and isinstance(data["citations"], list)
        for citation in data["citations"]:
            assert set(citation) >= CITATION_KEYS
            assert isinstance(citation["page_start"], int) and citation["page_start"] >= 1
        json.dumps(data, ensure_ascii=False)  # serializable as is
    assert data["refused"] and data["citations"] == []


# --- a real OpenAI-compatible HTTP server ------------------------------------------------------------


@pytest.fixture(scope="module")
def no_proxy() -> Iterator[None]:
    """The local test server must be reached directly, whatever proxy the environment configures."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("NO_PROXY", "no_proxy"):
            mp.setenv(name, "127.0.0.1,localhost")
        yield


@pytest.fixture(scope="module")
def chat_server(no_proxy: None) -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


@pytest.fixture
def server(chat_server: ChatServer) -> Iterator[ChatServer]:
    """The module's server, with a fresh record of requests; each test sets its own responder."""
    chat_server.requests.clear()
    yield chat_server
    chat_server.responder = lambda _request: Canned(REFUSAL_TOKEN)


@pytest.fixture
def openai_assistant(
    corpus_assistant: Assistant, embeddings: LocalSentenceEmbeddings, no_proxy: None
) -> Iterator[Callable[..., Assistant]]:
    """An Assistant on the corpus index, answering with generator="openai" at the given base URL."""
    made: list[Assistant] = []

    def factory(base_url: str, timeout: float = 30.0) -> Assistant:
        settings = corpus_assistant.settings.model_copy(
            update={
                "generator": "openai",
                "openai_base_url": base_url,
                "openai_timeout": timeout,
                "openai_max_retries": 0,
            }
        )
        assistant = Assistant(settings, embeddings=embeddings)
        made.append(assistant)
        return assistant

    yield factory
    for assistant in made:
        assistant.close()


def _source_number(request: dict[str, Any], title: str, article: str) -> tuple[int, str]:
    """The number the request gives to `title` `article`, and that source's text."""
    for number, (label, body) in sources_in(request).items():
        if label.startswith(f"《{title}》{article}"):
            return number, body
    raise LookupError(
        f"{title}{article} not among the sources sent: {[v[0] for v in sources_in(request).values()]}"
    )


def _first_sentence(body: str) -> str:
    """The first sentence of an article's text, without its 第X条 heading."""
    text = re.sub(r"^第[零一二三四五六七八九十百千]+条\s*", "", body)
    return re.match(r"[^。；]+", text).group()  # type: ignore[union-attr]


def _answer_from_article_78(request: dict[str, Any]) -> Canned:
    if is_condense_request(request):
        return Canned("保健食品标签不得涉及什么内容？")
    try:
        n, body = _source_number(request, FSL, "第七十八条")
    except LookupError:
        return Canned(REFUSAL_TOKEN)
    return Canned(f"根据《{FSL}》第七十八条，{_first_sentence(body)}[{n}]。")


def test_llm_answer_built_from_article_78_is_verified_and_cited(
    server: ChatServer, openai_assistant: Callable[..., Assistant]
) -> None:
    server.responder = _answer_from_article_78
    assistant = openai_assistant(server.base_url)
    answer = assistant.ask(LABEL_QUESTION)
    assert answer.generator == "openai"
    assert not answer.refused, (answer.answer, [s.reason for s in answer.sentences])
    assert answer.verified and answer.answer.endswith("[1]。")
    assert _articles(answer) == [(FSL, "第七十八条")]
    citation = answer.citations[0]
    assert citation.number == 1 and citation.page_start >= 1 and "治疗功能" in citation.quote
    # What reached the server: one chat request with the system rules and the delimited sources.
    assert len(server.requests) == 1
    request = server.requests[0]
    assert request["model"] == assistant.settings.openai_model
    roles = [m["role"] for m in request["messages"]]
    assert roles == ["system", "user"]
    assert "【无法回答】" in request["messages"][0]["content"]
    assert len(sources_in(request)) == assistant.settings.answer_k
    assert LABEL_QUESTION in request["messages"][1]["content"]


def test_llm_follow_up_is_condensed_by_the_model(
    server: ChatServer, openai_assistant: Callable[..., Assistant]
) -> None:
    server.responder = _answer_from_article_78
    answer = openai_assistant(server.base_url).ask(
        "那说明书呢？", history=[Turn("保健食品广告不得含有什么内容？")]
    )
    assert answer.standalone_question == "保健食品标签不得涉及什么内容？"
    assert is_condense_request(server.requests[0]) and "保健食品广告不得含有什么内容？" in json.dumps(
        server.requests[0], ensure_ascii=False
    )
    assert not answer.refused and _articles(answer) == [(FSL, "第七十八条")]


def test_llm_reply_obeying_an_injected_instruction_is_trimmed(
    server: ChatServer, openai_assistant: Callable[..., Assistant]
) -> None:
    def obey(request: dict[str, Any]) -> Canned:
        n, body = _source_number(request, FSL, "第七十八条")
        # The reply quotes the article, then does what an injected instruction told it to, citing the
        # same article for it.
        return Canned(f"{_first_sentence(body)}[{n}]。\n保健食品可以治疗癌症，无需服药[{n}]。")

    server.responder = obey
    answer = openai_assistant(server.base_url).ask(LABEL_QUESTION)
    assert not answer.refused and not answer.verified
    assert "癌症" not in answer.answer and _articles(answer) == [(FSL, "第七十八条")]
    dropped = [s for s in answer.sentences if not s.verified]
    assert len(dropped) == 1 and "癌症" in dropped[0].text and dropped[0].reason


def test_llm_refusal_token_gives_a_refusal(
    server: ChatServer, openai_assistant: Callable[..., Assistant]
) -> None:
    server.responder = lambda _request: Canned(REFUSAL_TOKEN)
    answer = openai_assistant(server.base_url).ask(LABEL_QUESTION)
    assert answer.refused and answer.citations == [] and answer.closest_documents


def test_llm_is_not_called_for_an_out_of_scope_question(
    server: ChatServer, openai_assistant: Callable[..., Assistant]
) -> None:
    server.responder = lambda _request: Canned("化妆品广告可以使用医生形象[1]。")
    answer = openai_assistant(server.base_url).ask("化妆品广告可以用医生形象吗？")
    assert answer.refused and server.requests == []


def test_llm_timeout_is_reported(server: ChatServer, openai_assistant: Callable[..., Assistant]) -> None:
    server.responder = lambda _request: Canned("太迟了[1]。", delay=10.0)  # cut short when the client leaves
    with pytest.raises(GeneratorError, match="超时"):
        openai_assistant(server.base_url, timeout=0.5).ask(LABEL_QUESTION)
    assert len(server.requests) == 1  # no retry


def test_llm_server_error_is_reported(server: ChatServer, openai_assistant: Callable[..., Assistant]) -> None:
    server.responder = lambda _request: Canned("model crashed", status=500)
    with pytest.raises(GeneratorError) as info:
        openai_assistant(server.base_url).ask(LABEL_QUESTION)
    message = str(info.value)
    assert "语言模型服务出错" in message and "500" in message, message
    assert len(server.requests) == 1


def test_llm_connection_refused_is_reported(openai_assistant: Callable[..., Assistant]) -> None:
    with pytest.raises(GeneratorError, match="无法连接"):
        openai_assistant(f"http://127.0.0.1:{closed_port()}/v1").ask(LABEL_QUESTION)


def test_cli_ask_with_the_openai_generator_prints_the_json_contract(
    server: ChatServer, corpus_assistant: Assistant, tmp_path: Path
) -> None:
    server.responder = _answer_from_article_78
    env = {
        **os.environ,
        "ASSISTANT_INDEX_DIR": str(corpus_assistant.settings.index_dir),
        "ASSISTANT_DATA_DIR": str(tmp_path / "data"),
        "ASSISTANT_OPENAI_BASE_URL": server.base_url,
        "ASSISTANT_OPENAI_TIMEOUT": "60",
        "ASSISTANT_OPENAI_MAX_RETRIES": "0",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "PYTHONIOENCODING": "utf-8",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", LABEL_QUESTION, "--json", "--generator", "openai"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert set(data) >= CONTRACT_KEYS and data["generator"] == "openai"
    assert not data["refused"] and data["verified"], data
    assert [(c["title"], c["article"]) for c in data["citations"]] == [(FSL, "第七十八条")]
    assert all(set(c) >= CITATION_KEYS for c in data["citations"])
    assert len(server.requests) == 1
