"""The judge's two runtimes side by side (a benchmark, not a test): fp32 PyTorch and the int8 ONNX
copy, on the held-out dev pairs of the judge's training data (never trained on).

Prints and writes evals/reports/judge-runtime.md: milliseconds per pair, AUC of each, and how far
the int8 probabilities move from fp32.
Run: .venv/bin/python evals/bench_judge.py [--pairs 600]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import time
from pathlib import Path

import numpy as np

from assistant.judge import Judge
from assistant.training.judge_data import PAIRS_FILE

REPORT = Path(__file__).parent / "reports" / "judge-runtime.md"


def auc(labels: list[int], scores: list[float]) -> float:
    positives = [s for s, y in zip(scores, labels, strict=True) if y]
    negatives = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=600)
    args = parser.parse_args()
    with gzip.open(PAIRS_FILE, "rt", encoding="utf-8") as f:
        rows = [r for r in map(json.loads, f) if r["split"] != "train"]
    random.Random(0).shuffle(rows)
    rows = rows[: args.pairs]
    labels = [int(r["label"]) for r in rows]
    by_question: dict[str, list[str]] = {}
    for r in rows:
        by_question.setdefault(r["question"], []).append(r["text"])
    results: dict[str, tuple[float, list[float]]] = {}
    for backend in ("torch", "onnx"):
        judge = Judge(backend=backend)
        judge.score("预热", ["预热文字"])  # load (and on first use, make the ONNX copy) outside the timing
        start = time.perf_counter()
        for question, texts in by_question.items():
            judge.score(question, texts)  # as the answer chain calls it: a question's texts at once
        scores = [judge.score(r["question"], [r["text"]])[0] for r in rows]  # cached now
        results[backend] = ((time.perf_counter() - start) / len(rows) * 1000, scores)
    moved = np.abs(np.array(results["onnx"][1]) - np.array(results["torch"][1]))
    lines = [
        "# The judge's runtimes: fp32 PyTorch and int8 ONNX",
        "",
        f"{len(rows)} held-out dev pairs of `evals/training/judge/pairs.jsonl.gz` (not blind: written with the "
        "training data, never trained on), each question's texts in one call as the answer chain scores them "
        "(torch batches them by length, ONNX runs them one by one), 2-core machine. "
        "Made by `evals/bench_judge.py`.",
        "",
        "| runtime | ms per pair | AUC |",
        "|---|---|---|",
        *(f"| {b} | {ms:.1f} | {auc(labels, s):.4f} |" for b, (ms, s) in results.items()),
        "",
        f"Speed-up {results['torch'][0] / results['onnx'][0]:.2f}×. The int8 probabilities differ from fp32 by "
        f"{moved.mean():.3f} on average (95th percentile {np.percentile(moved, 95):.3f}, max {moved.max():.3f}).",
        "",
    ]
    REPORT.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
