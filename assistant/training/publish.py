"""Training arguments both trainers share, and writing a trained model where the assistant loads it: weights, a short README and the training
record, staged beside the target and swapped in only when complete (no checkpoints, no optimizer
state)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any


def training_arguments(work: Path, epochs: float, batch_size: int, learning_rate: float, seed: int) -> dict[str, Any]:
    """What both trainers share: seeded, CPU only, no checkpoints or evaluation during training."""
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


def publish_model(save: Callable[[Path], None], output: Path, readme: str, training: dict[str, Any]) -> None:
    staging = output.parent / f".{output.name}-new"
    shutil.rmtree(staging, ignore_errors=True)
    save(staging)
    # sentence-transformers' generated model card is replaced by what a reader of this folder needs.
    (staging / "README.md").write_text(readme, encoding="utf-8")
    (staging / "training.json").write_text(json.dumps(training, ensure_ascii=False, indent=2), encoding="utf-8")
    shutil.rmtree(output, ignore_errors=True)
    staging.rename(output)
