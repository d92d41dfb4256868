"""The document library as the app manages it: saving uploads safely and (re)indexing them."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from assistant.loaders import SUPPORTED_SUFFIXES
from assistant.settings import Settings


def safe_file_name(name: str) -> str:
    """A file name that cannot leave its folder: no path parts, no control or shell-special characters."""
    name = unicodedata.normalize("NFKC", name).replace("\\", "/").split("/")[-1]
    name = re.sub(r"[\x00-\x1f\x7f<>:\"|?*$`;&]", "_", name).strip(" .")
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem = stem.strip(" .") or "upload"
    return f"{stem[:120]}.{suffix.lower()}" if suffix else stem[:120]


def save_upload(name: str, data: bytes, settings: Settings) -> Path:
    """Store an uploaded file under the uploads folder and return its path (never outside it)."""
    folder = settings.uploads_dir.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / safe_file_name(name)).resolve()
    if target.parent != folder:
        raise ValueError("非法的文件名")
    target.write_bytes(data)
    return target


def accepted_types() -> list[str]:
    return sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES)
