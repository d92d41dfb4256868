"""Helpers for showing untrusted text (documents, user input, model output) safely in the UI.

Nothing here trusts its input: text is HTML-escaped before any markup is added around spans, and
Markdown special characters are escaped where text goes through a Markdown renderer."""

from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<&$:])")


def escape_markdown(text: str) -> str:
    """Escape Markdown (and HTML-significant) characters so text is shown literally, never interpreted."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def page_label(page_start: int, page_end: int) -> str:
    return f"第{page_start}页" if page_start == page_end else f"第{page_start}–{page_end}页"


def highlight_html(text: str, spans: list[tuple[int, int]], numbered: bool = False) -> str:
    """`text` as HTML with the given spans wrapped in <mark>; every piece is escaped first, so
    `<script>` in a document or draft is shown as text. Overlapping spans are merged."""
    merged: list[tuple[int, int]] = []
    for s, e in sorted((max(0, s), min(len(text), e)) for s, e in spans if e > s):
        if merged and s < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    out: list[str] = []
    pos = 0
    for number, (s, e) in enumerate(merged, start=1):
        out.append(html.escape(text[pos:s]))
        label = f"<sup>{number}</sup>" if numbered else ""
        out.append(f'<mark style="background:#ffe08a;padding:0 2px;border-radius:3px">{html.escape(text[s:e])}</mark>{label}')
        pos = e
    out.append(html.escape(text[pos:]))
    body = "".join(out).replace("\n", "<br>")
    return f'<div style="line-height:1.9;white-space:normal">{body}</div>'


def term_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Where the given terms occur in `text` (for highlighting search hits)."""
    spans = []
    for term in {t for t in terms if len(t) >= 2}:
        start = text.find(term)
        while start >= 0:
            spans.append((start, start + len(term)))
            start = text.find(term, start + 1)
    return spans
