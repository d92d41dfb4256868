"""`python -m assistant train review`: fine-tune the draft-review claim classifier from m3e-small
on the helper-written sentences in `evals/training/review/raw/`, with sentence-transformers'
CrossEncoderTrainer (one sentence and an empty second text per input, a class per rule id of
`rules.yaml` plus "compliant"), and commit it as an int8 ONNX file with its tokenizer where the
assistant loads it (`assistant/models/review`)."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.embeddings import resolve_model_path
from assistant.review.classifier import BUNDLED_REVIEW_MODEL, COMPLIANT, MAX_TOKENS, MODEL_FILE
from assistant.review.engine import load_rules
from assistant.settings import PROJECT_ROOT
from assistant.training.publish import length_bucket_sampler, publish_model, training_arguments

REVIEW_DATA = PROJECT_ROOT / "evals" / "training" / "review" / "raw"
SEED = 20261203
DEV_SHARE = 10  # one sentence in DEV_SHARE, chosen by a hash of its text, is held out of training
TARGET_FALSE_FLAGS = 0.02  # share of held-out compliant sentences (look-alikes, by design) the threshold may flag
COMPOSITE_SHARE = 0.5  # composite sentences added to training, per training sentence
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


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


def split_of(text: str) -> str:
    return "dev" if int(hashlib.sha256(text.encode()).hexdigest(), 16) % DEV_SHARE == 0 else "train"


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
            out.append(Sentence(text, label, bool(row.get("hard")), split_of(text)))
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


def fit_threshold(violation: np.ndarray, is_violation: np.ndarray, target: float = TARGET_FALSE_FLAGS) -> float:
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
    import torch
    from datasets import Dataset
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import CrossEntropyLoss
    from transformers import set_seed

    from assistant.onnx_models import export_quantized
    from assistant.review.classifier import ClaimClassifier

    started = time.monotonic()
    set_seed(seed)
    torch.manual_seed(seed)
    labels = class_labels()
    index = {label: i for i, label in enumerate(labels)}
    rows = load_sentences(data)
    train_rows = [r for r in rows if r.split == "train"]
    dev_rows = [r for r in rows if r.split == "dev"]
    train_rows += composites(train_rows, seed)
    random.Random(seed).shuffle(train_rows)

    model = CrossEncoder(
        str(resolve_model_path(base_model)),
        num_labels=len(labels),
        max_length=MAX_TOKENS,
        device="cpu",
        local_files_only=True,
    )
    model.model.config.id2label = dict(enumerate(labels))
    model.model.config.label2id = index
    train_ds = Dataset.from_dict(
        {
            "text": [r.text for r in train_rows],
            "context": [""] * len(train_rows),
            "label": [index[r.label] for r in train_rows],
        }
    )
    work = output.parent / f".{output.name}-work"
    args = CrossEncoderTrainingArguments(
        **training_arguments(work / "trainer", epochs, batch_size, learning_rate, seed),
        logging_steps=50,
        batch_sampler=length_bucket_sampler(),
    )
    CrossEncoderTrainer(model=model, args=args, train_dataset=train_ds, loss=CrossEntropyLoss(model)).train()

    # Export: fp32 weights to a scratch folder, then the fused int8 ONNX file is all that is kept.
    plain = work / "plain"
    model.save_pretrained(str(plain))
    staged = work / "onnx"
    staged.mkdir(parents=True, exist_ok=True)
    export_quantized(plain, staged / MODEL_FILE)
    for name in TOKENIZER_FILES:
        if (plain / name).is_file():
            shutil.copy2(plain / name, staged / name)
    (staged / "labels.json").write_text(json.dumps(labels, ensure_ascii=False, indent=1), encoding="utf-8")

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
        "dev_accuracy": float(np.mean([p.label == r.label for p, r in zip(predictions, dev_rows, strict=True)])),
        "dev_violation_recall": float(flagged[is_violation].mean()) if is_violation.any() else 0.0,
        "dev_hard_violation_recall": float(flagged[is_violation & hard].mean()) if (is_violation & hard).any() else 0.0,
        "dev_compliant_flagged": float(flagged[~is_violation].mean()) if (~is_violation).any() else 0.0,
        "threshold": threshold,
    }
    (staged / "calibration.json").write_text(json.dumps({"threshold": round(threshold, 4)}, indent=2), encoding="utf-8")

    def save(path: Path) -> None:
        shutil.copytree(staged, path)

    publish_model(
        save,
        output,
        f"# 文稿审查分类模型 (the review claim classifier)\n\nA sequence classifier fine-tuned from `{base_model}` "
        "by `python -m assistant train review` on `evals/training/review/raw/*.jsonl` (see "
        "`evals/training/SOURCES.md`), one class per rule id of `assistant/review/rules.yaml` plus "
        "\"compliant\"; committed as an int8 ONNX file (`model.onnx`, onnxruntime dynamic quantization). "
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


