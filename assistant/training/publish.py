"""Writing a trained model where the assistant loads it: weights, a short README and the training
record, staged beside the target and swapped in only when complete (no checkpoints, no optimizer
state)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any


def publish_model(save: Callable[[Path], None], output: Path, readme: str, training: dict[str, Any]) -> None:
    staging = output.parent / f".{output.name}-new"
    shutil.rmtree(staging, ignore_errors=True)
    save(staging)
    # sentence-transformers' generated model card is replaced by what a reader of this folder needs.
    (staging / "README.md").write_text(readme, encoding="utf-8")
    (staging / "training.json").write_text(json.dumps(training, ensure_ascii=False, indent=2), encoding="utf-8")
    shutil.rmtree(output, ignore_errors=True)
    staging.rename(output)
