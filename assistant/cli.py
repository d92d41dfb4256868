"""Command line: parse arguments, call the library, print. No decisions live here."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from assistant.render import page_label
from assistant.settings import get_settings, is_checkout

app = typer.Typer(
    help=(
        "保健食品备案助手（离线）：把法规文档建成可检索的索引，按条文检索和查询。\n\n"
        "常用：\n\n"
        "  python -m assistant ingest            # 索引 corpus/ 下的文档（首次约需数分钟）\n\n"
        '  python -m assistant search "保健食品标签不得涉及什么内容" --k 5\n\n'
        "  python -m assistant docs              # 查看已索引的文档\n\n"
        "  python -m assistant app               # 启动网页界面\n\n"
        "设置通过 ASSISTANT_* 环境变量调整，例如 ASSISTANT_INDEX_DIR、ASSISTANT_EMBEDDING_MODEL。"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _assistant() -> Any:
    from assistant.engine import Assistant

    return Assistant(get_settings())


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# Options several verbs share, declared once.
JsonFlag = Annotated[bool, typer.Option("--json", help="以 JSON 输出（供脚本使用）。")]
QuestionBatch = Annotated[
    Path | None,
    typer.Option(
        "--batch",
        help='JSONL 文件，每行 {"id":…,"question":…}（问答还可带此前的对话 "history":[{"question":…,"answer":…},…]）；'
        "每行输出一个 JSON 结果，模型只加载一次。",
    ),
]


@app.command()
def ingest(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="要索引的文件或文件夹；不写则索引 corpus/ 文件夹。", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="以 JSON 输出结果摘要（供脚本使用）。")] = False,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="先清空索引再重新建立（更换嵌入模型后需要）；不写路径时重新索引 corpus/ 和索引中原有的全部文档。",
        ),
    ] = False,
) -> None:
    """索引文档：读取 PDF/TXT/Markdown/DOCX 和扫描件、图片（文字识别），清洗、按条文切分、向量化后写入索引。

    未变化的文件会被跳过；修改过的文件替换旧版本；文件夹中已删除的文件会从索引中移除。
    任何文件失败时，其他文件照常处理，最后退出码为 1。"""
    from tqdm import tqdm

    from assistant.ingest import IngestProgress

    assistant = _assistant()
    targets = list(paths) if paths else None
    if rebuild:
        previous = assistant.rebuild_index()
        targets = targets or previous  # without paths: the corpus and every document the index held
    files_bar = tqdm(total=0, desc="文件", unit="个", file=sys.stderr, disable=None, position=0)
    embed_bar = tqdm(
        total=0, desc="向量化", unit="段", file=sys.stderr, disable=None, position=1, leave=False
    )

    def on_file(path: Path, index: int, total: int) -> None:
        files_bar.total = total
        files_bar.n = index - 1
        files_bar.set_postfix_str(path.name[:30])
        files_bar.refresh()

    def on_chunks(n: int) -> None:
        embed_bar.reset(total=n)

    ocr_bars: list[Any] = []  # shown from the first scanned page on

    def on_ocr_page(page: int) -> None:
        if not ocr_bars:
            ocr_bars.append(tqdm(desc="文字识别", unit="页", file=sys.stderr, disable=None, position=2, leave=False))
        ocr_bars[0].update(1)

    progress = IngestProgress(
        on_file=on_file, on_embedded=embed_bar.update, on_chunks=on_chunks, on_ocr_page=on_ocr_page
    )
    report = assistant.ingest(targets, progress)
    files_bar.n = files_bar.total
    files_bar.close()
    embed_bar.close()
    for bar in ocr_bars:
        bar.close()
    if as_json:
        _print_json(report.to_json())
    else:
        out.print(
            f"新增 {len(report.added)} 个，更新 {len(report.updated)} 个，未变化 {len(report.unchanged)} 个，"
            f"移除 {len(report.removed)} 个，失败 {len(report.failed)} 个；索引共 {report.chunks} 个段落。"
        )
        for f in report.failed:
            out.print(f"[red]失败[/red] {f.path}：{f.reason}", markup=True, highlight=False)
        for f in report.warnings:
            out.print(f"[yellow]注意[/yellow] {f.path}：{f.reason}", markup=True, highlight=False)
    raise typer.Exit(1 if report.failed else 0)


def _hits_json(hits: list[Any]) -> list[dict[str, Any]]:
    return [h.to_json() for h in hits]


def _run_batch(path: Path, field: str, handle: Callable[[str, dict[str, Any]], dict[str, Any]]) -> None:
    """One JSON line out per JSONL line in: `{"id", **handle(line[field], line)}`; a broken line gives
    `{"id", "error"}` and the batch goes on. Models are loaded once for the whole file."""
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            text = str(item[field])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            _print_json({"id": None, "error": f"第 {line_no} 行无法解析（需要字段 {field}）：{exc}"})
            continue
        try:
            result = handle(text, item)
        except BatchLineError as exc:
            _print_json({"id": item.get("id"), "error": f"第 {line_no} 行：{exc}"})
            continue
        _print_json({"id": item.get("id") if isinstance(item, dict) else None, **result})


class BatchLineError(ValueError):
    """A batch line that parsed but cannot be used (e.g. a malformed history)."""


def _history(item: dict[str, Any]) -> list[Any]:
    """`{"history": [{"question", "answer"}, …]}` of an `ask --batch` line, oldest turn first."""
    from assistant.answering.followup import Turn

    raw = item.get("history") or []
    if not isinstance(raw, list) or not all(isinstance(t, dict) and "question" in t for t in raw):
        raise BatchLineError('history 应为 [{"question": …, "answer": …}, …]')
    return [
        Turn(str(t["question"]), str(t.get("answer", "")), str(t.get("standalone_question", ""))) for t in raw
    ]


def _require_index(assistant: Any) -> None:
    if assistant.index_is_empty():
        err.print("索引为空：请先运行 `python -m assistant ingest`。")
        raise typer.Exit(2)


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="检索问题或关键词。", show_default=False)] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="返回的段落数。")] = 5,
    mode: Annotated[
        str, typer.Option("--mode", help="hybrid（向量＋关键词，默认）、dense（仅向量）或 bm25（仅关键词）。")
    ] = "hybrid",
    rerank: Annotated[bool, typer.Option("--rerank/--no-rerank", help="是否对候选结果重排序。")] = True,
    doc: Annotated[
        list[str] | None,
        typer.Option("--doc", help="只在这些文档中检索（doc_id，可多次给出）。", show_default=False),
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="只检索该效力状态的文档，例如“有效”。", show_default=False)
    ] = None,
    as_json: JsonFlag = False,
    batch: QuestionBatch = None,
) -> None:
    """检索：返回与问题最相关的条文段落（文档、条号、页码、原文）。问题中写明条文（如“食品安全法第七十八条”）时，该条排在最前。"""
    if mode not in ("hybrid", "dense", "bm25"):
        err.print("--mode 只能是 hybrid、dense 或 bm25。")
        raise typer.Exit(2)
    assistant = _assistant()
    _require_index(assistant)

    def run(text: str) -> list[Any]:
        return list(assistant.search(text, k=k, mode=mode, rerank=rerank, doc_ids=doc, status=status))

    if batch is not None:
        _run_batch(batch, "question", lambda text, _: {"hits": _hits_json(run(text))})
        return
    if not query:
        err.print("请给出检索内容，或用 --batch 指定问题文件。")
        raise typer.Exit(2)
    hits = run(query)
    if as_json:
        _print_json({"query": query, "hits": _hits_json(hits)})
        return
    if not hits:
        out.print("没有找到相关段落。")
        return
    for rank, hit in enumerate(hits, start=1):
        c = hit.chunk
        where = " · ".join(
            p for p in (c.title, c.heading_path, c.article, page_label(c.page_start, c.page_end)) if p
        )
        out.rule(f"{rank}. {where}  （得分 {hit.score:.3f}）", align="left")
        out.print(c.text, highlight=False, markup=False)


@app.command()
def lookup(
    reference: Annotated[
        str | None,
        typer.Argument(
            help="条文引用，例如：食品安全法第七十八条、《广告法》第十八条第一款第四项。", show_default=False
        ),
    ] = None,
    as_json: JsonFlag = False,
    batch: Annotated[
        Path | None,
        typer.Option("--batch", help='JSONL 文件，每行 {"id":…,"query":…}；每行输出一个 JSON 结果。'),
    ] = None,
) -> None:
    """条文查询：按“法规名称＋第X条（第X款第X项）”返回该条原文、所在章节和页码；条文不存在时给出最接近的条文。"""
    assistant = _assistant()
    _require_index(assistant)
    if batch is not None:
        _run_batch(batch, "query", lambda text, _: assistant.lookup(text).to_json())
        return
    if not reference:
        err.print("请给出条文引用，例如：食品安全法第七十八条。")
        raise typer.Exit(2)
    result = assistant.lookup(reference)
    if as_json:
        _print_json(result.to_json())
        return
    if not result.found:
        out.print(result.message, highlight=False, markup=False)
        if result.suggestions:
            out.print("您可能要找：" + "；".join(result.suggestions), highlight=False, markup=False)
        raise typer.Exit(1)
    where = " · ".join(
        p for p in (result.heading_path, page_label(result.page_start, result.page_end), result.status) if p
    )
    out.rule(f"{result.title} {result.article}", align="left")
    out.print(where, style="dim", highlight=False, markup=False)
    if result.highlight:
        s, e = result.highlight
        out.print(result.text[:s], end="", highlight=False, markup=False)
        out.print(result.text[s:e], end="", style="bold yellow", highlight=False, markup=False)
        out.print(result.text[e:], highlight=False, markup=False)
    else:
        out.print(result.text, highlight=False, markup=False)


def _print_answer(answer: Any) -> None:
    if answer.notice:
        err.print(answer.notice)
    if answer.refused:
        out.print(answer.answer, style="yellow", highlight=False, markup=False)
        return
    out.print(answer.answer, highlight=False, markup=False)
    out.print()
    for c in answer.citations:
        where = " · ".join(p for p in (c.heading_path, page_label(c.page_start, c.page_end), c.status) if p)
        out.print(
            f"[{c.number}] 《{c.title}》{c.article}  {where}", style="bold", highlight=False, markup=False
        )
        out.print(f"    “{c.quote}”", style="dim", highlight=False, markup=False)


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="用日常中文提出的问题。", show_default=False)] = None,
    generator: Annotated[
        str | None,
        typer.Option(
            "--generator",
            help="回答方式：extractive（离线摘录条文，默认）、openai（兼容 OpenAI 的模型服务）、local（本地 GGUF 模型）。",
        ),
    ] = None,
    as_json: JsonFlag = False,
    batch: QuestionBatch = None,
) -> None:
    """问答：依据文档回答问题，每句都标注出处（文档、条号、页码）；文档没有涉及的问题会如实说明。"""
    from assistant.answering.llm import GeneratorError

    assistant = _assistant()
    _require_index(assistant)
    try:
        if batch is not None:
            _run_batch(
                batch,
                "question",
                lambda text, item: assistant.ask(text, _history(item), generator=generator).to_json(),
            )
            return
        if not question:
            err.print("请给出问题，或用 --batch 指定问题文件。")
            raise typer.Exit(2)
        answer = assistant.ask(question, generator=generator)
    except GeneratorError as exc:
        err.print(str(exc))
        raise typer.Exit(3) from exc
    if as_json:
        _print_json(answer.to_json())
    else:
        _print_answer(answer)


@app.command()
def review(
    file: Annotated[
        str | None,
        typer.Argument(
            help="要审查的文稿：文本文件路径（.txt/.md/.docx），或 - 表示从标准输入读取。", show_default=False
        ),
    ] = None,
    doc_type: Annotated[
        str,
        typer.Option(
            "--type",
            help="文稿类型：label（标签）、manual（说明书）、advert（广告）或 auto（自动判断，默认）。",
        ),
    ] = "auto",
    as_json: JsonFlag = False,
    batch: Annotated[
        Path | None,
        typer.Option(
            "--batch", help='JSONL 文件，每行 {"id":…,"draft":…}；每行输出 {"id":…,"findings":[…]}。'
        ),
    ] = None,
) -> None:
    """文稿审查：检查保健食品标签、说明书、广告文稿中的违规用语、缺失的必备声明和批准文号格式，每条问题都引用法条原文。"""
    from assistant.review.drafts import DraftReadError, read_draft
    from assistant.review.engine import DOC_TYPES

    if doc_type != "auto" and doc_type not in DOC_TYPES:
        err.print("--type 只能是 label、manual、advert 或 auto。")
        raise typer.Exit(2)
    assistant = _assistant()
    _require_index(assistant)
    if batch is not None:
        _run_batch(batch, "draft", lambda text, _: assistant.review(text, doc_type).to_json())
        return
    if not file:
        err.print("请给出文稿文件，或用 - 从标准输入读取。")
        raise typer.Exit(2)
    try:
        draft = sys.stdin.read() if file == "-" else read_draft(Path(file))
    except DraftReadError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from exc
    result = assistant.review(draft, doc_type)
    if as_json:
        _print_json(result.to_json())
        return
    _print_review(result)


def _print_review(result: Any) -> None:
    from rich.text import Text

    from assistant.export.review_export import KIND_LABELS, layer_label, type_line

    if result.notice:
        err.print(result.notice)
    out.rule(f"文稿（{type_line(result)}）", align="left")
    marked = Text()
    pos = 0
    spans = [f for f in result.findings if f.start >= 0]
    for number, f in enumerate(spans, start=1):
        if f.start < pos:
            continue
        marked.append(result.draft[pos : f.start])
        marked.append(result.draft[f.start : f.end], style="bold red underline")
        marked.append(f"【{number}】", style="bold red")
        pos = f.end
    marked.append(result.draft[pos:])
    out.print(marked)
    if not result.findings:
        out.print("\n未发现问题。", style="green")
        return
    out.rule(f"发现 {len(result.findings)} 个问题", align="left")
    number = 0
    for f in result.findings:
        label = "—" if f.start < 0 else str(number := number + 1)
        head = (
            f"[{label}] {KIND_LABELS.get(f.kind, f.kind)}"
            + (f"：“{f.text}”" if f.text else "")
            + f"　〔{layer_label(f)}〕"
        )
        out.print(head, style="bold", highlight=False, markup=False)
        out.print(f"    {f.message}", highlight=False, markup=False)
        for c in f.citations:
            out.print(
                f"    依据《{c.title}》{c.article}（{page_label(c.page_start, c.page_end)}）：“{c.quote}”",
                style="dim",
                highlight=False,
                markup=False,
            )


eval_app = typer.Typer(
    help="评测：在 evals/golden/ 的黄金集上评测，报告写入 evals/reports/。", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")


def _needs_checkout() -> None:
    # The evaluations and the trainers read evals/ (golden sets, training data) and write reports or
    # weights into the project's checkout; an installed package has neither.
    if not is_checkout():
        err.print("评测和训练需要项目源码目录（evals/ 中的黄金集和训练数据）：请在源码仓库中运行（pip install -e .）。")
        raise typer.Exit(2)


eval_app.callback()(_needs_checkout)


@eval_app.command("retrieval")
def eval_retrieval() -> None:
    """检索评测：典型 RAG 基线、BM25、向量、混合、混合＋重排序，召回率、MRR、条文查询准确率和延迟。"""
    from assistant.evaluation.retrieval import run

    summary = run(get_settings())
    _print_json(summary)


@eval_app.command("embedder")
def eval_embedder() -> None:
    """嵌入模型对比：m3e-small 与本项目微调的 m3e-small-regs 在同一批未参与训练的问题上的召回率（按问题风格、文件类型），写入 evals/reports/embedder.md。"""
    from assistant.evaluation.embedder_compare import run_embedder_compare
    from assistant.evaluation.golden import REPORTS_DIR

    _print_json(run_embedder_compare(get_settings(), REPORTS_DIR / "embedder.md"))


@eval_app.command("fit-reranker")
def eval_fit_reranker() -> None:
    """在黄金集的训练部分拟合重排序权重（写入 assistant/data/rerank_weights.json），并报告留出集上的 MRR。"""
    from assistant.evaluation.retrieval import fit_reranker

    _print_json(fit_reranker(get_settings()))


@app.command()
def docs(
    as_json: JsonFlag = False,
) -> None:
    """列出已索引的文档：标题、发布机关、日期、效力状态、段落数和页数（扫描件注明文字识别的页数）。"""
    records = _assistant().documents()
    rows = [{**r.meta.to_metadata(), "chunks": r.chunk_count, "pages": r.meta.page_count} for r in records]
    if as_json:
        _print_json({"documents": rows})
        return
    if not rows:
        out.print("索引为空：请先运行 `python -m assistant ingest`。")
        return
    table = Table(title=f"已索引文档（{len(rows)} 个）")
    for col in ("标题", "发布机关", "施行日期", "状态", "段落", "页数", "文件"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["title"],
            r["issuing_body"],
            r["effective_date"],
            r["status"] or "—",
            str(r["chunks"]),
            str(r["pages"] or "—") + (f"（识别 {len(r['ocr_pages'])} 页）" if r["ocr_pages"] else ""),
            Path(r["source_path"]).name,
        )
    out.print(table)


@app.command(name="app")
def run_app(
    port: Annotated[int, typer.Option(help="网页端口。")] = 8501,
    host: Annotated[str, typer.Option(help="监听地址。")] = "127.0.0.1",
) -> None:
    """启动网页界面（首次运行时自动建立索引）。"""
    import subprocess

    ui = Path(__file__).resolve().parent / "ui" / "app.py"  # inside the package, wherever it is installed
    cmd = [
        sys.executable,
        "-m",
        "assistant.ui.serve",  # Streamlit's command line, loading the assistant while the server starts
        "run",
        str(ui),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.maxUploadSize",  # the uploader refuses what ingest would refuse anyway
        str(get_settings().max_file_mb),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",  # no English "Deploy" menu in a Chinese app
        "minimal",
    ]
    raise typer.Exit(subprocess.call(cmd))


@eval_app.command("answers")
def eval_answers(
    generator: Annotated[str, typer.Option("--generator", help="被评测的回答方式。")] = "extractive",
    holdout: Annotated[
        bool,
        typer.Option(
            "--holdout",
            help="盲测留出集 evals/golden/answers_holdout.jsonl 与留出文档集（从不用于训练或校准）：无判断模型与有判断模型并排评测，报告写入 answers-holdout.md。",
        ),
    ] = False,
    blind_set: Annotated[
        Path | None,
        typer.Option(help="与 --holdout 一起：盲测集文件；默认 evals/golden/answers_holdout.jsonl。"),
    ] = None,
    heldout_set: Annotated[
        Path | None,
        typer.Option(
            help="与 --holdout 一起：留出文档的问题集；默认 evals/golden/heldout_document.jsonl（文档在 heldout-documents/）。"
        ),
    ] = None,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="改用开发集 evals/golden/answers_dev.jsonl（参与拒答校准），报告写入 answers-dev.md。",
        ),
    ] = False,
    question_set: Annotated[
        Path | None,
        typer.Option(
            "--set", help="改用另一个问题集（如新的盲测集）；报告默认写入 answers-<去掉 answers_ 前缀的文件名>.md。"
        ),
    ] = None,
    report: Annotated[Path | None, typer.Option(help="报告文件（代替默认路径）。")] = None,
) -> None:
    """问答评测：答案含证据率、拒答率、误拒率、引用核验率、编造条号数和延迟，写入 evals/reports/answers.md。"""
    from assistant.evaluation.answers import run
    from assistant.evaluation.golden import GOLDEN_DIR, REPORTS_DIR

    if holdout:
        from assistant.evaluation.compare import run_compare

        heldout_docs = sorted((GOLDEN_DIR / "heldout-documents").glob("*.md"))
        _print_json(
            run_compare(
                get_settings(),
                blind_set or GOLDEN_DIR / "answers_holdout.jsonl",
                REPORTS_DIR / "answers-holdout.md",
                heldout_set or GOLDEN_DIR / "heldout_document.jsonl",
                heldout_docs,
            )
        )
        return
    if dev and question_set is None:
        question_set = GOLDEN_DIR / "answers_dev.jsonl"
    if question_set is not None and report is None:
        report = REPORTS_DIR / f"answers-{question_set.stem.removeprefix('answers_').replace('_', '-')}.md"
    _print_json(run(get_settings(), report, generator, question_set))


@eval_app.command("calibrate-refusal")
def eval_calibrate_refusal() -> None:
    """在黄金集和开发集上校准拒答模型（写入 assistant/data/refusal.json）；盲测留出集不参与。"""
    from assistant.evaluation.answers import calibrate_refusal

    _print_json(calibrate_refusal(get_settings()))


@eval_app.command("calibrate-judge")
def eval_calibrate_judge() -> None:
    """在训练数据的 dev 部分（从未参与训练）和黄金集测试部分上校准相关性判断模型：重排序先验与拒答阈值，写入模型目录的 calibration.json。"""
    from assistant.evaluation.judge_calibration import calibrate_judge

    _print_json(calibrate_judge(get_settings()))


@eval_app.command("review")
def eval_review(
    holdout: Annotated[
        bool,
        typer.Option(
            "--holdout",
            help="用其他助手盲写的文稿（evals/golden/review_holdout*.jsonl），写入 review-holdout.md。",
        ),
    ] = False,
    drafts: Annotated[
        Path | None, typer.Option(help="另一份文稿集（JSONL，格式同 evals/golden/review.jsonl）。")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="报告路径。")] = None,
) -> None:
    """文稿审查评测：仅规则与规则＋分类模型并列，报告按类别的应标出召回率、合规文稿上的误报、缺失声明准确率、
    文稿类型识别准确率和耗时，写入 evals/reports/review.md（--holdout：review-holdout.md）。"""
    from assistant.evaluation.review import run

    _print_json(run(get_settings(), report_path=report, golden_path=drafts, holdout=holdout))


@eval_app.command("conversations")
def eval_conversations(
    sets: Annotated[
        list[Path] | None,
        typer.Option(
            "--set",
            help="对话集（JSONL，可重复）；默认只测开发集 evals/golden/conversations_dev.jsonl。"
            "盲测集只测一次：请用 --set 点名，并用 --report 另写报告。",
        ),
    ] = None,
    report: Annotated[Path | None, typer.Option(help="报告路径；默认 evals/reports/conversations-dev.md。")] = None,
) -> None:
    """多轮对话评测：按问题形式判断追问（规则）与追问判断模型并排，报告最后一轮答案含证据率、话题切换被误合并率、
    未识别的追问和追问耗时。"""
    from assistant.evaluation.conversations import run

    _print_json(run(get_settings(), paths=sets, report_path=report))


@eval_app.command("citations")
def eval_citations(
    golden: Annotated[
        Path | None, typer.Option(help="另一份人工标注（JSONL，格式同 evals/golden/penalty_edges.jsonl）。")
    ] = None,
    documents: Annotated[
        list[Path] | None, typer.Option("--documents", help="除文档库外另加的法规文件或目录。")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="报告路径。")] = None,
) -> None:
    """交叉引用图评测：对照人工标注的法律责任条文（evals/golden/penalty_edges.jsonl），报告“罚则”引用边的准确率和召回率，写入 evals/reports/citations.md。"""
    from assistant.evaluation.citations import run

    _print_json(run(get_settings(), golden_path=golden, report_path=report, extra_documents=documents))


@eval_app.command("ocr")
def eval_ocr(
    documents: Annotated[
        list[str] | None,
        typer.Option("--document", help="只评测这些 corpus/ 中的 PDF（文件名，可多次给出）；默认全部。"),
    ] = None,
    notice_pages: Annotated[int, typer.Option(help="计时用扫描通知的页数。")] = 20,
) -> None:
    """扫描件评测：为内置 PDF 生成带扫描噪声、无文字层的“扫描版”，与原文并排比较字符错误率、条号覆盖率、检索召回@5、回答证据和识别速度；写入 evals/reports/ocr.md。"""
    from assistant.evaluation.ocr import run

    result = run(get_settings(), documents or None, notice_pages=notice_pages)
    _print_json({k: v for k, v in result.items() if k not in {"documents", "text", "scanned", "preview_ms"}})


@eval_app.command("reliability")
def eval_reliability() -> None:
    """可靠性检查：真实 chroma run 服务器模式、写入各阶段被 SIGKILL 后的一致性、并发、坏文件矩阵；写入 evals/reports/reliability.md，任何一项失败则退出码非零。"""
    from assistant.evaluation.reliability import run

    ok, summary = run(get_settings())
    out.print(summary, highlight=False, markup=False)
    raise typer.Exit(0 if ok else 1)


def _print_training(report: Any, counted: str) -> None:
    """A trainer's report as one JSON object: where the model went, how much data, how long, dev figures."""
    _print_json(
        {
            "output": str(report.output),
            counted: getattr(report, counted),
            "seconds": round(report.seconds),
            **report.dev_metrics,
        }
    )


