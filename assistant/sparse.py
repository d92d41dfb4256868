"""BM25 keyword index over jieba tokens (bm25s), persisted next to the Chroma data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from assistant.tokenize import tokens
from assistant.types import Chunk


class SparseIndex:
    def __init__(self, retriever: object, chunk_ids: list[str]) -> None:
        self._retriever = retriever
        self.chunk_ids = chunk_ids
        self._position = {cid: i for i, cid in enumerate(chunk_ids)}

    @classmethod
    def build(cls, chunks: list[Chunk]) -> SparseIndex:
        import bm25s

        retriever = bm25s.BM25()
        # Title and heading words help "广告法里关于代言人的规定" find the right document and section.
        corpus = [tokens(f"{c.title} {c.heading_path} {c.article}\n{c.text}") or ["∅"] for c in chunks]
        if corpus:
            retriever.index(corpus, show_progress=False)
        return cls(retriever, [c.chunk_id for c in chunks])

    def save(self, folder: Path) -> None:
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self._retriever.save(str(tmp))  # type: ignore[attr-defined]
        (tmp / "chunk_ids.json").write_text(json.dumps(self.chunk_ids), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)  # readers never see a half-written index

    @classmethod
    def load(cls, folder: Path) -> SparseIndex:
        import bm25s

        chunk_ids = json.loads((folder / "chunk_ids.json").read_text(encoding="utf-8"))
        return cls(bm25s.BM25.load(str(folder)), chunk_ids)

    def search(self, query: str, k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """Top-k (chunk id, BM25 score) with a positive score; `allowed` restricts to those chunk ids."""
        if not self.chunk_ids:
            return []
        query_tokens = tokens(query)
        if not query_tokens:
            return []
        mask = None
        if allowed is not None:
            mask = np.zeros(len(self.chunk_ids), dtype=np.float32)
            for cid in allowed:
                if cid in self._position:
                    mask[self._position[cid]] = 1.0
        k = min(k, len(self.chunk_ids))
        docs, scores = self._retriever.retrieve(  # type: ignore[attr-defined]
            [query_tokens], k=k, show_progress=False, weight_mask=mask, n_threads=1
        )
        return [(self.chunk_ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]
