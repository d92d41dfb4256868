"""`python -m assistant train judge-teacher`: a trained judge's logits for every pair, written beside
the pairs file (`evals/training/judge/teacher_logits.json.gz` for the committed pairs), so a smaller
judge can be distilled from them (`train judge --layers 2 --distil`) without the teacher's weights.

The logits come from the judge as the assistant runs it (int8 ONNX), pair by pair as at run time."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from assistant.judge import MAX_TOKENS
from assistant.training.judge_data import PAIRS_FILE
from assistant.training.judge_train import TrainReport, load_pairs


class TeacherLogitsError(RuntimeError):
    """No usable teacher logits for a pairs file (missing, or made for other pairs)."""


def teacher_logits_file(pairs_file: Path = PAIRS_FILE) -> Path:
    return pairs_file.with_name("teacher_logits.json.gz")


def pairs_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_teacher_logits(teacher: Path, cache_dir: Path, pairs_file: Path = PAIRS_FILE) -> TrainReport:
    from tqdm import tqdm

    from assistant.onnx_models import OnnxCrossEncoder

    started = time.monotonic()
    rows = load_pairs(pairs_file)
    runner = OnnxCrossEncoder(teacher, cache_dir, MAX_TOKENS)
    logits: list[float] = []
    step = 64
    for start in tqdm(range(0, len(rows), step), desc="教师模型打分", unit="批"):
        batch = rows[start : start + step]
        logits += [round(float(x), 4) for x in runner.logits([(r["question"], r["text"]) for r in batch])]
    training = json.loads((teacher / "training.json").read_text(encoding="utf-8"))
    record = {
        "pairs_sha256": pairs_digest(pairs_file),
        "teacher": {k: training.get(k) for k in ("base_model", "layers", "pairs", "seed", "dev")},
        "logits": logits,
    }
    output = teacher_logits_file(pairs_file)
    with gzip.open(output, "wt", encoding="utf-8") as f:
        json.dump(record, f, ensure_ascii=False)
    return TrainReport(output, len(rows), time.monotonic() - started, {})


def load_teacher_logits(pairs_file: Path = PAIRS_FILE) -> list[float]:
    """The teacher's logits, one per line of `pairs_file`; refuses logits made for other pairs."""
    path = teacher_logits_file(pairs_file)
    if not path.is_file():
        raise TeacherLogitsError(
            f"找不到教师模型打分 {path}：请先运行 `python -m assistant train judge-teacher`。"
        )
    with gzip.open(path, "rt", encoding="utf-8") as f:
        record: dict[str, Any] = json.load(f)
    if record["pairs_sha256"] != pairs_digest(pairs_file):
        raise TeacherLogitsError(
            f"{path} 是为另一份样本对文件打的分：请重新运行 `python -m assistant train judge-teacher`。"
        )
    return [float(x) for x in record["logits"]]
