"""`python -m assistant train review`: fine-tune the draft-review claim classifier from m3e-small
on the helper-written sentences in `evals/training/review/raw/`, with sentence-transformers'
CrossEncoderTrainer (one sentence and an empty second text per input, a class per rule id of
`rules.yaml` plus "compliant"), and commit it as an int8 ONNX file with its tokenizer where the
assistant loads it (`assistant/models/review`)."""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.review.classifier import BUNDLED_REVIEW_MODEL, COMPLIANT, MAX_TOKENS, MODEL_FILE
from assistant.review.engine import load_rules
from assistant.settings import PROJECT_ROOT
from assistant.training.publish import export_classifier, fit_classifier, publish_classifier, split_of

REVIEW_DATA = PROJECT_ROOT / "evals" / "training" / "review" / "raw"
SEED = 20261203
DEV_SHARE = 10  # one sentence in DEV_SHARE, chosen by a hash of its text, is held out of training
TARGET_FALSE_FLAGS = (
    0.02  # share of held-out compliant sentences (look-alikes, by design) the threshold may flag
)
COMPOSITE_SHARE = 0.5  # composite sentences added to training, per training sentence


@dataclass(frozen=True)
class Sentence:
    text: str
    label: str
    hard: bool
    split: str  # train | dev


@dataclass(frozen=True)
class TrainReport:
    output: Path
    sentences: int
    seconds: float
    dev_metrics: dict[str, float]


def class_labels() -> list[str]:
    return [COMPLIANT, *(rule["id"] for rule in load_rules()["rules"])]


def load_sentences(folder: Path = REVIEW_DATA) -> list[Sentence]:
    """Every labelled sentence once (first occurrence wins), with its fixed train/dev split."""
    labels = set(class_labels())
    seen: set[str] = set()
    out: list[Sentence] = []
    for path in sorted(folder.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            text, label = str(row["text"]).strip(), str(row["label"])
            if label not in labels:
                raise ValueError(f"{path.name}:{number}: 未知标签 {label}")
            if text in seen:
                continue
            seen.add(text)
            out.append(Sentence(text, label, bool(row.get("hard")), split_of(text, DEV_SHARE)))
    return out


def composites(rows: list[Sentence], seed: int, share: float = COMPOSITE_SHARE) -> list[Sentence]:
    """Training sentences joined to a compliant one by a comma, in either order, keeping the label of
    the first: a claim inside a long, otherwise harmless sentence is still a claim, and two harmless
    clauses stay harmless. Drawn from the training split only, seeded."""
    rng = random.Random(seed)
    compliant = [r for r in rows if r.label == COMPLIANT]
    out: list[Sentence] = []
    for row in rng.sample(rows, int(share * len(rows))):
        other = rng.choice(compliant).text.rstrip("。！!；;，,")
        text = row.text.rstrip("。！!；;，,")
        joined = f"{text}，{other}" if rng.random() < 0.5 else f"{other}，{text}"
        out.append(Sentence(joined + "。", row.label, row.hard, "train"))
    return out


def fit_threshold(
    violation: np.ndarray, is_violation: np.ndarray, target: float = TARGET_FALSE_FLAGS
) -> float:
    """The lowest P(violation) threshold that flags at most `target` of the compliant sentences."""
    compliant = np.sort(violation[~is_violation])[::-1]
    allowed = int(target * len(compliant))
    if len(compliant) == 0:
        return 0.5
    return float(min(0.99, max(0.5, compliant[allowed] + 1e-6)))


def train_review(
    data: Path = REVIEW_DATA,
    output: Path = BUNDLED_REVIEW_MODEL,
    base_model: str = "m3e-small",
    epochs: float = 6.0,
    batch_size: int = 32,
    learning_rate: float = 6e-5,
    seed: int = SEED,
) -> TrainReport:
    """Train, measure on the dev split, export int8 ONNX with a fitted threshold to `output`."""
    from assistant.review.classifier import ClaimClassifier

    started = time.monotonic()
    labels = class_labels()
    index = {label: i for i, label in enumerate(labels)}
    rows = load_sentences(data)
    train_rows = [r for r in rows if r.split == "train"]
    dev_rows = [r for r in rows if r.split == "dev"]
    train_rows += composites(train_rows, seed)
    random.Random(seed).shuffle(train_rows)

    work = output.parent / f".{output.name}-work"
    # One sentence and an empty second text per input.
    model = fit_classifier(
        base_model,
        labels,
        ([r.text for r in train_rows], [""] * len(train_rows)),
        [index[r.label] for r in train_rows],
        MAX_TOKENS,
        work,
        epochs,
        batch_size,
        learning_rate,
        seed,
    )
    staged = export_classifier(model, work, MODEL_FILE, labels)

    # Measured with the runtime the assistant uses (the int8 file), so the threshold fits what runs.
    classifier = ClaimClassifier(staged)
    predictions = [classifier.predict(r.text) for r in dev_rows]
    violation = np.array([p.violation for p in predictions])
    is_violation = np.array([r.label != COMPLIANT for r in dev_rows])
    threshold = fit_threshold(violation, is_violation)
    flagged = violation >= threshold
    hard = np.array([r.hard for r in dev_rows])
    metrics = {
        "dev_sentences": float(len(dev_rows)),
        "dev_accuracy": float(
            np.mean([p.label == r.label for p, r in zip(predictions, dev_rows, strict=True)])
        ),
        "dev_violation_recall": float(flagged[is_violation].mean()) if is_violation.any() else 0.0,
        "dev_hard_violation_recall": float(flagged[is_violation & hard].mean())
        if (is_violation & hard).any()
        else 0.0,
        "dev_compliant_flagged": float(flagged[~is_violation].mean()) if (~is_violation).any() else 0.0,
        "threshold": threshold,
    }
    publish_classifier(
        staged,
        output,
        threshold,
        f"# 文稿审查分类模型 (the review claim classifier)\n\nA sequence classifier fine-tuned from `{base_model}` "
        "by `python -m assistant train review` on `evals/training/review/raw/*.jsonl` (see "
        "`evals/training/SOURCES.md`), one class per rule id of `assistant/review/rules.yaml` plus "
        '"compliant"; committed as an int8 ONNX file (`model.onnx`, onnxruntime dynamic quantization). '
        "`calibration.json` holds the violation threshold fitted on the held-out tenth of the sentences. "
        "Derived from m3e-small unless another base was given: **non-commercial licence** (the M3E model card).\n",
        {
            "base_model": base_model,
            "sentences": len(train_rows),
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
