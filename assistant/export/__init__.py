"""Exports (Markdown, DOCX) of reviews; trainer handouts build on the same helpers."""
