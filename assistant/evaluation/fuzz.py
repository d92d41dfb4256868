"""Mutation fuzz of ingestion, for `python -m assistant eval reliability` (and a small run in the tests).

Real PDFs of the corpus and real Word documents made from its laws are mutated (byte flips,
truncation, duplicated and deleted regions, a stream inflated into a decompression bomb), reproducibly
from a seed, and ingested as one batch: every file must be indexed or refused with a reason, no file
may take much longer than the per-file limit, and the index must be consistent afterwards."""

from __future__ import annotations

import io
import random
import re
import resource
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from assistant.engine import Assistant
from assistant.evaluation.badfiles import CORPUS, corpus_text
from assistant.extraction import close_worker
from assistant.ingest import IngestProgress

SEED_PDFS = (
    "shanghai-health-food-quality-plan-2022.pdf",
    "advertising-law-2021.pdf",
    "food-production-operation-supervision-inspection-measures-2021.pdf",
)
SEED_DOCX_SOURCES = (
    "spc-provisions-food-drug-disputes-2021.md",
    "state-council-special-provisions-food-product-safety-2007.md",
)
MUTATIONS = ("flip", "truncate", "duplicate", "delete", "inflate")


def word_document(markdown: Path) -> bytes:
    """A real .docx (python-docx) with a law's text: title, one paragraph per line, a small table."""
    import docx

    document = docx.Document()
    document.core_properties.title = markdown.stem
    for line in corpus_text(markdown).splitlines():
        if line.strip():
            document.add_paragraph(line.strip())
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, (("项目", "要求"), ("标签", "真实、准确")), strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _inflated_pdf(data: bytes, rng: random.Random) -> bytes:
    """The PDF with one page's content replaced by a deflated stream of many MB of spaces."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import DecodedStreamObject

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    page = writer.pages[rng.randrange(len(writer.pages))]
    stream = DecodedStreamObject()
    stream.set_data(b"BT ET\n" + b" " * (rng.randint(80, 200) * 1024 * 1024))
    page.replace_contents(stream.flate_encode())
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _inflated_docx(data: bytes, rng: random.Random) -> bytes:
    """The Word document with its body padded by an XML comment of many MB of spaces, streamed in."""
    out = io.BytesIO()
    padding = rng.randint(80, 600)
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            part = source.read(info.filename)
            if info.filename != "word/document.xml":
                target.writestr(info.filename, part)
                continue
            head, _, body = part.partition(b"?>")
            with target.open(info.filename, "w", force_zip64=True) as sink:
                sink.write(head + b"?><!--")
                block = b" " * (1024 * 1024)
                for _ in range(padding):
                    sink.write(block)
                sink.write(b"-->" + body)
    return out.getvalue()


def mutate(data: bytes, kind: str, rng: random.Random, suffix: str) -> bytes:
    n = len(data)
    if kind == "flip":
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 32)):
            mutated[rng.randrange(n)] ^= 1 << rng.randrange(8)
        return bytes(mutated)
    if kind == "truncate":
        return data[: rng.randint(1, n - 1)]
    start = rng.randrange(n)
    length = rng.randint(1, min(8192, n - start))
    if kind == "duplicate":
        at = rng.randrange(n)
        return data[:at] + data[start : start + length] * rng.randint(1, 64) + data[at:]
    if kind == "delete":
        return data[:start] + data[start + length :]
    if kind == "inflate":
        return _inflated_pdf(data, rng) if suffix == ".pdf" else _inflated_docx(data, rng)
    raise ValueError(kind)


@dataclass
class FuzzVariant:
    path: Path
    seed_name: str
    mutation: str


def make_variants(folder: Path, count: int, seed: int = 20261203) -> list[FuzzVariant]:
    """`count` mutated files in `folder`, the same files for the same seed."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    seeds: list[tuple[str, bytes, str]] = [(name, (CORPUS / name).read_bytes(), ".pdf") for name in SEED_PDFS]
    seeds += [(name, word_document(CORPUS / name), ".docx") for name in SEED_DOCX_SOURCES]
    variants = []
    for index in range(count):
        name, data, suffix = seeds[index % len(seeds)]
        kind = MUTATIONS[(index // len(seeds)) % len(MUTATIONS)]
        path = folder / f"{index:04d}-{kind}-{Path(name).stem[:30]}{suffix}"
        path.write_bytes(mutate(data, kind, rng, suffix))
        variants.append(FuzzVariant(path, name, kind))
    return variants


@dataclass
class FuzzResult:
    variants: int
    indexed: int
    refused: int
    unaccounted: list[str]  # neither indexed nor refused (or refused without a reason)
    slowest: list[tuple[float, str]]  # (seconds, file), slowest first
    reasons: Counter[str] = field(default_factory=Counter)  # reason (numbers stripped) → files
    worker_max_rss_mb: float = 0.0
    ingest_max_rss_mb: float = 0.0
    seconds: float = 0.0


def run_fuzz(
    assistant: Assistant, folder: Path, count: int, seed: int = 20261203, on_file: Callable[[int, int], None] | None = None
) -> FuzzResult:
    """Make `count` variants and ingest them as one batch; what happened to each, and how long it took."""
    variants = make_variants(folder, count, seed)
    started: dict[str, float] = {}

    def file_started(path: Path, index: int, total: int) -> None:
        started[str(path)] = time.monotonic()
        if on_file:
            on_file(index, total)

    begin = time.monotonic()
    report = assistant.ingest([folder], IngestProgress(on_file=file_started))
    end = time.monotonic()
    order = sorted(started, key=started.__getitem__)
    durations = {
        path: (started[order[i + 1]] if i + 1 < len(order) else end) - started[path] for i, path in enumerate(order)
    }
    close_worker()  # so the worker's peak memory is counted among the finished children
    reasons = {f.path: f.reason for f in report.failed}
    indexed = set(report.added) | set(report.updated)
    unaccounted = [
        v.path.name for v in variants if str(v.path) not in indexed and not reasons.get(str(v.path), "").strip()
    ]
    return FuzzResult(
        variants=len(variants),
        indexed=len(indexed),
        refused=len(reasons),
        unaccounted=unaccounted,
        slowest=sorted(((d, Path(p).name) for p, d in durations.items()), reverse=True)[:5],
        reasons=Counter(re.sub(r"[\d,.]+", "N", r) for r in reasons.values()),
        worker_max_rss_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        ingest_max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        seconds=end - begin,
    )
