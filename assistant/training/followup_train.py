"""`python -m assistant train followup`: fine-tune the follow-up judge from m3e-small on the
helper-written conversations in `evals/training/followup/raw/` with sentence-transformers'
CrossEncoderTrainer ((earlier questions, new question) pairs, two classes), and commit it as an
int8 ONNX file with its tokenizer and a fitted threshold (`assistant/models/followup`)."""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.answering.followup_judge import (
    BUNDLED_FOLLOWUP_MODEL,
    LABELS,
    MAX_TOKENS,
    MODEL_FILE,
    FollowUpJudge,
    conversation_context,
)
from assistant.settings import PROJECT_ROOT
from assistant.training.publish import export_classifier, fit_classifier, publish_classifier, split_of

FOLLOWUP_DATA = PROJECT_ROOT / "evals" / "training" / "followup" / "raw"
# Conversation sets already measured (the development set and spent blind rounds): every later turn
# becomes an example, labelled by its `continues`.
MEASURED_CONVERSATIONS = [
    PROJECT_ROOT / "evals" / "golden" / name
    # There is no round `kd`.
    for name in (
        "conversations_dev.jsonl",
        *(f"conversations_holdout_k{c}.jsonl" for c in "abcefghijklmnopqrstu"),
    )
]
SEED = 20261203
DEV_SHARE = 10
TARGET_WRONG_MERGES = 0.05  # share of held-out stand-alone questions the threshold may merge


@dataclass(frozen=True)
class Example:
    history: tuple[str, ...]
    question: str
    continues: bool
    standalone: str
    split: str


@dataclass(frozen=True)
class TrainReport:
    output: Path
    examples: int
    seconds: float
    dev_metrics: dict[str, float]


def conversation_rows(path: Path) -> list[dict[str, object]]:
    """The later turns of a conversation set as training rows (history = the earlier questions)."""
    rows: list[dict[str, object]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        turns = json.loads(line)["turns"]
        for n, turn in enumerate(turns[1:], start=1):
            rows.append(
                {
                    "history": [t["question"] for t in turns[:n]],
                    "question": turn["question"],
                    "continues": bool(turn["continues"]),
                    "standalone": turn.get("standalone") or turn["question"],
                }
            )
    return rows


def load_examples(folder: Path = FOLLOWUP_DATA, conversations: list[Path] | None = None) -> list[Example]:
    """Every example once (same history and question: first wins), split by a hash of the question:
    the helper-written rows of `folder`, then the later turns of the measured conversation sets."""
    seen: set[tuple[tuple[str, ...], str]] = set()
    out: list[Example] = []
    sources = [
        (
            path.name,
            [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()],
        )
        for path in sorted(folder.glob("*.jsonl"))
    ]
    sources += [(path.name, conversation_rows(path)) for path in conversations or [] if path.is_file()]
    for name, lines in sources:
        for number, row in enumerate(lines, start=1):
            history = tuple(str(q) for q in row["history"])
            question = str(row["question"]).strip()
            if not history or not question or not isinstance(row["continues"], bool):
                raise ValueError(f"{name}:{number}: 需要 history、question 和布尔值 continues")
            if (history, question) in seen:
                continue
            seen.add((history, question))
            standalone = str(row.get("standalone") or question)
            out.append(
                Example(history, question, row["continues"], standalone, split_of(question, DEV_SHARE))
            )
    return out


def augmented(rows: list[Example], seed: int) -> list[Example]:
    """Two kinds of extra stand-alone examples from the training split: a continuing question's own
    standalone rewrite after the same history (a complete question on the same topic needs nothing
    from it), and a stand-alone question after another example's history (a new topic stays new)."""
    rng = random.Random(seed)
    out = [
        Example(r.history, r.standalone, False, r.standalone, "train")
        for r in rows
        if r.continues and r.standalone != r.question
    ]
    alone = [r for r in rows if not r.continues]
    for r in alone:
        other = rng.choice(rows).history
        out.append(Example(other, r.question, False, r.question, "train"))
    return out


def fit_threshold(p: np.ndarray, continues: np.ndarray, target: float = TARGET_WRONG_MERGES) -> float:
    """The lowest P(continues) threshold that merges at most `target` of the stand-alone questions."""
    alone = np.sort(p[~continues])[::-1]
    if len(alone) == 0:
        return 0.5
    return float(min(0.95, max(0.5, alone[int(target * len(alone))] + 1e-6)))


def train_followup(
    data: Path = FOLLOWUP_DATA,
    output: Path = BUNDLED_FOLLOWUP_MODEL,
    conversations: list[Path] | None = None,
    base_model: str = "m3e-small",
    epochs: float = 4.0,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    seed: int = SEED,
) -> TrainReport:
    """Train, measure on the dev split, export int8 ONNX with a fitted threshold to `output`."""
    started = time.monotonic()
    rows = load_examples(data, conversations)
    train_rows = [r for r in rows if r.split == "train"]
    dev_rows = [r for r in rows if r.split == "dev"]
    train_rows += augmented(train_rows, seed)
    random.Random(seed).shuffle(train_rows)

    work = output.parent / f".{output.name}-work"
    model = fit_classifier(
        base_model,
        LABELS,
        ([conversation_context(list(r.history)) for r in train_rows], [r.question for r in train_rows]),
        [int(r.continues) for r in train_rows],
        MAX_TOKENS,
        work,
        epochs,
        batch_size,
        learning_rate,
        seed,
        logging_steps=20,
    )
    staged = export_classifier(model, work, MODEL_FILE, LABELS)

    # Measured with the runtime the assistant uses (the int8 file), so the threshold fits what runs.
    judge = FollowUpJudge(staged)
    p = np.array([judge.probability(r.question, list(r.history)) for r in dev_rows])
    continues = np.array([r.continues for r in dev_rows])
    threshold = fit_threshold(p, continues)
    merged = p >= threshold
    metrics = {
        "dev_examples": float(len(dev_rows)),
        "dev_accuracy": float(np.mean(merged == continues)),
        "dev_continuations_kept": float(merged[continues].mean()) if continues.any() else 0.0,
        "dev_wrong_merges": float(merged[~continues].mean()) if (~continues).any() else 0.0,
        "threshold": threshold,
    }
    publish_classifier(
        staged,
        output,
        threshold,
        f"# 追问判断模型 (the follow-up judge)\n\nA pair classifier fine-tuned from `{base_model}` by "
        "`python -m assistant train followup` on `evals/training/followup/raw/*.jsonl` (see "
        "`evals/training/SOURCES.md`): given the conversation's last questions and a new one, does the new "
        "one continue the conversation? Committed as an int8 ONNX file (`model.onnx`); `calibration.json` "
        "holds the threshold fitted on the held-out tenth (at most 5 % of stand-alone questions merged). "
        "Derived from m3e-small unless another base was given: **non-commercial licence** (the M3E model card).\n",
        {
            "base_model": base_model,
            "examples": len(train_rows),
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "seed": seed,
            "max_tokens": MAX_TOKENS,
            "dev": metrics,
        },
    )
    shutil.rmtree(work, ignore_errors=True)
    return TrainReport(output, len(train_rows), time.monotonic() - started, metrics)
