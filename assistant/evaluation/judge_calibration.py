"""`python -m assistant eval calibrate-judge`: fit the trained judge's decisions on questions it
was never trained on — the training data's `dev` split (one passage group in ten: answerable
questions and near misses about the bundled corpus, and one measured golden question in ten) plus
the retrieval golden set's test split — and write
them to `calibration.json` beside the judge's weights.

- `rerank_prior`: the weight of the feature reranker's order next to the judge's probability,
  chosen for MRR@5 of the passage holding the evidence;
- `gate`: the highest answer threshold whose false-refusal rate on the answerable questions stays
  within `max_false_refusal` (`fitted_gate`), raised to the hand-set `gate_floor` if below it; the
  near misses' refusal rate at that threshold is reported."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import date
from typing import Any

from assistant.engine import Assistant
from assistant.evaluation.golden import GOLDEN_DIR, contains_evidence
from assistant.evaluation.retrieval import eval_settings
from assistant.judge import Calibration
from assistant.normalize import match_key, one_line_query
from assistant.retrieve import HybridSearcher
from assistant.settings import Settings
from assistant.training.judge_data import dev_questions, golden_dev_questions

PRIORS = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0, 1.5, 2.0, 3.0, 100.0)  # 100: the feature order alone


def _rank(probs: list[float], prior: float) -> list[int]:
    span = max(len(probs) - 1, 1)
    scores = [p + prior * (1 - i / span) for i, p in enumerate(probs)]
    return sorted(range(len(probs)), key=lambda i: (-round(scores[i], 9), i))


def calibrate_judge(settings: Settings, max_false_refusal: float = 0.03) -> dict[str, Any]:
    judged = Assistant(eval_settings(settings))
    judge = judged.judge
    if judge is None:
        raise RuntimeError("calibrate-judge needs the judge on (ASSISTANT_JUDGE=true)")
    judged.ingest()
    # Candidates in the feature reranker's order, as the judge receives them.
    plain = HybridSearcher(judged.settings, judged.embeddings, judged.store)
    corpus = settings.corpus_dir.resolve()
    bundled = [r.meta.doc_id for r in judged.documents() if str(corpus) in r.meta.source_path]
    items = dev_questions(bundled) + golden_dev_questions()
    golden_test = [
        json.loads(line) for line in (GOLDEN_DIR / "retrieval.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    items += [r for r in golden_test if r.get("split") == "test" and r.get("type") == "question"]
    depth, k = settings.judge_depth, settings.answer_k
    rows = []
    for item in items:
        q = one_line_query(item["question"])
        chunks = [h.chunk for h in plain.search(q, k=depth)]
        probs = judge.passages(q, chunks)
        keys = [k for k in (match_key(e) for e in item.get("evidence", [])) if k]
        hits = [bool(keys) and contains_evidence(c.text, keys) for c in chunks]
        rows.append((item["type"] == "question", probs, hits))

    def mrr(prior: float) -> float:
        total = 0.0
        answerable = [r for r in rows if r[0]]
        for _, probs, hits in answerable:
            order = _rank(probs, prior)[:5]
            total += next((1 / (i + 1) for i, j in enumerate(order) if hits[j]), 0.0)
        return total / max(len(answerable), 1)

    scores = {prior: mrr(prior) for prior in PRIORS}
    prior = max(PRIORS, key=lambda p: (round(scores[p], 4), -p))
    best = [(a, max((probs[j] for j in _rank(probs, prior)[:k]), default=0.0)) for a, probs, _ in rows]
    in_scope = sorted(b for a, b in best if a)
    out_scope = [b for a, b in best if not a]
    allowed = int(max_false_refusal * len(in_scope))
    fitted = round(in_scope[allowed] - 1e-4, 4) if in_scope else 0.5
    previous = Calibration.load(judge.path)
    gate = max(fitted, previous.gate_floor)
    calibration = replace(previous, gate=gate, rerank_prior=prior)
    result = {
        **asdict(calibration),
        "fitted_gate": fitted,
        "calibrated_on": str(date.today()),
        "answerable_questions": len(in_scope),
        "near_misses": len(out_scope),
        "mrr_at_5_by_prior": {str(p): round(v, 4) for p, v in scores.items()},
        "dev_false_refusal": round(sum(b < gate for b in in_scope) / max(len(in_scope), 1), 4),
        "dev_near_miss_refused": round(sum(b < gate for b in out_scope) / max(len(out_scope), 1), 4),
    }
    (judge.path / "calibration.json").write_text(
        json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    judged.close()
    return result
