"""Reading a draft from a file (.txt/.md any common encoding, .docx)."""

from __future__ import annotations

from pathlib import Path

from assistant.loaders import LoadError, decode_text, docx_text, open_docx


class DraftReadError(Exception):
    pass


def read_draft(path: Path) -> str:
    if not path.is_file():
        raise DraftReadError(f"找不到文稿文件：{path}")
    data = path.read_bytes()
    if not data.strip():
        raise DraftReadError("文稿文件为空")
    if path.suffix.lower() == ".docx":
        return read_docx_bytes(data)
    try:
        return decode_text(data)
    except LoadError as err:
        raise DraftReadError(str(err)) from err


def read_docx_bytes(data: bytes) -> str:
    try:
        return docx_text(open_docx(data))
    except LoadError as err:
        raise DraftReadError(str(err)) from err
