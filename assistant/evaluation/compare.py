"""Side-by-side evaluation on a blind set: the system without the judge (feature reranker,
logistic refusal gate, vector sentence choice) and the judged system, on the same index and the
same questions in one run (`python -m assistant eval answers --holdout`).

Per question it measures retrieval (MRR@5 and recall@5 of the passage holding the evidence; the
first stage's recall@5/@20 before any reranking), the answer (refused, evidence in the answer, in
its first quoted sentence, length) and latency; results are split by question style, document
type and tricky / plain out-of-scope. A second set about a document kept out of training is run
on an index of the corpus plus that document."""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from assistant.engine import Assistant
from assistant.evaluation.golden import first_hit_rank, percentile
from assistant.evaluation.retrieval import eval_settings
from assistant.normalize import match_key
from assistant.sentences import split_answer, strip_markers
from assistant.settings import Settings

SYSTEMS = ("before", "judged")


@dataclass
class Outcome:
    item: dict[str, Any]
    system: str
    refused: bool
    evidence: bool
    first_sentence: bool
    chars: int
    ms: float
    rank: int | None  # of the first passage with the evidence, in the top 5
    first_stage: int | None  # the same before reranking, in the top 30


def load_set(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class _Pipelines:
    """Both systems, each on its own index of the same documents: *before* is the system as it was
    before the judge (the base embedding model, feature reranker, logistic gate), *judged* the
    current one (the fine-tuned embedding model when configured, and the judge)."""

    def __init__(self, before: Assistant, judged: Assistant) -> None:
        self.searchers = {"before": before.searcher, "judged": judged.searcher}
        self.answers = {"before": before.answers, "judged": judged.answers}

    def run(self, items: list[dict[str, Any]]) -> list[Outcome]:
        out = []
        for system in SYSTEMS:
            searcher, answers = self.searchers[system], self.answers[system]
            answers.answer("预热问题：保健食品标签")
            for item in items:
                keys = [k for k in (match_key(e) for e in item.get("evidence", [])) if k]
                start = time.perf_counter()
                answer = answers.answer(item["question"])
                ms = (time.perf_counter() - start) * 1000
                rank = first_stage = None
                if keys:
                    rank = first_hit_rank([h.chunk.text for h in searcher.search(item["question"], k=5)], keys)
                    pool = searcher.search(item["question"], k=30, rerank=False)
                    first_stage = first_hit_rank([h.chunk.text for h in pool], keys)
                sentences = [strip_markers(s) for s in split_answer(answer.answer)]
                first = match_key(sentences[0]) if sentences and not answer.refused else ""
                out.append(
                    Outcome(
                        item,
                        system,
                        answer.refused,
                        bool(keys) and not answer.refused and any(k in match_key(answer.answer) for k in keys),
                        bool(keys) and any(k in first for k in keys),
                        len(answer.answer),
                        ms,
                        rank,
                        first_stage,
                    )
                )
        return out


def _share(values: list[bool]) -> str:
    return f"{sum(values) / len(values):.3f}" if values else "—"


def _metrics(outcomes: list[Outcome]) -> dict[str, str]:
    ins = [o for o in outcomes if o.item["type"] == "question"]
    oos = [o for o in outcomes if o.item["type"] == "out_of_scope"]
    correct = [o for o in ins if o.evidence]
    ranks = [o.rank for o in ins]
    return {
        "in-scope": str(len(ins)),
        "evidence in answer": _share([o.evidence for o in ins]),
        "false refusals": _share([o.refused for o in ins]),
        "OOS refused": _share([o.refused for o in oos]),
        "tricky OOS refused": _share([o.refused for o in oos if o.item.get("tricky")]),
        "plain OOS refused": _share([o.refused for o in oos if not o.item.get("tricky")]),
        "evidence in first sentence (of correct)": _share([o.first_sentence for o in correct]),
        "median answer chars (answered)": (
            f"{statistics.median([o.chars for o in ins if not o.refused]):.0f}"
            if any(not o.refused for o in ins)
            else "—"
        ),
        "MRR@5": f"{sum(1 / r for r in ranks if r) / len(ranks):.3f}" if ranks else "—",
        "recall@5": _share([r is not None for r in ranks]),
        "first stage recall@5": _share([o.first_stage is not None and o.first_stage <= 5 for o in ins]),
        "first stage recall@20": _share([o.first_stage is not None and o.first_stage <= 20 for o in ins]),
        "latency p50 / p95 ms": (
            f"{percentile([o.ms for o in outcomes], 0.5):.0f} / {percentile([o.ms for o in outcomes], 0.95):.0f}"
        ),
    }


def _table(title: str, outcomes: list[Outcome], rows: list[str] | None = None) -> list[str]:
    by_system = {s: _metrics([o for o in outcomes if o.system == s]) for s in SYSTEMS}
    names = rows or list(by_system["judged"])
    lines = [f"### {title}", "", "| metric | before | judged |", "|---|---|---|"]
    lines += [f"| {n} | {by_system['before'][n]} | {by_system['judged'][n]} |" for n in names]
    return [*lines, ""]


def _split_tables(title: str, outcomes: list[Outcome], field: str) -> list[str]:
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if o.item["type"] == "question":
            groups[str(o.item.get(field, "?"))].append(o)
    lines = [f"### {title}", "", "| group | n | evidence before → judged | false refusals | MRR@5 | recall@5 |"]
    lines.append("|---|---|---|---|---|---|")
    for name, group in sorted(groups.items()):
        m = {s: _metrics([o for o in group if o.system == s]) for s in SYSTEMS}
        lines.append(
            f"| {name} | {m['judged']['in-scope']} | {m['before']['evidence in answer']} → "
            f"{m['judged']['evidence in answer']} | {m['before']['false refusals']} → "
            f"{m['judged']['false refusals']} | {m['before']['MRR@5']} → {m['judged']['MRR@5']} | "
            f"{m['before']['recall@5']} → {m['judged']['recall@5']} |"
        )
    return [*lines, ""]


BEFORE_EMBEDDING_MODEL = "m3e-small"


def _assistants(index_dir: Path, settings: Settings, shared: dict[str, Assistant] | None = None) -> dict[str, Assistant]:
    """The two systems' assistants, *judged* over `index_dir` and *before* beside it; models are
    shared with `shared` when given."""
    updates = {
        "before": {
            "judge": False,
            "embedding_model": BEFORE_EMBEDDING_MODEL,
            "index_dir": index_dir.with_name(f"{index_dir.name}-before"),
        },
        "judged": {"judge": True, "index_dir": index_dir},
    }
    out = {}
    for system, update in updates.items():
        same = shared[system] if shared else None
        out[system] = Assistant(
            settings.model_copy(update=update),
            same.embeddings if same else None,
            same.judge if same else None,
        )
    return out


def run_compare(
    settings: Settings,
    blind_set: Path,
    report_path: Path,
    heldout_set: Path | None = None,
    heldout_documents: list[Path] | None = None,
) -> dict[str, Any]:
    base = eval_settings(settings)
    systems = _assistants(base.index_dir, base)
    for assistant in systems.values():
        assistant.ingest()
    items = load_set(blind_set)
    outcomes = _Pipelines(systems["before"], systems["judged"]).run(items)
    heldout: list[Outcome] = []
    if heldout_set and heldout_documents:
        others = _assistants(base.index_dir.with_name(f"{base.index_dir.name}-heldout"), base, systems)
        for other in others.values():
            other.ingest([settings.corpus_dir, *heldout_documents])
        heldout = _Pipelines(others["before"], others["judged"]).run(load_set(heldout_set))
        for other in others.values():
            other.close()
    for assistant in systems.values():
        assistant.close()
    judged = systems["judged"].settings

    lines = [
        "# Blind evaluation: before and after the judge",
        "",
        f"Generated by `python -m assistant eval answers --holdout` on {date.today()}: `{blind_set.name}` "
        f"({sum(i['type'] == 'question' for i in items)} in-scope, "
        f"{sum(i['type'] == 'out_of_scope' for i in items)} out-of-scope questions), written blind by helpers "
        "who never saw the training data, the code or the model's outputs, measured once. *before*: the system "
        f"before the judge ({BEFORE_EMBEDDING_MODEL} embeddings, feature reranker, logistic refusal gate, vector "
        f"sentence choice); *judged*: embedding model `{judged.embedding_model}`, and the trained judge reranks the "
        f"best {judged.judge_depth} fused candidates (reading at most {judged.judge_budget or 'any number of'} "
        f"characters; runtime `{judged.judge_backend}`), decides whether to answer and chooses the quoted sentences. "
        "Both keep the scope list and the figure check. Latency with warm models on the 2-core machine.",
        "",
        *_table("All questions", outcomes),
        *_split_tables("By question style (in-scope)", outcomes, "style"),
        *_split_tables("By document type (in-scope)", outcomes, "doc_type"),
    ]
    summary: dict[str, Any] = {s: _metrics([o for o in outcomes if o.system == s]) for s in SYSTEMS}
    if heldout:
        lines += [
            "## The held-out document",
            "",
            f"`{heldout_set.name if heldout_set else ''}`: questions about a document no training data came from, "
            "asked of a temporary index of the corpus plus the held-out documents ("
            + "、".join(p.stem for p in heldout_documents or [])
            + ").",
            "",
            *_table("Held-out document", heldout),
        ]
        summary["heldout"] = {s: _metrics([o for o in heldout if o.system == s]) for s in SYSTEMS}
    lines += ["## Judged system: in-scope questions refused or answered without the evidence", ""]
    lines += [
        f"- `{o.item['id']}` {o.item['question']} — {'refused' if o.refused else 'evidence missing'}"
        for o in outcomes + heldout
        if o.system == "judged" and o.item["type"] == "question" and not o.evidence
    ] or ["(none)"]
    lines += ["", "## Judged system: out-of-scope questions answered", ""]
    lines += [
        f"- `{o.item['id']}` {o.item['question']}{' (tricky)' if o.item.get('tricky') else ''}"
        for o in outcomes + heldout
        if o.system == "judged" and o.item["type"] == "out_of_scope" and not o.refused
    ] or ["(none)"]
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return summary

