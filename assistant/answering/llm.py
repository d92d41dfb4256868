"""Language-model generators behind the same small interface as the extractive one.

`openai`: any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server, a hosted API) through
langchain-openai; `local` is the same generator talking to an in-process xllamacpp server
(`local_llm.py`). The sources are delimited and declared to be data in the prompt; whatever the
model writes is checked afterwards by citation verification, which is what actually protects the
user from invented law."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from assistant.answering.extractive import Draft, source_label
from assistant.answering.followup import Turn
from assistant.settings import Settings
from assistant.types import Chunk, Hit

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"  # assistant/prompts, package data
REFUSAL_TOKEN = "【无法回答】"
_SOURCE_TAGS = re.compile(r"</?资料[^>]*>")


class GeneratorError(RuntimeError):
    """The model endpoint failed; the message is shown to the user."""


@lru_cache(maxsize=8)
def load_prompt(name: str) -> str:
    return (PROMPTS_DIR / name).read_text(encoding="utf-8")


def format_context(hits: list[Hit]) -> tuple[str, dict[int, Chunk]]:
    blocks, sources = [], {}
    for number, hit in enumerate(hits, start=1):
        c = hit.chunk
        sources[number] = c
        pages = f"第{c.page_start}页" if c.page_start == c.page_end else f"第{c.page_start}-{c.page_end}页"
        # A document cannot close its own block early: tag-like text inside it is neutralized.
        body = _SOURCE_TAGS.sub("", c.text)
        blocks.append(f'<资料 编号="{number}">\n来源：{source_label(c)}，{pages}\n{body}\n</资料>')
    return "\n\n".join(blocks), sources


def make_chat_model(settings: Settings, **options: Any) -> Any:
    """ChatOpenAI for the configured endpoint; `options` (e.g. max_tokens, http_client) pass through."""
    try:
        from langchain_openai import ChatOpenAI
    except ModuleNotFoundError as err:  # an optional extra
        raise GeneratorError("未安装 langchain-openai：请运行 pip install -e '.[llm]'") from err
    if not settings.openai_base_url and not settings.openai_api_key:
        raise GeneratorError(
            "未配置语言模型：请设置 ASSISTANT_OPENAI_BASE_URL（以及需要时的 ASSISTANT_OPENAI_API_KEY）"
        )
    return ChatOpenAI(
        base_url=settings.openai_base_url or None,
        # Local servers (llama.cpp, vLLM, Ollama) accept any key; the client insists on one.
        api_key=settings.openai_api_key or SecretStr("not-needed"),
        model=settings.openai_model,
        temperature=0,
        timeout=settings.openai_timeout,
        max_retries=settings.openai_max_retries,
        **options,
    )


CONNECTION_HINT = "无法连接语言模型服务，请检查 ASSISTANT_OPENAI_BASE_URL。"


def _invoke(model: Any, messages: list[tuple[str, str]], connection_hint: str = CONNECTION_HINT) -> str:
    try:
        reply = model.invoke(messages)
    except Exception as err:  # network, HTTP status, timeout: one clear message
        name = type(err).__name__
        if "Timeout" in name:
            raise GeneratorError(
                "语言模型服务响应超时，请稍后再试，或改用离线的摘录式回答（extractive）。"
            ) from err
        if "Connection" in name:
            raise GeneratorError(connection_hint) from err
        raise GeneratorError(f"语言模型服务出错（{name}）：{str(err)[:200]}") from err
    content = reply.content if hasattr(reply, "content") else reply
    return content if isinstance(content, str) else str(content)


class ChatGenerator:
    """Answers with a chat model; citations are `[n]` markers into the numbered sources."""

    def __init__(self, model: Any, name: str = "openai", connection_hint: str = CONNECTION_HINT) -> None:
        self.model = model
        self.name = name
        self.connection_hint = connection_hint

    def generate(self, question: str, hits: list[Hit]) -> Draft:
        context, sources = format_context(hits)
        messages = [
            ("system", load_prompt("answer_system.md")),
            ("human", load_prompt("answer_user.md").format(context=context, question=question)),
        ]
        text = _invoke(self.model, messages, self.connection_hint).strip()
        if REFUSAL_TOKEN in text:
            return Draft("", sources, {})
        return Draft(text, sources, {})

    def condense(self, question: str, history: list[Turn]) -> str:
        lines = []
        for turn in history[-3:]:
            lines.append(f"用户：{turn.question}")
            if turn.answer:
                lines.append(f"助手：{turn.answer[:300]}")
        prompt = load_prompt("condense_question.md").format(history="\n".join(lines), question=question)
        rewritten = _invoke(self.model, [("human", prompt)], self.connection_hint).strip().splitlines()
        return rewritten[0].strip() if rewritten and rewritten[0].strip() else question
