"""Persistence: the Chroma collection (dense vectors + chunk text) and the document registry (SQLite).

Consistency protocol (a document's chunks are all visible or none are):
1. the registry records the document as `pending` together with the chunk ids it is about to write
   and the ids of its previous version (write-ahead);
2. old chunks are deleted and new ones upserted into Chroma;
3. the registry flips the document to `committed`.
Readers only trust chunks of committed documents. On open, a `pending`/`deleting` document whose
writer is gone (its process is dead on this host, or its record is stale) is rolled back: all its
recorded chunk ids are deleted and the record removed, so the next ingest simply adds it again. A
document another live process is still writing is left alone.

The registry lives in SQLite next to the Chroma data in embedded mode, and in a small registry
collection on the Chroma server in http mode, so every app instance sharing the server sees it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.settings import ChromaMode, Settings
from assistant.sqlite_db import SqliteDB
from assistant.types import Chunk, DocumentMeta

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    state TEXT NOT NULL,              -- pending | committed | deleting
    meta TEXT NOT NULL,               -- DocumentMeta as JSON
    chunk_ids TEXT NOT NULL,          -- JSON list of this version's chunk ids
    old_chunk_ids TEXT NOT NULL,      -- JSON list of the previous version's ids (while pending)
    chunk_count INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    writer TEXT NOT NULL DEFAULT ''   -- host:pid of the process writing it (while pending)
);
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class IndexMismatchError(RuntimeError):
    pass


@dataclass(frozen=True)
class DocumentRecord:
    meta: DocumentMeta
    state: str
    chunk_ids: list[str]
    chunk_count: int


@dataclass(frozen=True)
class Unfinished:
    doc_id: str
    chunk_ids: list[str]  # every id this write may have touched (new and previous version)
    writer: str
    updated_at: float


WRITER = f"{socket.gethostname()}:{os.getpid()}"
STALE_AFTER_S = 1800.0  # a pending write not touched for this long is taken as abandoned


def writer_is_gone(writer: str, updated_at: float, now: float | None = None) -> bool:
    """True when the process that began a write can no longer finish it."""
    host, _, pid = writer.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return (now or time.time()) - updated_at > STALE_AFTER_S


class Registry:
    """The list of indexed documents and their write state. Subclasses store it."""

    def get_info(self, key: str) -> str | None:
        raise NotImplementedError

    def set_info(self, key: str, value: str) -> None:
        raise NotImplementedError

    def generation(self) -> str:
        """Changes on every committed change; readers use it to know when side indexes are stale."""
        return self.get_info("generation") or "0"

    def documents(self, state: str | None = "committed") -> list[DocumentRecord]:
        raise NotImplementedError

    def get(self, doc_id: str) -> DocumentRecord | None:
        raise NotImplementedError

    def find_by_hash(self, content_hash: str) -> DocumentRecord | None:
        return next((r for r in self.documents() if r.meta.content_hash == content_hash), None)

    def begin_write(self, meta: DocumentMeta, new_ids: list[str], old_ids: list[str]) -> None:
        raise NotImplementedError

    def commit_write(self, doc_id: str) -> None:
        raise NotImplementedError

    def set_meta(self, meta: DocumentMeta) -> None:
        """Replace a committed document's metadata (the same chunks, e.g. its file found elsewhere)."""
        raise NotImplementedError

    def begin_delete(self, doc_id: str) -> None:
        raise NotImplementedError

    def finish_delete(self, doc_id: str) -> None:
        raise NotImplementedError

    def unfinished(self) -> list[Unfinished]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SqliteRegistry(SqliteDB, Registry):
    """Registry in SQLite (WAL, fully synchronous) next to the Chroma data — embedded mode."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA, synchronous="FULL")
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(documents)")}
        if "writer" not in columns:  # registries written before writers were recorded
            self._conn.execute("ALTER TABLE documents ADD COLUMN writer TEXT NOT NULL DEFAULT ''")

    def get_info(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM info WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_info(self, key: str, value: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO info(key, value) VALUES (?, ?)", (key, value))

    def _bump(self, c: sqlite3.Connection) -> None:
        c.execute("INSERT OR REPLACE INTO info(key, value) VALUES ('generation', ?)", (uuid.uuid4().hex,))

    def _record(self, row: sqlite3.Row | tuple[Any, ...]) -> DocumentRecord:
        meta, state, chunk_ids, count = row
        return DocumentRecord(
            DocumentMeta.from_metadata(json.loads(meta)), state, json.loads(chunk_ids), count
        )

    def documents(self, state: str | None = "committed") -> list[DocumentRecord]:
        sql = "SELECT meta, state, chunk_ids, chunk_count FROM documents"
        args: tuple[str, ...] = ()
        if state:
            sql += " WHERE state=?"
            args = (state,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY doc_id", args).fetchall()
        return [self._record(r) for r in rows]

    def get(self, doc_id: str) -> DocumentRecord | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT meta, state, chunk_ids, chunk_count FROM documents WHERE doc_id=?", (doc_id,)
            ).fetchone()
        return None if row is None else self._record(row)

    def find_by_hash(self, content_hash: str) -> DocumentRecord | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT meta, state, chunk_ids, chunk_count FROM documents WHERE content_hash=? AND state='committed'",
                (content_hash,),
            ).fetchone()
        return None if row is None else self._record(row)

    def begin_write(self, meta: DocumentMeta, new_ids: list[str], old_ids: list[str]) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO documents(doc_id, content_hash, state, meta, chunk_ids, old_chunk_ids, "
                "chunk_count, updated_at, writer) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
                (
                    meta.doc_id,
                    meta.content_hash,
                    json.dumps(meta.to_metadata(), ensure_ascii=False),
                    json.dumps(new_ids),
                    json.dumps(old_ids),
                    len(new_ids),
                    time.time(),
                    WRITER,
                ),
            )

    def commit_write(self, doc_id: str) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE documents SET state='committed', old_chunk_ids='[]', writer='', updated_at=? WHERE doc_id=?",
                (time.time(), doc_id),
            )
            self._bump(c)

    def set_meta(self, meta: DocumentMeta) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE documents SET meta=?, updated_at=? WHERE doc_id=?",
                (json.dumps(meta.to_metadata(), ensure_ascii=False), time.time(), meta.doc_id),
            )
            self._bump(c)

    def begin_delete(self, doc_id: str) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE documents SET state='deleting', writer=?, updated_at=? WHERE doc_id=?",
                (WRITER, time.time(), doc_id),
            )

    def finish_delete(self, doc_id: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
            self._bump(c)

    def unfinished(self) -> list[Unfinished]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT doc_id, chunk_ids, old_chunk_ids, writer, updated_at FROM documents WHERE state != 'committed'"
            ).fetchall()
        return [Unfinished(d, json.loads(new) + json.loads(old), w, float(t)) for d, new, old, w, t in rows]


class ChromaRegistry(Registry):
    """Registry kept as records of a small collection on the Chroma server — http mode, so that
    every app instance sharing the server sees the same documents and states."""

    _INFO = "__info__:"

    def __init__(self, client: Any, collection: str) -> None:
        self._col = client.get_or_create_collection(f"{collection}_registry", embedding_function=None)
        self._lock = threading.RLock()

    def _put(self, record_id: str, metadata: dict[str, Any]) -> None:
        self._col.upsert(ids=[record_id], embeddings=[[0.0]], metadatas=[metadata])

    def get_info(self, key: str) -> str | None:
        res = self._col.get(ids=[self._INFO + key], include=["metadatas"])
        return str(res["metadatas"][0]["value"]) if res["ids"] else None

    def set_info(self, key: str, value: str) -> None:
        self._put(self._INFO + key, {"value": value})

    def _bump(self) -> None:
        self.set_info("generation", uuid.uuid4().hex)

    @staticmethod
    def _record(meta: dict[str, Any]) -> DocumentRecord:
        return DocumentRecord(
            DocumentMeta.from_metadata(json.loads(meta["meta"])),
            str(meta["state"]),
            json.loads(meta["chunk_ids"]),
            int(meta["chunk_count"]),
        )

    def _all(self) -> list[tuple[str, dict[str, Any]]]:
        res = self._col.get(include=["metadatas"])
        return [
            (i, dict(m))
            for i, m in zip(res["ids"], res["metadatas"], strict=True)
            if not i.startswith(self._INFO)
        ]

    def documents(self, state: str | None = "committed") -> list[DocumentRecord]:
        rows = sorted(self._all())
        return [self._record(m) for _, m in rows if state is None or m.get("state") == state]

    def get(self, doc_id: str) -> DocumentRecord | None:
        res = self._col.get(ids=[doc_id], include=["metadatas"])
        return self._record(dict(res["metadatas"][0])) if res["ids"] else None

    def begin_write(self, meta: DocumentMeta, new_ids: list[str], old_ids: list[str]) -> None:
        self._put(
            meta.doc_id,
            {
                "content_hash": meta.content_hash,
                "state": "pending",
                "meta": json.dumps(meta.to_metadata(), ensure_ascii=False),
                "chunk_ids": json.dumps(new_ids),
                "old_chunk_ids": json.dumps(old_ids),
                "chunk_count": len(new_ids),
                "updated_at": time.time(),
                "writer": WRITER,
            },
        )

    def _update(self, doc_id: str, **changes: Any) -> None:
        res = self._col.get(ids=[doc_id], include=["metadatas"])
        if res["ids"]:
            self._put(doc_id, {**dict(res["metadatas"][0]), **changes, "updated_at": time.time()})

    def commit_write(self, doc_id: str) -> None:
        self._update(doc_id, state="committed", old_chunk_ids="[]", writer="")
        self._bump()

    def set_meta(self, meta: DocumentMeta) -> None:
        self._update(meta.doc_id, meta=json.dumps(meta.to_metadata(), ensure_ascii=False))
        self._bump()

    def begin_delete(self, doc_id: str) -> None:
        self._update(doc_id, state="deleting", writer=WRITER)

    def finish_delete(self, doc_id: str) -> None:
        self._col.delete(ids=[doc_id])
        self._bump()

    def unfinished(self) -> list[Unfinished]:
        return [
            Unfinished(
                i,
                json.loads(m["chunk_ids"]) + json.loads(m.get("old_chunk_ids", "[]")),
                str(m.get("writer", "")),
                float(m.get("updated_at", 0.0)),
            )
            for i, m in self._all()
            if m.get("state") != "committed"
        ]


def _chunk_metadatas(meta: DocumentMeta, chunks: list[Chunk]) -> list[dict[str, Any]]:
    """What Chroma stores beside each chunk: its own fields and the document's, for filtering."""
    doc_fields = {"status": meta.status, "doc_type": meta.doc_type, "effective_date": meta.effective_date}
    return [{**c.to_metadata(), **doc_fields} for c in chunks]


