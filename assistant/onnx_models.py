"""Quantized ONNX copies of the committed models, for faster CPU inference.

The committed weights stay in fp16 safetensors (what sentence-transformers trains and loads). On
first use a model is exported once with torch's ONNX exporter, its attention, GELU and layer norms
are fused by onnxruntime's transformer optimizer, and its weights are quantized to int8 by
onnxruntime's dynamic quantization; the file lands in the model cache keyed by a hash of the
weights, so a retrained model gets a fresh copy and nothing is ever downloaded.

(sentence-transformers' own `backend="onnx"` needs `optimum-onnx`, which pins transformers < 4.58;
the installed transformers is 5.x, hence onnxruntime's tools here.)"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Bump when an export recipe changes: every cached copy is then made again.
RECIPE = "ort-bert-fused-qint8-v1"
ENCODER_RECIPE = "ort-bert-encoder-fused-qint8-perchannel-rr-v1"


def model_hash(folder: Path, recipe: str = RECIPE) -> str:
    digest = hashlib.sha256(recipe.encode())
    weights = next(n for n in ("model.safetensors", "pytorch_model.bin") if (folder / n).is_file())
    for name in ("config.json", weights):
        with open(folder / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def quantized_cross_encoder(folder: Path, cache_dir: Path) -> Path:
    """The int8 ONNX file of the cross-encoder in `folder`, made on first use."""
    return _cached_copy(folder, cache_dir / f"{folder.name}-{model_hash(folder)}.onnx", encoder=False)


def quantized_encoder(folder: Path, cache_dir: Path) -> Path:
    """The int8 ONNX file of the sentence encoder (a BERT body) in `folder`, made on first use."""
    return _cached_copy(folder, cache_dir / f"{folder.name}-encoder-{model_hash(folder, ENCODER_RECIPE)}.onnx", encoder=True)


def _cached_copy(folder: Path, target: Path, encoder: bool) -> Path:
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        log.warning("首次使用：正在把模型 %s 转换为量化 ONNX 模型（约 15 秒，只做一次）……", folder.name)
        export_quantized(folder, target, encoder)
    return target


def export_quantized(folder: Path, target: Path, encoder: bool = False) -> None:
    """Export the sequence classifier in `folder` (fp16 or fp32 weights) — or, with `encoder`, its
    BERT body's token states — to a fused int8 ONNX file."""
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        plain, fused, quantized = (Path(work) / n for n in ("plain.onnx", "fused.onnx", "int8.onnx"))
        _export(folder, plain, encoder)
        _fuse(folder, plain, fused)
        _quantize(fused, quantized, per_channel=encoder)
        os.replace(quantized, target)  # atomic: a concurrent reader sees the whole file or none


def _export(folder: Path, out: Path, encoder: bool = False) -> None:
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    # Eager attention exports as plain MatMul/Softmax, which the optimizer below fuses.
    loader = AutoModel if encoder else AutoModelForSequenceClassification
    loaded = loader.from_pretrained(folder, local_files_only=True, dtype=torch.float32, attn_implementation="eager")

    class ByName(torch.nn.Module):
        """The model called with its inputs by name: the tracer passes them by position, and
        BertModel's positional parameters are not (input_ids, attention_mask, token_type_ids)."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = loaded

        def forward(self, *tensors: Any) -> Any:
            return self.inner(**dict(zip(names, tensors, strict=True)))[0]

    model = ByName()
    model.float().eval()
    sample = tokenizer([("问题", "一段文字")], return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    with torch.inference_mode():
        torch.onnx.export(
            model,
            tuple(sample[n] for n in names),
            str(out),
            input_names=names,
            output_names=["last_hidden_state"] if encoder else ["logits"],
            dynamic_axes={
                **{n: {0: "batch", 1: "tokens"} for n in names},
                **({"last_hidden_state": {0: "batch", 1: "tokens"}} if encoder else {"logits": {0: "batch"}}),
            },
            opset_version=17,
            dynamo=False,
        )


def _fuse(folder: Path, plain: Path, out: Path) -> None:
    import json

    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    optimized = optimize_model(
        str(plain), model_type="bert", num_heads=config["num_attention_heads"], hidden_size=config["hidden_size"]
    )
    optimized.save_model_to_file(str(out))


def _quantize(fused: Path, out: Path, per_channel: bool = False) -> None:
    """int8 weights. The encoder's vectors need per-channel scales with a 7-bit range (mean cosine to
    fp32 0.993 on corpus chunks, against 0.87 per tensor; full-range per-channel int8 overflows the
    CPU's int8 dot products); the judge's decisions were measured with per-tensor scales."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Fused operators hide some tensor types from shape inference; they are all float.
    quantize_dynamic(
        str(fused),
        str(out),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        reduce_range=per_channel,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def fast_tokenizer(folder: Path, max_length: int) -> Any:
    """The folder's tokenizer as a `tokenizers.Tokenizer`, truncating pairs longest-first as
    transformers does (identical ids on the judge's and the encoders' inputs). Loading it directly
    keeps transformers — and the torch it imports, ~2.5 s — out of a process that only runs ONNX."""
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.is_file():  # a folder with only a vocabulary: let transformers build the fast tokenizer
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True).backend_tokenizer
    else:
        tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
    return tokenizer


