"""The fine-tuned embedding model (`m3e-small-regs`): shipped compact, loads offline, finds the
answering passage among others for held-out questions, and `train embedder` runs end to end."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.embeddings import (
    TRAINED_EMBEDDER,
    LocalSentenceEmbeddings,
    ModelNotFoundError,
    resolve_model_path,
)
from assistant.engine import Assistant
from assistant.settings import PROJECT_ROOT, Settings
from assistant.store import IndexMismatchError
from assistant.training.embedder_data import TRIPLETS_FILE

pytestmark = pytest.mark.slow  # loads the models
TWINS = Path(__file__).parent / "data" / "judge_twins.jsonl"


def test_shipped_embedder_is_compact_and_loads_offline_in_fp32() -> None:
    assert resolve_model_path("m3e-small-regs") == TRAINED_EMBEDDER
    weights = sum(p.stat().st_size for p in TRAINED_EMBEDDER.glob("*.safetensors"))
    assert 0 < weights <= 60 * 1024 * 1024
    assert not list(TRAINED_EMBEDDER.glob("checkpoint*")) and not list(TRAINED_EMBEDDER.glob("optimizer*"))
    embeddings = LocalSentenceEmbeddings(Settings(embedding_model="m3e-small-regs", embedding_backend="torch"))
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert embeddings.dimension == 512
    assert next(embeddings.model.parameters()).dtype.is_floating_point
    assert str(next(embeddings.model.parameters()).dtype) == "torch.float32"


PASSAGES = [
    "第七十八条 保健食品的标签、说明书不得涉及疾病预防、治疗功能，内容应当真实，与注册或者备案的内容相一致，"
    "载明适宜人群、不适宜人群、功效成分或者标志性成分及其含量等，并声明“本品不能代替药物”。",
    "第十八条 保健食品广告不得含有下列内容：（一）表示功效、安全性的断言或者保证；（二）涉及疾病预防、治疗功能；",
    "备案用的检验报告多久内有效？",
    "第六十七条 预包装食品的包装上应当有标签。标签应当标明下列事项：（一）名称、规格、净含量、生产日期；" * 3,
]


def test_int8_onnx_and_fp32_torch_vectors_alike_and_the_copy_is_made_once(tmp_path: Path) -> None:
    """The int8 runtime moves vectors a little; its copy lands in the model cache keyed by the weights."""
    settings = Settings(model_cache_dir=tmp_path / "models")
    onnx = LocalSentenceEmbeddings(settings.model_copy(update={"embedding_backend": "onnx"}))
    torch = LocalSentenceEmbeddings(settings.model_copy(update={"embedding_backend": "torch"}))
    a, b = np.asarray(onnx.embed_documents(PASSAGES)), np.asarray(torch.embed_documents(PASSAGES))
    cosine = (a * b).sum(axis=1)
    assert cosine.min() >= 0.98 and cosine.mean() >= 0.985, cosine
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    assert np.allclose(onnx.embed_query(PASSAGES[2]), a[2], atol=1e-5)  # a text's vector never depends on its batch
    copies = list((tmp_path / "models").glob("embedder-encoder-*.onnx"))
    assert len(copies) == 1 and onnx.dimension == torch.dimension == 512


def test_the_onnx_runtime_refuses_a_model_it_cannot_pool_as_trained(tmp_path: Path) -> None:
    """The ONNX copy mean-pools token states; a model that pools otherwise (bge: CLS) is refused."""
    import shutil

    folder = tmp_path / "cls-pooled"
    shutil.copytree(TRAINED_EMBEDDER, folder)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"embedding_dimension": 512, "pooling_mode": "cls"}))
    embeddings = LocalSentenceEmbeddings(Settings(embedding_model=str(folder), model_cache_dir=tmp_path / "models"))
    with pytest.raises(ModelNotFoundError, match="ASSISTANT_EMBEDDING_BACKEND=torch"):
        embeddings.embed_query("保健食品")
    assert not (tmp_path / "models").exists()  # refused before any export


def _top1(model: str, rows: list[dict[str, str]]) -> int:
    embeddings = LocalSentenceEmbeddings(Settings(embedding_model=model))
    passages = np.asarray(embeddings.embed_documents([f"{r['title']} {r['article']}\n{r['passage']}" for r in rows]))
    wins = 0
    for i, row in enumerate(rows):
        scores = passages @ np.asarray(embeddings.embed_query(row["question"]))
        wins += int(np.argmax(scores)) == i
    return wins


def test_held_out_questions_find_their_passage_at_least_as_often_as_with_the_base_model() -> None:
    """Questions written for the judge's tests (not training data): each against all the passages."""
    rows = [json.loads(line) for line in TWINS.read_text(encoding="utf-8").splitlines() if line.strip()]
    tuned, base = _top1("m3e-small-regs", rows), _top1("m3e-small", rows)
    assert tuned >= base, (tuned, base)
    assert tuned >= len(rows) - 2, tuned


