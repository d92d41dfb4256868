"""End to end: the Streamlit app started with `python -m assistant app` on a small temporary corpus,
driven by headless chromium through every page. Set E2E_SCREENSHOTS=1 to save a PNG of each page to
evals/reports/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._e2e import (
    HOSTILE_TITLE,
    SCRIPT_PAYLOAD,
    RunningApp,
    app_page,
    browser_session,
    build_small_corpus,
    screenshot,
    settle,
    start_app,
    stop_process_group,
    wait_for_http,
)

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
Page = playwright_api.Page
Locator = playwright_api.Locator

pytestmark = pytest.mark.slow

INGEST_TIMEOUT = 300_000  # first run: model load + indexing of the small corpus
ANSWER_TIMEOUT = 60_000
UI_TIMEOUT = 20_000
expect.set_options(timeout=UI_TIMEOUT)  # Streamlit reruns can take a few seconds on a busy machine

ADVERT = (
    "【夏日特惠】XX牌深海鱼油软胶囊，三天见效，根治高血压！\n"
    "医生推荐，老人放心吃。<script>window.__pwned=3</script>\n"
    "我妈吃了三个月，体检单上的箭头全没了。\n"
    "咨询电话：400-000-0000"
)
TRAINER_QUESTIONS = {  # question → an article its answer must cite
    "保健食品广告需要审查吗？": "第四十六条",
    "保健食品广告不得含有哪些内容？": "第十八条",
    "食品生产经营许可的有效期是多久？": "第十五条",
}
UPLOAD_TITLE = "保健食品经营测试管理办法"
UPLOAD_TEXT = (
    f"{UPLOAD_TITLE}\n"
    "第一条 为了规范保健食品经营活动，保障消费者身体健康，根据有关法律法规，制定本办法。\n"
    "第二条 保健食品经营者应当建立进货查验记录制度，如实记录保健食品的名称、规格、数量、生产日期、"
    "保质期、进货日期以及供货者名称、地址、联系方式等内容，并保存相关凭证。\n"
    "第三条 保健食品经营者不得以会议营销、免费体检等方式进行虚假宣传，不得宣称保健食品具有疾病预防、"
    "治疗功能。\n"
    "第四条 本办法自发布之日起施行。\n"
)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with browser_session() as b:
        yield b


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, browser) -> Iterator[RunningApp]:  # type: ignore[no-untyped-def]
    """The app on a free port over a small corpus; yields once the first-run indexing has finished."""
    root = tmp_path_factory.mktemp("e2e-app")
    corpus = build_small_corpus(root / "corpus")
    process, url, log = start_app(root, corpus)
    try:
        wait_for_http(url, process, log)
        # The first browser session runs the script, which builds the index with a progress bar.
        page = browser.new_page()
        try:
            page.goto(url + "/")
            done = page.get_by_text(re.compile(r"索引完成：\d+ 个文档"))
            crashed = page.locator('[data-testid="stException"]')
            expect(done.or_(crashed).first).to_be_visible(timeout=INGEST_TIMEOUT)
            assert crashed.count() == 0, crashed.first.inner_text()
            count = int(re.search(r"索引完成：(\d+) 个文档", done.inner_text()).group(1))  # type: ignore[union-attr]
            expect(page.get_by_role("heading", name="智能问答")).to_be_visible(timeout=INGEST_TIMEOUT)
            failures = page.locator('[data-testid="stAlertContentWarning"]')
            assert failures.count() == 0, failures.all_inner_texts()
        finally:
            page.close()
        assert count == 4, (
            f"expected 3 corpus documents and the hostile one, got {count}\n{log.read_text()[-3000:]}"
        )
        yield RunningApp(url, process, log, corpus, root / "data", count)
    finally:
        stop_process_group(process)


@pytest.fixture
def page(app: RunningApp, browser) -> Iterator[Page]:  # type: ignore[no-untyped-def]
    """A fresh browser context (so a fresh Streamlit session) per test."""
    with app_page(browser, UI_TIMEOUT) as pg:
        yield pg


# --- helpers -------------------------------------------------------------------------------------


def open_page(page: Page, app: RunningApp, path: str, heading: str) -> None:
    page.goto(app.url + path)
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=ANSWER_TIMEOUT)


def ask(page: Page, question: str) -> None:
    box = page.get_by_placeholder("请输入问题")
    box.fill(question)
    box.press("Enter")


def rendered(scope, text: str):  # type: ignore[no-untyped-def]
    """Markdown/HTML blocks the app rendered that show `text` literally (not the input widgets)."""
    return scope.locator('[data-testid="stMarkdownContainer"]').filter(has_text=text)


def assert_not_pwned(page: Page) -> None:
    assert page.evaluate("typeof window.__pwned") == "undefined"
    scripts = page.evaluate(
        "[...document.querySelectorAll('script')].filter(s => s.textContent.includes('__pwned')).length"
    )
    assert scripts == 0
    assert page.locator("img[onerror]").count() == 0


def no_errors(page: Page) -> None:
    errors = page.locator('[data-testid="stAlertContentError"], [data-testid="stException"]')
    assert errors.count() == 0, errors.all_inner_texts()


def download(page: Page, button: str, target: Path) -> Path:
    with page.expect_download() as info:
        page.get_by_role("button", name=button, exact=True).click()
    info.value.save_as(target)
    assert target.stat().st_size > 0
    return target


def docx_text(path: Path) -> str:
    import docx

    return "\n".join(p.text for p in docx.Document(str(path)).paragraphs)


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.generic import NameObject

    reader = PdfReader(str(path))
    for pg in reader.pages:
        # fpdf2 embeds CFF CJK fonts (Noto CJK) with a code→CID CMap stream as /Encoding; pypdf then
        # reads the 2-byte codes one byte at a time. The codes are 2-byte and /ToUnicode maps them, so
        # telling pypdf it is Identity-H (in memory only) gives the text a PDF viewer would copy.
        for ref in pg["/Resources"]["/Font"].values():
            font = ref.get_object()
            if font.get("/Subtype") == "/Type0" and not isinstance(font.get("/Encoding"), NameObject):
                font[NameObject("/Encoding")] = NameObject("/Identity-H")
    text = "".join(pg.extract_text() or "" for pg in reader.pages)
    return re.sub(r"\s+", "", text)  # pypdf may put spaces between CJK characters


# --- tests ---------------------------------------------------------------------------------------


def test_chat_cited_answer_followup_and_new_conversation(page: Page, app: RunningApp) -> None:
    open_page(page, app, "/", "智能问答")
    messages = page.locator('[data-testid="stChatMessage"]')

    ask(page, "保健食品广告需要审查吗？")
    expect(messages).to_have_count(2, timeout=ANSWER_TIMEOUT)
    first = messages.nth(1)
    expect(first).to_contain_text(
        re.compile(r"根据《[^》]+》第[一二三四五六七八九十百]+条"), timeout=ANSWER_TIMEOUT
    )
    expect(first).to_contain_text("《中华人民共和国广告法》第四十六条")

    # The citation opens onto the quoted clause with its title, page and status.
    citation = first.locator('[data-testid="stExpander"]').filter(has_text="[1]")
    expect(citation).to_have_count(1)
    expect(citation.locator("summary")).to_contain_text("《中华人民共和国广告法》第四十六条")
    expect(citation.locator("summary")).to_contain_text(re.compile(r"第\d+页"))
    citation.locator("summary").click()
    details = citation.locator('[data-testid="stExpanderDetails"]')
    expect(details).to_be_visible()
    expect(details).to_contain_text("应当在发布前由有关部门")
    expect(details).to_contain_text(re.compile(r"第\d+页"))
    expect(details).to_contain_text("现行有效")
    expect(details).to_contain_text("施行日期 2021-04-29")

    # A follow-up is judged to continue the conversation, rewritten with its subject (shown as a
    # caption) and answered from the article that punishes breaking the duty just cited.
    ask(page, "如果没审查就发出去了，会怎么罚？")
    expect(messages).to_have_count(4, timeout=ANSWER_TIMEOUT)
    expect(messages.nth(2)).to_contain_text("如果没审查就发出去了，会怎么罚？")
    second = messages.nth(3)
    expect(second).to_contain_text(
        re.compile(r"根据《[^》]+》第[一二三四五六七八九十百]+条"), timeout=ANSWER_TIMEOUT
    )
    expect(second.get_by_text(re.compile("^接上文理解为：.*广告"))).to_be_visible()
    expect(second).to_contain_text("《中华人民共和国广告法》第五十八条")
    expect(second).to_contain_text("罚款")
    expect(second.locator('[data-testid="stExpander"]').filter(has_text="[1]")).to_have_count(1)
    no_errors(page)
    screenshot(page, "chat")

    page.locator('[data-testid="stSidebar"]').get_by_role("button", name="新对话").click()
    expect(messages).to_have_count(0)
    expect(page.get_by_text("如果没审查就发出去了，会怎么罚？")).to_have_count(0)


def first_reply(page: Page, app: RunningApp, question: str) -> Locator:
    """Asks `question` in a new chat and returns the assistant's message."""
    open_page(page, app, "/", "智能问答")
    ask(page, question)
    messages = page.locator('[data-testid="stChatMessage"]')
    expect(messages).to_have_count(2, timeout=ANSWER_TIMEOUT)
    return messages.nth(1)


