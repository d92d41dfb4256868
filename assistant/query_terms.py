"""Lay → statutory vocabulary for the keyword side of a query (data in data/lay_terms.yaml)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

_LAY_TERMS_FILE = Path(__file__).parent / "data" / "lay_terms.yaml"


@lru_cache(maxsize=1)
def lay_terms() -> dict[str, tuple[str, ...]]:
    data = yaml.safe_load(_LAY_TERMS_FILE.read_text(encoding="utf-8")) or {}
    return {str(k): tuple(str(t) for t in v) for k, v in (data.get("terms") or {}).items()}


def expand_query(query: str) -> str:
    """The query plus the statutory terms for the everyday words it contains."""
    extra: list[str] = []
    for lay, legal in lay_terms().items():
        if lay in query:
            extra.extend(t for t in legal if t not in query and t not in extra)
    return f"{query} {' '.join(extra)}" if extra else query
