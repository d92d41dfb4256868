"""`python -m assistant train embedder-data`: (question, passage, hard negative) triplets for
fine-tuning the embedding model, from the same helper-written data as the judge.

The positive is the answering chunk exactly as the index embeds it (`Chunk.embedding_text`); the
hard negative is the first stage's best candidate (dense + BM25, no reranking) that does not hold
the answer — what the first stage wrongly offers today. Questions of the judge's `dev` passage
groups are kept as the `dev` split: never trained on, used to measure recall by question style."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.normalize import match_key, normalize_query
from assistant.settings import Settings
from assistant.training.judge_data import (
    RAW_DIR,
    TEXTS_DIR,
    TRAINING_DIR,
    PassageIndex,
    _doc_id,
    _golden_rows,
    _raw_records,
    default_golden_files,
    in_dev_split,
    passage_group,
    write_pairs,
)
from assistant.types import Chunk

TRIPLETS_FILE = TRAINING_DIR / "embedder" / "triplets.jsonl.gz"
BASE_MODEL = "m3e-small"


def _first_stage_negative(
    index: PassageIndex, question: str, doc_ids: list[str], keys: list[str], article: tuple[str, str]
) -> Chunk | None:
    for hit in index.assistant.searcher.search(question, k=10, rerank=False, doc_ids=doc_ids):
        chunk = hit.chunk
        if any(k in index.keys[chunk.chunk_id] for k in keys):
            continue
        if article[1] and (chunk.doc_id, chunk.article) == article:
            continue  # another part of the answering article
        return chunk
    return None


def build_triplets(
    index: PassageIndex,
    bundled_docs: list[str],
    raw_dir: Path = RAW_DIR,
    texts_dir: Path = TEXTS_DIR,
    golden_files: list[Path] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    rows: list[dict[str, Any]] = []
    stats = {"questions": 0, "unplaced": 0, "no_negative": 0}
    records = list(_raw_records(raw_dir))
    golden = [row for path in golden_files or [] for row in _golden_rows(path) if row["type"] == "question"]
    total = len(records) + len(golden)

    def add(question: str, chunk: Chunk, keys: list[str], scope: list[str], split: str, style: str) -> None:
        negative = _first_stage_negative(index, question, scope, keys, (chunk.doc_id, chunk.article))
        if negative is None:
            stats["no_negative"] += 1
            return
        stats["questions"] += 1
        rows.append(
            {
                "question": question,
                "positive": chunk.embedding_text,
                "negative": negative.embedding_text,
                "style": style,
                "split": split,
            }
        )

    for done, rec in enumerate(records, start=1):
        doc_id = _doc_id(rec.get("doc", ""), texts_dir)
        scope = bundled_docs if doc_id in bundled_docs else [doc_id]
        split = "dev" if in_dev_split(passage_group(rec, doc_id)) else "train"
        for q in rec.get("questions", []):
            question = normalize_query(q.get("q", ""))
            key = match_key(q.get("answer", ""))
            chunk = index.find(doc_id, rec.get("article", ""), key) if question and key else None
            if chunk is None:
                stats["unplaced"] += 1
                continue
            add(question, chunk, [key], scope, split, q.get("style", ""))
        if progress:
            progress(done, total)

    for done, row in enumerate(golden, start=len(records) + 1):
        question = normalize_query(row["question"])
        keys = [k for k in (match_key(e) for e in row.get("evidence", [])) if k]
        chunk = next(
            (c for d in bundled_docs for c in index.chunks.get(d, []) if any(k in index.keys[c.chunk_id] for k in keys)),
            None,
        )
        if chunk is None:
            stats["unplaced"] += 1
        else:
            add(question, chunk, keys, bundled_docs, "train", row.get("style", "golden"))
        if progress:
            progress(done, total)
    return rows, stats


def make_embedder_triplets(
    settings: Settings,
    output: Path = TRIPLETS_FILE,
    ingest_progress: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Index the corpus and the extra texts with the *base* embedding model (hard negatives are the
    base model's mistakes), build the triplets and write them to `output`. Returns counts."""
    from assistant.engine import Assistant

    assistant = Assistant(
        settings.model_copy(
            update={"index_dir": settings.data_dir / "training-index", "embedding_model": BASE_MODEL, "judge": False}
        )
    )
    try:
        report = assistant.ingest([settings.corpus_dir, TEXTS_DIR], ingest_progress)
        if report.failed:
            raise RuntimeError("训练索引建立失败：" + "；".join(f"{f.path}: {f.reason}" for f in report.failed))
        corpus = settings.corpus_dir.resolve()
        bundled = [
            r.meta.doc_id for r in assistant.documents() if Path(r.meta.source_path).resolve().parent == corpus
        ]
        rows, stats = build_triplets(
            PassageIndex(assistant), bundled, golden_files=default_golden_files(), progress=progress
        )
    finally:
        assistant.close()
    write_pairs(rows, output)
    stats["triplets"] = len(rows)
    stats["dev"] = sum(r["split"] == "dev" for r in rows)
    return stats


def load_triplets(path: Path = TRIPLETS_FILE) -> list[dict[str, Any]]:
    import gzip

    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
