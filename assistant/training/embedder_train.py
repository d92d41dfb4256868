"""`python -m assistant train embedder`: fine-tune the embedding model (the first stage's dense
search) from m3e-small on the committed triplets in `evals/training/embedder/triplets.jsonl.gz`, with
sentence-transformers' own trainer and `MultipleNegativesRankingLoss` (in-batch negatives plus one
mined hard negative per question), and save it in fp16 where the assistant loads it
(`assistant/models/embedder`, the embedding model named `m3e-small-regs`)."""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from assistant.embeddings import TRAINED_EMBEDDER, load_sentence_transformer, resolve_model_path
from assistant.training.embedder_data import BASE_MODEL, TRIPLETS_FILE, load_triplets
from assistant.training.judge_data import SEED
from assistant.training.publish import publish_model, training_arguments

MAX_TOKENS = 128  # training length: 2.7× faster than 256 on 2 cores; a chunk's head names its topic


@dataclass(frozen=True)
class TrainReport:
    output: Path
    triplets: int
    seconds: float
    dev_metrics: dict[str, float]


def train_embedder(
    triplets_file: Path = TRIPLETS_FILE,
    output: Path = TRAINED_EMBEDDER,
    base_model: str = BASE_MODEL,
    epochs: float = 1.0,
    batch_size: int = 32,
    learning_rate: float = 3e-5,
    limit: int | None = None,
    seed: int = SEED,
) -> TrainReport:
    """Train, measure recall on the triplets' `dev` split, save fp16 weights to `output` (replacing it)."""
    import torch
    from datasets import Dataset
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import set_seed

    started = time.monotonic()
    set_seed(seed)
    torch.manual_seed(seed)
    rows = load_triplets(triplets_file)
    train_rows = [r for r in rows if r.get("split") != "dev"]
    dev_rows = [r for r in rows if r.get("split") == "dev"]
    random.Random(seed).shuffle(train_rows)
    if limit:
        train_rows, dev_rows = train_rows[:limit], dev_rows[: max(20, limit // 10)]

    model = load_sentence_transformer(resolve_model_path(base_model))
    model.max_seq_length = MAX_TOKENS
    train_ds = Dataset.from_dict(
        {
            "anchor": [r["question"] for r in train_rows],
            "positive": [r["positive"] for r in train_rows],
            "negative": [r["negative"] for r in train_rows],
        }
    )
    work = output.parent / f".{output.name}-work"
    args = SentenceTransformerTrainingArguments(
        **training_arguments(work, epochs, batch_size, learning_rate, seed),
        logging_steps=20,
        batch_sampler=BatchSamplers.NO_DUPLICATES,  # the same passage twice in a batch is a false negative
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        loss=MultipleNegativesRankingLoss(model),
    )
    trainer.train()
    metrics = _dev_recall(model, dev_rows, InformationRetrievalEvaluator) if dev_rows else {}

    # Only the weights (fp16), config, tokenizer and pooling are kept: no checkpoints, no optimizer state.
    model.max_seq_length = 512  # chunks are embedded whole at run time, as with the base model
    model.half()
    publish_model(
        lambda path: model.save(str(path)),
        output,
        f"# 检索嵌入模型 (the assistant's fine-tuned embedding model)\n\nFine-tuned from `{base_model}` by "
        "`python -m assistant train embedder` on `evals/training/embedder/triplets.jsonl.gz` (see "
        "`evals/training/SOURCES.md`); fp16 weights, mean pooling. Derived from m3e-small unless another base "
        "was given: **non-commercial licence** (the M3E model card). Retrain from a base model you have "
        "licensed for commercial use (README: \"The embedding model, and why\").\n",
        {
            "base_model": base_model,
            "triplets": len(train_rows),
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


def _dev_recall(model: object, dev_rows: list[dict[str, str]], evaluator_class: type) -> dict[str, float]:
    """Recall among the dev split's own passages (each question against all dev positives and
    negatives): a quick check that training helped; `eval embedder` measures it on the real index."""
    corpus = {f"p{i}": t for i, t in enumerate(dict.fromkeys([r["positive"] for r in dev_rows] + [r["negative"] for r in dev_rows]))}
    ids = {t: i for i, t in corpus.items()}
    queries = {f"q{i}": r["question"] for i, r in enumerate(dev_rows)}
    relevant = {f"q{i}": {ids[r["positive"]]} for i, r in enumerate(dev_rows)}
    evaluator = evaluator_class(
        queries, corpus, relevant, name="dev", accuracy_at_k=[1, 5], precision_recall_at_k=[5, 20],
        mrr_at_k=[5], ndcg_at_k=[5], map_at_k=[5], show_progress_bar=False,
    )
    return {k: float(v) for k, v in evaluator(model).items()}