def make_chroma_client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_mode == ChromaMode.http:
        headers = (
            {"Authorization": f"Bearer {settings.chroma_auth_token}"} if settings.chroma_auth_token else None
        )
        return chromadb.HttpClient(
            host=settings.chroma_host,
            port=settings.chroma_port,
            ssl=settings.chroma_ssl,
            headers=headers,
            settings=chroma_settings,
        )
    path = settings.index_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


class Store:
    """Chunks with their vectors in Chroma, documents in the registry; the two kept in step."""

    def __init__(self, settings: Settings, embedding_model_id: str, check_model: bool = True) -> None:
        """`check_model=False` opens an index built by another embedding model, to rebuild it."""
        self.settings = settings
        self.client = make_chroma_client(settings)
        self.registry: Registry = (
            ChromaRegistry(self.client, settings.collection)
            if settings.chroma_mode == ChromaMode.http
            else SqliteRegistry(settings.index_dir / "registry.sqlite3")
        )
        if check_model:
            self._check_model(embedding_model_id)
        self.collection = self.client.get_or_create_collection(
            settings.collection, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
        )
        self._writes = 0
        self.recover()

    def _check_model(self, model_id: str) -> None:
        recorded = self.registry.get_info("embedding_model")
        if recorded is None:
            self.registry.set_info("embedding_model", model_id)
        elif recorded != model_id and self.registry.documents(state=None):
            raise IndexMismatchError(
                f"索引 {self.settings.index_dir} 是用嵌入模型 {recorded} 建立的，当前设置为 {model_id}。"
                "请换一个 ASSISTANT_INDEX_DIR，或运行 `ingest --rebuild` 重建索引。"
            )

    # --- consistency -----------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Roll back documents a crashed process left half-written. Returns their ids."""
        rolled_back = []
        for item in self.registry.unfinished():
            if not writer_is_gone(item.writer, item.updated_at):
                continue  # another live process is writing it right now
            self._delete_ids(item.chunk_ids)
            self.registry.finish_delete(item.doc_id)
            rolled_back.append(item.doc_id)
        return rolled_back

    def _fault(self, point: str) -> None:
        """Testing hook: with `crash_at="POINT:N"`, the N-th document write dies at POINT like a SIGKILL."""
        target = self.settings.crash_at
        if (
            target
            and target.rsplit(":", 1)[0] == point
            and int(target.rsplit(":", 1)[-1] or 1) == self._writes
        ):
            os.kill(os.getpid(), signal.SIGKILL)

    def _delete_ids(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), 500):
            batch = list(ids[start : start + 500])
            if batch:
                self.collection.delete(ids=batch)

    # --- writes ------------------------------------------------------------------------------------

    def write_document(self, meta: DocumentMeta, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        self._writes += 1
        previous = self.registry.get(meta.doc_id)
        old_ids = previous.chunk_ids if previous else []
        new_ids = [c.chunk_id for c in chunks]
        self._fault("before_begin")
        self.registry.begin_write(meta, new_ids, old_ids)
        self._fault("after_begin")
        self._delete_ids(sorted(set(old_ids) - set(new_ids)))
        for start in range(0, len(chunks), 64):
            batch = chunks[start : start + 64]
            self.collection.upsert(
                ids=[c.chunk_id for c in batch],
                embeddings=vectors[start : start + 64],
                documents=[c.text for c in batch],
                metadatas=_chunk_metadatas(meta, batch),
            )
            self._fault("mid_upsert")
        self._fault("before_commit")
        self.registry.commit_write(meta.doc_id)
        self._fault("after_commit")

    def refresh_chunks(self, meta: DocumentMeta, chunks: list[Chunk]) -> bool:
        """Rewrite the metadata of a committed document's chunks in place (same ids, same vectors),
        for a chunk-format change that leaves the text alone. False when the ids differ."""
        record = self.registry.get(meta.doc_id)
        if record is None or sorted(record.chunk_ids) != sorted(c.chunk_id for c in chunks):
            return False
        for start in range(0, len(chunks), 64):
            batch = chunks[start : start + 64]
            self.collection.update(ids=[c.chunk_id for c in batch], metadatas=_chunk_metadatas(meta, batch))
        self.registry.set_info("generation", uuid.uuid4().hex)  # snapshots reload the new metadata
        return True

    def delete_document(self, doc_id: str) -> bool:
        record = self.registry.get(doc_id)
        if record is None:
            return False
        self.registry.begin_delete(doc_id)
        self._delete_ids(record.chunk_ids)
        self.registry.finish_delete(doc_id)
        return True

    # --- reads -------------------------------------------------------------------------------------

    def committed_ids(self) -> set[str]:
        return {r.meta.doc_id for r in self.registry.documents()}

    def chunk_count(self) -> int:
        return sum(r.chunk_count for r in self.registry.documents())

    def document_chunks(self, doc_id: str) -> list[Chunk]:
        res = self.collection.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
        chunks = [
            Chunk.from_metadata(t or "", dict(m))
            for t, m in zip(res["documents"], res["metadatas"], strict=True)
        ]
        return sorted(chunks, key=lambda c: (c.char_start, c.part))

    def all_chunks(self) -> list[Chunk]:
        return [c for c, _ in self.all_chunks_with_vectors(vectors=False)]

    def all_chunks_with_vectors(self, vectors: bool = True) -> list[tuple[Chunk, Any]]:
        """Every chunk of a committed document with its stored embedding (a vector as Chroma returns it,
        or None), in document order."""
        committed = self.committed_ids()
        include: list[Any] = (
            ["documents", "metadatas", "embeddings"] if vectors else ["documents", "metadatas"]
        )
        res = self.collection.get(include=include)
        embeddings = res.get("embeddings") if vectors else None
        out = [
            (Chunk.from_metadata(t or "", dict(m)), None if embeddings is None else embeddings[i])
            for i, (t, m) in enumerate(zip(res["documents"], res["metadatas"], strict=True))
            if m.get("doc_id") in committed
        ]
        return sorted(out, key=lambda cv: (cv[0].doc_id, cv[0].char_start, cv[0].part))

    def close(self) -> None:
        self.registry.close()
