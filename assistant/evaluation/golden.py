"""Golden sets (evals/golden/*.jsonl) and the shared hit test."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from assistant.normalize import match_key
from assistant.settings import PROJECT_ROOT

GOLDEN_DIR = PROJECT_ROOT / "evals" / "golden"
REPORTS_DIR = PROJECT_ROOT / "evals" / "reports"


@dataclass(frozen=True)
class GoldenQuestion:
    id: str
    type: str  # question | lookup | out_of_scope
    text: str
    doc: str = ""  # file stem of the answering document
    article: str = ""
    evidence: tuple[str, ...] = ()
    split: str = "train"
    exists: bool = True
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    def evidence_keys(self) -> list[str]:
        return [k for k in (match_key(e) for e in self.evidence) if k]


# What a set may say about a question's kind, kept for the reports' breakdowns.
_KINDS = ("style", "voice", "tricky")


def load_retrieval_golden(path: Path | None = None) -> list[GoldenQuestion]:
    path = path or GOLDEN_DIR / "retrieval.jsonl"
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        items.append(
            GoldenQuestion(
                id=row["id"],
                type=row["type"],
                text=row.get("question") or row.get("query") or "",
                doc=row.get("doc", ""),
                article=row.get("article", ""),
                evidence=tuple(row.get("evidence", [])),
                split=row.get("split", "train"),
                exists=bool(row.get("exists", True)),
                extra={k: row[k] for k in _KINDS if k in row},
            )
        )
    return items


def percentile(values: list[float], q: float) -> float:
    """The q-quantile by rank (nearest rank from below), 0.0 for no values: what every report's p50/p95 uses."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def contains_evidence(text: str, evidence_keys: list[str]) -> bool:
    """A retrieved passage is a hit if its normalized text contains any evidence string."""
    key = match_key(text)
    return any(e in key for e in evidence_keys)


def first_hit_rank(texts: list[str], evidence_keys: list[str]) -> int | None:
    for rank, text in enumerate(texts, start=1):
        if contains_evidence(text, evidence_keys):
            return rank
    return None
