"""Ingest benchmark on the bundled corpus (a benchmark, not a test), for each embedding runtime.

Prints total ingest time into a fresh index, the time spent in the embedding model alone, their
ratio, chunks per second, and the re-ingest time of the unchanged corpus — torch fp32 and int8 ONNX
side by side (each model loaded before the timings).
Run: .venv/bin/python evals/bench_ingest.py [--runs 1] [--backends torch onnx]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.embeddings import LocalSentenceEmbeddings
from assistant.engine import Assistant
from assistant.settings import Settings


class TimedEmbeddings(LocalSentenceEmbeddings):
    """The real model, with the wall time of its document-embedding calls added up."""

    seconds = 0.0

    def embed_documents(self, texts: list[str], progress: Any = None) -> list[list[float]]:
        start = time.perf_counter()
        try:
            return super().embed_documents(texts, progress)
        finally:
            self.seconds += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1, help="fresh-index runs to time")
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx"], help="embedding runtimes to compare")
    args = parser.parse_args()
    for backend in args.backends:
        print(f"== embedding runtime: {backend}")
        bench(Settings().model_copy(update={"embedding_backend": backend}), args.runs)


def bench(base: Settings, runs: int) -> None:
    model = TimedEmbeddings(base)
    model.embed_query("预热")  # load the model outside the timings
    for run in range(1, runs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            settings = base.model_copy(update={"index_dir": Path(tmp) / "index"})
            assistant = Assistant(settings, embeddings=model)
            model.seconds = 0.0
            start = time.perf_counter()
            report = assistant.ingest()
            total = time.perf_counter() - start
            embed = model.seconds
            start = time.perf_counter()
            again = assistant.ingest()
            reingest = time.perf_counter() - start
            assistant.close()
        print(f"run {run}: {len(report.added)} documents, {report.chunks} chunks, {len(report.failed)} failed")
        print(f"  total ingest         {total:8.2f} s")
        print(f"  embedding alone      {embed:8.2f} s  ({embed / total:.0%} of total)")
        print(f"  everything else      {total - embed:8.2f} s  (load, normalize, chunk, Chroma writes)")
        print(f"  throughput           {report.chunks / total:8.1f} chunks/s overall, {report.chunks / embed:.1f} chunks/s embedding")
        print(f"  re-ingest unchanged  {reingest:8.2f} s  ({len(again.unchanged)} unchanged)")


if __name__ == "__main__":
    main()