def test_chat_out_of_scope_question_is_a_refusal(page: Page, app: RunningApp) -> None:
    reply = first_reply(page, app, "明天上海会下雨吗？")
    refusal = reply.locator('[data-testid="stAlertContentInfo"]')
    expect(refusal).to_be_visible(timeout=ANSWER_TIMEOUT)
    expect(refusal).to_contain_text("无法回答")
    expect(reply.locator('[data-testid="stExpander"]')).to_have_count(0)
    no_errors(page)
    screenshot(page, "chat-refusal")


def test_chat_near_miss_refusal_opens_the_nearest_article(page: Page, app: RunningApp) -> None:
    reply = first_reply(page, app, "保健食品广告审查机关收到申请后要在多少个工作日内作出审查决定？")
    refusal = reply.locator('[data-testid="stAlertContentInfo"]')
    # The judge finds no clause that answers (a figure the library does not give).
    expect(refusal).to_contain_text("无法回答", timeout=ANSWER_TIMEOUT)
    pointer = reply.get_by_role("button", name=re.compile(r"查看 《中华人民共和国广告法》第.+条"))
    expect(pointer.first).to_be_visible()
    label = pointer.first.inner_text().removeprefix("查看 ").strip()
    pointer.first.click()
    # 条文查询 opens with that article, verbatim.
    expect(page.get_by_role("heading", name=label)).to_be_visible(timeout=ANSWER_TIMEOUT)
    expect(page.get_by_label("条文引用")).to_have_value(label)
    no_errors(page)