class OnnxModel:
    """One int8 ONNX file and its tokenizer, run one input at a time: dynamic quantization scales
    activations per run, so batching inputs together would make one input's output depend on its
    neighbours (and pad it). One input uses every core; many run in parallel, one core each, which
    keeps both cores busy on the small inputs these models read."""

    def __init__(self, model_file: Path, tokenizer_folder: Path, max_length: int, threads: int = 0) -> None:
        import onnxruntime as ort

        self.tokenizer = fast_tokenizer(tokenizer_folder, max_length)  # truncates to max_length itself
        self.threads = threads or (os.cpu_count() or 1)

        def session(intra: int) -> Any:
            options = ort.SessionOptions()
            options.intra_op_num_threads = intra
            options.inter_op_num_threads = 1
            return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])

        self.single = session(self.threads)
        self.parallel = session(1) if self.threads > 1 else self.single
        self.inputs = [i.name for i in self.single.get_inputs()]

    def output(self, session: Any, first: str, second: str | None = None) -> np.ndarray:
        encoded = self.tokenizer.encode(first, second)
        arrays = {"input_ids": encoded.ids, "attention_mask": encoded.attention_mask, "token_type_ids": encoded.type_ids}
        feed = {name: np.array([arrays[name]], dtype=np.int64) for name in self.inputs}
        return np.asarray(session.run(None, feed)[0])[0]

    def outputs(self, inputs: list[tuple[str, str | None]]) -> list[np.ndarray]:
        if len(inputs) <= 1 or self.threads == 1:
            return [self.output(self.single, *pair) for pair in inputs]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            return list(pool.map(lambda pair: self.output(self.parallel, *pair), inputs))


class OnnxClassifier(OnnxModel):
    """Logits of a quantized sequence classifier."""

    def run(self, first: str, second: str | None = None) -> np.ndarray:
        return self.output(self.single, first, second).reshape(-1)


class OnnxCrossEncoder(OnnxModel):
    """The relevance score of (question, text) pairs from a cross-encoder folder's int8 copy."""

    def __init__(self, folder: Path, cache_dir: Path, max_length: int, threads: int = 0) -> None:
        super().__init__(quantized_cross_encoder(folder, cache_dir), folder, max_length, threads)

    def logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        out = self.outputs([(question, text) for question, text in pairs])
        return np.array([float(o.reshape(-1)[0]) for o in out], dtype=np.float64)


class OnnxEncoder(OnnxModel):
    """Mean-pooled, L2-normalized sentence vectors from an encoder's int8 copy (every token of a
    lone input is real, so the mean is over all of them, as sentence-transformers' mean pooling)."""

    def __init__(self, folder: Path, cache_dir: Path, max_length: int, threads: int = 0) -> None:
        super().__init__(quantized_encoder(folder, cache_dir), folder, max_length, threads)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = np.stack([states.mean(axis=0) for states in self.outputs([(t, None) for t in texts])])
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
