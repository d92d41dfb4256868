"""A tiny, real OpenAI-compatible chat server for tests.

A FastAPI app served by uvicorn on 127.0.0.1 (a free port) in a background thread. It implements
`POST /v1/chat/completions` and answers every request with whatever the test's `responder` returns
for it: a canned completion, an HTTP error status, or a reply held back for a while (to make the
client time out). Every request body is recorded in `requests`, so a test can see what was sent."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


@dataclass(frozen=True)
class Canned:
    """What the server does with one request."""

    content: str = ""
    status: int = 200  # anything but 200 sends an OpenAI-style error body instead of a completion
    delay: float = 0.0  # seconds to hold the reply back (cut short when the server stops)


Responder = Callable[[dict[str, Any]], Canned]


def completion_json(content: str, model: str) -> dict[str, Any]:
    """A chat-completion response in the shape of the OpenAI API."""
    return {
        "id": "chatcmpl-test-0001",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def user_text(request: dict[str, Any]) -> str:
    """The text of the last user message of a chat request."""
    for message in reversed(request.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content", "")
            if isinstance(content, list):  # content parts
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content)
    return ""


_SOURCE_BLOCK = re.compile(r'<资料 编号="(\d+)">\n来源：([^\n]*)\n(.*?)\n</资料>', re.S)


def sources_in(request: dict[str, Any]) -> dict[int, tuple[str, str]]:
    """Source number → (source line, text) of the `<资料 编号="n">` blocks in an answer request."""
    return {int(n): (label, body) for n, label, body in _SOURCE_BLOCK.findall(user_text(request))}


def is_condense_request(request: dict[str, Any]) -> bool:
    """The follow-up rewriting prompt (assistant/prompts/condense_question.md), not an answer request."""
    return "【新问题】" in user_text(request) and "<资料" not in user_text(request)


class ChatServer:
    def __init__(self, responder: Responder | None = None) -> None:
        self.responder: Responder = responder or (lambda _request: Canned("【无法回答】"))
        self.requests: list[dict[str, Any]] = []
        self._closing = False
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True, name="chat-server"
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat_completions(request: Request) -> JSONResponse:
            body = await request.json()
            self.requests.append(body)
            canned = self.responder(body)
            deadline = time.monotonic() + canned.delay
            # Held back until the delay is over, the client gives up, or the server stops.
            while not self._closing and time.monotonic() < deadline:
                if await request.is_disconnected():
                    return JSONResponse({}, status_code=499)
                await asyncio.sleep(0.02)
            if canned.status != 200:
                error = {"message": canned.content or "internal error", "type": "server_error", "code": None}
                return JSONResponse({"error": error}, status_code=canned.status)
            return JSONResponse(completion_json(canned.content, str(body.get("model", ""))))

        return app

    def start(self) -> ChatServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test chat server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._closing = True
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