def test_lookup_article_navigation_suggestions_and_search(page: Page, app: RunningApp) -> None:
    open_page(page, app, "/lookup", "条文查询")
    reference = page.get_by_label("条文引用")

    reference.fill("广告法第18条第1款第4项")
    reference.press("Enter")
    expect(page.get_by_role("heading", name="《中华人民共和国广告法》第十八条")).to_be_visible(
        timeout=ANSWER_TIMEOUT
    )
    mark = page.locator("mark")
    expect(mark).to_have_count(1)
    expect(mark).to_contain_text("（四）")
    expect(mark).to_contain_text("与药品、其他保健食品进行比较")
    expect(page.get_by_text(re.compile(r"第二章 广告内容准则 · 第\d+页"))).to_be_visible()

    page.get_by_role("button", name="第十九条 →").click()
    expect(page.get_by_role("heading", name="《中华人民共和国广告法》第十九条")).to_be_visible()
    expect(reference).to_have_value("中华人民共和国广告法第十九条")
    expect(page.get_by_role("button", name="← 第十八条")).to_be_visible()
    expect(page.get_by_role("button", name="第二十条 →")).to_be_visible()
    page.get_by_role("button", name="← 第十八条").click()
    expect(page.get_by_role("heading", name="《中华人民共和国广告法》第十八条")).to_be_visible()
    expect(page.get_by_role("button", name="← 第十七条")).to_be_visible()
    expect(page.get_by_role("button", name="第十九条 →")).to_be_visible()
    screenshot(page, "lookup")

    # The articles that punish breaking 第十八条 are links; the penalty article links back.
    expect(page.get_by_role("heading", name="引用本条的条文")).to_be_visible()
    page.get_by_role("button", name="罚则 · 《中华人民共和国广告法》第五十八条").click()
    expect(page.get_by_role("heading", name="《中华人民共和国广告法》第五十八条")).to_be_visible()
    expect(page.get_by_role("heading", name="本条引用的条文")).to_be_visible()
    expect(page.get_by_role("button", name="所罚违反 · 《中华人民共和国广告法》第十八条")).to_be_visible()
    screenshot(page, "lookup-cross-references")

    reference.fill("广告法第一百条")
    reference.press("Enter")
    warning = page.locator('[data-testid="stAlertContentWarning"]')
    expect(warning).to_be_visible()
    expect(page.get_by_text("您可能要找：")).to_be_visible()
    suggestions = page.get_by_role("button", name=re.compile(r"广告法.*第.+条"))
    expect(suggestions.first).to_be_visible()
    chosen = suggestions.first.inner_text().strip()
    suggestions.first.click()  # a suggestion opens that article
    expect(reference).to_have_value(chosen)
    expect(page.get_by_role("heading", name=re.compile(r"《中华人民共和国广告法》第.+条"))).to_be_visible()
    screenshot(page, "lookup-suggestions")

    page.get_by_role("tab", name="关键词 / 语义检索").click()
    query = page.get_by_label("检索内容")
    query.fill("保健食品广告 审查")
    query.press("Enter")
    panel = page.get_by_role("tabpanel", name="关键词 / 语义检索")
    expect(panel.get_by_text(re.compile(r"^1\. 《"))).to_be_visible(timeout=ANSWER_TIMEOUT)
    expect(panel.get_by_text(re.compile(r"^\d+\. 《"))).to_have_count(10)
    expect(panel.locator("mark").filter(has_text="保健食品").first).to_be_visible()
    no_errors(page)
    screenshot(page, "lookup-search")


