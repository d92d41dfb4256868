"""Helpers for the browser end-to-end tests: a small corpus, the app started as a real process on a
free port, a headless Debian chromium, and optional screenshots. Nothing is mocked."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from assistant.settings import PROJECT_ROOT

CORPUS = PROJECT_ROOT / "corpus"
SMALL_CORPUS_FILES = (
    "advertising-law-2021.pdf",
    "food-safety-law-implementing-regulations-2019.pdf",
    "food-safety-law-amendment-decision-2025.md",
)
SCREENSHOT_DIR = PROJECT_ROOT / "evals" / "reports" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

HOSTILE_NAME = "注入测试.md"
HOSTILE_TITLE = "注入测试规定"
# The payloads sit on separate lines: Markdown loading treats `__x__` within one line as bold and
# would strip the underscores, which would make the "no `__pwned` script" check pass vacuously.
HOSTILE_TEXT = f"""# {HOSTILE_TITLE}

第一条 为检验页面安全，本条原文包含以下字样，应当原样显示而不得执行：
<script>window.__pwned=1</script>
<img src=x onerror="window.__pwned=2">
以上内容仅为文字。

第二条 本规定自发布之日起施行。
"""
SCRIPT_PAYLOAD = "<script>window.__pwned=1</script>"


def copy_corpus_files(folder: Path, names: tuple[str, ...]) -> Path:
    """Bundled documents with their MANIFEST rows, copied into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(CORPUS / name, folder / name)
    lines = (CORPUS / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    rows = [lines[0]] + [line for line in lines[1:] if line.split("\t", 1)[0] in names]
    assert len(rows) == len(names) + 1, rows
    (folder / "MANIFEST.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def build_small_corpus(folder: Path) -> Path:
    """Three bundled documents with their MANIFEST rows, plus the hostile Markdown document."""
    copy_corpus_files(folder, SMALL_CORPUS_FILES)
    (folder / HOSTILE_NAME).write_text(HOSTILE_TEXT, encoding="utf-8")
    return folder


@contextmanager
def app_page(browser, timeout: float):  # type: ignore[no-untyped-def]
    """A fresh browser context (so a fresh Streamlit session) with one page; on leaving, the page must
    show no Streamlit exception and have raised no script error."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True, locale="zh-CN")
    context.set_default_timeout(timeout)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
        exceptions = page.locator('[data-testid="stException"]')
        assert exceptions.count() == 0, exceptions.all_inner_texts()
        assert not errors, errors
    finally:
        context.close()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class RunningApp:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    corpus_dir: Path
    data_dir: Path
    documents: int

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:] if self.log.exists() else ""


def start_app(
    root: Path, corpus_dir: Path, host: str = "127.0.0.1", extra_env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`python -m assistant app` on a free port with index, data and corpus under `root`; `host` is the
    address it listens on (reached through 127.0.0.1 in any case), `extra_env` adds or overrides
    variables (e.g. `ASSISTANT_INDEX_DIR` to reuse an index built before)."""
    port = free_port(host)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        ASSISTANT_CORPUS_DIR=str(corpus_dir),
        ASSISTANT_INDEX_DIR=str(root / "index"),
        ASSISTANT_DATA_DIR=str(root / "data"),
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env or {})
    log = root / "app.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "assistant", "app", "--port", str(port), "--host", host],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the streamlit child is stopped with it
        )
    return process, f"http://127.0.0.1:{port}", log


def wait_for_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"app exited with {process.returncode}:\n{log.read_text(errors='replace')[-4000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"app did not answer on {url}:\n{log.read_text(errors='replace')[-4000:]}")


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the app and the streamlit process it started (the process group created for it)."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    with suppress(ProcessLookupError):  # the group may outlive its leader (streamlit is a grandchild)
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)


def screenshots_enabled() -> bool:
    return os.environ.get("E2E_SCREENSHOTS", "") not in ("", "0", "false", "no")


def settle(page, timeout: float = 30_000) -> None:  # type: ignore[no-untyped-def]
    """Wait until Streamlit has finished the current run: no running indicator, no stale elements."""
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidgetRunningIcon"], [data-stale="true"]')""",
        timeout=timeout,
    )


def screenshot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """A PNG of the whole page (Streamlit scrolls inside its main section, so the viewport is grown
    to the content height for the shot) when E2E_SCREENSHOTS=1."""
    if not screenshots_enabled():
        return
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    settle(page)
    size = page.viewport_size or {"width": 1400, "height": 1000}
    height = page.evaluate(
        """() => Math.max(document.body.scrollHeight,
              ...[...document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"], [data-testid="stMainBlockContainer"], [data-testid="stSidebarContent"]')]
                 .map(e => e.scrollHeight))"""
    )
    page.set_viewport_size(
        {"width": size["width"], "height": min(max(int(height) + 80, size["height"]), 6000)}
    )
    page.wait_for_timeout(300)  # let the layout settle after the resize
    page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=True)
    page.set_viewport_size(size)


@contextmanager
def browser_session() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