BaseModelOption = Annotated[
    str,
    typer.Option(
        help="基础模型：内置名称 m3e-small，或一个本地 BERT 类中文模型目录（商用请用自有授权的模型）。"
    ),
]

train_app = typer.Typer(
    help="训练本项目自带的模型（不在 CI 中运行）：数据在 evals/training/，权重写入 assistant/models/。",
    no_args_is_help=True,
)
app.add_typer(train_app, name="train")
train_app.callback()(_needs_checkout)


def _training_data(make: Any) -> None:
    """Run a training-data builder with two progress bars: the training index, then the samples."""
    from tqdm import tqdm

    from assistant.ingest import IngestProgress

    bar = tqdm(total=0, desc="样本", unit="条", file=sys.stderr, disable=None)

    def on_record(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    files = tqdm(total=0, desc="建立训练索引", unit="个", file=sys.stderr, disable=None)

    def on_file(path: Path, index: int, total: int) -> None:
        files.total = total
        files.n = index
        files.refresh()

    stats = make(get_settings(), ingest_progress=IngestProgress(on_file=on_file), progress=on_record)
    files.close()
    bar.close()
    _print_json(stats)


@train_app.command("judge-data")
def train_judge_data() -> None:
    """由 evals/training/raw/ 的标注数据和黄金集生成相关性判断模型的训练样本对
    （evals/training/judge/pairs.jsonl.gz）：在语料库和 evals/training/texts/ 上建立训练索引，用现有检索挖掘难负例。"""
    from assistant.training.judge_data import make_judge_pairs

    _training_data(make_judge_pairs)


@train_app.command("embedder-data")
def train_embedder_data() -> None:
    """由同一批标注数据生成嵌入模型的训练三元组（问题、答案所在条文、第一阶段检索的难负例），
    写入 evals/training/embedder/triplets.jsonl.gz。"""
    from assistant.training.embedder_data import make_embedder_triplets

    _training_data(make_embedder_triplets)


@train_app.command("embedder")
def train_embedder(
    epochs: Annotated[float, typer.Option(help="训练轮数。")] = 1.0,
    limit: Annotated[int | None, typer.Option(help="只用前 N 个三元组（试运行）。")] = None,
    output: Annotated[
        Path | None, typer.Option(help="模型输出目录；默认 assistant/models/embedder。")
    ] = None,
    triplets: Annotated[
        Path | None, typer.Option(help="三元组文件；默认 evals/training/embedder/triplets.jsonl.gz。")
    ] = None,
    base: Annotated[
        str,
        typer.Option(
            help="基础模型：内置名称 m3e-small，或一个本地中文嵌入模型目录（商用请用自有授权的模型）。"
        ),
    ] = "m3e-small",
) -> None:
    """从 m3e-small 微调检索用的嵌入模型（MultipleNegativesRankingLoss），固定随机种子，权重以 fp16 保存。
    换用新模型后请运行 `ingest --rebuild`。"""
    from assistant.embeddings import TRAINED_EMBEDDER
    from assistant.training.embedder_data import TRIPLETS_FILE
    from assistant.training.embedder_train import train_embedder as run

    report = run(
        triplets or TRIPLETS_FILE, output or TRAINED_EMBEDDER, base_model=base, epochs=epochs, limit=limit
    )
    _print_training(report, "triplets")


@train_app.command("judge")
def train_judge(
    epochs: Annotated[float, typer.Option(help="训练轮数。")] = 1.0,
    limit: Annotated[int | None, typer.Option(help="只用前 N 个样本对（试运行）。")] = None,
    output: Annotated[Path | None, typer.Option(help="模型输出目录；默认 assistant/models/judge。")] = None,
    pairs: Annotated[
        Path | None, typer.Option(help="样本对文件；默认 evals/training/judge/pairs.jsonl.gz。")
    ] = None,
    base: BaseModelOption = "m3e-small",
    layers: Annotated[
        int | None, typer.Option(help="只保留基础模型的前 N 层（更快的判断模型）；默认全部保留。")
    ] = None,
    distil: Annotated[
        bool,
        typer.Option(help="以教师模型的打分（train judge-teacher 写出的 logit）为目标蒸馏，而不是只学标签。"),
    ] = False,
) -> None:
    """从 m3e-small 微调相关性判断模型（交叉编码器），固定随机种子，权重以 fp16 保存。"""
    from assistant.judge import BUNDLED_JUDGE
    from assistant.training.judge_data import PAIRS_FILE
    from assistant.training.judge_teacher import TeacherLogitsError
    from assistant.training.judge_train import train_judge as run

    try:
        report = run(
            pairs or PAIRS_FILE,
            output or BUNDLED_JUDGE,
            base_model=base,
            epochs=epochs,
            limit=limit,
            layers=layers,
            distil=distil,
        )
    except TeacherLogitsError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from None
    _print_training(report, "pairs")


@train_app.command("judge-teacher")
def train_judge_teacher(
    teacher: Annotated[
        Path | None, typer.Option(help="教师判断模型目录；默认 assistant/models/judge。")
    ] = None,
    pairs: Annotated[
        Path | None, typer.Option(help="样本对文件；默认 evals/training/judge/pairs.jsonl.gz（打分写在它旁边）。")
    ] = None,
) -> None:
    """用一个训练好的判断模型给全部样本对打分（logit），写在样本对文件旁（teacher_logits.json.gz），供 `train judge --distil` 蒸馏较小的判断模型。"""
    from assistant.judge import BUNDLED_JUDGE
    from assistant.training.judge_data import PAIRS_FILE
    from assistant.training.judge_teacher import write_teacher_logits

    report = write_teacher_logits(teacher or BUNDLED_JUDGE, get_settings().model_cache_dir, pairs or PAIRS_FILE)
    _print_training(report, "pairs")


@train_app.command("review")
def train_review(
    epochs: Annotated[float, typer.Option(help="训练轮数。")] = 6.0,
    output: Annotated[Path | None, typer.Option(help="模型输出目录；默认 assistant/models/review。")] = None,
    base: BaseModelOption = "m3e-small",
) -> None:
    """从 m3e-small 微调文稿审查分类模型（每句判为某条规则或“合规”），固定随机种子，保存为量化 ONNX。"""
    from assistant.review.classifier import BUNDLED_REVIEW_MODEL
    from assistant.training.review_train import REVIEW_DATA
    from assistant.training.review_train import train_review as run

    report = run(REVIEW_DATA, output or BUNDLED_REVIEW_MODEL, base_model=base, epochs=epochs)
    _print_training(report, "sentences")


@train_app.command("followup")
def train_followup(
    epochs: Annotated[float, typer.Option(help="训练轮数。")] = 4.0,
    output: Annotated[
        Path | None, typer.Option(help="模型输出目录；默认 assistant/models/followup。")
    ] = None,
    base: BaseModelOption = "m3e-small",
) -> None:
    """从 m3e-small 微调追问判断模型（新问题是接着前面的对话问，还是另起话题），数据为 evals/training/followup/raw/ 和已测过的对话集，固定随机种子，保存为量化 ONNX。"""
    from assistant.answering.followup_judge import BUNDLED_FOLLOWUP_MODEL
    from assistant.training.followup_train import FOLLOWUP_DATA, MEASURED_CONVERSATIONS
    from assistant.training.followup_train import train_followup as run

    report = run(
        FOLLOWUP_DATA,
        output or BUNDLED_FOLLOWUP_MODEL,
        MEASURED_CONVERSATIONS,
        base_model=base,
        epochs=epochs,
    )
    _print_training(report, "examples")


@app.command("chroma-server")
def chroma_server(
    path: Annotated[Path, typer.Option("--path", help="服务器保存数据的文件夹。")] = Path("indexes/server"),
    host: Annotated[str, typer.Option(help="监听地址。")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="端口。")] = 8000,
) -> None:
    """启动本地 Chroma 服务器（开发用）：多个应用实例可通过 ASSISTANT_CHROMA_MODE=http 共用同一个索引。"""
    import os
    import subprocess

    chroma = Path(sys.executable).with_name("chroma")
    path.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    cmd = [str(chroma), "run", "--path", str(path), "--host", host, "--port", str(port)]
    raise typer.Exit(subprocess.call(cmd, env=env))


def main() -> None:
    app()
