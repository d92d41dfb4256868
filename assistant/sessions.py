"""Trainer Q&A sessions: a titled session with a queue of audience questions and their cited
answers, kept in SQLite under the data directory so a session can be reopened later."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.sqlite_db import SqliteDB

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    held_on TEXT NOT NULL DEFAULT '',
    audience TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS questions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    answer TEXT,                -- Answer.to_json() as JSON, NULL until answered
    answered_at REAL
);
CREATE INDEX IF NOT EXISTS questions_by_session ON questions(session_id, position);
"""
MAX_QUESTION_CHARS = 2000


@dataclass
class QueuedQuestion:
    id: int
    position: int
    text: str
    answer: dict[str, Any] | None = None

    @property
    def answered(self) -> bool:
        return self.answer is not None


@dataclass
class TrainingSession:
    id: int
    title: str
    held_on: str
    audience: str
    questions: list[QueuedQuestion] = field(default_factory=list)


def split_question_list(pasted: str) -> list[str]:
    """One question per line; list markers ("1.", "一、", "-", "•") and blank lines removed."""
    import re

    out = []
    for line in pasted.splitlines():
        line = re.sub(r"^\s*(?:[-*•·]|\d{1,3}[.、)）]|[一二三四五六七八九十]+、|[(（]\d{1,3}[)）])\s*", "", line).strip()
        if line:
            out.append(line[:MAX_QUESTION_CHARS])
    return out


class SessionStore(SqliteDB):
    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    # --- sessions ----------------------------------------------------------------------------------

    def create(self, title: str, held_on: str = "", audience: str = "") -> int:
        title = title.strip() or "未命名场次"
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO sessions(title, held_on, audience, created_at) VALUES (?, ?, ?, ?)",
                (title[:200], held_on[:40], audience[:200], time.time()),
            )
            return int(cur.lastrowid or 0)

    def all(self) -> list[TrainingSession]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, title, held_on, audience FROM sessions ORDER BY created_at DESC, id DESC"
            ).fetchall()
        return [TrainingSession(*row) for row in rows]

    def get(self, session_id: int) -> TrainingSession:
        with self._lock:
            row = self._conn.execute(
                "SELECT id, title, held_on, audience FROM sessions WHERE id=?", (session_id,)
            ).fetchone()
            if row is None:
                raise KeyError(f"没有编号为 {session_id} 的培训场次")
            qs = self._conn.execute(
                "SELECT id, position, text, answer FROM questions WHERE session_id=? ORDER BY position, id",
                (session_id,),
            ).fetchall()
        session = TrainingSession(*row)
        session.questions = [
            QueuedQuestion(qid, pos, text, json.loads(answer) if answer else None) for qid, pos, text, answer in qs
        ]
        return session

    def delete(self, session_id: int) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM questions WHERE session_id=?", (session_id,))
            c.execute("DELETE FROM sessions WHERE id=?", (session_id,))

    # --- the question queue -----------------------------------------------------------------------

    def add_questions(self, session_id: int, texts: list[str]) -> list[int]:
        texts = [t.strip()[:MAX_QUESTION_CHARS] for t in texts if t.strip()]
        ids = []
        with self._tx() as c:
            start = c.execute(
                "SELECT COALESCE(MAX(position), 0) FROM questions WHERE session_id=?", (session_id,)
            ).fetchone()[0]
            for offset, text in enumerate(texts, start=1):
                cur = c.execute(
                    "INSERT INTO questions(session_id, position, text) VALUES (?, ?, ?)",
                    (session_id, start + offset, text),
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    def remove_question(self, question_id: int) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM questions WHERE id=?", (question_id,))

    def reorder(self, session_id: int, question_ids: list[int]) -> None:
        """Put the session's questions in the given order (ids not listed keep their relative order, after)."""
        current = [q.id for q in self.get(session_id).questions]
        order = [q for q in question_ids if q in current] + [q for q in current if q not in question_ids]
        with self._tx() as c:
            for position, qid in enumerate(order, start=1):
                c.execute("UPDATE questions SET position=? WHERE id=? AND session_id=?", (position, qid, session_id))

    def move(self, session_id: int, question_id: int, offset: int) -> None:
        order = [q.id for q in self.get(session_id).questions]
        if question_id not in order:
            return
        i = order.index(question_id)
        j = max(0, min(len(order) - 1, i + offset))
        order.insert(j, order.pop(i))
        self.reorder(session_id, order)

    def save_answer(self, question_id: int, answer: dict[str, Any]) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE questions SET answer=?, answered_at=? WHERE id=?",
                (json.dumps(answer, ensure_ascii=False), time.time(), question_id),
            )

    def answer_pending(
        self,
        session_id: int,
        ask: Callable[[str], dict[str, Any]],
        progress: Callable[[int, int, str], None] | None = None,
        only: list[int] | None = None,
    ) -> int:
        """Answer the unanswered questions (or just `only`), saving each as soon as it is done."""
        pending = [
            q for q in self.get(session_id).questions if (only is None and not q.answered) or (only and q.id in only)
        ]
        for i, q in enumerate(pending, start=1):
            if progress:
                progress(i, len(pending), q.text)
            self.save_answer(q.id, ask(q.text))
        return len(pending)
