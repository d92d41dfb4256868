"""Helpers for showing untrusted text (documents, user input, model output) safely in the UI."""

from __future__ import annotations

import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<&$:])")


def escape_markdown(text: str) -> str:
    """Escape Markdown (and HTML-significant) characters so text is shown literally, never interpreted."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def page_label(page_start: int, page_end: int) -> str:
    return f"第{page_start}页" if page_start == page_end else f"第{page_start}–{page_end}页"
