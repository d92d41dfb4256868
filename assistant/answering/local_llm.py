"""The `local` generator's model server: a GGUF file the user provides, served in-process by
xllamacpp (llama.cpp's own OpenAI-compatible HTTP server, from a prebuilt CPU wheel) on 127.0.0.1.

The answer path is the `openai` one unchanged (`ChatGenerator` over langchain-openai's ChatOpenAI),
pointed at this server, so citation verification and refusals are exactly the same. One server per
model configuration is started lazily, once per process, and stopped by `close()` or at exit.
Nothing is downloaded: a missing or unusable model file is a clear `GeneratorError`."""

from __future__ import annotations

import atexit
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from assistant.answering.llm import ChatGenerator, GeneratorError, make_chat_model
from assistant.settings import Settings

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
INSTALL_HINT = "未安装 xllamacpp（本地模型需要它）：请运行 pip install -e '.[local]'"
PATH_HINT = "请设置 ASSISTANT_LOCAL_MODEL_PATH 为 GGUF 模型文件"
CONNECTION_HINT = "无法连接本地模型服务（xllamacpp），请重试；若仍失败，请检查 ASSISTANT_LOCAL_MODEL_PATH 指向的模型。"
READY_TIMEOUT = 60.0

_LLAMA_VERBOSITY = {"DEBUG": 3, "INFO": 2, "WARNING": 1, "ERROR": 1}  # llama.cpp: 1 error, 2 warning, 3 info


def check_model_file(path: Path | None) -> Path:
    """The configured model file, resolved, or a GeneratorError saying what is wrong with it."""
    if path is None or not str(path).strip():
        raise GeneratorError(f"未配置本地模型：{PATH_HINT}。")
    path = Path(path).expanduser()
    if not path.is_file():
        what = "是一个文件夹，不是模型文件" if path.is_dir() else "不存在"
        raise GeneratorError(f"本地模型文件{what}：{path}（{PATH_HINT}）。")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as err:
        raise GeneratorError(f"无法读取本地模型文件 {path}：{err}") from err
    if magic != GGUF_MAGIC:
        raise GeneratorError(f"{path} 不是 GGUF 模型文件（文件头不是 GGUF）：{PATH_HINT}。")
    return path.resolve()


def _import_xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError as err:  # an optional extra
        raise GeneratorError(INSTALL_HINT) from err
    return xllamacpp


class LocalModelServer:
    """llama.cpp's OpenAI-compatible server for one GGUF file, on 127.0.0.1, started on first use.

    Thread-safe: concurrent first calls start it once. It requires a random API key (the server
    otherwise answers any local process, and allows every CORS origin)."""

    def __init__(
        self,
        model_path: Path,
        context: int = 4096,
        threads: int = 0,
        port: int = 0,
        max_tokens: int = 1024,
        verbosity: int = 1,
    ) -> None:
        self.model_path = Path(model_path)
        self.context = context
        self.threads = threads
        self.port = port
        self.max_tokens = max_tokens
        self.verbosity = verbosity
        self.api_key = secrets.token_urlsafe(24)
        self._server: Any = None
        self._address = ""
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def address(self) -> str:
        """`http://127.0.0.1:PORT`, starting the server if it is not running."""
        return self.start()

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (`…/v1`), starting the server if it is not running."""
        return self.address + "/v1"

    @property
    def model_name(self) -> str:
        return self.model_path.stem

    def start(self) -> str:
        """Start the server unless it runs; its address. Raises GeneratorError saying what failed."""
        with self._lock:
            if self._server is not None:
                return self._address
            xlc = _import_xllamacpp()
            path = check_model_file(self.model_path)
            params = xlc.CommonParams()
            params.model.path = str(path)
            params.n_ctx = self.context
            params.n_predict = self.max_tokens  # a server-side cap as well as the client's max_tokens
            params.n_parallel = 1
            if self.threads:
                params.cpuparams.n_threads = self.threads
                params.cpuparams_batch.n_threads = self.threads
            params.hostnames = ["127.0.0.1"]
            params.port = self.port
            params.api_keys = [self.api_key]
            params.verbosity = self.verbosity
            started = time.monotonic()
            try:
                # Blocks until the model is loaded and the HTTP server listens (or loading failed).
                server = xlc.Server(params)
            except Exception as err:
                port = f"，端口 {self.port}（ASSISTANT_LOCAL_PORT）未被占用" if self.port else ""
                raise GeneratorError(
                    f"本地模型服务启动失败（{type(err).__name__}：{str(err)[:200]}）：请确认 {path.name} "
                    f"是完整的 GGUF 模型，ASSISTANT_LOCAL_CONTEXT（{self.context}）不超出内存{port}。"
                ) from err
            address = str(server.listening_address).rstrip("/")
            try:
                _wait_until_healthy(address, READY_TIMEOUT)
            except GeneratorError:
                del server  # its destructor stops the server thread
                raise
            self._server, self._address = server, address
            log.info("local model %s served at %s (%.1fs)", path.name, address, time.monotonic() - started)
            return address

    def close(self) -> None:
        """Stop the server (idempotent); a later use starts it again, possibly on another port."""
        with self._lock:
            server, self._server, self._address = self._server, None, ""
            # The C++ destructor terminates the server loop and joins its threads.
            del server

    def __enter__(self) -> LocalModelServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


def _wait_until_healthy(address: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with _DIRECT.open(address + "/health", timeout=5) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as err:  # 503 while loading, or not listening yet
            last = str(err)
        time.sleep(0.2)
    raise GeneratorError(f"本地模型服务启动失败：{timeout:.0f} 秒内没有就绪（{last[:200]}）。")


# --- one server per configuration, per process -------------------------------------------------

_servers: dict[tuple[Path, int, int, int, int], LocalModelServer] = {}
_servers_lock = threading.Lock()


def local_server(settings: Settings) -> LocalModelServer:
    """The process's server for the configured model (not started yet if it was never used).

    The settings are checked here, so a misconfiguration is reported before any work."""
    path = check_model_file(settings.local_model_path)
    _import_xllamacpp()
    key = (path, settings.local_context, settings.local_threads, settings.local_port, settings.local_max_tokens)
    with _servers_lock:
        server = _servers.get(key)
        if server is None:
            server = LocalModelServer(
                path,
                context=settings.local_context,
                threads=settings.local_threads,
                port=settings.local_port,
                max_tokens=settings.local_max_tokens,
                verbosity=_LLAMA_VERBOSITY.get(settings.log_level, 1),
            )
            _servers[key] = server
        return server


def close_local_servers() -> None:
    """Stop every local model server of this process (also run at exit)."""
    with _servers_lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        server.close()


atexit.register(close_local_servers)


def local_chat_generator(settings: Settings, server: LocalModelServer) -> ChatGenerator:
    """The `openai` ChatGenerator, pointed at the running local server."""
    endpoint = settings.model_copy(
        update={
            "openai_base_url": server.base_url,
            "openai_api_key": SecretStr(server.api_key),
            "openai_model": server.model_name,
            "openai_max_retries": 0,
        }
    )
    # The server is on 127.0.0.1: a proxy from the environment (HTTP_PROXY …) must not be used.
    client = httpx.Client(trust_env=False, timeout=settings.openai_timeout)
    model = make_chat_model(endpoint, max_tokens=settings.local_max_tokens, http_client=client)
    return ChatGenerator(model, name="local", connection_hint=CONNECTION_HINT)