def test_a_cited_article_opens_its_source_page_with_the_passage_boxed(page: Page, app: RunningApp) -> None:
    open_page(page, app, "/lookup", "条文查询")
    reference = page.get_by_label("条文引用")
    reference.fill("广告法第十八条")
    reference.press("Enter")
    expect(page.get_by_role("heading", name="《中华人民共和国广告法》第十八条")).to_be_visible(
        timeout=ANSWER_TIMEOUT
    )
    page.get_by_text("查看原文", exact=True).click()
    image = page.locator('[data-testid="stImage"] img')
    expect(image).to_be_visible(timeout=ANSWER_TIMEOUT)
    expect(page.get_by_text(re.compile(r"原文第 \d+ 页（黄色框为引文位置）"))).to_be_visible()
    assert image.evaluate("img => img.naturalWidth") > 500
    no_errors(page)
    screenshot(page, "lookup-source-page")


def test_review_highlights_findings_and_exports_docx(page: Page, app: RunningApp, tmp_path: Path) -> None:
    open_page(page, app, "/review", "文稿审查")
    page.get_by_label("文稿内容").fill(ADVERT)
    page.locator('[data-testid="stRadio"]').get_by_text("广告", exact=True).click()
    page.get_by_role("button", name="开始审查").click()

    expect(page.get_by_role("heading", name="标注后的文稿")).to_be_visible(timeout=ANSWER_TIMEOUT)
    marks = page.locator("mark")
    for phrase in ("三天见效", "根治", "医生推荐"):
        expect(marks.filter(has_text=phrase).first).to_be_visible()
    # The draft's <script> is shown as text, not run.
    expect(rendered(page, "<script>window.__pwned=3</script>")).to_have_count(1)
    expect(page.get_by_role("heading", name=re.compile(r"发现 \d+ 个问题"))).to_be_visible()
    expect(page.get_by_text("文稿类型：广告（用户选择）")).to_be_visible()
    table = page.locator('[data-testid="stTable"]')
    expect(table).to_be_visible()
    # Each finding says which layer found it: a rule pattern, or the classifier (with its probability).
    rule_row = table.locator("tr").filter(has_text="根治")
    expect(rule_row.get_by_text("规则", exact=True)).to_be_visible()
    model_row = table.locator("tr").filter(has_text="体检单上的箭头全没了")
    expect(model_row.get_by_text(re.compile(r"^分类模型（[01]\.\d\d）$"))).to_be_visible()
    expect(page.get_by_role("heading", name="引用的条文")).to_be_visible()
    cited = page.locator('[data-testid="stExpander"]')
    expect(cited.first).to_be_visible()
    expect(cited.filter(has_text="《中华人民共和国广告法》第十八条")).not_to_have_count(0)
    cited.first.locator("summary").click()
    expect(cited.first.locator('[data-testid="stExpanderDetails"]')).not_to_be_empty()
    expect(page.get_by_role("button", name="导出 Markdown")).to_be_visible()
    expect(page.get_by_role("button", name="导出 Word（DOCX）")).to_be_visible()
    no_errors(page)
    assert_not_pwned(page)
    screenshot(page, "review")

    text = docx_text(download(page, "导出 Word（DOCX）", tmp_path / "review.docx"))
    assert "根治" in text
    assert "医生推荐" in text
    assert "广告法" in text


