"""End to end: the admin gate of the library page, in the real app driven by headless chromium.

Three app configurations, started one after the other on one small index (the first start builds
it, the others reuse it; an embedded Chroma index is used by one process at a time):

- an admin password set: the library needs it, chat does not;
- no password, listening on 0.0.0.0: the library's changing actions are disabled, with a warning;
- the same with ASSISTANT_ALLOW_OPEN_ADMIN=true: they are enabled.

No password on 127.0.0.1 (the default, unchanged) is covered by test_e2e_app's library test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from ._e2e import (
    RunningApp,
    app_page,
    browser_session,
    copy_corpus_files,
    screenshot,
    settle,
    start_app,
    stop_process_group,
    wait_for_http,
)

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
Page = playwright_api.Page

pytestmark = pytest.mark.slow

FIRST_START_TIMEOUT = 300_000  # model load (+ indexing, on the first start)
ANSWER_TIMEOUT = 60_000
UI_TIMEOUT = 20_000
expect.set_options(timeout=UI_TIMEOUT)

PASSWORD = "库管 secret-2025"
WRONG_PASSWORD = "wrong-guess-4711"
DOCUMENT = "food-safety-law-amendment-decision-2025.md"  # the smallest bundled document: a fast first index
UPLOAD_NAME = "管理测试办法.txt"
UPLOAD_TEXT = (
    "保健食品管理测试办法\n"
    "第一条 为了检验文档库的管理权限，制定本办法。\n"
    "第二条 本办法自发布之日起施行。\n"
)
REJECTED = "admin password rejected (attempt 1 this session)"


class Apps:
    """One running app at a time, all on the same index and data folders; asking for another
    configuration stops the running one first."""

    def __init__(self, root: Path, corpus: Path, browser) -> None:  # type: ignore[no-untyped-def]
        self.root, self.corpus, self.browser = root, corpus, browser
        self.name = ""
        self.app: RunningApp | None = None

    def get(self, name: str, host: str, env: Mapping[str, str] | None = None) -> RunningApp:
        if self.app is not None and self.name == name:
            return self.app
        self.stop()
        root = self.root / name
        root.mkdir()
        shared = {
            "ASSISTANT_INDEX_DIR": str(self.root / "index"),
            "ASSISTANT_DATA_DIR": str(self.root / "data"),
        }
        process, url, log = start_app(root, self.corpus, host=host, extra_env={**shared, **(env or {})})
        self.name, self.app = name, RunningApp(url, process, log, self.corpus, self.root / "data", 0)
        wait_for_http(url, process, log)
        page = self.browser.new_page()
        try:  # the first session loads the model (and builds the index on the first start)
            page.goto(url + "/")
            ready = page.get_by_role("heading", name="智能问答", exact=True)
            crashed = page.locator('[data-testid="stException"]')
            expect(ready.or_(crashed).first).to_be_visible(timeout=FIRST_START_TIMEOUT)
            assert crashed.count() == 0, crashed.first.inner_text()
        finally:
            page.close()
        return self.app

    def stop(self) -> None:
        if self.app is not None:
            stop_process_group(self.app.process)
            self.app = None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with browser_session() as b:
        yield b


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory, browser) -> Iterator[Apps]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("e2e-admin")
    corpus = copy_corpus_files(root / "corpus", (DOCUMENT,))
    manager = Apps(root, corpus, browser)
    try:
        yield manager
    finally:
        manager.stop()


@pytest.fixture
def page(browser) -> Iterator[Page]:  # type: ignore[no-untyped-def]
    """A fresh browser context (so a fresh Streamlit session) per test."""
    with app_page(browser, UI_TIMEOUT) as pg:
        yield pg


def password_app(apps: Apps) -> RunningApp:
    return apps.get("password", "127.0.0.1", {"ASSISTANT_ADMIN_PASSWORD": PASSWORD})


def open_library(page: Page, app: RunningApp) -> None:
    page.goto(app.url + "/library")
    expect(page.get_by_role("heading", name="文档库", exact=True)).to_be_visible(timeout=ANSWER_TIMEOUT)
    expect(page.get_by_text(re.compile(r"共 \d+ 个文档"))).to_be_visible()


def changing_controls(page: Page) -> list:  # type: ignore[type-arg]
    """The file uploader's 选择文件 button, 重新索引 and 从索引中删除."""
    return [
        page.locator('[data-testid="stFileUploader"] [data-testid="stBaseButton-secondary"]'),
        page.get_by_role("button", name="重新索引", exact=True),
        page.get_by_role("button", name="从索引中删除", exact=True),
    ]


