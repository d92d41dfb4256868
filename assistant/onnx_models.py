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

# Bump when the export recipe changes: every cached copy is then made again.
RECIPE = "ort-bert-fused-qint8-v1"


def model_hash(folder: Path) -> str:
    digest = hashlib.sha256(RECIPE.encode())
    for name in ("config.json", "model.safetensors"):
        with open(folder / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def quantized_cross_encoder(folder: Path, cache_dir: Path) -> Path:
    """The int8 ONNX file of the cross-encoder in `folder`, made on first use."""
    target = cache_dir / f"{folder.name}-{model_hash(folder)}.onnx"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.warning("首次使用：正在把 %s 转换为量化 ONNX 模型（约 15 秒，只做一次）……", folder.name)
    export_quantized(folder, target)
    return target


def export_quantized(folder: Path, target: Path) -> None:
    """Export the sequence classifier in `folder` (fp16 or fp32 weights) to a fused int8 ONNX file."""
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        plain, fused, quantized = (Path(work) / n for n in ("plain.onnx", "fused.onnx", "int8.onnx"))
        _export(folder, plain)
        _fuse(folder, plain, fused)
        _quantize(fused, quantized)
        os.replace(quantized, target)  # atomic: a concurrent reader sees the whole file or none


def _export(folder: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    # Eager attention exports as plain MatMul/Softmax, which the optimizer below fuses.
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, local_files_only=True, dtype=torch.float32, attn_implementation="eager"
    )
    model.float().eval()
    sample = tokenizer([("问题", "一段文字")], return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    with torch.inference_mode():
        torch.onnx.export(
            model,
            tuple(sample[n] for n in names),
            str(out),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "logits": {0: "batch"}},
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


def _quantize(fused: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Fused operators hide some tensor types from shape inference; they are all float.
    quantize_dynamic(
        str(fused), str(out), weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT}
    )


class OnnxClassifier:
    """Logits of a quantized sequence classifier, one input per run: dynamic quantization scales
    activations per run, so batching inputs together would make one input's logits depend on its
    neighbours; one input per run is also free of padding."""

    def __init__(self, model_file: Path, tokenizer_folder: Path, max_length: int, threads: int = 0) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.tokenizer: Any = AutoTokenizer.from_pretrained(tokenizer_folder, local_files_only=True)
        self.max_length = max_length
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def run(self, first: str, second: str | None = None) -> np.ndarray:
        encoded = self.tokenizer(first, second, truncation=True, max_length=self.max_length, return_tensors="np")
        feed = {name: encoded[name].astype(np.int64) for name in self.inputs}
        return np.asarray(self.session.run(None, feed)[0]).reshape(-1)


class OnnxCrossEncoder(OnnxClassifier):
    """The relevance score of (question, text) pairs from a cross-encoder folder's int8 copy."""

    def __init__(self, folder: Path, cache_dir: Path, max_length: int, threads: int = 0) -> None:
        super().__init__(quantized_cross_encoder(folder, cache_dir), folder, max_length, threads)

    def logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        return np.array([float(self.run(question, text)[0]) for question, text in pairs], dtype=np.float64)
