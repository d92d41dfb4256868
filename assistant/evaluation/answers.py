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

from assistant.answering.relevance import DATA_DIR, out_of_scope_subject, refusal_model
from assistant.engine import Assistant
from assistant.evaluation.golden import (
    GOLDEN_DIR,
    REPORTS_DIR,
    GoldenQuestion,
    contains_evidence,
    load_retrieval_golden,
    percentile,
)
from assistant.evaluation.retrieval import eval_settings
from assistant.retrieve import RelevanceSignals
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


def calibrate_refusal(settings: Settings, max_false_refusal: float = 0.03) -> dict[str, Any]:
    """Fit the refusal model: logistic regression over the retrieval signals (in-scope vs out-of-scope
    questions of `retrieval.jsonl` and `answers_dev.jsonl`, out-of-scope up-weighted), then the highest
    probability threshold whose false-refusal rate on the in-scope questions stays within
    `max_false_refusal`. `answers_holdout.jsonl` is never used here: it is the honest test of the result."""
    import numpy as np

    assistant = Assistant(eval_settings(settings))
    assistant.ingest()
    titles = [r.meta.title for r in assistant.documents()]
    rows, labels, scoped = [], [], []
    golden = load_retrieval_golden() + load_retrieval_golden(GOLDEN_DIR / "answers_dev.jsonl")
    for q in golden:
        if q.type == "lookup":
            continue
        _, signals = assistant.searcher.search_with_signals(q.text, k=3)
        rows.append(signals.vector())
        labels.append(q.type == "question")
        scoped.append(bool(out_of_scope_subject(q.text, titles)))
    x, y, caught = np.array(rows), np.array(labels), np.array(scoped)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.c_[(x - mean) / std, np.ones(len(x))]
    sample_weight = np.where(y, 1.0, 0.5 * len(y) / max(int((~y).sum()), 1))
    w = np.zeros(z.shape[1])
    for _ in range(5000):  # plain gradient descent; six features do not need a library
        p = 1.0 / (1.0 + np.exp(-z @ w))
        grad = z.T @ ((p - y) * sample_weight) / len(y) + 0.01 * np.r_[w[:-1], 0.0]
        w -= 0.5 * grad
    prob = 1.0 / (1.0 + np.exp(-z @ w))
    threshold = 0.0
    for t in sorted(set(np.round(prob, 3))):
        if ((prob < t) & ~caught)[y].mean() <= max_false_refusal:
            threshold = float(t)
    refused = (prob < threshold) | caught
    result = {
        "note": "logistic refusal model fitted by `python -m assistant eval calibrate-refusal` "
        "on retrieval.jsonl + answers_dev.jsonl",
        "calibrated_on": str(date.today()),
        "features": RelevanceSignals.FEATURES,
        "mean": [round(float(v), 5) for v in mean],
        "std": [round(float(v), 5) for v in std],
        "weights": [round(float(v), 5) for v in w[:-1]],
        "bias": round(float(w[-1]), 5),
        "threshold": round(threshold, 3),
        "calibration_out_of_scope_refused": round(float(refused[~y].mean()), 4),
        "calibration_in_scope_refused": round(float(refused[y].mean()), 4),
    }
    (DATA_DIR / "refusal.json").write_text(
        json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    refusal_model.cache_clear()
    assistant.close()
    return result


def _by_kind(ins_out: list[AnswerOutcome], oos_out: list[AnswerOutcome]) -> list[str]:
    """Evidence and refusals by the kind a set marks its questions with (voice or style; tricky or plain),
    or nothing when it marks none."""
    groups: dict[str, list[AnswerOutcome]] = {}
    for o in ins_out:
        kind = o.item.extra.get("voice") or o.item.extra.get("style")
        if kind:
            groups.setdefault(f"in-scope, {kind}", []).append(o)
    for o in oos_out:
        if "tricky" in o.item.extra:
            groups.setdefault(f"out-of-scope, {'tricky' if o.item.extra['tricky'] else 'plain'}", []).append(o)
    if not groups:
        return []
    lines = ["## By kind of question", "", "| kind | n | evidence in answer | refused |", "|---|---|---|---|"]
    for kind, outs in groups.items():
        evidence = f"{sum(o.evidence_in_answer for o in outs) / len(outs):.3f}" if kind.startswith("in") else "—"
        refused = sum(o.answer.refused for o in outs) / len(outs)
        lines.append(f"| {kind} | {len(outs)} | {evidence} | {refused:.3f} |")
    return [*lines, ""]


def run(
    settings: Settings,
    report_path: Path | None = None,
    generator: str = "extractive",
    golden_path: Path | None = None,
) -> dict[str, Any]:
    assistant = Assistant(eval_settings(settings))
    assistant.ingest()
    golden = load_retrieval_golden(golden_path)
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
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "answered": len(answered),
    }
    test_ids = {q.id for q in in_scope if q.split == "test"}
    test_out = [o for o in ins_out if o.item.id in test_ids]
    lines = [
        "# Answer evaluation",
        "",
        f"Generated by `python -m assistant eval answers` on {date.today()} with the `{generator}` generator. "
        f"{len(in_scope)} in-scope and {len(oos)} out-of-scope questions from "
        f"`{(golden_path or Path('evals/golden/retrieval.jsonl')).name}`; "
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
        (
            f"Test split only: evidence in answer "
            f"{sum(o.evidence_in_answer for o in test_out) / len(test_out):.3f}, false refusals "
            f"{sum(o.answer.refused for o in test_out)}/{len(test_out)}."
            if test_out
            else "All questions of this set are held out from calibration."
        ),
        "Refusal: the scope list in `assistant/data/scope.yaml`, then "
        + (
            f"the judge's best retrieved passage against its calibrated gate ({assistant.judge.calibration.gate}, "
            f"fitted on the judge data's dev split; runtime `{assistant.settings.judge_backend}`)"
            if assistant.judge is not None
            else f"the logistic model in `assistant/data/refusal.json` (threshold {refusal_model()['threshold']}), "
            "calibrated on retrieval.jsonl and answers_dev.jsonl"
        )
        + "; after generation, a question asking for a figure (多少/几年/多久…) is refused "
        "when no quoted clause states one in the unit asked. The blind `answers_holdout.jsonl` (`--holdout`) "
        "is never used for calibration or tuning.",
        "",
        *_by_kind(ins_out, oos_out),
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