def expect_changes(page: Page, *, enabled: bool) -> None:
    settle(page)  # a rerun's stale copy of a button would be a second match
    for control in changing_controls(page):
        if enabled:
            expect(control).to_be_enabled()
        else:
            expect(control).to_be_disabled()
    if not enabled:  # a file dropped anyway is not taken
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
            [{"name": UPLOAD_NAME, "mimeType": "text/plain", "buffer": UPLOAD_TEXT.encode("utf-8")}]
        )
        page.wait_for_timeout(1000)
        expect(page.locator('[data-testid="stFileUploader"]')).not_to_contain_text(UPLOAD_NAME)
        expect(page.get_by_role("button", name="导入并建立索引")).to_have_count(0)


# --- an admin password set -------------------------------------------------------------------------


def test_password_unlocks_the_library(page: Page, apps: Apps) -> None:
    app = password_app(apps)
    open_library(page, app)
    password = page.get_by_label("管理员密码")
    expect(password).to_be_visible()
    expect_changes(page, enabled=False)
    expect(page.get_by_role("button", name="导入并建立索引")).to_have_count(0)
    screenshot(page, "library-admin-login")

    password.fill(WRONG_PASSWORD)
    page.get_by_role("button", name="进入管理").click()
    error = page.locator('[data-testid="stAlertContentError"]')
    expect(error).to_contain_text("管理员密码不正确")
    expect_changes(page, enabled=False)
    log = app.log.read_text(encoding="utf-8", errors="replace")
    assert REJECTED in log, app.log_tail()
    assert WRONG_PASSWORD not in log

    password.fill(PASSWORD)
    password.press("Enter")  # submits the form
    expect(page.get_by_text("已进入管理模式")).to_be_visible()
    expect(page.get_by_label("管理员密码")).to_have_count(0)
    expect(error).to_have_count(0)
    expect_changes(page, enabled=True)
    assert PASSWORD not in app.log.read_text(encoding="utf-8", errors="replace")

    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        [{"name": UPLOAD_NAME, "mimeType": "text/plain", "buffer": UPLOAD_TEXT.encode("utf-8")}]
    )
    start = page.get_by_role("button", name="导入并建立索引")
    expect(start).to_be_enabled()
    start.click()
    ok = page.locator('[data-testid="stAlertContentSuccess"]').filter(has_text=UPLOAD_NAME)
    expect(ok).to_contain_text("已导入", timeout=ANSWER_TIMEOUT)
    screenshot(page, "library-admin-unlocked")

    # Unlocked for the session: another page and back keeps it; 退出管理 locks again.
    page.get_by_role("link", name="条文查询").click()
    expect(page.get_by_role("heading", name="条文查询", exact=True)).to_be_visible()
    page.get_by_role("link", name="文档库").click()
    expect(page.get_by_text("已进入管理模式")).to_be_visible()
    page.get_by_role("button", name="退出管理").click()
    expect(page.get_by_label("管理员密码")).to_be_visible()
    expect_changes(page, enabled=False)


def test_password_set_chat_stays_open(page: Page, apps: Apps) -> None:
    app = password_app(apps)
    page.goto(app.url + "/")
    expect(page.get_by_role("heading", name="智能问答", exact=True)).to_be_visible(timeout=ANSWER_TIMEOUT)
    expect(page.get_by_label("管理员密码")).to_have_count(0)
    box = page.get_by_placeholder("请输入问题")
    box.fill("重点液态食品道路散装运输需要取得许可吗？")
    box.press("Enter")
    messages = page.locator('[data-testid="stChatMessage"]')
    expect(messages).to_have_count(2, timeout=ANSWER_TIMEOUT)
    expect(messages.nth(1)).to_contain_text("液态食品", timeout=ANSWER_TIMEOUT)


# --- no password, listening on every interface --------------------------------------------------------


def test_network_without_password_disables_changes(page: Page, apps: Apps) -> None:
    app = apps.get("network-locked", "0.0.0.0")
    open_library(page, app)
    warning = page.locator('[data-testid="stAlertContentWarning"]')
    expect(warning).to_contain_text("0.0.0.0")
    expect(warning).to_contain_text("ASSISTANT_ADMIN_PASSWORD")
    expect(warning).to_contain_text("ASSISTANT_ALLOW_OPEN_ADMIN=true")
    expect(page.get_by_label("管理员密码")).to_have_count(0)
    expect_changes(page, enabled=False)
    screenshot(page, "library-network-locked")


def test_network_open_by_choice_enables_changes(page: Page, apps: Apps) -> None:
    app = apps.get("network-open", "0.0.0.0", {"ASSISTANT_ALLOW_OPEN_ADMIN": "true"})
    open_library(page, app)
    expect(page.get_by_text("已允许开放管理")).to_be_visible()
    expect(page.locator('[data-testid="stAlertContentWarning"]')).to_have_count(0)
    expect(page.get_by_label("管理员密码")).to_have_count(0)
    expect_changes(page, enabled=True)
