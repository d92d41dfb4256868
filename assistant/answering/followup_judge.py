"""Does a new question continue the conversation, or stand on its own? A small pair classifier
trained here (`python -m assistant train followup`, data in `evals/training/followup/`), fine-tuned
from m3e-small and committed as an int8 ONNX file: it reads the earlier questions and the new one
and judges by meaning — ellipsis ("经营者呢"), "如果已经发了…", a question about a party mentioned
earlier continue; a new topic does not, even when it starts with 那 or 另外 or shares a word."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from assistant.onnx_models import OnnxClassifier

BUNDLED_FOLLOWUP_MODEL = Path(__file__).resolve().parents[1] / "models" / "followup"
LABELS = ["stands_alone", "continues"]
MAX_TOKENS = 160
MODEL_FILE = "model.onnx"
CONTEXT_TURNS = 2  # the earlier questions the judge reads, most recent last


class FollowUpModelNotFoundError(RuntimeError):
    pass


def conversation_context(questions: list[str]) -> str:
    """What the judge reads of the conversation so far: its last questions, joined."""
    return "；".join(q.strip() for q in questions[-CONTEXT_TURNS:] if q.strip())


class FollowUpJudge:
    def __init__(self, folder: Path = BUNDLED_FOLLOWUP_MODEL, threads: int = 0) -> None:
        if not (folder / MODEL_FILE).is_file():
            raise FollowUpModelNotFoundError(
                f"找不到追问判断模型：{folder / MODEL_FILE}（用 python -m assistant train followup 重新训练）"
            )
        calibration = folder / "calibration.json"
        settings = json.loads(calibration.read_text(encoding="utf-8")) if calibration.is_file() else {}
        self.threshold = float(settings.get("threshold", 0.5))
        self.model = OnnxClassifier(folder / MODEL_FILE, folder, MAX_TOKENS, threads)

    def probability(self, question: str, earlier_questions: list[str]) -> float:
        """P(the question needs the conversation so far to be understood)."""
        context = conversation_context(earlier_questions)
        if not context:
            return 0.0
        logits = self.model.run(context, question)
        shifted = np.exp(logits - logits.max())
        return float(shifted[1] / shifted.sum())

    def continues(self, question: str, earlier_questions: list[str]) -> bool:
        return self.probability(question, earlier_questions) >= self.threshold
