"""Files → normalized, chunked documents (no model needed), in a worker process that can be stopped.

A hostile or broken file can make a parser loop or balloon; run in the ingesting process it would
stall the batch or exhaust its memory. The worker runs under an address-space limit and is killed
when one file takes longer than `max_file_seconds`; nothing is written to the index until the
worker has returned, so an abandoned file leaves no half-written document."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import resource
import subprocess
import sys
import threading
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from assistant.chunking import LegalChunker
from assistant.crossrefs import attach_references
from assistant.loaders import LoadError, OcrProgress, load_document, read_manifest
from assistant.normalize import normalize_document
from assistant.settings import Settings
from assistant.types import Chunk, NormalizedDocument

log = logging.getLogger(__name__)


def _infer_title(doc: NormalizedDocument, path: Path) -> str:
    for line in doc.text.split("\n")[:5]:
        line = line.strip()
        if 4 <= len(line) <= 60 and not re.match(r"^第.+条", line):
            return line
    return path.stem


def prepare_document(
    path: Path, settings: Settings, chunker: LegalChunker, on_ocr_page: OcrProgress = None
) -> tuple[NormalizedDocument, list[Chunk]]:
    """Load, normalize and chunk one file in this process. Raises LoadError."""
    raw = load_document(path, settings, read_manifest(path.parent), on_ocr_page)
    doc = normalize_document(raw)
    if not doc.meta.title:
        doc.meta = replace(doc.meta, title=_infer_title(doc, path))
    if not doc.text.strip():
        raise LoadError("清洗后没有剩下可索引的文字（全部为页眉页脚、页码或网页模板内容）")
    chunks = attach_references(chunker.chunk(doc))
    if not chunks:
        raise LoadError("没有切分出任何可索引的段落")
    return doc, chunks


def _serve(inbox: Connection, outbox: Connection) -> None:
    """The worker's loop: (path, settings) in, ("ok", doc, chunks) or ("error", reason) out."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    chunkers: dict[tuple[int, int], LegalChunker] = {}
    outbox.send(("ready",))
    while True:
        try:
            path, settings = inbox.recv()
        except EOFError:
            return
        limit = settings.max_worker_memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
        sizes = (settings.chunk_max_chars, settings.chunk_min_chars)
        chunker = chunkers.setdefault(sizes, LegalChunker(*sizes))
        out_of_memory = (
            "error",
            f"处理时所需内存超过上限 {settings.max_worker_memory_mb} MB（ASSISTANT_MAX_WORKER_MEMORY_MB），"
            "文件可能过于复杂或已损坏，已放弃",
        )
        reply: tuple[Any, ...]
        try:
            reply = ("ok", *prepare_document(Path(path), settings, chunker, lambda page: outbox.send(("page", page))))
        except LoadError as err:
            reply = ("error", str(err))
        except MemoryError:
            reply = out_of_memory
        except Exception as err:  # an unexpected parser crash is this file's failure, not the batch's
            # onnxruntime reports an allocation failure as a RuntimeException mentioning bad_alloc.
            detail = str(err).strip().splitlines()[-1:] or [""]
            reply = out_of_memory if "bad_alloc" in str(err) else ("error", f"处理时出错：{type(err).__name__}: {detail[0][:200]}")
        try:
            outbox.send(reply)  # pickled whole before anything is written, so a failure sends nothing
        except MemoryError:
            del reply
            outbox.send(out_of_memory)


WORKER_START_SECONDS = 120


class ExtractionWorker:
    """A child process (`python -m assistant.extraction`) that prepares files one at a time; it is
    started on first use, kept for the next batch, and replaced after a timeout or a crash. A plain
    subprocess rather than multiprocessing: that would re-import the parent's main module (the CLI,
    pytest or Streamlit's script runner) in the child."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._inbox: Connection | None = None  # the worker's replies
        self._outbox: Connection | None = None  # requests to the worker
        self._lock = threading.Lock()  # one file at a time, whichever thread (app session) asks

    def _start(self) -> tuple[Connection, Connection]:
        if self._process is None or self._process.poll() is not None:
            self._stop()
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
            assert self._process.stdin is not None and self._process.stdout is not None
            self._outbox = Connection(os.dup(self._process.stdin.fileno()), readable=False)
            self._inbox = Connection(os.dup(self._process.stdout.fileno()), writable=False)
            self._process.stdin.close()
            self._process.stdout.close()
            # A file's time limit starts once the worker is ready: its imports take seconds on a busy machine.
            try:
                ready = self._inbox.poll(WORKER_START_SECONDS) and self._inbox.recv() == ("ready",)
            except (EOFError, OSError):
                ready = False
            if not ready:
                self._stop()
                raise LoadError(f"解析进程未能在 {WORKER_START_SECONDS} 秒内启动（系统可能过于繁忙或内存不足）")
        assert self._inbox is not None and self._outbox is not None
        return self._inbox, self._outbox

    def _stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(5)
        for conn in (self._inbox, self._outbox):
            if conn is not None:
                conn.close()
        self._process, self._inbox, self._outbox = None, None, None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def prepare(
        self, path: Path, settings: Settings, on_ocr_page: OcrProgress = None
    ) -> tuple[NormalizedDocument, list[Chunk]]:
        """The file's document and chunks, or LoadError with the reason (timeouts and crashes included).
        Each page the worker recognises extends the time limit by `max_ocr_page_seconds`."""
        with self._lock:
            inbox, outbox = self._start()
            deadline = time.monotonic() + settings.max_file_seconds
            allowed = settings.max_file_seconds
            with contextlib.suppress(OSError):  # a dead worker is reported by recv below
                outbox.send((str(path), settings))
            while True:
                try:
                    finished = inbox.poll(max(deadline - time.monotonic(), 0))
                except OSError:
                    finished = True
                if not finished:
                    self._stop()
                    log.warning("extraction abandoned after %d s: %s", allowed, path)
                    raise LoadError(
                        f"处理超过 {allowed} 秒仍未完成，已放弃（文件可能过于复杂或已损坏；可调整 ASSISTANT_MAX_FILE_SECONDS）"
                    )
                try:
                    reply = inbox.recv()
                except (EOFError, OSError):
                    code = self._process.wait(5) if self._process is not None else None
                    self._stop()
                    raise LoadError(f"解析进程意外退出（退出码 {code}），文件可能已损坏或过于复杂") from None
                if reply[0] != "page":
                    break
                deadline += settings.max_ocr_page_seconds
                allowed += settings.max_ocr_page_seconds
                if on_ocr_page:
                    on_ocr_page(reply[1])
        if reply[0] == "error":
            raise LoadError(reply[1])
        return reply[1], reply[2]


_WORKER = ExtractionWorker()


def prepare_isolated(
    path: Path, settings: Settings, on_ocr_page: OcrProgress = None
) -> tuple[NormalizedDocument, list[Chunk]]:
    """`prepare_document` in the process-wide worker, under the settings' time and memory limits."""
    return _WORKER.prepare(path, settings, on_ocr_page)


def close_worker() -> None:
    """Stop the process-wide worker (the next file starts a new one)."""
    _WORKER.close()


atexit.register(close_worker)


if __name__ == "__main__":
    # The channel to the parent is the original stdout; anything a library prints goes to stderr.
    channel_out = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)
    # pypdf logs every repaired cross-reference of a damaged file; the file's reason is reported anyway.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    _serve(Connection(os.dup(0), writable=False), channel_out)
