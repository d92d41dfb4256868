"""App cold start benchmark (a benchmark, not a test): with the index of the bundled corpus already
built, the time from launching `python -m assistant app` to the first cited answer on the chat page,
as a user with the browser already open would see it. Each run is a new app process (models,
index and jieba loaded from disk — the operating system's file cache stays warm, as it would on a
server that restarts the app) and a new browser context.

Run: .venv/bin/python evals/bench_app.py [--runs 3] [--report evals/reports/app-start.md]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

from assistant.engine import Assistant
from assistant.evaluation.golden import REPORTS_DIR
from assistant.settings import PROJECT_ROOT, Settings

CHROMIUM = "/usr/bin/chromium"
QUESTION = "保健食品广告需要审查吗？"
CITED = re.compile(r"根据《[^》]+》第[一二三四五六七八九十百]+条")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def one_run(browser, log: Path) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    with log.open("ab") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "assistant", "app", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while not healthy(url):
            if process.poll() is not None or time.perf_counter() - started > 120:
                raise RuntimeError(f"app did not start; see {log}")
            time.sleep(0.05)
        health_s = time.perf_counter() - started
        page.goto(url)
        box = page.get_by_placeholder("请输入问题")
        expect(box).to_be_visible(timeout=120_000)
        page_s = time.perf_counter() - started
        box.fill(QUESTION)
        box.press("Enter")
        answer = page.locator('[data-testid="stChatMessage"]').nth(1)
        expect(answer).to_contain_text(CITED, timeout=120_000)
        answer_s = time.perf_counter() - started
    finally:
        context.close()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    return {"health_s": health_s, "page_s": page_s, "answer_s": answer_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--report", type=Path, default=REPORTS_DIR / "app-start.md")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    assistant = Assistant(Settings())  # build the index first (not timed)
    assistant.ingest()
    assistant.close()
    runs = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for i in range(args.runs):
            result = one_run(browser, Path(tmp) / "app.log")
            runs.append(result)
            print(f"run {i + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items()), flush=True)
        browser.close()
    rows = "\n".join(
        f"| {i} | {r['health_s']:.2f} | {r['page_s']:.2f} | {r['answer_s']:.2f} |" for i, r in enumerate(runs, 1)
    )
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    text = (
        "# App cold start to the first answer\n\n"
        f"Generated on {date.today()} by `evals/bench_app.py` on this {os.cpu_count()}-core machine, default "
        "settings, the index of the bundled corpus built beforehand. Each run launches `python -m assistant app`, "
        f"opens the chat page in Chromium (already running) and asks “{QUESTION}”; seconds from the launch to: "
        "the server answering its health check, the chat box shown, the cited answer shown.\n\n"
        "| run | server up | chat page | first answer |\n|---|---|---|---|\n"
        f"{rows}\n| median | {median['health_s']:.2f} | {median['page_s']:.2f} | {median['answer_s']:.2f} |\n\n"
        "Target (issue 17): first answer ≤ 8 s.\n"
    )
    args.report.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
