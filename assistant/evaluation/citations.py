"""The cross-reference graph checked against a hand-annotated sample of penalty articles
(`evals/golden/penalty_edges.jsonl`): precision and recall of their `penalty` edges, by article
(and, stricter, by article + 款 + 项), on the evaluation index of the bundled corpus."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from assistant.chunking import LegalChunker
from assistant.citegraph import CitationGraph
from assistant.evaluation.golden import GOLDEN_DIR, REPORTS_DIR
from assistant.extraction import prepare_document
from assistant.loaders import discover
from assistant.lookup import ArticleIndex
from assistant.numerals import article_number
from assistant.settings import PROJECT_ROOT, Settings
from assistant.types import Chunk, DocumentMeta

PENALTY_GOLDEN = GOLDEN_DIR / "penalty_edges.jsonl"


def _ratio(num: int, den: int) -> float:
    return round(num / den, 3) if den else 1.0


def _graph(settings: Settings, extra: list[Path]) -> tuple[CitationGraph, ArticleIndex, dict[str, str]]:
    """The graph of the bundled corpus (plus `extra` files) through the ingest pipeline's own
    load → normalize → chunk → references stages; the embedding stage does not change it."""
    chunker = LegalChunker(settings.chunk_max_chars, settings.chunk_min_chars)
    files, _ = discover([settings.corpus_dir, *extra])
    chunks: list[Chunk] = []
    documents: dict[str, DocumentMeta] = {}
    by_file: dict[str, str] = {}
    for path in files:
        doc, doc_chunks = prepare_document(path, settings, chunker)
        chunks += doc_chunks
        documents[doc.meta.doc_id] = doc.meta
        by_file[path.name] = doc.meta.doc_id
    articles = ArticleIndex(chunks, documents)
    return CitationGraph(chunks, articles), articles, by_file


def run(
    settings: Settings,
    golden_path: Path | None = None,
    report_path: Path | None = None,
    extra_documents: list[Path] | None = None,
) -> dict[str, Any]:
    graph, articles, by_file = _graph(settings, extra_documents or [])
    gold_path = golden_path or PENALTY_GOLDEN
    gold_items = [
        json.loads(line) for line in gold_path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]

    def doc_of(law: str, file: str = "") -> str:
        return by_file.get(file, "") if file else articles.resolve_law(law)[0]

    def title_of(law: str, file: str = "") -> str:
        doc_id = doc_of(law, file)
        return articles.documents[doc_id].title if doc_id else law

    counts = {"article": [0, 0, 0], "clause": [0, 0, 0]}  # true positives, predicted, gold
    misses: list[str] = []
    extras: list[str] = []
    by_law: dict[str, list[int]] = {}
    missing_articles = []
    for item in gold_items:
        file = item.get("file", "")
        doc_id = doc_of(item.get("title", ""), file)
        number = article_number(item["article"]) or 0
        if not doc_id or not articles.article(doc_id, number):
            missing_articles.append(f"{item['title']}{item['article']}")
            continue
        edges = [e for e in graph.edges_from(doc_id, number) if e.kind == "penalty"]
        title = articles.documents[doc_id].title

        predicted = {(e.target_title or title_of(e.law), e.target_article) for e in edges}
        gold = {
            (
                (title if r["law"] in ("same", title) else title_of(r["law"])),
                article_number(r["article"]),
            )
            for r in item["penalty_refs"]
        }
        predicted_clauses = {
            (e.target_title or title_of(e.law), e.target_article, e.paragraph, e.item) for e in edges
        }
        gold_clauses = {
            (
                (title if r["law"] in ("same", title) else title_of(r["law"])),
                article_number(r["article"]),
                r.get("paragraph"),
                r.get("item"),
            )
            for r in item["penalty_refs"]
        }
        for key, pred, want in (("article", predicted, gold), ("clause", predicted_clauses, gold_clauses)):
            counts[key][0] += len(pred & want)
            counts[key][1] += len(pred)
            counts[key][2] += len(want)
        law = by_law.setdefault(title, [0, 0, 0, 0])
        law[0] += 1
        law[1] += len(predicted & gold)
        law[2] += len(predicted)
        law[3] += len(gold)
        source = f"{title}{item['article']}"
        misses += [f"{source} → {t}第{a}条" for t, a in sorted(gold - predicted, key=str)]
        extras += [f"{source} → {t}第{a}条" for t, a in sorted(predicted - gold, key=str)]

    summary: dict[str, Any] = {
        "articles": len(gold_items) - len(missing_articles),
        "gold_penalty_edges": counts["article"][2],
        "precision": _ratio(counts["article"][0], counts["article"][1]),
        "recall": _ratio(counts["article"][0], counts["article"][2]),
        "clause_precision": _ratio(counts["clause"][0], counts["clause"][1]),
        "clause_recall": _ratio(counts["clause"][0], counts["clause"][2]),
        "golden": str(gold_path.resolve().relative_to(PROJECT_ROOT))
        if gold_path.resolve().is_relative_to(PROJECT_ROOT)
        else str(gold_path),
        "graph_edges": len(graph.edges),
        "graph_edges_by_kind": {
            k: sum(1 for e in graph.edges if e.kind == k) for k in ("penalty", "applies", "refers")
        },
        "unresolved_edges": sum(1 for e in graph.edges if not e.resolved),
        "articles_not_found": missing_articles,
        "missed": misses,
        "extra": extras,
    }
    _write_report(report_path or REPORTS_DIR / "citations.md", summary, by_law)
    return summary


def _write_report(path: Path, s: dict[str, Any], by_law: dict[str, list[int]]) -> None:
    lines = [
        "# Cross-reference graph: penalty edges against a hand-checked sample",
        "",
        f"Run {date.today().isoformat()} by `python -m assistant eval citations`: the graph of the bundled corpus",
        "(plus any `--documents`) built by the ingest pipeline's load → normalize → chunk → references stages.",
        f"Gold: `{s['golden']}`, penalty articles annotated by hand by a helper who read only the law texts;",
        "which runs of which set were blind is recorded in `evals/golden/README.md`.",
        "An edge counts when its citing article, cited document and cited article match; the clause",
        "figures also require the same 款 and 项.",
        "",
        "| | value |",
        "|---|---|",
        f"| articles checked | {s['articles']} |",
        f"| gold penalty edges | {s['gold_penalty_edges']} |",
        f"| precision (article) | {s['precision']:.3f} |",
        f"| recall (article) | {s['recall']:.3f} |",
        f"| precision (article + 款 + 项) | {s['clause_precision']:.3f} |",
        f"| recall (article + 款 + 项) | {s['clause_recall']:.3f} |",
        f"| edges in the whole graph | {s['graph_edges']} ({s['graph_edges_by_kind']}) |",
        f"| unresolved edges (law not indexed) | {s['unresolved_edges']} |",
        "",
        "| law | articles | correct | predicted | gold |",
        "|---|---|---|---|---|",
        *(f"| {law} | {a} | {c} | {p} | {g} |" for law, (a, c, p, g) in by_law.items()),
        "",
        "## Missed penalty edges",
        "",
        *([f"- {m}" for m in s["missed"]] or ["(none)"]),
        "",
        "## Penalty edges not in the gold",
        "",
        *([f"- {m}" for m in s["extra"]] or ["(none)"]),
        "",
    ]
    if s["articles_not_found"]:
        lines += [
            "## Gold articles not found in the index",
            "",
            *(f"- {m}" for m in s["articles_not_found"]),
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
