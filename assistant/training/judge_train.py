"""`python -m assistant train judge`: fine-tune the relevance judge (a cross-encoder) from m3e-small
on the committed pairs in `evals/training/judge/pairs.jsonl.gz`, with sentence-transformers' own
CrossEncoderTrainer, and save it in fp16 where the assistant loads it (`assistant/models/judge`)."""

from __future__ import annotations

import gzip
import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.embeddings import resolve_model_path
from assistant.judge import BUNDLED_JUDGE, MAX_TOKENS
from assistant.training.judge_data import PAIRS_FILE, SEED
from assistant.training.publish import length_bucket_sampler, publish_model, training_arguments


@dataclass(frozen=True)
class TrainReport:
    output: Path
    pairs: int
    seconds: float
    dev_metrics: dict[str, float]


def load_pairs(path: Path = PAIRS_FILE) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def train_judge(
    pairs_file: Path = PAIRS_FILE,
    output: Path = BUNDLED_JUDGE,
    base_model: str = "m3e-small",
    epochs: float = 1.0,
    batch_size: int = 16,
    learning_rate: float = 5e-5,
    limit: int | None = None,
    seed: int = SEED,
    layers: int | None = None,
    distil: bool = False,
) -> TrainReport:
    """Train, evaluate on the pairs' `dev` split, save fp16 weights to `output` (replacing it).
    With `distil`, the targets are a trained judge's logits (`train judge-teacher`) instead of the
    labels: a smaller judge learns to score like the larger one, not only to separate yes from no."""
    import torch
    from datasets import Dataset
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderClassificationEvaluator
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss, MSELoss
    from transformers import set_seed

    started = time.monotonic()
    set_seed(seed)
    torch.manual_seed(seed)
    rows = load_pairs(pairs_file)
    if distil:
        from assistant.training.judge_teacher import load_teacher_logits

        for row, logit in zip(rows, load_teacher_logits(pairs_file), strict=True):
            row["teacher"] = logit
    train_rows = [r for r in rows if r.get("split") != "dev"]
    dev_rows = [r for r in rows if r.get("split") == "dev"]
    random.Random(seed).shuffle(train_rows)
    if limit:
        train_rows, dev_rows = train_rows[:limit], dev_rows[: max(20, limit // 10)]

    model = CrossEncoder(
        str(resolve_model_path(base_model)),
        num_labels=1,
        max_length=MAX_TOKENS,
        device="cpu",
        local_files_only=True,
        # Fewer layers: the base's first `layers` transformer layers, a judge that reads faster.
        config_kwargs={"num_hidden_layers": layers} if layers else None,
    )
    train_ds = Dataset.from_dict(
        {
            "question": [r["question"] for r in train_rows],
            "text": [r["text"] for r in train_rows],
            "label": [float(r["teacher"] if distil else r["label"]) for r in train_rows],
        }
    )
    evaluator = CrossEncoderClassificationEvaluator(
        sentence_pairs=[[r["question"], r["text"]] for r in dev_rows],
        labels=[int(r["label"]) for r in dev_rows],
        name="dev",
        batch_size=32,
        show_progress_bar=False,
    )
    work = output.parent / f".{output.name}-work"
    args = CrossEncoderTrainingArguments(
        **training_arguments(work, epochs, batch_size, learning_rate, seed),
        logging_steps=50,
        batch_sampler=length_bucket_sampler(),
    )
    trainer = CrossEncoderTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        loss=MSELoss(model) if distil else BinaryCrossEntropyLoss(model),
    )
    trainer.train()
    metrics = {k: float(v) for k, v in evaluator(model).items()} if dev_rows else {}

    # Only the weights (fp16), config and tokenizer are kept: no checkpoints, no optimizer state.
    model.model.half()
    publish_model(
        lambda path: model.save_pretrained(str(path)),
        output,
        f"# 相关性判断模型 (the assistant's judge)\n\nA cross-encoder fine-tuned from `{base_model}` by "
        "`python -m assistant train judge` on `evals/training/judge/pairs.jsonl.gz` (see "
        "`evals/training/SOURCES.md`); fp16 weights. Derived from m3e-small unless another base was given: "
        "**non-commercial licence** (the M3E model card). Retrain from a base model you have licensed "
        "for commercial use (README: \"The judge, and how to retrain it\").\n",
        {
            "base_model": base_model,
            "pairs": len(train_rows),
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "seed": seed,
            "max_tokens": MAX_TOKENS,
            "layers": model.model.config.num_hidden_layers,
            "distilled_from_teacher_logits": distil,
            "dev": metrics,
        },
    )
    shutil.rmtree(work, ignore_errors=True)
    return TrainReport(output, len(train_rows), time.monotonic() - started, metrics)