def test_an_index_built_by_another_model_is_refused_then_rebuilt_with_all_its_documents(
    tmp_path: Path, embeddings: LocalSentenceEmbeddings
) -> None:
    corpus, uploads = tmp_path / "corpus", tmp_path / "uploads"
    corpus.mkdir()
    uploads.mkdir()
    (corpus / "a.md").write_text("# 测试规定\n\n第一条 保健食品的标签应当真实，不得涉及疾病预防、治疗功能。\n", encoding="utf-8")
    upload = uploads / "b.md"
    upload.write_text("# 上传的文件\n\n第一条 广告不得含有虚假或者引人误解的内容。\n", encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data", corpus_dir=corpus)
    old = Assistant(settings.model_copy(update={"embedding_model": "m3e-small"}))
    assert not old.ingest([corpus, upload]).failed
    old.close()

    current = Assistant(settings, embeddings=embeddings)
    with pytest.raises(IndexMismatchError, match="ingest --rebuild"):
        current.index_is_empty()
    targets = current.rebuild_index()
    assert targets == [corpus, upload]
    assert not current.ingest(targets).failed
    assert len(current.documents()) == 2
    assert current.search("广告虚假内容", k=1)[0].chunk.title == "上传的文件"
    current.close()


def test_an_index_built_by_one_runtime_is_refused_by_the_other(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# 测试规定\n\n第一条 保健食品的标签应当真实。\n", encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data", corpus_dir=corpus)
    built = Assistant(settings.model_copy(update={"embedding_backend": "torch"}))
    assert not built.ingest([corpus]).failed
    built.close()
    other = Assistant(settings.model_copy(update={"embedding_backend": "onnx"}))
    with pytest.raises(IndexMismatchError, match="ingest --rebuild") as refused:
        other.index_is_empty()
    assert "m3e-small-regs@onnx-int8" in str(refused.value)
    other.close()


def test_train_embedder_runs_end_to_end_on_a_tiny_slice(tmp_path: Path) -> None:
    with gzip.open(TRIPLETS_FILE, "rt", encoding="utf-8") as f:
        rows = [json.loads(next(f)) for _ in range(40)]
    tiny = tmp_path / "triplets.jsonl.gz"
    with gzip.open(tiny, "wt", encoding="utf-8") as f:
        for i, row in enumerate(rows):
            f.write(json.dumps({**row, "split": "dev" if i % 5 == 0 else "train"}, ensure_ascii=False) + "\n")
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "train", "embedder", "--triplets", str(tiny), "--output", str(tmp_path / "e")],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.splitlines()[-1])["triplets"] == 32
    trained = LocalSentenceEmbeddings(Settings(embedding_model=str(tmp_path / "e")))
    assert len(trained.embed_query("保健食品标签")) == 512
    assert not list((tmp_path / "e").glob("checkpoint*"))
