"""Does this text answer this question? One small cross-encoder, trained here from helper-written
data (`python -m assistant train judge`, data in `evals/training/`), fine-tuned from m3e-small and
loaded from local files only.

It reads a question and a short text — a window of a passage (a few sentences, at most
`WINDOW_CHARS`) or one sentence, each headed by its source (《title》第X条) — and returns the
probability that the text answers the question. A passage scores as its best window, so a long
article is never truncated away from the clause that answers. Retrieval uses `passages` to
rerank, the answer chain uses it to decide whether to answer, and the extractive generator uses
`sentences` to choose what to quote."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from assistant.embeddings import prepare_torch  # its import also sets the offline flags
from assistant.onnx_models import OnnxCrossEncoder
from assistant.sentences import split_sentences
from assistant.settings import MODEL_CACHE
from assistant.types import Chunk

BUNDLED_JUDGE = Path(__file__).resolve().parent / "models" / "judge"
WINDOW_CHARS = 220  # the longest window of a passage the judge reads at once
TITLE_CHARS = 24  # long titles are cut: their start names the document well enough
MAX_TOKENS = 320  # question + source head + window, in BERT (character) tokens


class JudgeNotFoundError(RuntimeError):
    pass


@dataclass(frozen=True)
class Calibration:
    """Decisions fitted for one trained judge (`eval calibrate-judge` writes them beside the weights)."""

    gate: float = 0.5  # answer when the best retrieved passage scores at least this
    rerank_prior: float = 0.3  # weight of the feature reranker's order next to the judge's probability
    # A further source is quoted only when its best sentence scores at least this; a further sentence
    # of a source when it scores at least `extra_sentence` of the source's best. Chosen on the spent
    # conversation sets and the dev questions (evals/reports/answer-breadth.md).
    second_source: float = 0.25
    extra_sentence: float = 0.6
    # The least gate calibration may fit: set by hand where the dev split's false-refusal rule leaves
    # plain everyday questions answered (the bundled judge: evals/reports/judge-lay3-retrain.md).
    gate_floor: float = 0.0

    @classmethod
    def load(cls, folder: Path) -> Calibration:
        path = folder / "calibration.json"
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{k: float(v) for k, v in data.items() if k in cls.__dataclass_fields__})


def source_head(title: str, article: str) -> str:
    """What the judge reads before a text: which document and article it comes from."""
    article = "" if article == "题注" else article
    return f"《{title[:TITLE_CHARS]}》{article}："


def windows(text: str, limit: int = WINDOW_CHARS) -> list[str]:
    """Consecutive sentences of `text` grouped into windows of at most `limit` characters (a single
    longer sentence is its own window); the whole text when it is short."""
    if len(text) <= limit:
        return [text]
    out: list[str] = []
    current = ""
    for sentence in split_sentences(text, min_chars=1):
        if current and len(current) + len(sentence.text) > limit:
            out.append(current)
            current = ""
        current += sentence.text
    if current:
        out.append(current)
    return out or [text[:limit]]


def passage_inputs(title: str, article: str, text: str) -> list[str]:
    head = source_head(title, article)
    return [head + w for w in windows(text)]


def sentence_input(title: str, article: str, sentence: str) -> str:
    return source_head(title, article) + sentence


def resolve_judge_path(path: Path | None) -> Path:
    folder = path or BUNDLED_JUDGE
    if not (folder / "config.json").is_file():
        raise JudgeNotFoundError(
            f"找不到相关性判断模型 {folder}：请用 `python -m assistant train judge` 训练，"
            "或把 ASSISTANT_JUDGE_PATH 指向一个 CrossEncoder 模型目录。"
        )
    return folder


class TorchCrossEncoder:
    """Logits of the cross-encoder in plain PyTorch (fp32; the weights are stored in fp16)."""

    def __init__(self, folder: Path, batch_size: int, threads: int = 0) -> None:
        import torch
        from sentence_transformers import CrossEncoder

        prepare_torch(threads)
        self.batch_size = batch_size
        self.model = CrossEncoder(
            str(folder),
            device="cpu",
            max_length=MAX_TOKENS,
            local_files_only=True,
            model_kwargs={"dtype": torch.float32},
        )
        self.model.model.float()
        self.model.model.eval()

    def logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model.predict(
                pairs,
                batch_size=self.batch_size,
                show_progress_bar=False,
                activation_fn=torch.nn.Identity(),
                convert_to_numpy=True,
            )
        return np.asarray(out, dtype=np.float64).reshape(-1)


class Judge:
    """The trained cross-encoder behind `score(question, texts) -> probabilities`, run by int8
    ONNX Runtime (`backend="onnx"`, a copy made once in `cache_dir`) or by PyTorch."""

    def __init__(
        self,
        path: Path | None = None,
        backend: Literal["onnx", "torch"] = "onnx",
        cache_dir: Path | None = None,
        batch_size: int = 16,
        threads: int = 0,
    ) -> None:
        self.path = resolve_judge_path(path)
        self.calibration = Calibration.load(self.path)
        self.backend = backend
        self.cache_dir = cache_dir or MODEL_CACHE
        self.batch_size = batch_size
        self._threads = threads
        self._runner: TorchCrossEncoder | OnnxCrossEncoder | None = None
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], float] = {}

    @property
    def runner(self) -> TorchCrossEncoder | OnnxCrossEncoder:
        with self._lock:
            if self._runner is None:
                if self.backend == "onnx":
                    self._runner = OnnxCrossEncoder(self.path, self.cache_dir, MAX_TOKENS, self._threads)
                else:
                    self._runner = TorchCrossEncoder(self.path, self.batch_size, self._threads)
            return self._runner

    def score(self, question: str, texts: list[str]) -> list[float]:
        """P(text answers question) for each text. Pairs run in a fixed order (torch batches pairs
        of similar length, ONNX runs them one by one), scores are rounded (torch's batch padding
        moves logits by ~1e-7) and cached per pair, so a score does not depend on what was asked before."""
        if not texts:
            return []
        with self._lock:
            known = {t: self._cache[(question, t)] for t in texts if (question, t) in self._cache}
        todo = sorted({t for t in texts if t not in known}, key=lambda t: (len(t), t))
        if todo:
            logits = self.runner.logits([(question, t) for t in todo])
            probabilities = 1.0 / (1.0 + np.exp(-logits))
            fresh = {t: round(float(p), 5) for t, p in zip(todo, probabilities, strict=True)}
            with self._lock:
                if len(self._cache) > 50000:
                    self._cache.clear()
                for t, p in fresh.items():
                    self._cache[(question, t)] = p
            known.update(fresh)
        return [known[t] for t in texts]

    def passages(self, question: str, chunks: list[Chunk]) -> list[float]:
        """Each chunk's score: the best of its windows."""
        inputs = [passage_inputs(c.title, c.article, c.text) for c in chunks]
        flat = self.score(question, [x for group in inputs for x in group])
        out, i = [], 0
        for group in inputs:
            out.append(max(flat[i : i + len(group)]))
            i += len(group)
        return out

    def windows(self, question: str, chunk: Chunk) -> list[tuple[str, float]]:
        """The chunk's windows (without their source head) and each one's score."""
        parts = windows(chunk.text)
        head = source_head(chunk.title, chunk.article)
        return list(zip(parts, self.score(question, [head + w for w in parts]), strict=True))

    def sentences(self, question: str, chunk: Chunk, sentences: list[str]) -> list[float]:
        return self.score(question, [sentence_input(chunk.title, chunk.article, s) for s in sentences])
