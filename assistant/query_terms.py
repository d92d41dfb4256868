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


def expand_query(query: str, expand_from: str | None = None) -> str:
    """The query plus the statutory terms for the everyday words of `expand_from` (default: the query).
    A follow-up's rewrite carries the earlier question, whose words were expanded when it was asked;
    expanding them again pulls the search back to the earlier article, so a follow-up expands only its
    own words (`conversations-round13.md`)."""
    source = query if expand_from is None else expand_from
    extra: list[str] = []
    for lay, legal in lay_terms().items():
        if lay in source:
            extra.extend(t for t in legal if t not in query and t not in extra)
    return f"{query} {' '.join(extra)}" if extra else query
