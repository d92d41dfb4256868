"""Do the hand-written refusal rules still help next to the judge? (an evaluation, not a test)

Runs the judged system on the dev questions four times: as shipped, without the scope list
(`answering/scope.yaml`: subjects the library does not cover), without the figure check (a question
asking for an amount, period or count needs a quoted clause stating one), and without both. The two
rules are switched off here by replacing their functions for the run; the product has no switch
for them. Writes evals/reports/judge-ablation.md.
Run: .venv/bin/python evals/ablate_rules.py [--set evals/golden/answers_dev.jsonl]
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from pathlib import Path
from typing import Any
from unittest import mock

from assistant.answering import chain, relevance
from assistant.engine import Assistant
from assistant.evaluation.compare import load_set
from assistant.evaluation.retrieval import eval_settings
from assistant.normalize import match_key
from assistant.settings import PROJECT_ROOT, Settings

REPORT = Path(__file__).parent / "reports" / "judge-ablation.md"
VARIANTS = {
    "as shipped": (False, False),
    "no scope list": (True, False),
    "no figure check": (False, True),
    "neither": (True, True),
}


def run(assistant: Assistant, items: list[dict[str, Any]]) -> dict[str, float]:
    ins = [i for i in items if i["type"] == "question"]
    oos = [i for i in items if i["type"] == "out_of_scope"]
    refused: dict[str, bool] = {}
    evidence = 0
    for item in items:
        answer = assistant.answers.answer(item["question"])
        refused[item["id"]] = answer.refused
        keys = [k for k in (match_key(e) for e in item.get("evidence", [])) if k]
        evidence += bool(keys) and not answer.refused and any(k in match_key(answer.answer) for k in keys)

    def share(group: list[dict[str, Any]]) -> float:
        return sum(refused[i["id"]] for i in group) / max(len(group), 1)

    return {
        "evidence in answer": evidence / len(ins),
        "false refusals": share(ins),
        "OOS refused": share(oos),
        "tricky OOS refused": share([i for i in oos if i.get("tricky")]),
        "plain OOS refused": share([i for i in oos if not i.get("tricky")]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", type=Path, default=PROJECT_ROOT / "evals" / "golden" / "answers_dev.jsonl")
    args = parser.parse_args()
    items = load_set(args.set)
    assistant = Assistant(eval_settings(Settings()).model_copy(update={"judge": True}))
    assistant.ingest()
    results = {}
    for name, (no_scope, no_figure) in VARIANTS.items():
        with (
            mock.patch.object(relevance, "_scope_refusal", lambda q, t: None) if no_scope else nullcontext(),
            mock.patch.object(chain, "lacks_asked_quantity", lambda q, s: False) if no_figure else nullcontext(),
        ):
            results[name] = run(assistant, items)
        print(name, results[name], flush=True)
    assistant.close()
    metrics = list(next(iter(results.values())))
    lines = [
        "# Do the scope list and the figure check still help next to the judge?",
        "",
        f"The judged system on `{args.set.name}` ({sum(i['type'] == 'question' for i in items)} in-scope, "
        f"{sum(i['type'] == 'out_of_scope' for i in items)} out-of-scope questions; a dev set, not blind), "
        "with each rule switched off for the run. Made by `evals/ablate_rules.py`.",
        "",
        "| metric | " + " | ".join(results) + " |",
        "|---|" + "---|" * len(results),
        *(f"| {m} | " + " | ".join(f"{r[m]:.3f}" for r in results.values()) + " |" for m in metrics),
        "",
    ]
    REPORT.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
