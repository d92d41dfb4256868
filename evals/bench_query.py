"""Query benchmark, the embedding runtimes side by side (a benchmark, not a test).

For each runtime of the embedding model (torch fp32, onnx int8) on its own evaluation index of the
bundled corpus: warm latency p50/p95 of `search`, `ask` (with the judge) and `review`, and the
quality each gives on the golden set — retrieval recall@5 and MRR@5 on the in-scope questions, and
the share of answers containing the evidence. Writes evals/reports/embedding-runtime.md with the
ingest figures of evals/bench_ingest.py when given (--ingest-report). Each runtime is measured in a
process of its own, so neither one's threads and caches are in the other's timings.
Run: .venv/bin/python evals/bench_query.py [--backends torch onnx]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from assistant.engine import Assistant
from assistant.evaluation.answers import run_answers
from assistant.evaluation.golden import REPORTS_DIR, first_hit_rank, load_retrieval_golden, percentile
from assistant.evaluation.retrieval import eval_settings
from assistant.settings import Settings

DRAFT = (
    "【限时秒杀】深海鱼油软胶囊，每粒含EPA+DHA 600 mg，有助于维持血脂健康水平。我妈吃了三个月，体检单上的箭头全没了。"
    "隔壁牌子的鱼油跟它比差远了。今天下单立减50元，本品不能代替药物。"
)


def measure(backend: str) -> dict[str, Any]:
    settings = eval_settings(Settings().model_copy(update={"embedding_backend": backend}))
    assistant = Assistant(settings)
    started = time.perf_counter()
    assistant.ingest()
    ingest_s = time.perf_counter() - started
    questions = [q for q in load_retrieval_golden() if q.type == "question" and q.evidence_keys()]
    # Answers first: a question's search is cached afterwards, and ask would time the cache.
    outcomes = run_answers(assistant, questions)
    ask_ms = [o.ms for o in outcomes]
    other = Assistant(settings)  # fresh caches for the search timings
    other.search("预热", k=5)
    search_ms, ranks = [], []
    for q in questions:
        t = time.perf_counter()
        hits = other.search(q.text, k=5)
        search_ms.append(1000 * (time.perf_counter() - t))
        ranks.append(first_hit_rank([h.chunk.text for h in hits], q.evidence_keys()))
    other.close()
    assistant.review(DRAFT)
    review_ms = []
    for _ in range(30):
        t = time.perf_counter()
        assistant.review(DRAFT)
        review_ms.append(1000 * (time.perf_counter() - t))
    assistant.close()
    n = len(questions)
    return {
        "backend": backend,
        "questions": n,
        "ingest_s (index existed: 0)": round(ingest_s, 1),
        "recall@5": round(sum(r is not None for r in ranks) / n, 4),
        "mrr@5": round(sum(1 / r for r in ranks if r) / n, 4),
        "evidence_in_answer": round(sum(o.evidence_in_answer for o in outcomes) / n, 4),
        "search_p50_ms": round(statistics.median(search_ms), 1),
        "search_p95_ms": round(percentile(search_ms, 0.95), 1),
        "ask_p50_ms": round(statistics.median(ask_ms), 1),
        "ask_p95_ms": round(percentile(ask_ms, 0.95), 1),
        "review_p50_ms": round(statistics.median(review_ms), 1),
        "review_p95_ms": round(percentile(review_ms, 0.95), 1),
    }


def cpu_description() -> str:
    """The CPU model and the instruction sets int8 and bf16 kernels use: figures differ between them
    (int8 runs about twice as fast with AVX-512 VNNI as with AVX2 alone)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    fields = dict(line.split(":", 1) for line in reversed(info.splitlines()) if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    model, flags = fields.get("model name", ""), set(fields.get("flags", "").split())
    found = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8") if f in flags]
    return f"{model or 'unknown CPU'} ({', '.join(found) or 'no AVX2'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx"])
    parser.add_argument("--ingest-report", type=Path, help="output of evals/bench_ingest.py to include")
    parser.add_argument("--report", type=Path, default=REPORTS_DIR / "embedding-runtime.md")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # one runtime, in a child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    results = [
        json.loads(
            subprocess.run(
                [sys.executable, __file__, "--measure", b], check=True, capture_output=True, text=True
            ).stdout.splitlines()[-1]
        )
        for b in args.backends
    ]
    keys = [k for k in results[0] if k != "backend"]
    lines = [
        "# Embedding runtime: torch fp32 versus int8 ONNX",
        "",
        f"Generated on {date.today()} by `evals/bench_query.py` (and `evals/bench_ingest.py`) on this 2-core machine, "
        f"{cpu_description()}. "
        f"Quality on the {results[0]['questions']} in-scope questions of `evals/golden/retrieval.jsonl`; latency warm, "
        "one question at a time; `ask` includes the judge (int8 ONNX in both columns).",
        "",
        "| | " + " | ".join(r["backend"] for r in results) + " |",
        "|---|" + "---|" * len(results),
        *(f"| {k} | " + " | ".join(str(r[k]) for r in results) + " |" for k in keys),
    ]
    if args.ingest_report and args.ingest_report.is_file():
        lines += ["", "## Ingest (evals/bench_ingest.py)", "", "```text", args.ingest_report.read_text().strip(), "```"]
    args.report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for r in results:
        print(r)


if __name__ == "__main__":
    main()
