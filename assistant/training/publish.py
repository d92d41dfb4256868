"""What the trainers share: training arguments, length-bucketed batches, and writing a trained
model where the assistant loads it (weights, a short README and the training record, staged beside
the target and swapped in only when complete; no checkpoints, no optimizer state)."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any


def training_arguments(
    work: Path, epochs: float, batch_size: int, learning_rate: float, seed: int
) -> dict[str, Any]:
    """Seeded, CPU only, no checkpoints or evaluation during training."""
    return {
        "output_dir": str(work),
        "num_train_epochs": epochs,
        "per_device_train_batch_size": batch_size,
        "learning_rate": learning_rate,
        "warmup_steps": 0.1,
        "weight_decay": 0.01,
        "seed": seed,
        "data_seed": seed,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "dataloader_num_workers": 0,
        "disable_tqdm": False,
    }


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def split_of(text: str, dev_share: int) -> str:
    """ "dev" for one text in `dev_share`, chosen by a hash of the text (stable across runs and data order)."""
    return "dev" if int(hashlib.sha256(text.encode()).hexdigest(), 16) % dev_share == 0 else "train"


def export_classifier(model: Any, work: Path, model_file: str, labels: list[str]) -> Path:
    """A trained CrossEncoder classifier as the folder the assistant loads: the fused int8 ONNX file,
    its tokenizer and labels (fp32 weights only in a scratch folder). Returns that folder."""
    from assistant.onnx_models import export_quantized

    plain = work / "plain"
    model.save_pretrained(str(plain))
    staged = work / "onnx"
    staged.mkdir(parents=True, exist_ok=True)
    export_quantized(plain, staged / model_file)
    for name in TOKENIZER_FILES:
        if (plain / name).is_file():
            shutil.copy2(plain / name, staged / name)
    (staged / "labels.json").write_text(json.dumps(labels, ensure_ascii=False, indent=1), encoding="utf-8")
    return staged


def fit_classifier(
    base_model: str,
    labels: list[str],
    pairs: tuple[list[str], list[str]],
    targets: list[int],
    max_length: int,
    work: Path,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    seed: int,
    logging_steps: int = 50,
) -> Any:
    """A CrossEncoder classifier fine-tuned from `base_model` on (first, second) text pairs with
    cross-entropy over `labels`: seeded, CPU only, length-bucketed batches."""
    import torch
    from datasets import Dataset
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import CrossEntropyLoss
    from transformers import set_seed

    from assistant.embeddings import resolve_model_path

    set_seed(seed)
    torch.manual_seed(seed)
    model = CrossEncoder(
        str(resolve_model_path(base_model)),
        num_labels=len(labels),
        max_length=max_length,
        device="cpu",
        local_files_only=True,
    )
    model.model.config.id2label = dict(enumerate(labels))
    model.model.config.label2id = {label: i for i, label in enumerate(labels)}
    dataset = Dataset.from_dict({"first": pairs[0], "second": pairs[1], "label": targets})
    args = CrossEncoderTrainingArguments(
        **training_arguments(work / "trainer", epochs, batch_size, learning_rate, seed),
        logging_steps=logging_steps,
        batch_sampler=length_bucket_sampler(),
    )
    CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=CrossEntropyLoss(model)).train()
    return model


def publish_model(
    save: Callable[[Path], object], output: Path, readme: str, training: dict[str, Any]
) -> None:
    staging = output.parent / f".{output.name}-new"
    shutil.rmtree(staging, ignore_errors=True)
    save(staging)
    # sentence-transformers' generated model card is replaced by what a reader of this folder needs.
    (staging / "README.md").write_text(readme, encoding="utf-8")
    (staging / "training.json").write_text(
        json.dumps(training, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    shutil.rmtree(output, ignore_errors=True)
    staging.rename(output)


def length_bucketed_batches(
    lengths: list[int], batch_size: int, seed: int, epoch: int = 0
) -> list[list[int]]:
    """Batches of inputs of similar length in a seeded random order: a sentence padded to a
    window's length would cost as much as the window (training time is mostly padding otherwise)."""
    rng = random.Random(seed + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 64
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        group = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    rng.shuffle(batches)
    return batches


def length_bucket_sampler() -> type:
    from sentence_transformers.base.sampler import DefaultBatchSampler

    class LengthBucketBatchSampler(DefaultBatchSampler):
        def __init__(self, dataset: Any, batch_size: int, drop_last: bool, *args: Any, **kwargs: Any) -> None:
            super().__init__(dataset, batch_size, drop_last, *args, **kwargs)
            texts = [dataset[name] for name in dataset.column_names if name != "label"]
            self.lengths = [sum(len(t) for t in row) for row in zip(*texts, strict=True)]
            self.epoch = 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __iter__(self) -> Any:
            yield from length_bucketed_batches(self.lengths, self.batch_size, self.seed, self.epoch)

        def __len__(self) -> int:
            return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    return LengthBucketBatchSampler


def publish_classifier(
    staged: Path, output: Path, threshold: float, readme: str, training: dict[str, Any]
) -> None:
    """An exported classifier (`export_classifier`) with its fitted threshold, published to `output`."""
    (staged / "calibration.json").write_text(
        json.dumps({"threshold": round(threshold, 4)}, indent=2), encoding="utf-8"
    )
    publish_model(partial(shutil.copytree, staged), output, readme, training)
