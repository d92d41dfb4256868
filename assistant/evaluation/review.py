"""Review evaluation: the rules alone and the rules with the claim classifier, side by side in one
run, on `evals/golden/review.jsonl` (written with the rules) or, with `holdout`, on the drafts
written blind by other helpers (`evals/golden/review_holdout*.jsonl`). Reports must-flag recall by
category, false flags on compliant drafts, must-not-flag phrases flagged, missing-statement
accuracy, document-type accuracy, malformed numbers caught, citation resolution and latency."""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from assistant.engine import Assistant
from assistant.evaluation.golden import GOLDEN_DIR, REPORTS_DIR, percentile
from assistant.evaluation.retrieval import eval_settings
from assistant.review.engine import Finding, ReviewEngine, all_references, load_rules
from assistant.settings import Settings

HOLDOUT_GLOB = "review_holdout*.jsonl"


def _occurrences(text: str, phrase: str) -> list[tuple[int, int]]:
    out, start = [], text.find(phrase)
    while start >= 0 and phrase:
        out.append((start, start + len(phrase)))
        start = text.find(phrase, start + 1)
    return out


def _hit(findings: list[Finding], spans: list[tuple[int, int]]) -> bool:
    return any(f.start < e and s < f.end for f in findings if f.start >= 0 for s, e in spans)


