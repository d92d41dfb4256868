"""`python -m assistant eval ocr`: the bundled PDFs beside their scanned twins.

Each PDF gets a scanned twin (assistant/evaluation/scans.py: rendered pages with scan noise, a
slight rotation and JPEG compression, no text layer). The corpus is indexed twice — as it is, and
with the PDFs replaced by their twins — and the two are compared: character error rate of each
document's indexed text, article-id coverage, retrieval recall@5 and answer evidence on the golden
questions about those documents, and recognition speed; plus a 20-page scanned notice timed through
ingest, and the real scanned pages in evals/ocr-samples/ against their transcriptions."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from assistant.engine import Assistant
from assistant.evaluation.golden import (
    REPORTS_DIR,
    GoldenQuestion,
    contains_evidence,
    first_hit_rank,
    load_retrieval_golden,
    percentile,
)
from assistant.evaluation.scans import scanned_twin
from assistant.ingest import IngestProgress
from assistant.loaders import load_document, make_doc_id
from assistant.settings import PROJECT_ROOT, Settings

SAMPLES_DIR = PROJECT_ROOT / "evals" / "ocr-samples"
NOTICE_SOURCE = "food-safety-law-2025.pdf"


def character_error_rate(reference: str, recognised: str) -> float:
    """Edit distance over the reference length, whitespace ignored (layouts wrap differently) and
    full-/half-width forms folded (NFKC: OCR reads （ and ( alike)."""
    from rapidfuzz.distance import Levenshtein

    ref, hyp = (re.sub(r"\s+", "", unicodedata.normalize("NFKC", t)) for t in (reference, recognised))
    return Levenshtein.distance(ref, hyp) / max(len(ref), 1)


@dataclass
class TwinFigures:
    file: str
    pages: int
    cer: float
    articles: int
    articles_found: int
    missing: list[str]
    ocr_seconds: float
    confidence: float


@dataclass
class SideFigures:
    recall_at_5: float = 0.0
    answer_evidence: float = 0.0
    misses: list[str] = field(default_factory=list)


def _document_text(assistant: Assistant, doc_id: str) -> tuple[str, list[str]]:
    chunks = assistant.store.document_chunks(doc_id)  # in document order
    articles = list(dict.fromkeys(c.article for c in chunks if c.article))
    return "\n".join(c.text for c in chunks), articles


def _side(assistant: Assistant, questions: list[GoldenQuestion]) -> SideFigures:
    figures = SideFigures()
    found = answered = 0
    for q in questions:
        keys = q.evidence_keys()
        hits = assistant.search(q.text, k=5)
        in_top5 = first_hit_rank([h.chunk.text for h in hits], keys) is not None
        answer = assistant.ask(q.text)
        in_answer = not answer.refused and contains_evidence(answer.answer, keys)
        found += in_top5
        answered += in_answer
        if not in_top5 or not in_answer:
            figures.misses.append(f"{q.id} ({q.doc}): top-5 {'✓' if in_top5 else '✗'}, answer {'✓' if in_answer else '✗'}")
    figures.recall_at_5 = found / max(len(questions), 1)
    figures.answer_evidence = answered / max(len(questions), 1)
    return figures


def _preview_ms(assistant: Assistant, pdfs: list[Path]) -> list[float]:
    """Milliseconds to open the source page of the first chunk of each page of each document (a first
    opening: rendered, boxed and cached), slowest first."""
    times = []
    for pdf in pdfs:
        first_on_page: dict[int, str] = {}
        for chunk in assistant.store.document_chunks(make_doc_id(pdf)):
            first_on_page.setdefault(chunk.page_start, chunk.text)
        for page, text in first_on_page.items():
            started = time.perf_counter()
            assistant.source_view(make_doc_id(pdf), page, text)
            times.append((time.perf_counter() - started) * 1000)
    return sorted(times, reverse=True)


def _copy_corpus(corpus: Path, target: Path) -> Path:
    shutil.copytree(corpus, target, ignore=shutil.ignore_patterns(".*"))
    return target


def _samples(settings: Settings) -> list[tuple[str, float, float]]:
    """(file, CER, confidence) of each real scan in evals/ocr-samples that has a transcription."""
    rows = []
    for image in sorted(SAMPLES_DIR.glob("*")) if SAMPLES_DIR.is_dir() else []:
        truth = image.with_suffix(".txt")
        if image.suffix.lower() in {".txt", ".md"} or not truth.is_file():
            continue
        raw = load_document(image, settings)
        recognised = "\n".join(p.text for p in raw.pages)
        reference = truth.read_text(encoding="utf-8")
        # A transcription may cover only the first lines of the page: compare with as much text.
        ref_len = len(re.sub(r"\s+", "", reference))
        rows.append((image.name, character_error_rate(reference, re.sub(r"\s+", "", recognised)[:ref_len]), raw.meta.ocr_confidence))
    return rows


def run(
    settings: Settings, documents: list[str] | None = None, report_path: Path | None = None, notice_pages: int = 20
) -> dict[str, Any]:
    corpus = settings.corpus_dir
    pdfs = sorted(corpus.glob("*.pdf")) if not documents else [corpus / d for d in documents]
    questions = [
        q for q in load_retrieval_golden() if q.type == "question" and q.doc in {p.stem for p in pdfs}
    ]
    with tempfile.TemporaryDirectory(prefix="eval-ocr-") as tmp:
        root = Path(tmp)
        text_dir = _copy_corpus(corpus, root / "text")
        scan_dir = _copy_corpus(corpus, root / "scanned")
        for pdf in pdfs:
            scanned_twin(pdf, scan_dir / pdf.name)

        def side_settings(name: str, folder: Path) -> Settings:
            return settings.model_copy(
                update={"index_dir": root / f"index-{name}", "data_dir": root / f"data-{name}", "corpus_dir": folder}
            )

        text_side = Assistant(side_settings("text", text_dir))
        report = text_side.ingest([text_dir])
        assert not report.failed, report.failed

        stamps: dict[str, list[float]] = {}
        current: list[str] = [""]

        def on_file(path: Path, index: int, total: int) -> None:
            current[0] = path.name
            stamps[path.name] = [time.monotonic()]

        def on_ocr_page(page: int) -> None:
            stamps[current[0]].append(time.monotonic())

        scan_side = Assistant(side_settings("scanned", scan_dir), embeddings=text_side.embeddings)
        scan_report = scan_side.ingest([scan_dir], IngestProgress(on_file=on_file, on_ocr_page=on_ocr_page))
        twins = []
        for pdf in pdfs:
            doc_id = make_doc_id(pdf)
            text, articles = _document_text(text_side, doc_id)
            record = next((r for r in scan_side.documents() if r.meta.doc_id == doc_id), None)
            scanned, scanned_articles = _document_text(scan_side, doc_id) if record else ("", [])
            marks = stamps.get(pdf.name, [0.0])
            twins.append(
                TwinFigures(
                    file=pdf.name,
                    pages=len(record.meta.ocr_pages) if record else 0,
                    cer=character_error_rate(text, scanned),
                    articles=len(articles),
                    articles_found=len(set(articles) & set(scanned_articles)),
                    missing=[a for a in articles if a not in set(scanned_articles)],
                    ocr_seconds=marks[-1] - marks[0],
                    confidence=record.meta.ocr_confidence if record else 0.0,
                )
            )
        text_figures = _side(text_side, questions)
        scan_figures = _side(scan_side, questions)
        preview_ms = {name: _preview_ms(side, pdfs) for name, side in (("text", text_side), ("scanned", scan_side))}

        notice_dir = root / "notice"
        notice_dir.mkdir()
        notice = scanned_twin(corpus / NOTICE_SOURCE, notice_dir / "scanned-notice.pdf", list(range(1, notice_pages + 1)))
        notice_side = Assistant(side_settings("notice", notice_dir), embeddings=text_side.embeddings)
        started = time.monotonic()
        notice_report = notice_side.ingest([notice])
        notice_seconds = time.monotonic() - started
        samples = _samples(settings)
        for side in (text_side, scan_side, notice_side):
            side.close()

    pages = sum(t.pages for t in twins)
    seconds = sum(t.ocr_seconds for t in twins)
    total_articles = sum(t.articles for t in twins)
    result = {
        "documents": [t.__dict__ for t in twins],
        "cer": sum(t.cer for t in twins) / max(len(twins), 1),
        "article_coverage": sum(t.articles_found for t in twins) / total_articles if total_articles else None,
        "questions": len(questions),
        "text": text_figures.__dict__,
        "scanned": scan_figures.__dict__,
        "ocr_pages_per_second": pages / seconds if seconds else 0.0,
        "notice_seconds": notice_seconds,
        "notice_indexed": bool(notice_report.added),
        "failed": [(f.path, f.reason) for f in scan_report.failed + notice_report.failed],
        "samples": samples,
        "preview_ms": preview_ms,
    }
    _write_report(result, settings, report_path or REPORTS_DIR / "ocr.md", notice_pages)
    return result


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _write_report(result: dict[str, Any], settings: Settings, path: Path, notice_pages: int) -> None:
    text, scanned = result["text"], result["scanned"]
    lines = [
        "# Scanned documents: text twin vs scanned twin",
        "",
        f"Run {date.today()} by `python -m assistant eval ocr` on this 2-core machine. Each bundled PDF was rendered "
        "at 200 dpi, given scan noise (grey paper, sensor noise, blur, a rotation within ±1.2°, JPEG quality 50–70) "
        f"and reassembled without a text layer; recognised by RapidOCR (PP-OCRv6 small, rendered at "
        f"{settings.ocr_dpi} dpi, no orientation classifier). The golden questions are those of "
        "`evals/golden/retrieval.jsonl` about these documents (written for the text documents; not blind to the "
        "system, and the OCR settings were not tuned on them).",
        "",
        "| | text twin | scanned twin |",
        "|---|---|---|",
        f"| retrieval recall@5 ({result['questions']} questions) | {text['recall_at_5']:.3f} | {scanned['recall_at_5']:.3f} |",
        f"| answer evidence | {text['answer_evidence']:.3f} | {scanned['answer_evidence']:.3f} |",
        f"| article-id coverage (第X条 of the text twin found) | 1.000 | {_figure(result['article_coverage'])} |",
        f"| character error rate (indexed text, mean of documents) | — | {result['cer']:.4f} |",
        f"| recognition speed | — | {result['ocr_pages_per_second']:.2f} pages/s |",
        "",
        "Opening a citation's source page (first opening of each page: rendered, boxed, cached): "
        + ", ".join(
            f"{name} twin p50 {percentile(ms, 0.5):.0f} ms, max {max(ms, default=0):.0f} ms ({len(ms)} pages)"
            for name, ms in result["preview_ms"].items()
        )
        + ".",
        "",
        f"A {notice_pages}-page scanned notice (the first {notice_pages} pages of {NOTICE_SOURCE}) indexed through "
        f"`ingest` in **{result['notice_seconds']:.0f} s** ({'indexed' if result['notice_indexed'] else 'NOT indexed'}).",
        "",
        "| document | pages | CER | articles found | mean confidence | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for doc in result["documents"]:
        lines.append(
            f"| {doc['file']} | {doc['pages']} | {doc['cer']:.4f} | {doc['articles_found']}/{doc['articles']} | "
            f"{doc['confidence']:.3f} | {doc['ocr_seconds']:.0f} |"
        )
    missing = [f"{d['file']}: {', '.join(d['missing'])}" for d in result["documents"] if d["missing"]]
    lines += ["", "Articles not found in the scanned twin: " + ("; ".join(missing) if missing else "none."), ""]
    if result["samples"]:
        lines += ["## Real scans (evals/ocr-samples, see SOURCES.md)", "", "| file | CER | mean confidence |", "|---|---|---|"]
        lines += [f"| {name} | {cer:.4f} | {conf:.3f} |" for name, cer, conf in result["samples"]]
        lines.append("")
    else:
        lines += ["No real scanned page with a transcription is in evals/ocr-samples.", ""]
    if result["failed"]:
        lines += ["Failed files: " + "; ".join(f"{Path(p).name}: {r}" for p, r in result["failed"]), ""]
    for name, side in (("text twin", text), ("scanned twin", scanned)):
        lines += [f"### Misses, {name}", ""] + [f"- {m}" for m in side["misses"]] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
