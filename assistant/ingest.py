"""Ingestion: files → load → normalize → chunk → embed → store, with a report of what happened.

Each file is handled on its own: a bad file is recorded with its reason and the batch goes on.
Embedding happens before anything is written, so a failure there leaves the index untouched."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assistant.crossrefs import references_version
from assistant.embeddings import LocalSentenceEmbeddings
from assistant.extraction import prepare_isolated
from assistant.loaders import LoadError, discover
from assistant.settings import Settings
from assistant.store import Store
from assistant.types import IngestFailure, IngestReport


@dataclass
class IngestProgress:
    """Callbacks a front end can hook: one file started, chunks embedded."""

    on_file: Callable[[Path, int, int], None] | None = None  # (path, index, total)
    on_embedded: Callable[[int], None] | None = None  # number of chunks just embedded
    on_chunks: Callable[[int], None] | None = None  # chunks about to be embedded for the current file
    on_ocr_page: Callable[[int], None] | None = None  # a page of the current file recognised (its number)


CHUNK_FORMAT = 2  # 2: chunks carry their cross-references


def chunk_format() -> str:
    """What the index records about how its chunks were made (checked on every ingest)."""
    return f"{CHUNK_FORMAT}/refs-{references_version()}"


def _inside(path: str, folders: list[Path]) -> bool:
    p = Path(path)
    return any(p == f or f in p.parents for f in folders)


def ingest_paths(
    paths: list[Path],
    settings: Settings,
    store: Store,
    embeddings: LocalSentenceEmbeddings,
    progress: IngestProgress | None = None,
) -> IngestReport:
    progress = progress or IngestProgress()
    report = IngestReport()
    files, folders = discover(paths)
    for p in paths:
        if not p.exists():
            report.failed.append(IngestFailure(str(p), "路径不存在"))
    seen: set[str] = set()
    # An index whose chunks were made by an older chunker (e.g. without cross-references) has the
    # metadata of unchanged documents rewritten once (or, if their chunks differ, the document re-indexed).
    stale = store.registry.get_info("chunk_format") != chunk_format()

    for index, path in enumerate(files, start=1):
        if progress.on_file:
            progress.on_file(path, index, len(files))
        shown = str(path)
        try:
            doc, chunks = prepare_isolated(path, settings, progress.on_ocr_page)
        except LoadError as err:
            report.failed.append(IngestFailure(shown, str(err)))
            continue
        except Exception as err:  # an unexpected parser crash must not sink the batch
            report.failed.append(IngestFailure(shown, f"处理时出错：{type(err).__name__}: {err}"))
            continue
        meta = doc.meta
        seen.add(meta.doc_id)
        existing = store.registry.get(meta.doc_id)
        unchanged = existing and existing.state == "committed" and existing.meta.content_hash == meta.content_hash
        if unchanged and (not stale or store.refresh_chunks(meta, chunks)):
            if existing and existing.meta.source_path != meta.source_path:
                # The same file at a new place (a moved or copied library folder or checkout): the
                # index follows it, so page previews and "which documents are bundled" stay right.
                store.registry.set_meta(meta)
            report.unchanged.append(shown)
            continue
        twin = store.registry.find_by_hash(meta.content_hash)
        if twin and twin.meta.doc_id != meta.doc_id:
            report.failed.append(
                IngestFailure(
                    shown,
                    f"与已索引的文件 {Path(twin.meta.source_path).name}（{twin.meta.title}）内容完全相同，未重复导入",
                )
            )
            continue
        if progress.on_chunks:
            progress.on_chunks(len(chunks))
        try:
            vectors = embeddings.embed_documents(
                [c.embedding_text for c in chunks], progress=progress.on_embedded
            )
            store.write_document(meta, chunks, vectors)
        except Exception as err:
            report.failed.append(IngestFailure(shown, f"写入索引失败：{type(err).__name__}: {err}"))
            continue
        (report.updated if existing else report.added).append(shown)
        if meta.ocr_rejected_pages:
            pages = "、".join(str(p) for p in meta.ocr_rejected_pages)
            report.warnings.append(
                IngestFailure(
                    shown, f"第 {pages} 页扫描质量过低（文字识别置信度低于 {settings.ocr_min_confidence:.2f}），未编入索引"
                )
            )

    # Documents that were in a scanned folder but are gone from it are removed from the index.
    if folders:
        for record in store.registry.documents():
            gone = not Path(record.meta.source_path).exists()
            if record.meta.doc_id not in seen and gone and _inside(record.meta.source_path, folders):
                store.delete_document(record.meta.doc_id)
                report.removed.append(record.meta.source_path)
    if stale and {r.meta.doc_id for r in store.registry.documents()} <= seen:
        store.registry.set_info("chunk_format", chunk_format())
    report.chunks = store.chunk_count()
    return report
