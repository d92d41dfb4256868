"""Embedding precision benchmark (a benchmark, not a test): torch fp32, torch bf16 and the
assistant's int8 ONNX copy embedding the texts of the bundled corpus's chunks in one call each
(sorted by length, batches of 32), with the mean cosine of each runtime's vectors to fp32's.
bf16 gains only on CPUs with bf16 matrix kernels (AVX-512 BF16 or AMX); the result is in
evals/reports/embedding-runtime.md.
Run: .venv/bin/python evals/bench_precision.py
"""

from __future__ import annotations

import json
import time

import torch
from sentence_transformers import SentenceTransformer

from assistant.embeddings import resolve_model_path
from assistant.engine import Assistant
from assistant.evaluation.retrieval import eval_settings
from assistant.settings import Settings


def main() -> None:
    assistant = Assistant(eval_settings(Settings()))
    assistant.ingest()
    texts = [c.text for c in assistant.searcher.snapshots.current().chunks.values()]
    path = str(resolve_model_path(assistant.settings.embedding_model))
    results: dict[str, dict[str, float]] = {}
    reference = None
    for name, dtype in (("torch fp32", torch.float32), ("torch bf16", torch.bfloat16)):
        model = SentenceTransformer(
            path, device="cpu", local_files_only=True, model_kwargs={"torch_dtype": dtype}
        )
        model.encode(texts[:16])  # warm up outside the timing
        started = time.perf_counter()
        vectors = model.encode(
            texts, batch_size=32, normalize_embeddings=True, convert_to_tensor=True
        ).float()
        seconds = time.perf_counter() - started
        reference = vectors if reference is None else reference
        cosine = float((vectors * reference).sum(1).mean())
        results[name] = {
            "chunks_per_s": round(len(texts) / seconds, 1),
            "mean_cosine_to_fp32": round(cosine, 4),
        }
    assistant.embeddings.embed_documents(texts[:16])
    started = time.perf_counter()
    vectors = torch.tensor(assistant.embeddings.embed_documents(texts))
    seconds = time.perf_counter() - started
    results[f"{assistant.settings.embedding_backend} (the assistant's runtime)"] = {
        "chunks_per_s": round(len(texts) / seconds, 1),
        "mean_cosine_to_fp32": round(float((vectors * reference).sum(1).mean()), 4),
    }
    assistant.close()
    print(json.dumps(results, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