def load_drafts(paths: list[Path]) -> list[dict[str, Any]]:
    return [
        json.loads(line) for path in paths for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def is_compliant(item: dict[str, Any]) -> bool:
    return not (item.get("must_flag") or item.get("missing") or item.get("format_errors"))


@dataclass
class Tally:
    """What one configuration (rules, or rules + classifier) did on the drafts."""

    must: Counter[str] = field(default_factory=Counter)  # by family
    flagged: Counter[str] = field(default_factory=Counter)
    hard_must: int = 0
    hard_flagged: int = 0
    compliant_findings: int = 0
    compliant_drafts_flagged: int = 0
    must_not_flagged: int = 0
    missing_ok: int = 0
    formats_ok: int = 0
    formats_total: int = 0
    by_layer: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    false_flags: list[str] = field(default_factory=list)
    missing_wrong: list[str] = field(default_factory=list)

    def recall(self, family: str | None = None) -> float:
        must = self.must[family] if family else sum(self.must.values())
        flagged = self.flagged[family] if family else sum(self.flagged.values())
        return flagged / must if must else 0.0


def _measure(engine: ReviewEngine, items: list[dict[str, Any]], families: dict[str, str]) -> Tally:
    tally = Tally()
    for item in items:
        draft = item["draft"]
        declared = item.get("declared", item["type"])
        started = time.perf_counter()
        result = engine.review(draft, declared)
        tally.seconds.append(time.perf_counter() - started)
        spans = [f for f in result.findings if f.start >= 0]
        claims = [f for f in spans if f.kind != "format_error"]
        phrases = item.get("must_flag", [])
        hard = item.get("must_flag_hard") or [False] * len(phrases)
        rules = item.get("must_flag_rules") or []
        if len(rules) != len(phrases) or not all(r in families for r in rules):
            rules = [""] * len(phrases)  # (the project's own set names families per draft, not per phrase)
        for phrase, rule, is_hard in zip(phrases, rules, hard, strict=True):
            family = families.get(rule, "(not given)")
            tally.must[family] += 1
            tally.hard_must += bool(is_hard)
            if _hit(claims, _occurrences(draft, phrase)):
                tally.flagged[family] += 1
                tally.hard_flagged += bool(is_hard)
                layers = {f.layer for f in claims if _hit([f], _occurrences(draft, phrase))}
                tally.by_layer["rule" if "rule" in layers else "classifier"] += 1
            else:
                tally.misses.append(f"`{item['id']}` {phrase} ({rule}{', hard' if is_hard else ''})")
        for phrase in item.get("must_not_flag", []):
            if _hit(result.findings, _occurrences(draft, phrase)):
                tally.must_not_flagged += 1
                tally.false_flags.append(f"`{item['id']}` must-not-flag {phrase}")
        if is_compliant(item):
            tally.compliant_findings += len(result.findings)
            tally.compliant_drafts_flagged += bool(result.findings)
            tally.false_flags += [
                f"`{item['id']}` compliant draft: {f.rule} [{f.layer}] {f.text or '(missing)'}" for f in result.findings
            ]
        reported = {f.rule for f in result.findings if f.kind == "missing_statement"}
        if reported == set(item.get("missing", [])):
            tally.missing_ok += 1
        else:
            tally.missing_wrong.append(
                f"`{item['id']}` ({item['type']}, declared {declared}, read as {result.doc_type}) expected "
                f"{sorted(item.get('missing', []))}, got {sorted(reported)}"
            )
        for phrase in item.get("format_errors", []):
            tally.formats_total += 1
            tally.formats_ok += _hit([f for f in spans if f.kind == "format_error"], _occurrences(draft, phrase))
    return tally


def run(
    settings: Settings, report_path: Path | None = None, golden_path: Path | None = None, holdout: bool = False
) -> dict[str, Any]:
    assistant = Assistant(eval_settings(settings))
    assistant.ingest()
    paths = [golden_path] if golden_path else sorted(GOLDEN_DIR.glob(HOLDOUT_GLOB)) if holdout else [GOLDEN_DIR / "review.jsonl"]
    items = load_drafts(paths)
    rules = load_rules()
    families = {rule["id"]: rule.get("family", "other") for rule in rules["rules"]}
    snap = assistant.searcher.snapshots.current()
    engines = {
        "rules": ReviewEngine(snap.articles, rules),
        "rules + classifier": ReviewEngine(snap.articles, rules, classifier=assistant.claim_classifier),
    }
    tallies = {name: _measure(engine, items, families) for name, engine in engines.items()}

    full = engines["rules + classifier"]
    type_ok = coarse_ok = 0
    type_wrong: list[str] = []
    citations_total = citations_real = 0
    for item in items:
        guess = full.review(item["draft"], "auto")
        type_ok += guess.doc_type == item["type"]
        coarse_ok += (guess.doc_type in ("label", "manual")) == (item["type"] in ("label", "manual"))
        if guess.doc_type != item["type"]:
            type_wrong.append(f"`{item['id']}` {item['type']} read as {guess.doc_type} ({'、'.join(guess.doc_type_evidence)})")
        for f in guess.findings:
            for c in f.citations:
                citations_total += 1
                chunk = snap.chunks.get(c.chunk_id)
                citations_real += bool(chunk and c.quote and c.quote in chunk.text)
    refs = all_references(rules)
    unresolved = sorted(r for r in refs if full.citation(r) is None)
    compliant = sum(is_compliant(i) for i in items)
    n = max(len(items), 1)
    all_families = sorted({f for t in tallies.values() for f in t.must})

    def config_summary(t: Tally) -> dict[str, Any]:
        return {
            "must_flag_recall": round(t.recall(), 4),
            "hard_recall": round(t.hard_flagged / t.hard_must, 4) if t.hard_must else None,
            "recall_by_family": {f: round(t.recall(f), 4) for f in all_families},
            "findings_on_compliant_drafts": t.compliant_findings,
            "compliant_drafts_flagged": t.compliant_drafts_flagged,
            "must_not_flag_flagged": t.must_not_flagged,
            "missing_statement_accuracy": round(t.missing_ok / n, 4),
            "format_errors_caught": f"{t.formats_ok}/{t.formats_total}",
            "p50_ms": round(1000 * statistics.median(t.seconds), 1) if t.seconds else 0.0,
            "p95_ms": round(1000 * percentile(t.seconds, 0.95), 1),
        }

    summary: dict[str, Any] = {
        "drafts": len(items),
        "compliant_drafts": compliant,
        "sets": [p.name for p in paths],
        "doc_type_accuracy": round(type_ok / n, 4),
        "label_or_advert_accuracy": round(coarse_ok / n, 4),
        "citations_resolved_share": round(citations_real / max(citations_total, 1), 4),
        "rule_references": len(refs),
        "unresolved_references": unresolved,
        **{name: config_summary(t) for name, t in tallies.items()},
    }
    _write_report(report_path or REPORTS_DIR / ("review-holdout.md" if holdout else "review.md"), summary, tallies, items, type_wrong, holdout)
    assistant.close()
    return summary


def _write_report(
    path: Path,
    summary: dict[str, Any],
    tallies: dict[str, Tally],
    items: list[dict[str, Any]],
    type_wrong: list[str],
    holdout: bool,
) -> None:
    names = list(tallies)
    rules_only, full = (summary[n] for n in names)
    lengths = sorted(len(i["draft"]) for i in items)

    def row(label: str, key: str, target: str, fmt: str = "{}") -> str:
        def cell(value: Any) -> str:
            return "—" if value is None else fmt.format(value)

        return f"| {label} | {cell(rules_only[key])} | {cell(full[key])} | {target} |"

    family_rows = [
        f"| {family} | {tallies[names[0]].must[family]} | {rules_only['recall_by_family'][family]:.3f} | "
        f"{full['recall_by_family'][family]:.3f} |"
        for family in rules_only["recall_by_family"]
    ]
    origin = (
        "drafts written blind by helpers who never saw the rules, the classifier's training data or its outputs "
        f"({', '.join(f'`{s}`' for s in summary['sets'])})"
        if holdout
        else "`evals/golden/review.jsonl` (labels, adverts and other promotional text written together with the rules, "
        "so these figures show consistency, not generalization)"
    )
    lines = [
        "# Draft review evaluation" + (" — blind drafts" if holdout else ""),
        "",
        f"Generated by `python -m assistant eval review{' --holdout' if holdout else ''}` on {date.today()} over "
        f"{summary['drafts']} drafts ({summary['compliant_drafts']} fully compliant; {lengths[0]}–{lengths[-1]} characters), "
        f"{origin}. Each draft is reviewed as its user declared it (`declared`: a type, or 自动判断); document type is "
        "measured separately with 自动判断."
        + (
            " A blind set counts once: its one measurement is recorded in `evals/golden/README.md`; a re-run after "
            "that, as this may be, includes changes made since and is a dev figure."
            if holdout
            else ""
        ),
        "",
        f"| metric | {names[0]} | {names[1]} | target |",
        "|---|---|---|---|",
        row("must-flag recall", "must_flag_recall", "≥ 0.90", "{:.3f}"),
        row("recall of hard phrases (no textbook trigger word)", "hard_recall", "—", "{:.3f}"),
        row("findings on fully compliant drafts", "findings_on_compliant_drafts", "≤ 1 per 20 drafts"),
        row("compliant drafts with any finding", "compliant_drafts_flagged", "0"),
        row("must-not-flag phrases flagged", "must_not_flag_flagged", "0"),
        row("missing-statement accuracy (exact set per draft)", "missing_statement_accuracy", "≥ 0.95", "{:.3f}"),
        row("malformed numbers caught", "format_errors_caught", "—"),
        row("latency per draft p50 (ms)", "p50_ms", "—"),
        row("latency per draft p95 (ms)", "p95_ms", "≤ 1000 at 400 characters"),
        "",
        f"Document type detected (自动判断; label, 说明书 and advert told apart): **{summary['doc_type_accuracy']:.3f}** "
        f"(target ≥ 0.95); label/说明书 versus advert: {summary['label_or_advert_accuracy']:.3f}. Findings' citations that "
        f"are real indexed text: {summary['citations_resolved_share']:.3f}; rule references resolving to an indexed "
        f"clause: {summary['rule_references'] - len(summary['unresolved_references'])}/{summary['rule_references']}.",
        "",
        "## Must-flag recall by category",
        "",
        f"| category | phrases | {names[0]} | {names[1]} |",
        "|---|---|---|---|",
        *family_rows,
        "",
        "Phrases found, by the layer that found them (rules + classifier): "
        + ", ".join(f"{layer} {count}" for layer, count in sorted(tallies[names[1]].by_layer.items())),
        "",
        "## Must-flag phrases missed (rules + classifier)",
        "",
        *(tallies[names[1]].misses or ["(none)"]),
        "",
        "## False flags (rules + classifier)",
        "",
        *(tallies[names[1]].false_flags or ["(none)"]),
        "",
        "## Drafts with a wrong set of missing statements (rules + classifier)",
        "",
        *(tallies[names[1]].missing_wrong or ["(none)"]),
        "",
        "## Document type read wrongly (自动判断)",
        "",
        *(type_wrong or ["(none)"]),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
