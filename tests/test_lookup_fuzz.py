"""The clause-reference parser never raises on arbitrary text, and its spans stay in range."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.lookup import ArticleIndex
from assistant.types import Chunk, DocumentMeta

META = DocumentMeta(doc_id="fsl", title="中华人民共和国食品安全法", source_path="/x", content_hash="h", file_type="md")
INDEX = ArticleIndex([Chunk("fsl", META.title, "第一条", "", 1, 1, 0, 8, "第一条 为了保证食品安全。")], {"fsl": META})
FRAGMENTS = st.sampled_from(["食品安全法", "第", "条", "款", "项", "七十八", "78", "《", "》", " ", "第一百零五条", "\u3000", "\x00"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=8), FRAGMENTS), max_size=20).map("".join))
def test_parse_and_lookup_never_raise(text: str) -> None:
    for ref, _doc in INDEX.parse(text):
        assert 0 <= ref.start <= ref.end
        assert ref.article > 0
    result = INDEX.lookup(text)
    assert result.found in (True, False)
    if not result.found:
        assert not result.text
