"""Answer evaluation on the golden set, and calibration of the refusal thresholds.

Metrics: answer-contains-evidence rate (in-scope), refusal rate (out-of-scope), false-refusal rate
(in-scope), share of generated sentences with a verified citation, fabricated article ids, latency."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from assistant.answering.relevance import DATA_DIR, out_of_scope_subject, thresholds
from assistant.engine import Assistant
from assistant.evaluation.golden import REPORTS_DIR, GoldenQuestion, contains_evidence, load_retrieval_golden
from assistant.evaluation.retrieval import eval_settings
from assistant.settings import Settings
from assistant.types import Answer


@dataclass
class AnswerOutcome:
    item: GoldenQuestion
    answer: Answer
    ms: float
    evidence_in_answer: bool
    evidence_in_citations: bool
    fabricated: int


def _fabricated(answer: Answer, assistant: Assistant) -> int:
    snap = assistant.searcher.snapshots.current()
    bad = 0
    for c in answer.citations:
        chunk = snap.chunks.get(c.chunk_id)
        if chunk is None or chunk.article != c.article or chunk.doc_id != c.doc_id:
            bad += 1
    return bad


def run_answers(
    assistant: Assistant, items: list[GoldenQuestion], generator: str = "extractive"
) -> list[AnswerOutcome]:
    assistant.warm_up()
    assistant.ask("预热问题：保健食品标签", generator=generator)
    outcomes = []
    for item in items:
        start = time.perf_counter()
        answer = assistant.ask(item.text, generator=generator)
        ms = (time.perf_counter() - start) * 1000
        keys = item.evidence_keys()
        outcomes.append(
            AnswerOutcome(
                item,
                answer,
                ms,
                evidence_in_answer=bool(keys)
                and not answer.refused
                and contains_evidence(answer.answer, keys),
                evidence_in_citations=bool(keys)
                and any(contains_evidence(c.quote, keys) for c in answer.citations),
                fabricated=_fabricated(answer, assistant),
            )
        )
    return outcomes


def calibrate_refusal(settings: Settings) -> dict[str, Any]:
    """Thresholds on (top reranker score, best dense similarity) that refuse ≥ 95 % of the
    out-of-scope questions the scope check lets through while keeping the most in-scope ones;
    fitted on the training split of the in-scope questions and all out-of-scope ones."""
    assistant = Assistant(eval_settings(settings))
    assistant.ingest()
    golden = load_retrieval_golden()
    titles = [r.meta.title for r in assistant.documents()]
    rows = []
    for q in golden:
        if q.type == "lookup" or (q.type == "question" and q.split != "train"):
            continue
        if q.type == "out_of_scope" and out_of_scope_subject(q.text, titles):
            continue  # refused by the scope check already
        _, signals = assistant.searcher.search_with_signals(q.text, k=1)
        rows.append((q.type == "question", signals.top_score, signals.max_dense))
    oos = [r for r in rows if not r[0]]
    ins = [r for r in rows if r[0]]
    best: tuple[float, float, float] | None = None
    score_grid = sorted({round(r[1], 2) for r in rows} | {0.0})
    dense_grid = sorted({round(r[2], 3) for r in rows} | {0.0})
    for s0 in score_grid:
        for d0 in dense_grid:
            refused_oos = sum(1 for _, s, d in oos if s < s0 or d < d0) / max(len(oos), 1)
            if refused_oos < 0.95:
                continue
            kept = sum(1 for _, s, d in ins if s >= s0 and d >= d0) / max(len(ins), 1)
            if best is None or kept > best[0] or (kept == best[0] and (s0, d0) < (best[1], best[2])):
                best = (kept, s0, d0)
    if best is None:
        best = (0.0, max(score_grid), max(dense_grid))
    result = {
        "note": "calibrated by `python -m assistant eval calibrate-refusal` on the training split "
        "(in-scope) and the out-of-scope questions the scope check lets through",
        "calibrated_on": str(date.today()),
        "in_scope_kept_on_train": round(best[0], 4),
        "in_scope_questions": len(ins),
        "out_of_scope_questions": len(oos),
        "thresholds": {"min_top_score": best[1], "min_dense": best[2]},
    }
    (DATA_DIR / "refusal.json").write_text(
        json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    thresholds.cache_clear()
    assistant.close()
    return result


def _pctl(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run(settings: Settings, report_path: Path | None = None, generator: str = "extractive") -> dict[str, Any]:
    assistant = Assistant(eval_settings(settings))
    assistant.ingest()
    golden = load_retrieval_golden()
    in_scope = [q for q in golden if q.type == "question"]
    oos = [q for q in golden if q.type == "out_of_scope"]
    ins_out = run_answers(assistant, in_scope, generator)
    oos_out = run_answers(assistant, oos, generator)
    answered = [o for o in ins_out if not o.answer.refused]
    sentences = [s for o in ins_out + oos_out for s in o.answer.sentences]
    latencies = [o.ms for o in ins_out + oos_out]
    summary = {
        "generator": generator,
        "evidence_in_answer": round(sum(o.evidence_in_answer for o in ins_out) / max(len(ins_out), 1), 4),
        "evidence_in_citations": round(
            sum(o.evidence_in_citations for o in ins_out) / max(len(ins_out), 1), 4
        ),
        "refusal_rate_out_of_scope": round(sum(o.answer.refused for o in oos_out) / max(len(oos_out), 1), 4),
        "false_refusal_rate_in_scope": round(
            sum(o.answer.refused for o in ins_out) / max(len(ins_out), 1), 4
        ),
        "verified_sentence_share": round(sum(s.verified for s in sentences) / max(len(sentences), 1), 4),
        "fabricated_article_ids": sum(o.fabricated for o in ins_out + oos_out),
        "p50_ms": round(_pctl(latencies, 0.5), 1),
        "p95_ms": round(_pctl(latencies, 0.95), 1),
        "answered": len(answered),
    }
    test_ids = {q.id for q in in_scope if q.split == "test"}
    test_out = [o for o in ins_out if o.item.id in test_ids]
    lines = [
        "# Answer evaluation",
        "",
        f"Generated by `python -m assistant eval answers` on {date.today()} with the `{generator}` generator. "
        f"{len(in_scope)} in-scope and {len(oos)} out-of-scope questions from `evals/golden/retrieval.jsonl`; "
        "latency is wall time per question with models warm on the 2-core machine.",
        "",
        "| metric | value | target |",
        "|---|---|---|",
        f"| answer contains an evidence string (in-scope) | {summary['evidence_in_answer']:.3f} | ≥ 0.90 |",
        f"| a cited quote contains an evidence string (in-scope) | {summary['evidence_in_citations']:.3f} | — |",
        f"| refusal rate, out-of-scope | {summary['refusal_rate_out_of_scope']:.3f} | ≥ 0.95 |",
        f"| false-refusal rate, in-scope | {summary['false_refusal_rate_in_scope']:.3f} | ≤ 0.05 |",
        f"| generated sentences with a verified citation | {summary['verified_sentence_share']:.3f} | 1.000 |",
        f"| fabricated article ids | {summary['fabricated_article_ids']} | 0 |",
        f"| latency p50 / p95 (ms) | {summary['p50_ms']:.0f} / {summary['p95_ms']:.0f} | p95 < 1000 |",
        "",
        f"Held-out test split only (refusal thresholds were calibrated on train): evidence in answer "
        f"{sum(o.evidence_in_answer for o in test_out) / max(len(test_out), 1):.3f}, false refusals "
        f"{sum(o.answer.refused for o in test_out)}/{len(test_out)}.",
        f"Refusal thresholds in use: {thresholds()} plus the scope list in `assistant/data/scope.yaml`.",
        "",
        "## In-scope questions refused",
        "",
    ]
    lines += [f"- `{o.item.id}` {o.item.text}" for o in ins_out if o.answer.refused] or ["(none)"]
    lines += ["", "## Out-of-scope questions answered", ""]
    lines += [
        f"- `{o.item.id}` {o.item.text} → {o.answer.citations[0].title if o.answer.citations else ''}"
        for o in oos_out
        if not o.answer.refused
    ] or ["(none)"]
    lines += ["", "## Answered in-scope questions whose answer lacks the evidence", ""]
    lines += [
        f"- `{o.item.id}` {o.item.text} → cited "
        + "；".join(f"{c.title}{c.article}" for c in o.answer.citations)
        + (" (evidence is in a cited quote)" if o.evidence_in_citations else "")
        for o in ins_out
        if not o.answer.refused and not o.evidence_in_answer
    ] or ["(none)"]
    dropped = [(o.item.id, s) for o in ins_out + oos_out for s in o.answer.sentences if not s.verified]
    lines += ["", "## Sentences removed by citation verification", ""]
    lines += [f"- `{i}` {s.text[:80]} — {s.reason}" for i, s in dropped] or ["(none)"]
    path = report_path or REPORTS_DIR / "answers.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assistant.close()
    return summary
