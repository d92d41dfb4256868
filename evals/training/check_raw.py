"""Checks a helper's raw training file: `python evals/training/check_raw.py FILE.jsonl [DUMPS_DIR]`.

Every line must parse and name a document that exists in `texts/` or in DUMPS_DIR (plain-text
dumps of the bundled corpus's chunks, `<doc_id>.txt`), and every answer must be a verbatim
substring of that document (whitespace ignored). Prints each problem and a summary."""

import json
import re
import sys
import unicodedata
from pathlib import Path

STYLES = {"lay", "formal", "long", "officer"}


def squash(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def main(path: str, dumps: str | None = None) -> int:
    folders = [Path(__file__).parent / "texts"] + ([Path(dumps)] if dumps else [])
    docs = {p.name: squash(p.read_text(encoding="utf-8")) for d in folders if d.exists() for p in d.iterdir()}
    problems: list[str] = []
    counts = {"questions": 0, "near-misses": 0, "distractors": 0}
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {i}: not JSON: {exc}")
            continue
        doc = docs.get(rec.get("doc", ""))
        if doc is None:
            problems.append(f"line {i}: unknown doc {rec.get('doc')!r}")
            continue
        article = rec.get("article", "")
        if article and squash(article) not in doc:
            problems.append(f"line {i}: article {article} not in {rec['doc']}")
        for q in rec.get("questions", []):
            counts["questions"] += 1
            answer = squash(q.get("answer", ""))
            if q.get("style") not in STYLES:
                problems.append(f"line {i}: style {q.get('style')!r}")
            if len(answer) < 4 or answer not in doc:
                problems.append(f"line {i}: answer not verbatim: {q.get('answer')!r}")
            if not q.get("q"):
                problems.append(f"line {i}: empty question")
        for n in rec.get("near_misses", []):
            counts["near-misses"] += 1
            if not n.get("q"):
                problems.append(f"line {i}: empty near miss")
        for d in rec.get("distractors", []):
            counts["distractors"] += 1
            target = docs.get(d.get("doc") or rec["doc"])
            if target is None or squash(d.get("article", "?")) not in target:
                problems.append(f"line {i}: distractor {d} not found")
    print("\n".join(problems))
    print(f"{len(problems)} problems; " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
