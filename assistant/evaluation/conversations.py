"""Conversations: two- and three-turn exchanges run through `Assistant.ask` with the history the chat
keeps, the follow-up decided by the question's form ("rules") and by the trained follow-up judge,
side by side. Reports evidence in the final answer, per follow-up kind, wrong merges of topic
switches and continuations that were not recognised, and the latency of a follow-up turn."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

from assistant.answering.followup import Turn, turn_of
from assistant.engine import Assistant
from assistant.evaluation.golden import GOLDEN_DIR, REPORTS_DIR, contains_evidence, percentile
from assistant.evaluation.retrieval import eval_settings
from assistant.normalize import match_key
from assistant.settings import Settings

# The default is the development set: a blind set is measured once, on purpose, named with --set
# (and its own --report), never swept up with the spent ones.
DEV_SET = GOLDEN_DIR / "conversations_dev.jsonl"


def load_conversations(paths: list[Path]) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in paths
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def run_conversations(assistant: Assistant, conversations: list[dict[str, Any]]) -> dict[str, Any]:
    """Every conversation once, turn by turn, each answer's citations carried into the next turn."""
    final_hits: dict[str, list[bool]] = defaultdict(list)
    follow_up_hits: list[bool] = []
    wrong_merges: list[str] = []
    switches = 0
    missed: list[str] = []
    continuing = 0
    latencies: list[float] = []
    misses: list[str] = []
    for conv in conversations:
        history: list[Turn] = []
        for n, turn in enumerate(conv["turns"]):
            started = time.perf_counter()
            answer = assistant.ask(turn["question"], history=history)
            elapsed = time.perf_counter() - started
            keys = [k for k in (match_key(e) for e in turn.get("evidence", [])) if k]
            hit = not answer.refused and contains_evidence(answer.answer, keys)
            if n:
                latencies.append(elapsed)
                follow_up_hits.append(hit)
                if turn.get("continues"):
                    continuing += 1
                    if not answer.continues_conversation:
                        missed.append(f"{conv['id']}: {turn['question']}")
                else:
                    switches += 1
                    if answer.continues_conversation:
                        wrong_merges.append(
                            f"{conv['id']}: {turn['question']} → {answer.standalone_question}"
                        )
            if n == len(conv["turns"]) - 1:
                final_hits[conv.get("kind", "")].append(hit)
                final_hits["all"].append(hit)
                if not hit:
                    misses.append(
                        f"{conv['id']} ({conv.get('kind', '')}): {turn['question']} → "
                        f"{answer.standalone_question}｜{'拒答' if answer.refused else answer.answer[:60]}"
                    )
            history.append(turn_of(answer))
    return {
        "conversations": len(conversations),
        "final_evidence": {k: round(sum(v) / len(v), 3) for k, v in sorted(final_hits.items())},
        "final_counts": {k: len(v) for k, v in sorted(final_hits.items())},
        "follow_up_evidence": round(sum(follow_up_hits) / len(follow_up_hits), 3) if follow_up_hits else 0.0,
        "wrong_merges": round(len(wrong_merges) / switches, 3) if switches else 0.0,
        "switch_turns": switches,
        "continuations_missed": round(len(missed) / continuing, 3) if continuing else 0.0,
        "continuing_turns": continuing,
        "follow_up_p50_ms": round(1000 * percentile(latencies, 0.5)),
        "follow_up_p95_ms": round(1000 * percentile(latencies, 0.95)),
        "wrong_merge_examples": wrong_merges,
        "missed_examples": missed,
        "final_misses": misses,
    }


def run(
    settings: Settings, paths: list[Path] | None = None, report_path: Path | None = None
) -> dict[str, Any]:
    base = Assistant(eval_settings(settings))
    base.ingest()
    paths = paths or [DEV_SET]
    conversations = load_conversations(paths)
    systems = {
        "rules": Assistant(
            base.settings.model_copy(update={"followup_judge": False}),
            embeddings=base.embeddings,
            judge=base.judge,
        ),
        "judge": base,
    }
    results = {name: run_conversations(a, conversations) for name, a in systems.items()}
    _write_report(report_path or REPORTS_DIR / "conversations-dev.md", paths, results)
    return {
        name: {k: v for k, v in r.items() if not k.endswith("examples") and k != "final_misses"}
        for name, r in results.items()
    }


def _write_report(path: Path, sets: list[Path], results: dict[str, dict[str, Any]]) -> None:
    kinds = sorted({k for r in results.values() for k in r["final_evidence"]} - {"all"})
    lines = [
        "# Conversations: follow-ups by form (rules) and by the follow-up judge",
        "",
        f"Run {date.today().isoformat()} by `python -m assistant eval conversations` on "
        + ", ".join(f"`{p.name}`" for p in sets)
        + ". Each conversation is asked turn by turn through `Assistant.ask`, with the history the chat keeps "
        "(questions, answers, standalone rewrites and the articles each answer cited). A turn counts when its "
        "answer contains one of its evidence strings. Whether a set was blind when it was measured is "
        "recorded in `evals/golden/README.md`.",
        "",
        "| | " + " | ".join(results) + " |",
        "|---|" + "---|" * len(results),
        "| evidence in the final answer | "
        + " | ".join(f"{r['final_evidence']['all']:.3f}" for r in results.values())
        + " |",
        *(
            f"| … final turn `{k}` ({next(iter(results.values()))['final_counts'][k]}) | "
            + " | ".join(f"{r['final_evidence'].get(k, 0):.3f}" for r in results.values())
            + " |"
            for k in kinds
        ),
        "| evidence in every follow-up answer | "
        + " | ".join(f"{r['follow_up_evidence']:.3f}" for r in results.values())
        + " |",
        "| topic switches wrongly merged | "
        + " | ".join(f"{r['wrong_merges']:.3f} (of {r['switch_turns']})" for r in results.values())
        + " |",
        "| continuations not recognised | "
        + " | ".join(
            f"{r['continuations_missed']:.3f} (of {r['continuing_turns']})" for r in results.values()
        )
        + " |",
        "| follow-up turn p50 / p95 ms | "
        + " | ".join(f"{r['follow_up_p50_ms']} / {r['follow_up_p95_ms']}" for r in results.values())
        + " |",
        "",
    ]
    for name, r in results.items():
        lines += [
            f"## {name}: topic switches merged",
            "",
            *([f"- {x}" for x in r["wrong_merge_examples"]] or ["(none)"]),
            "",
        ]
        lines += [
            f"## {name}: continuations not recognised",
            "",
            *([f"- {x}" for x in r["missed_examples"]] or ["(none)"]),
            "",
        ]
        lines += [
            f"## {name}: final turns without the evidence",
            "",
            *([f"- {x}" for x in r["final_misses"]] or ["(none)"]),
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