def test_library_upload_reports_each_file(page: Page, app: RunningApp) -> None:
    open_page(page, app, "/library", "文档库")
    expect(page.get_by_text(f"共 {app.documents} 个文档")).to_be_visible()
    # No admin password on 127.0.0.1 (the default): no gate, changes open as they always were.
    expect(page.get_by_label("管理员密码")).to_have_count(0)
    expect(page.locator('[data-testid="stAlertContentWarning"]')).to_have_count(0)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        [
            {"name": "经营测试办法.txt", "mimeType": "text/plain", "buffer": UPLOAD_TEXT.encode("gbk")},
            {"name": "空白.pdf", "mimeType": "application/pdf", "buffer": b""},
        ]
    )
    uploader = page.locator('[data-testid="stFileUploader"]')
    expect(uploader).to_contain_text("经营测试办法.txt")
    expect(uploader).to_contain_text("空白.pdf")
    page.get_by_role("button", name="导入并建立索引").click()

    ok = page.locator('[data-testid="stAlertContentSuccess"]').filter(has_text="经营测试办法.txt")
    expect(ok).to_be_visible(timeout=ANSWER_TIMEOUT)
    expect(ok).to_contain_text("已导入")
    bad = page.locator('[data-testid="stAlertContentError"]').filter(has_text="空白.pdf")
    expect(bad).to_be_visible()
    expect(bad).to_contain_text("为空")
    expect(page.locator('[data-testid="stAlertContentError"]')).to_have_count(1)

    # The table (and the count above it) include the new document, decoded from GBK.
    expect(page.get_by_text(f"共 {app.documents + 1} 个文档")).to_be_visible()
    # The grid is drawn on a canvas; its accessible cells carry the text of the visible columns.
    cells = page.locator('[data-testid="stDataFrame"] [role="gridcell"]')
    expect(cells.filter(has_text=UPLOAD_TITLE)).to_have_count(1)
    expect(cells.filter(has_text="注入测试规定")).to_have_count(1)
    screenshot(page, "library")


