"""Which rule, if any, does this sentence of a draft break? A small sequence classifier trained here
from helper-written sentences (`python -m assistant train review`, data in
`evals/training/review/`), fine-tuned from m3e-small and committed as an int8 ONNX file, so it
loads from local files only and runs on onnxruntime.

It labels one sentence or clause with a rule id of `rules.yaml` or "compliant". The rules stay the
primary, explainable layer; the review engine adds what this finds where no pattern matched."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.onnx_models import OnnxClassifier

BUNDLED_REVIEW_MODEL = Path(__file__).resolve().parents[1] / "models" / "review"
COMPLIANT = "compliant"
MAX_TOKENS = 128  # a draft sentence or clause; longer ones are rare and their start decides
MODEL_FILE = "model.onnx"


class ReviewModelNotFoundError(RuntimeError):
    pass


@dataclass(frozen=True)
class ClaimPrediction:
    label: str  # the most likely rule id, or "compliant"
    violation: float  # 1 − P(compliant)
    probabilities: tuple[float, ...]  # over the classifier's labels


class ClaimClassifier:
    def __init__(self, folder: Path = BUNDLED_REVIEW_MODEL, threads: int = 0) -> None:
        if not (folder / MODEL_FILE).is_file():
            raise ReviewModelNotFoundError(
                f"找不到文稿审查模型：{folder / MODEL_FILE}（用 python -m assistant train review 重新训练）"
            )
        self.labels: list[str] = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
        calibration = folder / "calibration.json"
        settings = json.loads(calibration.read_text(encoding="utf-8")) if calibration.is_file() else {}
        self.threshold = float(settings.get("threshold", 0.5))
        self.compliant = self.labels.index(COMPLIANT)
        self.model = OnnxClassifier(folder / MODEL_FILE, folder, MAX_TOKENS, threads)

    def predict(self, text: str) -> ClaimPrediction:
        logits = self.model.run(text, "")  # trained on (sentence, "") pairs: the same tokens here
        shifted = np.exp(logits - logits.max())
        probs = shifted / shifted.sum()
        return ClaimPrediction(
            self.labels[int(np.argmax(probs))], float(1.0 - probs[self.compliant]), tuple(float(p) for p in probs)
        )

    def flags(self, prediction: ClaimPrediction) -> bool:
        return prediction.violation >= self.threshold

    def likely_rules(self, *predictions: ClaimPrediction) -> list[str]:
        """Rule ids, most likely first, by the summed probabilities of the predictions (a clause and
        the sentence around it: a short clause alone tells badly which rule it breaks)."""
        total = np.sum([p.probabilities for p in predictions], axis=0)
        return [self.labels[i] for i in np.argsort(-total) if i != self.compliant]