def test_trainer_session_answers_and_handouts(page: Page, app: RunningApp, tmp_path: Path) -> None:
    open_page(page, app, "/trainer", "培训场次")
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_label("名称", exact=True).fill("端到端测试宣讲")
    sidebar.get_by_label("对象", exact=True).fill("辖区保健食品经营企业")
    sidebar.get_by_role("button", name="创建").click()
    expect(page.get_by_role("heading", name="端到端测试宣讲")).to_be_visible()

    page.get_by_label("每行一个问题（可直接粘贴问题清单）").fill("\n".join(TRAINER_QUESTIONS))
    page.get_by_role("button", name="加入队列").click()
    answer_all = page.get_by_role("button", name=re.compile(r"全部回答"))
    expect(answer_all).to_have_text(re.compile(r"3 个待答"))
    for question in TRAINER_QUESTIONS:
        expect(page.get_by_text(question)).to_be_visible()

    settle(page)  # a click on the button of a run being replaced is lost
    answer_all.click()
    # During a rerun the old button (3 个待答) and the new one can both be on the page: wait for the new one.
    done = page.get_by_role("button", name=re.compile(r"0 个待答"))
    expect(done).to_be_visible(timeout=3 * ANSWER_TIMEOUT)
    settle(page)
    expect(done).to_be_disabled()
    answers = page.get_by_text(re.compile(r"^根据《"))
    expect(answers).to_have_count(len(TRAINER_QUESTIONS))
    for article in TRAINER_QUESTIONS.values():
        expect(
            page.locator('[data-testid="stExpander"] summary').filter(has_text=article).first
        ).to_be_visible()
    no_errors(page)
    screenshot(page, "trainer")

    word = docx_text(download(page, "Word（DOCX）", tmp_path / "handout.docx"))
    pdf = pdf_text(download(page, "PDF", tmp_path / "handout.pdf"))
    for question, article in TRAINER_QUESTIONS.items():
        for text in (word, pdf):
            compact = re.sub(r"\s+", "", text)
            assert question in compact
            assert re.search(rf"《[^》]+》{article}", compact), (question, article)


def test_hostile_document_is_shown_as_text_never_run(page: Page, app: RunningApp) -> None:
    open_page(page, app, "/lookup", "条文查询")
    reference = page.get_by_label("条文引用")
    reference.fill(f"{HOSTILE_TITLE}第一条")
    reference.press("Enter")
    expect(page.get_by_role("heading", name=f"《{HOSTILE_TITLE}》第一条")).to_be_visible(
        timeout=ANSWER_TIMEOUT
    )
    expect(rendered(page, SCRIPT_PAYLOAD)).to_have_count(1)
    expect(rendered(page, '<img src=x onerror="window.__pwned=2">')).to_have_count(1)
    assert_not_pwned(page)

    page.get_by_role("tab", name="关键词 / 语义检索").click()
    query = page.get_by_label("检索内容")
    query.fill(HOSTILE_TITLE)
    query.press("Enter")
    panel = page.get_by_role("tabpanel", name="关键词 / 语义检索")
    expect(panel.get_by_text(re.compile(rf"^\d+\. 《{HOSTILE_TITLE}》第一条$"))).to_be_visible(
        timeout=ANSWER_TIMEOUT
    )
    expect(rendered(panel, SCRIPT_PAYLOAD)).to_have_count(1)
    assert_not_pwned(page)
    screenshot(page, "lookup-hostile")

    # The chat quotes the clause in an expander; it must stay inert there too.
    open_page(page, app, "/", "智能问答")
    ask(page, "注入测试规定第一条是怎么规定的？")
    messages = page.locator('[data-testid="stChatMessage"]')
    expect(messages).to_have_count(2, timeout=ANSWER_TIMEOUT)
    expect(
        messages.nth(1).locator('[data-testid="stText"], [data-testid="stAlertContentInfo"]').first
    ).to_be_visible(timeout=ANSWER_TIMEOUT)
    for expander in messages.nth(1).locator('[data-testid="stExpander"] summary').all():
        expander.click()
    assert_not_pwned(page)

    open_page(page, app, "/review", "文稿审查")
    page.get_by_label("文稿内容").fill(ADVERT + "\n" + '<img src=x onerror="window.__pwned=4">')
    page.get_by_role("button", name="开始审查").click()
    expect(page.get_by_role("heading", name="标注后的文稿")).to_be_visible(timeout=ANSWER_TIMEOUT)
    expect(rendered(page, "<script>window.__pwned=3</script>")).to_have_count(1)
    expect(rendered(page, 'onerror="window.__pwned=4"')).to_have_count(1)
    assert_not_pwned(page)
